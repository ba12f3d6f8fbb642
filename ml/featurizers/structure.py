"""Occupancy-aware structure featurizers (matminer ``BaseFeaturizer`` contract).

matminer's DensityFeatures, SiteStatsFingerprint and ChemicalOrdering fail on partially occupied sites
(shared/STACK.md); most electrolytes are disordered, so :class:`NaSiteFeatures` computes its descriptors from
pymatgen's periodic neighbour list with every quantity weighted by site occupancy:

* volume per atom, per Na and per anion; density; packing fraction (Shannon radii at rule oxidation states);
* Na sublattice: Na per Na site (filling), Na-Na nearest distance (min, occupancy-weighted mean), Na neighbours
  within 3.5 and 4.5 A;
* Na-anion: nearest distance (min, mean), first-shell coordination number (anion occupancy within 1.2 x the
  nearest distance);
* bottleneck / free volume: the free radius of each Na site (nearest anion distance minus the anion radius) and
  of the Na-Na hop midpoints (distance from the midpoint to the nearest anion minus its radius), the widest
  hop per Na site averaged;
* Ewald energy per atom with rule-assigned oxidation states (cage anions balanced on B/C/N/Al); NaN-free: a cell
  that cannot be balanced gets the energy of its compensated (background-neutralised) charges;
* symmetry: space-group number and crystal system;
* Na bond-valence sums (universal parameters of O'Keeffe & Brese 1991, as in pymatgen's
  ``calculate_bv_sum_unordered``; occupancy-weighted over the anions within ``cutoff``): the mean over Na sites
  and the lowest. An under-bonded Na (sum well below 1) sits in a site too large for it and is loosely held;
  an exactly bonded one (rock-salt NaCl) is not (Adams' bond-valence view of ion mobility).

Cost: ~10-60 ms per structure of <= 150 sites on one core.
"""

from __future__ import annotations

import warnings

import numpy as np
from matminer.featurizers.base import BaseFeaturizer

from ml.chemistry import ANION_STATES, cation_state, has_hydride_cage, ionic_radius

CRYSTAL_SYSTEMS = ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal", "hexagonal", "cubic")
_CAGE_BALANCERS = ("B", "C", "N", "Al")


def _occupancies(structure) -> tuple[list[str], np.ndarray]:
    """Elements and an (n_sites, n_elements) occupancy matrix."""
    els = sorted({sp.symbol if hasattr(sp, "symbol") else str(sp) for site in structure for sp in site.species})
    idx = {e: i for i, e in enumerate(els)}
    occ = np.zeros((len(structure), len(els)))
    for i, site in enumerate(structure):
        for sp, x in site.species.items():
            occ[i, idx[sp.symbol if hasattr(sp, "symbol") else str(sp)]] += x
    return els, occ


def rule_oxidation_states(amounts: dict[str, float]) -> dict[str, float]:
    """Oxidation states by rule (ml.chemistry); for hydride cages the cage's B/C/N/Al take the charge that
    balances the cell (B12H12 2-: B +0.83 with H -1). Never pymatgen's guesser."""
    states = {el: float(ANION_STATES.get(el, 0) or cation_state(el)) for el in amounts}
    if has_hydride_cage(amounts):
        states["H"] = -1.0
        bal = [e for e in _CAGE_BALANCERS if e in amounts]
        if bal:
            rest = sum(amounts[e] * states[e] for e in amounts if e not in bal)
            n = sum(amounts[e] for e in bal)
            for e in bal:
                states[e] = -rest / n
    return states


