"""Numpy kernels behind the composition featurizers, importable without matminer or scikit-learn.

The matminer-facing classes in :mod:`ml.featurizers.composition` build the element tables from matminer's
data and call these kernels; a saved model stores the tables (``featurizer.npz``), so prediction needs only
numpy and pymatgen (fast cold start).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from pymatgen.core import Composition, Element

from ml.chemistry import (
    ANION_STATES,
    CHALCOGENS,
    FAMILIES,
    HALOGENS,
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


def fraction_matrix(comps: Sequence[Composition]) -> np.ndarray:
    """(n, 103) matrix of atomic fractions, element order by Z."""
    out = np.zeros((len(comps), MAX_Z))
    for i, c in enumerate(comps):
        amounts = c.get_el_amt_dict()
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
    comp = Composition(amounts)
    an = anions_of(comp)
    neg = sum(-q * amounts[s] for s, q in an.items())
    if has_hydride_cage(comp):
        # cluster anions: count charge from the cation side (mobile ion + framework) instead
        neg = amounts.get(mobile, 0.0) + sum(cation_state(e) * a for e, a in framework_cations(comp, mobile).items())
    return amounts.get(mobile, 0.0) / neg if neg > 0 else 0.0


@lru_cache(maxsize=8)
def _parents(mobile: str) -> tuple[np.ndarray, list[float]]:
    """Fraction matrix and mobile-ion-per-anion-charge of the parent compounds (computed once)."""
    comps = [Composition(p) for p in PARENTS]
    return fraction_matrix(comps), [_na_per_anion_charge(c.get_el_amt_dict(), mobile) for c in comps]


def na_chemistry(comp: Composition, mobile: str = "Na") -> list[float]:
    """One row of Na-chemistry descriptors (labels: :func:`na_chemistry_labels`)."""
    amounts = comp.get_el_amt_dict()
    total = sum(amounts.values())
    els = set(amounts)
    frac = {e: a / total for e, a in amounts.items()}
    na_per_q = _na_per_anion_charge(amounts, mobile)
    pf, pq = _parents(mobile)
    d = np.abs(pf - fraction_matrix([comp])[0]).sum(axis=1)
    k = int(np.argmin(d))
    out = [frac.get(mobile, 0.0), na_per_q, na_per_q - pq[k], float(d[k])]
    out += [frac.get(a, 0.0) for a in CHEM_ANIONS]
    an = anions_of(comp)
    heavy = [a for a in an if a in CHALCOGENS + HALOGENS]
    cage = has_hydride_cage(comp)
    out += [
        float(len(an)),
        float(len(heavy) >= 2),
        float(cage),
        amounts.get("H", 0.0) / amounts["B"] if cage and "B" in amounts else 0.0,
        float(cage and "C" in els and "B" in els),
        float(cage and "N" in els),
    ]
    out += [frac.get(c, 0.0) if (c in els and a in els) else 0.0 for c, a in POLYANION_PAIRS]
    fw = framework_cations(comp, mobile)
    if fw:
        w = np.array(list(fw.values()))
        w = w / w.sum()
        q = np.array([cation_state(e) for e in fw], dtype=float)
        r = np.array([ionic_radius(e, int(s)) for e, s in zip(fw, q, strict=True)])
        rm, qm = float(w @ r), float(w @ q)
        out += [rm, float(np.sqrt(w @ (r - rm) ** 2)), qm, float(np.sqrt(w @ (q - qm) ** 2)), float(len(fw))]
    else:
        out += [0.0, 0.0, 0.0, 0.0, 0.0]
    if an:
        wa = np.array([amounts[a] for a in an])
        wa = wa / wa.sum()
        out += [float(wa @ np.array([_ANION_R3[a] for a in an])), float(wa @ np.array([Element(a).X for a in an]))]
    else:
        out += [0.0, 0.0]
    pos = amounts.get(mobile, 0.0) + sum(cation_state(e) * a for e, a in fw.items())
    neg = sum(-q * amounts[s] for s, q in an.items())
    out.append(0.0 if cage else (pos - neg) / max(pos + neg, 1e-9))
    fam = infer_family(comp)
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
        self._cache: dict[str, np.ndarray] = {}

    def transform_compositions(self, comps: Sequence[Composition]) -> np.ndarray:
        fr = fraction_matrix(comps)
        blocks = [magpie(fr, self.magpie_table), stoichiometry(fr), valence_orbital(fr, self.valence_table)]
        if self.chemistry:
            rows = []
            for c in comps:
                key = c.formula
                row = self._cache.get(key)
                if row is None:
                    row = self._cache[key] = np.asarray(na_chemistry(c, self.mobile_ion), dtype=float)
                rows.append(row)
            blocks.append(np.vstack(rows) if rows else np.zeros((0, len(na_chemistry_labels()))))
        return np.hstack(blocks)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"magpie_table": self.magpie_table, "valence_table": self.valence_table,
                "chemistry": np.array(self.chemistry), "mobile_ion": np.array(self.mobile_ion)}

    @classmethod
    def from_arrays(cls, arrays) -> FeatureKernel:
        return cls(arrays["magpie_table"], arrays["valence_table"], bool(arrays["chemistry"]),
                   str(arrays["mobile_ion"]))
