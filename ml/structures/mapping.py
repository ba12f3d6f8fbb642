"""A composition placed on its parent structure with partial occupancies that reproduce it.

Rules (a materials scientist's default when only the composition and the parent are known):

* The cell's non-Na content is scaled to the parent's: the target is normalised so its non-Na atom count per
  cell equals the parent's (Na3.4Zr1.6Sc0.4Si2PO12 on NaZr2(PO4)3: 17 non-Na atoms per formula unit on both).
* Each element of the target that the parent has keeps the parent's sites. A new element (a dopant) shares
  the sites of the parent element of the same kind (anion or not) with the closest ionic radius at its rule
  oxidation state among those whose sites still have room (Sc3+ -> Zr4+ site, Al3+ in Na1+xAlxZr2-x(PO4)3 ->
  Zr site, Cl- -> S2- site). Parent elements the target lacks leave their sites to the elements assigned to
  them. An element placed on several site classes splits as its host does in the parent; what overfills one
  class moves to the host's other classes with room (NaGa11O17 on beta''-alumina: Ga also takes the Mg share
  of the Al2/Mg site).
* A cation dopant that finds no framework site with room and whose radius is within 15 % of Na+'s
  (``NA_SITE_RADIUS_TOL``; Ca2+, Sr2+, Y3+, La3+, Bi3+, Ag+; not Li+, K+, Cs+) shares the Na sites instead
  (aliovalent Ca in Na3-2xCaxPS4); it is then counted with Na, not with the non-Na content of the cell.
* A tetrahedral [XH4]- anion (X in ``XH4_BOND``: BH4-) whose X and H the parent lacks is one anion unit: it is
  counted and placed as one atom on the sites of the parent's monovalent monatomic anion (the largest one if
  several; Na3O(BH4) on Na3OCl's Cl site). X takes the site; H sits at X + d(X-H) along the 8 cube diagonals
  (+-1, +-1, +-1)/sqrt(3), each at half X's occupancy: the two orientations of an orientationally disordered
  tetrahedron, the model of cubic (Fm-3m) NaBH4. The cluster is rigid (no Shannon radius; its contacts do not
  scale the cell). Other molecular anions (NO2- of Na3ONO2) have no rule.
* Na (with any dopant sharing its sites, in the ratio of their amounts) fills the parent's Na sites in
  proportion to their parent occupancy, capped at 1 (water filling), so Na excess populates the partly empty
  sites first and Na deficiency leaves vacancies everywhere.
* The lattice is the parent's, scaled isotropically for the substituted ions (``lattice="radii"``, the
  default): every cation-anion contact of the parent's first coordination shells keeps its length plus the change
  of the Shannon radii of the ions now on its two sites (occupancy-weighted), and the cell takes the mean
  relative change of those contacts (Vegard's law in bond lengths). Cage anions (B12H12, BH4, ...) are rigid
  units and are not scaled. ``lattice="parent"`` keeps the parent's cell; lattice parameters measured for the
  entry (``abc``) override both.

The result reports how faithfully the structure reproduces the composition (``composition_error``, the L1
distance between atomic fractions); callers decide what error is acceptable.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from ml.chemistry import ANION_STATES, cation_state, ionic_radius
from ml.errors import NacondError
from ml.formula import parse_formula
from ml.structures.prototypes import get_prototype, parent_structure, resolve_key

MOBILE = "Na"


class MappingError(NacondError):
    """A composition that cannot be placed on the requested parent structure."""


@dataclass
class MappedStructure:
    """A structure for one composition and how it was obtained."""

    structure: object  # pymatgen Structure (disordered)
    prototype: str
    composition_error: float  # L1 distance between atomic fractions of structure and target
    assignments: dict[str, str] = field(default_factory=dict)  # target element -> parent element whose sites
    notes: list[str] = field(default_factory=list)


def _radius(el: str) -> float:
    state = ANION_STATES.get(el) or cation_state(el) or 1
    return max(ionic_radius(el, state), 0.05)


def _is_anion(el: str) -> bool:
    return el in ANION_STATES


# tetrahedral [XH4]- anions that can take a monatomic anion site, X -> X-H bond length (Angstrom; a modelling
# value, docs/structures.md); H on the 8 cube-diagonal directions at half occupancy (the two orientations of the
# orientationally disordered anion, as in cubic Fm-3m NaBH4)
XH4_BOND = {"B": 1.21}
_CUBE = np.array([(x, y, z) for x in (1, -1) for y in (1, -1) for z in (1, -1)], dtype=float) / np.sqrt(3.0)


def _xh4_cluster(target: dict[str, float], parent_amt: dict[str, float]) -> str | None:
    """X of the [XH4]- anion ``target`` holds whole (H = 4 X within 1 %) when the parent has neither X nor H and
    has a monovalent monatomic anion site to put it on; else None."""
    if "H" not in target or "H" in parent_amt or not any(ANION_STATES.get(el) == -1 for el in parent_amt):
        return None
    for x in XH4_BOND:
        if x in target and x not in parent_amt and abs(target["H"] - 4 * target[x]) <= 0.01 * target["H"]:
            return x
    return None


NA_SITE_RADIUS_TOL = 0.15  # a cation within 15 % of Na+'s radius can share the Na sites (Ca2+: -2 %)


def _na_sized(el: str) -> bool:
    """True for a cation whose Shannon radius (rule oxidation state) is within ``NA_SITE_RADIUS_TOL`` of Na+'s."""
    return abs(_radius(el) / _radius(MOBILE) - 1.0) <= NA_SITE_RADIUS_TOL


