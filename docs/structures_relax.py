"""One-off: cryolite-type Na3YCl6 (positions relaxed with CHGNet at the measured Na3HoCl6 cell, P2_1/n kept)
and antiperovskite Na3OCl (cubic cell relaxed with CHGNet). Prints the facts for prototypes.json."""
import sys, json, warnings
warnings.filterwarnings("ignore")
import numpy as np
from pymatgen.core import Structure, Lattice
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from chgnet.model import CHGNet, StructOptimizer
from ase.constraints import FixSymmetry
from pymatgen.io.ase import AseAtomsAdaptor

model = CHGNet.load()
# cryolite, Hawthorne & Ferguson 1975 (AMCSD 0005118): Al 2a, Na1 2b, Na2 4e, F1-3 4e
cryo = [("Y", [0, 0, 0]), ("Na", [0, 0, 0.5]), ("Na", [0.5133, -0.0519, 0.2474]),
        ("Cl", [0.1026, 0.0455, 0.2194]), ("Cl", [-0.2732, 0.1737, 0.0462]), ("Cl", [0.1634, 0.2690, -0.0630])]
lat = Lattice.from_parameters(6.8683, 7.274, 10.167, 90, 90.79, 90)  # Na3HoCl6, Boecker et al. 2001
s = Structure.from_spacegroup("P12_1/n1", lat, [a for a, _ in cryo], [c for _, c in cryo])
print(s.composition, len(s))
def dists(s):
    out = {}
    for i, site in enumerate(s):
        if site.specie.symbol in ("Y", "Na"):
            nn = s.get_neighbors(site, 3.6)
            d = sorted(n.nn_distance for n in nn if n.specie.symbol == "Cl")[:6]
            out.setdefault(site.specie.symbol + str(i), [round(x, 3) for x in d])
    return out
print("start", dists(s))
atoms = AseAtomsAdaptor.get_atoms(s)
atoms.set_constraint(FixSymmetry(atoms, symprec=0.01))
from chgnet.model.dynamics import CHGNetCalculator
from ase.optimize import FIRE
atoms.calc = CHGNetCalculator(model=model)
opt = FIRE(atoms, logfile=None)
opt.run(fmax=0.02, steps=1500)
r = AseAtomsAdaptor.get_structure(atoms)
sga = SpacegroupAnalyzer(r, symprec=0.01)
print("relaxed sg", sga.get_space_group_symbol(), "steps", opt.nsteps, "fmax", np.abs(atoms.get_forces()).max())
print("relaxed", dists(r))
sym = sga.get_symmetrized_structure()
for eq in sym.equivalent_sites:
    site = eq[0]
    print(site.specie, len(eq), np.round(site.frac_coords, 4))
for k in (0, 2, 4, 8, 12, 16):
    print("asym", r[k].specie, np.round(r[k].frac_coords, 4), "start", np.round(s[k].frac_coords, 4))
print("volume", r.volume, "cell", r.lattice.parameters)
# antiperovskite Na3OCl: O 1a? Use O at body centre 1b (1/2,1/2,1/2), Cl at 1a, Na 3c (0,1/2,1/2)
for hal in ("Cl", "Br"):
    ap = Structure.from_spacegroup("Pm-3m", Lattice.cubic(4.5), ["O", hal, "Na"], [[.5, .5, .5], [0, 0, 0], [0, .5, .5]])
    print(ap.composition)
    res = StructOptimizer(model=model).relax(ap, fmax=0.01, relax_cell=True, verbose=False)
    fs = res["final_structure"]
    print(hal, "a =", fs.lattice.abc, "Na-O", round(fs.lattice.a / 2, 4))
