"""Numpy kernels behind the composition featurizers, importable without matminer or scikit-learn.

The matminer-facing classes in :mod:`ml.featurizers.composition` build the element tables from matminer's
data and call these kernels; a saved model stores the tables (``featurizer.npz``), so prediction needs only
numpy and pymatgen (fast cold start).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from pymatgen.core import Composition, Element

from ml.chemistry import (
    ANION_STATES,
    CHALCOGENS,
    FAMILIES,
    HALOGENS,
    amounts_of,
    anions_of,
    cation_state,
    framework_cations,
    has_hydride_cage,
    infer_family,
    ionic_radius,
)

MAX_Z = 103
ELEMENTS = [Element.from_Z(z).symbol for z in range(1, MAX_Z + 1)]
INDEX = {s: i for i, s in enumerate(ELEMENTS)}
MAGPIE_STATS = ("minimum", "maximum", "range", "mean", "avg_dev", "mode")
STOICH_P = (0, 2, 3, 5, 7, 10)
ORBITALS = ("s", "p", "d", "f")


def fraction_matrix(comps: Sequence[Composition | dict]) -> np.ndarray:
    """(n, 103) matrix of atomic fractions, element order by Z."""
    out = np.zeros((len(comps), MAX_Z))
    for i, c in enumerate(comps):
        amounts = amounts_of(c)
        total = sum(amounts.values())
        for el, a in amounts.items():
            out[i, INDEX[el]] = a / total
    return out


def padded(fractions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Element indices, fractions and mask of the present elements, padded to the widest composition."""
    present = fractions > 0
    k = max(1, int(present.sum(axis=1).max(initial=1)))
    order = np.argsort(~present, axis=1, kind="stable")[:, :k]
    frac = np.take_along_axis(fractions, order, axis=1)
    mask = frac > 0
    return order, frac, mask


def magpie(fractions: np.ndarray, table: np.ndarray, stats: Sequence[str] = MAGPIE_STATS) -> np.ndarray:
    """matminer ElementProperty statistics over present elements (labels: attribute-major, then stat)."""
    idx, frac, mask = padded(fractions)
    vals = table[idx]  # (n, k, p)
    m = mask[:, :, None]
    missing = (np.isnan(vals) & m).any(axis=1)
    filled = np.where(np.isnan(vals) | ~m, 0.0, vals)
    w = frac[:, :, None]
    mean = (w * filled).sum(axis=1)
    vmin = np.where(m, filled, np.inf).min(axis=1)
    vmax = np.where(m, filled, -np.inf).max(axis=1)
    avg_dev = (w * np.abs(filled - mean[:, None, :]) * m).sum(axis=1)
    top = np.isclose(frac, frac.max(axis=1, keepdims=True)) & mask
    mode = np.where(top[:, :, None], filled, np.inf).min(axis=1)
    by = {"minimum": vmin, "maximum": vmax, "range": vmax - vmin, "mean": mean, "avg_dev": avg_dev, "mode": mode}
    out = np.stack([by[s] for s in stats], axis=2).reshape(len(fractions), -1)
    out[np.repeat(missing, len(stats), axis=1)] = np.nan
    return out


def stoichiometry(fractions: np.ndarray, p_list: Sequence[int] = STOICH_P) -> np.ndarray:
    cols = [(fractions > 0).sum(axis=1).astype(float) if p == 0 else (fractions**p).sum(axis=1) ** (1.0 / p)
            for p in p_list]
    return np.stack(cols, axis=1)


def valence_orbital(fractions: np.ndarray, table: np.ndarray) -> np.ndarray:
    """table columns: NsValence, NpValence, NdValence, NfValence, NValence."""
    avg = fractions @ table
    return np.concatenate([avg[:, :4], avg[:, :4] / avg[:, 4:5]], axis=1)


# ---------------------------------------------------------------------------------------- Na chemistry

