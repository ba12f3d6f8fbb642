"""How the two computed prototypes of ml/structures/prototypes.json were made (run once on 2026-12-07).

* Na3YCl6_P21n: cryolite Na3AlF6 coordinates (Hawthorne & Ferguson, Can. Mineral. 13 (1975) 377, AMCSD 0005118)
  with Al -> Y and F -> Cl, on the measured cell of isotypic Na3HoCl6 (Boecker, Gerlitzki, Meyer, Z. Kristallogr.
  NCS 216 (2001) 19); positions relaxed with CHGNet at that fixed cell, P2_1/n imposed (ASE FixSymmetry).
* antiperovskite_Pm-3m: the symmetry-fixed 5-atom Na3OCl cell (and Na3OBr as a check), cell relaxed with CHGNet.

Not part of nacond or its CI: it needs `pip install chgnet==0.4.2` (weights ship in the wheel; offline) and ase.

    python docs/structures_relax.py
"""

from __future__ import annotations

import warnings

import numpy as np
from ase.constraints import FixSymmetry
from ase.optimize import FIRE
from chgnet.model import CHGNet, StructOptimizer
from chgnet.model.dynamics import CHGNetCalculator
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

warnings.filterwarnings("ignore")

# cryolite, AMCSD 0005118: Al 2a, Na1 2b, Na2 4e, F1-F3 4e (Al -> Y, F -> Cl)
CRYOLITE = [("Y", [0, 0, 0]), ("Na", [0, 0, 0.5]), ("Na", [0.5133, -0.0519, 0.2474]),
            ("Cl", [0.1026, 0.0455, 0.2194]), ("Cl", [-0.2732, 0.1737, 0.0462]), ("Cl", [0.1634, 0.2690, -0.0630])]
NA3HOCL6_CELL = (6.8683, 7.274, 10.167, 90, 90.79, 90)


def anion_distances(s: Structure, cation: str) -> list[float]:
    site = next(x for x in s if x.specie.symbol == cation)
    return sorted(round(n.nn_distance, 3) for n in s.get_neighbors(site, 3.6) if n.specie.symbol == "Cl")[:6]


def na3ycl6(model) -> Structure:
    s = Structure.from_spacegroup("P12_1/n1", Lattice.from_parameters(*NA3HOCL6_CELL),
                                  [a for a, _ in CRYOLITE], [c for _, c in CRYOLITE])
    print("start Y-Cl", anion_distances(s, "Y"))
    atoms = AseAtomsAdaptor.get_atoms(s)
    atoms.set_constraint(FixSymmetry(atoms, symprec=0.01))
    atoms.calc = CHGNetCalculator(model=model)
    opt = FIRE(atoms, logfile=None)
    opt.run(fmax=0.02, steps=1500)
    r = AseAtomsAdaptor.get_structure(atoms)
    print("relaxed", SpacegroupAnalyzer(r, symprec=0.01).get_space_group_symbol(), "steps", opt.nsteps,
          "Y-Cl", anion_distances(r, "Y"))
    for k in (0, 2, 4, 8, 12, 16):  # the generating site of each orbit, in from_spacegroup's order
        print("asymmetric unit", r[k].specie, np.round(r[k].frac_coords, 4))
    return r


def antiperovskite(model, halide: str) -> float:
    s = Structure.from_spacegroup("Pm-3m", Lattice.cubic(4.5), ["O", halide, "Na"],
                                  [[0.5, 0.5, 0.5], [0, 0, 0], [0, 0.5, 0.5]])
    res = StructOptimizer(model=model).relax(s, fmax=0.01, relax_cell=True, verbose=False)
    return float(res["final_structure"].lattice.a)


def main() -> None:
    model = CHGNet.load()
    na3ycl6(model)
    for halide in ("Cl", "Br"):
        print(f"Na3O{halide}: a = {antiperovskite(model, halide):.4f} A")


if __name__ == "__main__":
    main()