def _site_dict(site) -> dict[str, float]:
    return {sp.symbol if hasattr(sp, "symbol") else str(sp): float(occ) for sp, occ in site.species.items()}


def _water_fill(caps: np.ndarray, total: float) -> tuple[np.ndarray, float]:
    """Occupancies ``min(1, caps * s)`` summing to ``total`` (bisection on s); returns them and the overflow."""
    if total <= 0 or caps.sum() == 0:
        return np.zeros_like(caps), max(total, 0.0)
    full = np.minimum(1.0, np.where(caps > 0, 1.0, 0.0))
    if full.sum() <= total:
        return full, total - full.sum()
    lo, hi = 0.0, 1.0 / caps[caps > 0].min()
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if np.minimum(1.0, caps * mid).sum() < total:
            lo = mid
        else:
            hi = mid
    return np.minimum(1.0, caps * hi), 0.0


LATTICE_MODES = ("radii", "parent")
_SHELL = 1.25  # first coordination shell: contacts up to 1.25 x a cation's nearest cation-anion distance


def _site_radius(d: dict[str, float]) -> tuple[float, float]:
    """Occupancy-weighted mean Shannon radius of a site's ions and their total occupancy."""
    tot = sum(d.values())
    if tot <= 0:
        return 0.0, 0.0
    return sum(v * _radius(el) for el, v in d.items()) / tot, tot


def radii_scale(parent, old: list[dict[str, float]], new: list[dict[str, float]], skip=()) -> float:
    """Linear scale factor of the cell when the ions on ``parent``'s sites change from ``old`` to ``new``.

    Each cation-anion contact ``d`` of the parent's first shells (per anion kind; simple anions only: O, S, Se,
    Te, N, halides) becomes ``d + (r_cat' - r_cat) + (r_an' - r_an)`` with occupancy-weighted Shannon radii at
    rule oxidation states; the factor is the weighted mean of ``d'/d`` (weights: product of the new
    occupancies). 1.0 when the parent has no such contact (e.g. hydride cages). Contacts to the sites in ``skip``
    (parent anion sites now holding a rigid cluster anion, which has no Shannon radius) are left out.
    """
    ro = [_site_radius(d) for d in old]
    rn = [_site_radius(d) for d in new]
    anion_site = np.array([bool(d) and all(_is_anion(el) for el in d) for d in old])
    cation_site = np.array([bool(d) and not any(_is_anion(el) or el in ("H", "B", "C") for el in d) for d in old])
    if not anion_site.any() or not cation_site.any():
        return 1.0
    anion_site[list(skip)] = False
    idx = np.where(cation_site)[0]
    centers, points, _, dists = parent.get_neighbor_list(4.0, sites=[parent[i] for i in idx])
    num = den = 0.0
    anion_class = [frozenset(d) for d in old]
    for k, i in enumerate(idx):
        m = (centers == k) & anion_site[points] & (dists > 0.5)
        if not m.any():
            continue
        d, p = dists[m], points[m]
        # first shell per anion kind: Na-O and Na-Cl of an anti-perovskite both count
        nearest: dict[frozenset, float] = {}
        for dj, j in zip(d, p, strict=True):
            nearest[anion_class[j]] = min(nearest.get(anion_class[j], np.inf), dj)
        shell = np.array([dj <= _SHELL * nearest[anion_class[j]] for dj, j in zip(d, p, strict=True)])
        for dj, j in zip(d[shell], p[shell], strict=True):
            w = rn[i][1] * rn[j][1]
            if w <= 0 or rn[i][1] <= 0:
                continue
            new_d = dj + (rn[i][0] - ro[i][0]) + (rn[j][0] - ro[j][0])
            num += w * new_d / dj
            den += w
    return float(num / den) if den > 0 else 1.0