class NaSiteFeatures(BaseFeaturizer):
    """Occupancy-aware descriptors of the Na sublattice, its anion cage and the cell (see module docstring).

    Args:
        cutoff: neighbour-list radius in Angstrom.
        mobile_ion: the conducting ion.
        ewald: compute the Ewald energy (the slowest part).
    """

    def __init__(self, cutoff: float = 6.0, mobile_ion: str = "Na", ewald: bool = True):
        self.cutoff = cutoff
        self.mobile_ion = mobile_ion
        self.ewald = ewald

    def feature_labels(self) -> list[str]:
        return [
            "volume_per_atom", "volume_per_na", "volume_per_anion", "density", "packing_fraction",
            "na_site_filling", "na_na_min", "na_na_mean", "na_neighbours_3.5", "na_neighbours_4.5",
            "na_anion_min", "na_anion_mean", "na_coordination", "na_free_radius_mean", "na_free_radius_min",
            "hop_bottleneck_mean", "hop_bottleneck_max", "ewald_energy_per_atom", "charge_imbalance_per_atom",
            "spacegroup_number", "crystal_system", "na_bvs_mean", "na_bvs_min",
        ]

    def featurize(self, structure) -> list[float]:
        from pymatgen.core import Element

        na = self.mobile_ion
        els, occ = _occupancies(structure)
        if na not in els:
            raise ValueError(f"structure {structure.composition.reduced_formula} has no {na}")
        amounts = dict(zip(els, occ.sum(0), strict=True))
        n_atoms = occ.sum()
        states = rule_oxidation_states(amounts)
        anion_els = [e for e in els if e in ANION_STATES or (e == "H" and states.get("H", 0) < 0)]
        radius = np.array([ionic_radius(e, int(round(states[e]))) if float(states[e]).is_integer() and states[e]
                           else float(Element(e).atomic_radius or 1.0) for e in els])
        ai = [els.index(e) for e in anion_els]
        na_i = els.index(na)
        na_occ = occ[:, na_i]
        anion_occ = occ[:, ai].sum(1) if ai else np.zeros(len(structure))
        anion_r = (occ[:, ai] @ radius[ai]) / np.maximum(anion_occ, 1e-12) if ai else np.zeros(len(structure))
        vol = structure.volume
        n_na = na_occ.sum()
        mass = sum(amounts[e] * float(Element(e).atomic_mass) for e in els)
        density = mass / vol * 1.66053907
        packing = float((occ @ (4.0 / 3.0 * np.pi * radius ** 3)).sum() / vol)

        na_sites = np.where(na_occ > 0)[0]
        centers, points, images, dists = structure.get_neighbor_list(self.cutoff, sites=[structure[i]
                                                                                         for i in na_sites])
        centers = na_sites[centers]
        w_na = na_occ[na_sites]
        nn_na, n35, n45, nn_an, mean_an, cn, free = ([] for _ in range(7))
        for i in na_sites:
            m = (centers == i) & (dists > 1e-6)
            d, p = dists[m], points[m]
            is_na = na_occ[p] > 0
            nn_na.append(d[is_na].min() if is_na.any() else self.cutoff)
            n35.append(float(na_occ[p][d < 3.5].sum()))
            n45.append(float(na_occ[p][d < 4.5].sum()))
            is_an = anion_occ[p] > 0
            if is_an.any():
                dmin = d[is_an].min()
                shell = is_an & (d <= 1.2 * dmin)
                nn_an.append(dmin)
                mean_an.append(float(np.average(d[shell], weights=anion_occ[p][shell])))
                cn.append(float(anion_occ[p][shell].sum()))
                free.append(dmin - float(anion_r[p][is_an][np.argmin(d[is_an])]))
            else:
                nn_an.append(self.cutoff)
                mean_an.append(self.cutoff)
                cn.append(0.0)
                free.append(self.cutoff)
        bvs = self._na_bvs(structure, na_sites, centers, points, dists, els, occ, anion_els)
        hop = self._hop_bottlenecks(structure, na_sites, na_occ, anion_occ, anion_r)
        ewald_e, imbalance = self._ewald(structure, states, n_atoms) if self.ewald else (0.0, 0.0)
        sg_num, system = self._symmetry(structure)
        wavg = lambda v: float(np.average(np.asarray(v, dtype=float), weights=w_na))  # noqa: E731
        return [
            vol / n_atoms, vol / n_na, vol / max(anion_occ.sum(), 1e-12), density, packing,
            n_na / len(na_sites), float(np.min(nn_na)), wavg(nn_na), wavg(n35), wavg(n45),
            float(np.min(nn_an)), wavg(mean_an), wavg(cn), wavg(free), float(np.min(free)),
            float(np.mean(hop)) if len(hop) else 0.0, float(np.max(hop)) if len(hop) else 0.0,
            ewald_e, imbalance, float(sg_num), float(system), wavg(bvs), float(np.min(bvs)),
        ]

    @staticmethod
    def _na_bvs(structure, na_sites, centers, points, dists, els, occ, anion_els) -> list[float]:
        """Bond-valence sum of Na on each Na site from its anion neighbours (occupancy-weighted)."""
        from pymatgen.analysis.bond_valence import BV_PARAMS
        from pymatgen.core import Element

        na = BV_PARAMS[Element("Na")]
        r0 = {}
        for e in anion_els:
            p = BV_PARAMS.get(Element(e))
            if p is not None:  # R0 of the Na-anion pair from the universal parameters
                r0[els.index(e)] = (na["r"] + p["r"] - na["r"] * p["r"] * (np.sqrt(na["c"]) - np.sqrt(p["c"])) ** 2
                                    / (na["c"] * na["r"] + p["c"] * p["r"]))
        out = []
        for i in na_sites:
            m = (centers == i) & (dists > 1e-6)
            total = 0.0
            for k, r in r0.items():
                total += float((occ[points[m], k] * np.exp((r - dists[m]) / 0.31)).sum())
            out.append(total)
        return out

    def _hop_bottlenecks(self, structure, na_sites, na_occ, anion_occ, anion_r) -> np.ndarray:
        """Per Na site, the widest free radius at the midpoint of a hop to another Na site (< 4.5 A)."""
        from scipy.spatial import cKDTree

        an = np.where(anion_occ > 0)[0]
        if not len(an):
            return np.array([])
        lat = structure.lattice
        shifts = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)])
        frac = structure.frac_coords
        img = (frac[an][None, :, :] + shifts[:, None, :]).reshape(-1, 3)
        tree = cKDTree(lat.get_cartesian_coords(img))
        r_img = np.tile(anion_r[an], len(shifts))
        centers, points, _, dists = structure.get_neighbor_list(4.5, sites=[structure[i] for i in na_sites])
        centers = na_sites[centers]
        best = np.full(len(structure), -np.inf)
        keep = (na_occ[points] > 0) & (dists > 0.5)
        if not keep.any():
            return np.array([])
        c, p = centers[keep], points[keep]
        cart_c = structure.cart_coords[c]
        # the neighbour's image closest to the centre: the hop vector's length equals the listed distance
        dfrac = frac[p] - frac[c]
        dfrac -= np.round(dfrac)
        dvec = lat.get_cartesian_coords(dfrac)
        mid = cart_c + 0.5 * dvec
        d, j = tree.query(mid, k=4)
        free = (d - r_img[j]).min(1)
        np.maximum.at(best, c, free)
        return best[na_sites][np.isfinite(best[na_sites])]

    @staticmethod
    def _ewald(structure, states: dict[str, float], n_atoms: float) -> tuple[float, float]:
        from pymatgen.analysis.ewald import EwaldSummation

        s = structure.copy()
        charge = sum(states[sp.symbol] * x for site in s for sp, x in site.species.items())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s.add_oxidation_state_by_element(states)
            try:
                e = EwaldSummation(s, compute_forces=False).total_energy
            except Exception:  # noqa: BLE001 - a cell Ewald cannot sum is described by its charge term only
                e = 0.0
        return float(e) / n_atoms, float(charge) / n_atoms

    @staticmethod
    def _symmetry(structure) -> tuple[int, int]:
        from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sga = SpacegroupAnalyzer(structure, symprec=0.1)
                return sga.get_space_group_number(), CRYSTAL_SYSTEMS.index(sga.get_crystal_system())
        except Exception:  # noqa: BLE001 - symmetry is a descriptor, not a requirement
            return 1, 0

    def citations(self) -> list[str]:
        return ["@article{ewald1921, title={Die Berechnung optischer und elektrostatischer Gitterpotentiale}, "
                "journal={Ann. Phys.}, volume={369}, pages={253}, year={1921}, doi={10.1002/andp.19213690304}}"]

    def implementors(self) -> list[str]:
        return ["nacond developers"]