# Parent compounds of the dataset's structure types (composition facts, not measured data): the Na excess or
# vacancy of a composition is measured against the nearest of these.
PARENTS = (
    "Na3PS4", "Na3SbS4", "Na3PSe4", "Na3SbSe4", "Na11Sn2PS12", "Na2S2P", "Na3Zr2Si2PO12", "NaZr2P3O12",
    "Na4Zr2Si3O12", "Na3Sc2P3O12", "Na3V2P3O12", "Na3YCl6", "Na3InCl6", "Na2ZrCl6", "NaAlCl4", "NaTaCl6",
    "Na3OCl", "Na3OBr", "Na3OBH4", "Na2B12H12", "Na2B10H10", "NaCB11H12", "NaCB9H10", "NaBH4", "NaAlH4",
    "Na3AlH6", "Na2Zn2TeO6", "Na2Ni2TeO6", "NaAl11O17", "Na5YSi4O12", "Na3PO4", "Na2SO4", "Na2Si2O5",
)
POLYANION_PAIRS = (
    ("P", "O"), ("Si", "O"), ("Ge", "O"), ("S", "O"), ("B", "O"), ("Te", "O"), ("Al", "O"),
    ("P", "S"), ("Sb", "S"), ("Sn", "S"), ("Ge", "S"), ("Si", "S"), ("As", "S"),
    ("P", "Se"), ("Sb", "Se"), ("Sn", "Se"),
    ("Al", "Cl"), ("Ga", "Cl"),
)
CHEM_ANIONS = CHALCOGENS + HALOGENS + ("N", "H")
# Anion polarizability proxy: r^3 of the Shannon radius (pymatgen) of the anion in its usual state.
_ANION_R3 = {s: ionic_radius(s, q) ** 3 for s, q in ANION_STATES.items()}
_ANION_X = {s: float(Element(s).X) for s in ANION_STATES}


def na_chemistry_labels() -> list[str]:
    labels = ["mobile ion fraction", "mobile ion per anion charge", "mobile excess vs nearest parent",
              "distance to nearest parent"]
    labels += [f"frac {a}" for a in CHEM_ANIONS]
    labels += ["n anion species", "mixed anion", "hydride cage", "H/B ratio", "carba cage", "amide"]
    labels += [f"polyanion {c}-{a}" for c, a in POLYANION_PAIRS]
    labels += ["framework cation radius mean", "framework cation radius std", "framework cation valence mean",
               "framework cation valence std", "n framework cation species", "anion radius cubed mean",
               "anion electronegativity mean", "charge imbalance"]
    labels += [f"family is {f}" for f in FAMILIES]
    return labels


def _na_per_anion_charge(amounts: dict[str, float], mobile: str) -> float:
    an = anions_of(amounts)
    neg = sum(-q * amounts[s] for s, q in an.items())
    if has_hydride_cage(amounts):
        # cluster anions: count charge from the cation side (mobile ion + framework) instead
        neg = amounts.get(mobile, 0.0) + sum(cation_state(e) * a for e, a in framework_cations(amounts, mobile).items())
    return amounts.get(mobile, 0.0) / neg if neg > 0 else 0.0


@lru_cache(maxsize=8)
def _parents(mobile: str) -> tuple[np.ndarray, list[float]]:
    """Fraction matrix and mobile-ion-per-anion-charge of the parent compounds (computed once)."""
    comps = [Composition(p) for p in PARENTS]
    return fraction_matrix(comps), [_na_per_anion_charge(c.get_el_amt_dict(), mobile) for c in comps]


def nearest_parents(fractions: np.ndarray, mobile: str = "Na") -> tuple[np.ndarray, np.ndarray]:
    """Index of, and L1 distance to, the nearest parent compound for each row of a fraction matrix."""
    pf, _ = _parents(mobile)
    cols = np.flatnonzero(pf.any(axis=0))  # elements of some parent; elsewhere |f - p| = f
    rest = fractions.sum(axis=1) - fractions[:, cols].sum(axis=1)
    d = np.abs(fractions[:, None, cols] - pf[None, :, cols]).sum(axis=2) + rest[:, None]
    # equidistant parents (e.g. Na3OCl / Na3OBr for Na3OI) must resolve the same way whatever the summation
    # order: compare distances rounded to 1e-9, first parent wins
    k = np.round(d, 9).argmin(axis=1)
    return k, d[np.arange(len(d)), k]


def _wstats(w: list[float], v: list[float]) -> tuple[float, float]:
    """Weighted mean and standard deviation (weights sum to 1) of a handful of values, in plain Python."""
    m = sum(wi * vi for wi, vi in zip(w, v, strict=True))
    return m, math.sqrt(sum(wi * (vi - m) ** 2 for wi, vi in zip(w, v, strict=True)))