def decorate(parent, target_amounts: dict[str, float], prototype: str = "", lattice: str = "radii"
             ) -> MappedStructure:
    """Place ``target_amounts`` (element -> amount) on ``parent`` (a pymatgen Structure, left unchanged);
    ``lattice`` is one of ``LATTICE_MODES`` (module docstring)."""
    from pymatgen.core import Structure

    if lattice not in LATTICE_MODES:
        raise MappingError(f"lattice mode {lattice!r} is not one of {', '.join(LATTICE_MODES)}")

    if MOBILE not in target_amounts or target_amounts[MOBILE] <= 0:
        raise MappingError(f"composition {target_amounts} has no {MOBILE}; nothing to place on the Na sites")
    site_dicts = [_site_dict(s) for s in parent]
    parent_amt: dict[str, float] = defaultdict(float)
    for d in site_dicts:
        for el, occ in d.items():
            parent_amt[el] += occ
    if parent_amt.get(MOBILE, 0.0) <= 0:
        raise MappingError(f"parent {prototype!r} has no Na sites")
    parent_non_na = sum(v for k, v in parent_amt.items() if k != MOBILE)

    # site classes: the set of non-Na elements a parent site holds (Si/P share one NASICON site: one class)
    site_class = [frozenset(el for el in d if el != MOBILE) for d in site_dicts]
    class_cap: dict[frozenset, float] = defaultdict(float)
    el_in_class: dict[str, dict[frozenset, float]] = defaultdict(lambda: defaultdict(float))
    for d, c in zip(site_dicts, site_class, strict=True):
        for el, occ in d.items():
            if el != MOBILE:
                class_cap[c] += occ
                el_in_class[el][c] += occ
    hosts = sorted(el_in_class)
    # a tetrahedral [XH4]- anion is one unit (one anion site): the target is scaled and placed with it
    x = _xh4_cluster(target_amounts, parent_amt)
    cluster = f"{x}H4" if x else None
    units = dict(target_amounts)
    if x:
        units[cluster] = units.pop(x)
        del units["H"]

    def plan(on_na: frozenset[str]):
        """Scale the target and load the framework site classes; elements of ``on_na`` go with Na."""
        target_non_na = sum(v for k, v in units.items() if k != MOBILE and k not in on_na)
        if target_non_na <= 0:
            raise MappingError(f"composition {target_amounts} has nothing but Na")
        scale = parent_non_na / target_non_na
        cell = {el: amt * scale for el, amt in units.items()}
        load: dict[frozenset, dict[str, float]] = defaultdict(lambda: defaultdict(float))

        def place(el: str, h: str) -> None:
            tot = sum(el_in_class[h].values())
            for c, amt in el_in_class[h].items():  # an element on several classes splits as the parent's does
                load[c][el] += cell[el] * amt / tot

        def room(h: str) -> float:
            return sum(class_cap[c] - sum(load[c].values()) for c in el_in_class[h])

        assign = {el: el for el in cell if el != MOBILE and el in el_in_class}
        for el in assign:
            place(el, el)
        assign.update({el: MOBILE for el in on_na})
        # dopants: the parent element of the same kind with the closest radius whose sites still have room
        # (Al3+ in Na1+xAlxZr2-x(PO4)3 takes the Zr site, not the full P site), else the closest one
        homeless = []
        for el in sorted((e for e in cell if e not in assign and e != MOBILE), key=lambda e: -cell[e]):
            if el == cluster:  # the monovalent monatomic anion sites, the largest anion's first
                ranked = sorted((h for h in hosts if ANION_STATES.get(h) == -1), key=lambda h: (-_radius(h), h))
            else:
                same_kind = [h for h in hosts if _is_anion(h) == _is_anion(el)] or hosts
                ranked = sorted(same_kind, key=lambda h: (abs(np.log(_radius(el) / _radius(h))), h))
            assign[el] = next((h for h in ranked if room(h) >= 0.98 * cell[el]), None)
            if assign[el] is None:
                assign[el] = ranked[0]
                homeless.append(el)
            place(el, assign[el])
        # an element split over several site classes as its host is in the parent may overfill one class while
        # another class of the same host has room (NaGa11O17 on beta''-alumina: Ga overfills the pure Al sites
        # while the Mg share of the Al2/Mg site stays empty); the excess moves to the host's classes with room
        for c in list(load):
            total = sum(load[c].values())
            over = total - class_cap[c]
            if over <= 1e-9:
                continue
            for el, amt in list(load[c].items()):
                move = over * amt / total
                for c2 in el_in_class[assign[el]]:
                    free = class_cap[c2] - sum(load[c2].values())
                    if c2 == c or free <= 1e-12 or move <= 1e-12:
                        continue
                    m = min(move, free)
                    load[c2][el] += m
                    load[c][el] -= m
                    move -= m
        return cell, assign, load, homeless

    # a cation dopant without room on the framework and of Na+'s size shares the Na sites (Ca2+ in
    # Na3-2xCaxPS4); it then no longer counts as framework content, so the target is scaled again
    on_na: frozenset[str] = frozenset()
    cell, assign, load, homeless = plan(on_na)
    na_like = frozenset(el for el in homeless if el != cluster and not _is_anion(el) and _na_sized(el))
    if na_like:
        on_na = na_like
        cell, assign, load, _ = plan(on_na)
    notes = []
    new_species: list[dict[str, float]] = [dict() for _ in site_dicts]
    for c, cap in class_cap.items():
        group = load.get(c, {})
        total = sum(group.values())
        if total > cap * 1.0001:
            notes.append(f"{'+'.join(sorted(group))} on the {'/'.join(sorted(c))} sites: {total:.3g} atoms for "
                         f"{cap:.3g} sites, scaled")
        fill = min(1.0, total / cap) if cap > 0 else 0.0
        for i, d in enumerate(site_dicts):
            if site_class[i] != c or total <= 0:
                continue
            site_cap = sum(v for el, v in d.items() if el != MOBILE)
            for el, amt in group.items():
                new_species[i][el] = new_species[i].get(el, 0.0) + site_cap * fill * amt / total
    # Na sites: water filling in proportion to the parent's occupancies
    caps = np.array([d.get(MOBILE, 0.0) for d in site_dicts])
    on_na_sites = {MOBILE: cell[MOBILE], **{el: cell[el] for el in sorted(on_na)}}
    na_total = sum(on_na_sites.values())
    na_occ, overflow = _water_fill(caps, na_total)
    if overflow > 1e-6:
        notes.append(f"{overflow:.3g} {'+'.join(on_na_sites)} per cell exceed the parent's Na sites; left out")
    for el in on_na:
        notes.append(f"{el} shares the Na sites ({el}/Na {cell[el] / cell[MOBILE]:.3g})")
    for i, occ in enumerate(na_occ):
        if occ > 0:
            for el, amt in on_na_sites.items():
                new_species[i][el] = new_species[i].get(el, 0.0) + float(occ) * amt / na_total
    # the cluster's X takes its site; its H atoms are added around X once the cell is final
    cluster_sites = []
    if cluster:
        for i, d in enumerate(new_species):
            if d.get(cluster, 0.0) > 1e-9:
                cluster_sites.append(i)
                d[x] = d.pop(cluster)
            d.pop(cluster, None)
        if cluster_sites:
            notes.append(f"{cluster} as a rigid [{cluster}]- anion on the {assign[cluster]} sites: {x} at the site, "
                         f"H at {XH4_BOND[x]} A along the 8 cube diagonals, each at half the {x} occupancy")
    # a site that hosted Na and something else must not exceed full occupancy
    species, coords = [], []
    for i, d in enumerate(new_species):
        d = {el: v for el, v in d.items() if v > 1e-9}
        tot = sum(d.values())
        if tot > 1.0 + 1e-6:
            d = {el: v / tot for el, v in d.items()}
        new_species[i] = d
        if d:
            species.append(d)
            coords.append(parent[i].frac_coords)
    if not species:
        raise MappingError(f"nothing of {target_amounts} could be placed on {prototype!r}")
    s = Structure(parent.lattice, species, coords)
    if lattice == "radii":
        f = radii_scale(parent, site_dicts, new_species, skip=tuple(cluster_sites))
        if abs(f - 1.0) > 1e-6:
            s.scale_lattice(s.volume * f ** 3)
            notes.append(f"cell scaled by {f:.4f} (linear) for the substituted ions' radii")
    for i in cluster_sites:
        center = s.lattice.get_cartesian_coords(parent[i].frac_coords)
        for v in _CUBE:
            s.append({"H": new_species[i][x] / 2}, s.lattice.get_fractional_coords(center + XH4_BOND[x] * v) % 1.0)
    if cluster in assign:
        assign[x] = assign["H"] = assign.pop(cluster)
    err = composition_error(s.composition.get_el_amt_dict(), target_amounts)
    return MappedStructure(structure=s, prototype=prototype, composition_error=err,
                           assignments={el: h for el, h in assign.items() if el != h}, notes=notes)


def composition_error(a: dict[str, float], b: dict[str, float]) -> float:
    """L1 distance between the atomic fractions of two compositions (0: identical, 2: disjoint)."""
    ta, tb = sum(a.values()), sum(b.values())
    els = set(a) | set(b)
    return float(sum(abs(a.get(e, 0.0) / ta - b.get(e, 0.0) / tb) for e in els))


def structure_for(formula: str, structure_type: str, *, abc: tuple[float, float, float] | None = None,
                  lattice: str = "radii") -> MappedStructure:
    """The structure of ``formula`` on the parent of ``structure_type``.

    Args:
        formula: a pymatgen-parseable formula containing Na.
        structure_type: a dataset ``structure_type`` key with a prototype (see ``resolve_key``).
        abc: measured conventional lattice lengths (Angstrom) of this entry; the parent's cell is scaled
            isotropically to the volume they imply (angles and fractional coordinates stay the parent's).
        lattice: ``"radii"`` (the parent's cell scaled for the substituted ions' Shannon radii) or ``"parent"``.

    Raises:
        MappingError: no prototype for ``structure_type``, or the composition has no Na.
    """
    key = resolve_key(structure_type)
    if key is None:
        raise MappingError(f"structure type {structure_type!r} of {formula!r} has no prototype")
    comp = parse_formula(formula)
    mapped = decorate(parent_structure(key), comp.get_el_amt_dict(), prototype=key,
                      lattice="parent" if abc is not None else lattice)
    if abc is not None:
        if len(abc) != 3 or any(not v > 0 for v in abc):
            raise MappingError(f"lattice lengths {abc} for {formula!r} must be three positive numbers (Angstrom)")
        ref = get_prototype(key).lattice
        ratio = float(np.prod(abc) / (ref["a"] * ref["b"] * ref["c"]))
        mapped.structure.scale_lattice(mapped.structure.volume * ratio)
        mapped.notes.append(f"cell volume scaled by {ratio:.4f} from the entry's lattice lengths")
    return mapped


MAX_COMPOSITION_ERROR = 0.02


def map_entries(formulas, structure_types, *, max_error: float = MAX_COMPOSITION_ERROR, lattice: str = "radii"):
    """Structures for many (formula, structure_type) pairs; ``None`` with a reason where there is none.

    Returns ``(structures, reasons)``: a ``MappedStructure`` or ``None`` per entry, and per entry ``""`` or why
    it falls back to composition-only models ("no prototype for ...", "composition error 0.08 > 0.02").
    """
    structures, reasons = [], []
    for f, st in zip(formulas, structure_types, strict=True):
        try:
            m = structure_for(f, st, lattice=lattice)
        except MappingError as exc:
            structures.append(None)
            reasons.append(str(exc))
            continue
        if m.composition_error > max_error:
            structures.append(None)
            reasons.append(f"{f} on {m.prototype}: composition error {m.composition_error:.3f} > {max_error}")
            continue
        structures.append(m)
        reasons.append("")
    return structures, reasons