def na_chemistry(comp: Composition | dict, mobile: str = "Na",
                 parent: tuple[int, float] | None = None) -> list[float]:
    """One row of Na-chemistry descriptors (labels: :func:`na_chemistry_labels`). ``parent`` = (index,
    distance) of the nearest parent compound when the caller computed it for a whole batch."""
    amounts = amounts_of(comp)
    total = sum(amounts.values())
    els = set(amounts)
    frac = {e: a / total for e, a in amounts.items()}
    na_per_q = _na_per_anion_charge(amounts, mobile)
    _, pq = _parents(mobile)
    if parent is None:
        k_arr, d_arr = nearest_parents(fraction_matrix([amounts]), mobile)
        parent = (int(k_arr[0]), float(d_arr[0]))
    k, dist = parent
    out = [frac.get(mobile, 0.0), na_per_q, na_per_q - pq[k], float(dist)]
    out += [frac.get(a, 0.0) for a in CHEM_ANIONS]
    an = anions_of(amounts)
    heavy = [a for a in an if a in CHALCOGENS + HALOGENS]
    cage = has_hydride_cage(amounts)
    out += [
        float(len(an)),
        float(len(heavy) >= 2),
        float(cage),
        amounts.get("H", 0.0) / amounts["B"] if cage and "B" in amounts else 0.0,
        float(cage and "C" in els and "B" in els),
        float(cage and "N" in els),
    ]
    out += [frac.get(c, 0.0) if (c in els and a in els) else 0.0 for c, a in POLYANION_PAIRS]
    fw = framework_cations(amounts, mobile)
    if fw:
        wsum = sum(fw.values())
        w = [v / wsum for v in fw.values()]
        q = [float(cation_state(e)) for e in fw]
        r = [ionic_radius(e, int(s)) for e, s in zip(fw, q, strict=True)]
        rm, rs = _wstats(w, r)
        qm, qs = _wstats(w, q)
        out += [rm, rs, qm, qs, float(len(fw))]
    else:
        out += [0.0, 0.0, 0.0, 0.0, 0.0]
    if an:
        asum = sum(amounts[a] for a in an)
        wa = [amounts[a] / asum for a in an]
        out += [_wstats(wa, [_ANION_R3[a] for a in an])[0], _wstats(wa, [_ANION_X[a] for a in an])[0]]
    else:
        out += [0.0, 0.0]
    pos = amounts.get(mobile, 0.0) + sum(cation_state(e) * a for e, a in fw.items())
    neg = sum(-q * amounts[s] for s, q in an.items())
    out.append(0.0 if cage else (pos - neg) / max(pos + neg, 1e-9))
    fam = infer_family(amounts)
    out += [float(fam == f) for f in FAMILIES]
    return out


class FeatureKernel:
    """A composition feature preset as plain arrays: what a saved model needs to featurize new formulas.

    Args:
        magpie_table: (103, P) Magpie element properties (NaN where matminer has none).
        valence_table: (103, 5) s/p/d/f/total valence electrons.
        chemistry: include the Na-chemistry block.
        mobile_ion: the conducting ion for the chemistry block.
    """

    def __init__(self, magpie_table: np.ndarray, valence_table: np.ndarray, chemistry: bool, mobile_ion: str = "Na"):
        self.magpie_table = np.asarray(magpie_table, dtype=float)
        self.valence_table = np.asarray(valence_table, dtype=float)
        self.chemistry = bool(chemistry)
        self.mobile_ion = mobile_ion

    def transform_compositions(self, comps: Sequence[Composition | dict],
                               families: Sequence[str] | None = None) -> np.ndarray:
        """Feature matrix for compositions (or element->amount dicts). ``families`` may pass the rule-based
        families when the caller already has them."""
        amounts = [amounts_of(c) for c in comps]
        fr = fraction_matrix(amounts)
        blocks = [magpie(fr, self.magpie_table), stoichiometry(fr), valence_orbital(fr, self.valence_table)]
        if self.chemistry:
            fams = families if families is not None else [infer_family(a) for a in amounts]
            blocks.append(na_chemistry_batch(fr, fams, self.mobile_ion))
        return np.hstack(blocks)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"magpie_table": self.magpie_table, "valence_table": self.valence_table,
                "chemistry": np.array(self.chemistry), "mobile_ion": np.array(self.mobile_ion)}

    @classmethod
    def from_arrays(cls, arrays) -> FeatureKernel:
        return cls(arrays["magpie_table"], arrays["valence_table"], bool(arrays["chemistry"]),
                   str(arrays["mobile_ion"]))


# ------------------------------------------------------------------------------ vectorised Na chemistry

@lru_cache(maxsize=8)
def _element_tables(mobile: str) -> dict[str, np.ndarray]:
    """Per-element constants of the chemistry rules (index = Z - 1)."""
    cstate = np.array([float(cation_state(s)) for s in ELEMENTS])
    radius = np.array([ionic_radius(s, int(q)) for s, q in zip(ELEMENTS, cstate, strict=True)])
    q_an = np.zeros(MAX_Z)
    r3 = np.zeros(MAX_Z)
    xneg = np.zeros(MAX_Z)
    for s, q in ANION_STATES.items():
        q_an[INDEX[s]], r3[INDEX[s]], xneg[INDEX[s]] = q, _ANION_R3[s], _ANION_X[s]
    cage_el = np.zeros(MAX_Z, bool)
    for s in ("B", "C", "H", "N"):
        cage_el[INDEX[s]] = True
    heavy = np.zeros(MAX_Z, bool)
    for s in CHALCOGENS + HALOGENS:
        heavy[INDEX[s]] = True
    return {"cstate": cstate, "radius": radius, "q_an": q_an, "r3": r3, "x": xneg, "cage_el": cage_el,
            "heavy": heavy, "is_anion": q_an < 0}


def na_chemistry_batch(fractions: np.ndarray, families: Sequence[str], mobile: str = "Na",
                       parent: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """:func:`na_chemistry` for a whole fraction matrix at once (same values; a test compares them).
    ``families`` are the rule-based families (:func:`ml.chemistry.infer_family`) of the rows."""
    t = _element_tables(mobile)
    fr = np.asarray(fractions, dtype=float)
    n = len(fr)
    col = INDEX
    present = fr > 0
    has = {s: present[:, col[s]] for s in ("O", "H", "B", "N", "Al", "C")}
    anion = present & t["is_anion"][None, :]
    anion[:, col["Te"]] &= ~has["O"]
    anion[:, col["N"]] &= ~has["O"]
    cage = has["H"] & (has["B"] | has["N"] | has["Al"])
    mob = np.zeros(MAX_Z, bool)
    mob[col[mobile]] = True
    framework = present & ~anion & ~mob[None, :] & ~(cage[:, None] & t["cage_el"][None, :])
    na = fr[:, col[mobile]]
    neg_charge = (-t["q_an"][None, :] * fr * anion).sum(axis=1)
    fw_charge = (t["cstate"][None, :] * fr * framework).sum(axis=1)
    neg = np.where(cage, na + fw_charge, neg_charge)
    na_per_q = np.divide(na, neg, out=np.zeros(n), where=neg > 0)
    if parent is None:
        parent = nearest_parents(fr, mobile)
    pk, pdist = parent
    _, pq = _parents(mobile)
    cols = [na, na_per_q, na_per_q - np.asarray(pq)[pk], np.asarray(pdist, dtype=float)]
    cols += [fr[:, col[a]] for a in CHEM_ANIONS]
    b = fr[:, col["B"]]
    cols += [anion.sum(axis=1).astype(float), ((anion & t["heavy"][None, :]).sum(axis=1) >= 2).astype(float),
             cage.astype(float), np.divide(fr[:, col["H"]], b, out=np.zeros(n), where=cage & (b > 0)),
             (cage & has["C"] & has["B"]).astype(float), (cage & has["N"]).astype(float)]
    cols += [np.where(present[:, col[c]] & present[:, col[a]], fr[:, col[c]], 0.0) for c, a in POLYANION_PAIRS]

    def wstats(mask, values):
        w = fr * mask
        tot = w.sum(axis=1, keepdims=True)
        w = np.divide(w, tot, out=np.zeros_like(w), where=tot > 0)
        m = (w * values[None, :]).sum(axis=1)
        sd = np.sqrt((w * (values[None, :] - m[:, None]) ** 2).sum(axis=1))
        return m, sd

    rm, rs = wstats(framework, t["radius"])
    qm, qs = wstats(framework, t["cstate"])
    cols += [rm, rs, qm, qs, framework.sum(axis=1).astype(float)]
    cols += [wstats(anion, t["r3"])[0], wstats(anion, t["x"])[0]]
    pos = na + fw_charge
    cols.append(np.where(cage, 0.0, (pos - neg_charge) / np.maximum(pos + neg_charge, 1e-9)))
    fam = np.asarray(families)
    cols += [(fam == f).astype(float) for f in FAMILIES]
    return np.column_stack(cols)
