"""Composition featurizers.

* :class:`VectorizedElementProperty`, :class:`VectorizedStoichiometry`, :class:`VectorizedValenceOrbital`:
  the matminer featurizers (Magpie ``ElementProperty``, ``Stoichiometry``, ``ValenceOrbital``) computed for
  many compositions at once with numpy from matminer's own element tables. Same labels and values as
  matminer (a test compares them), ~100x faster on 10,000 compositions.
* :class:`NaChemistry`: descriptors drawn from the physics of Na-ion conductors (seed review, section 4):
  Na content, anion chemistry and mixed anions, cluster anions, polyanion identity, Na excess/vacancy relative
  to the nearest parent compound, framework-cation radius/valence statistics, anion polarizability proxy.
* :class:`CompositionFeaturizer`: a named, dated preset of the above, with a per-formula cache.

All follow matminer's ``BaseFeaturizer`` contract (``featurize``, ``feature_labels``, ``citations``,
``implementors``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from matminer.featurizers.base import BaseFeaturizer
from matminer.featurizers.composition import ElementProperty
from matminer.utils.data import MagpieData
from pymatgen.core import Composition, Element

from ml.chemistry import (
    ANION_STATES,
    CHALCOGENS,
    HALOGENS,
    anions_of,
    cation_state,
    framework_cations,
    has_hydride_cage,
    infer_family,
    ionic_radius,
)
from ml.data import FAMILIES
from ml.formula import parse_formula

_MAX_Z = 103
_ELEMENTS = [Element.from_Z(z).symbol for z in range(1, _MAX_Z + 1)]
_INDEX = {s: i for i, s in enumerate(_ELEMENTS)}


def fraction_matrix(comps: Sequence[Composition]) -> np.ndarray:
    """(n, 103) matrix of atomic fractions, element order by Z."""
    out = np.zeros((len(comps), _MAX_Z))
    for i, c in enumerate(comps):
        amounts = c.get_el_amt_dict()
        total = sum(amounts.values())
        for el, a in amounts.items():
            out[i, _INDEX[el]] = a / total
    return out


class _Vectorized(BaseFeaturizer):
    """Shared plumbing: ``featurize`` goes through ``featurize_matrix`` on a one-row matrix."""

    def featurize(self, comp: Composition) -> list[float]:
        return self.featurize_matrix(fraction_matrix([comp]))[0].tolist()

    def featurize_matrix(self, fractions: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def implementors(self) -> list[str]:
        return ["nacond developers (vectorised port of matminer's featurizer)"]


class VectorizedElementProperty(_Vectorized):
    """matminer ``ElementProperty`` (default preset "magpie") over a fraction matrix.

    Statistics follow matminer's ``PropertyStats``: minimum/maximum/range over present elements, fraction-
    weighted mean and mean absolute deviation, and mode = value of the most abundant element (ties: the
    minimum value).
    """

    def __init__(self, preset: str = "magpie"):
        self.preset = preset
        ref = ElementProperty.from_preset(preset)
        self.features = list(ref.features)
        self.stats = list(ref.stats)
        self._labels = ref.feature_labels()
        self._citations = ref.citations()
        src = ref.data_source
        table = np.full((_MAX_Z, len(self.features)), np.nan)
        for i, sym in enumerate(_ELEMENTS):
            for j, f in enumerate(self.features):
                try:
                    table[i, j] = src.get_elemental_property(Element(sym), f)
                except (KeyError, ValueError, TypeError):
                    table[i, j] = np.nan
        self.table = table

    def featurize_matrix(self, fractions: np.ndarray) -> np.ndarray:
        present = fractions > 0
        n, p = fractions.shape[0], self.table.shape[1]
        vals = np.broadcast_to(self.table, (n, _MAX_Z, p))
        mask = present[:, :, None]
        # any missing property for a present element -> NaN, as in matminer
        missing = (np.isnan(vals) & mask).any(axis=1)
        filled = np.where(np.isnan(vals), 0.0, vals)
        mean = np.einsum("ne,nep->np", fractions, filled)
        vmin = np.where(mask, filled, np.inf).min(axis=1)
        vmax = np.where(mask, filled, -np.inf).max(axis=1)
        avg_dev = np.einsum("ne,nep->np", fractions, np.abs(filled - mean[:, None, :]))
        wmax = fractions.max(axis=1, keepdims=True)
        top = np.isclose(fractions, wmax) & present
        mode = np.where(top[:, :, None], filled, np.inf).min(axis=1)
        stats = {"minimum": vmin, "maximum": vmax, "range": vmax - vmin, "mean": mean, "avg_dev": avg_dev,
                 "mode": mode}
        out = np.stack([stats[s] for s in self.stats], axis=2)  # (n, p, n_stats): label order attr-major
        out = out.reshape(n, p * len(self.stats))
        out[np.repeat(missing, len(self.stats), axis=1)] = np.nan
        return out

    def feature_labels(self) -> list[str]:
        return list(self._labels)

    def citations(self) -> list[str]:
        return list(self._citations)


class VectorizedStoichiometry(_Vectorized):
    """matminer ``Stoichiometry`` p-norms (p = 0, 2, 3, 5, 7, 10) of the atomic fractions."""

    def __init__(self, p_list: tuple[int, ...] = (0, 2, 3, 5, 7, 10)):
        self.p_list = tuple(p_list)

    def featurize_matrix(self, fractions: np.ndarray) -> np.ndarray:
        cols = []
        for p in self.p_list:
            if p == 0:
                cols.append((fractions > 0).sum(axis=1).astype(float))
            else:
                cols.append((fractions**p).sum(axis=1) ** (1.0 / p))
        return np.stack(cols, axis=1)

    def feature_labels(self) -> list[str]:
        return [f"{p}-norm" for p in self.p_list]

    def citations(self) -> list[str]:
        return ["@article{ward_agrawal_choudary_wolverton_2016, DOI={10.1038/npjcompumats.2017.28}}"]


class VectorizedValenceOrbital(_Vectorized):
    """matminer ``ValenceOrbital``: mean s/p/d/f valence electrons and their fractions (Magpie data)."""

    orbitals = ("s", "p", "d", "f")

    def __init__(self):
        src = MagpieData()
        self.table = np.array([
            [src.get_elemental_property(Element(sym), f"N{o}Valence") for o in self.orbitals]
            + [src.get_elemental_property(Element(sym), "NValence")]
            for sym in _ELEMENTS
        ], dtype=float)

    def featurize_matrix(self, fractions: np.ndarray) -> np.ndarray:
        avg = fractions @ self.table
        return np.concatenate([avg[:, :4], avg[:, :4] / avg[:, 4:5]], axis=1)

    def feature_labels(self) -> list[str]:
        return [f"avg {o} valence electrons" for o in self.orbitals] + [
            f"frac {o} valence electrons" for o in self.orbitals]

    def citations(self) -> list[str]:
        return ["@article{ward_agrawal_choudary_wolverton_2016, DOI={10.1038/npjcompumats.2017.28}}"]


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
# Anion polarizability proxy: r^3 of the Shannon radius (pymatgen) of the anion in its usual state.
_ANION_R3 = {s: ionic_radius(s, q) ** 3 for s, q in ANION_STATES.items()}


def _na_per_anion_charge(amounts: dict[str, float], mobile: str) -> float:
    comp = Composition(amounts)
    an = anions_of(comp)
    neg = sum(-q * amounts[s] for s, q in an.items())
    if has_hydride_cage(comp):
        # cluster anions: count charge from the cation side (Na + framework) instead
        neg = amounts.get(mobile, 0.0) + sum(cation_state(e) * a for e, a in framework_cations(comp, mobile).items())
    return amounts.get(mobile, 0.0) / neg if neg > 0 else 0.0


@lru_cache(maxsize=8)
def _parents(mobile: str) -> tuple[np.ndarray, list[float]]:
    """Fraction matrix and mobile-ion-per-anion-charge of the parent compounds (computed once)."""
    comps = [Composition(p) for p in PARENTS]
    return fraction_matrix(comps), [_na_per_anion_charge(c.get_el_amt_dict(), mobile) for c in comps]


class NaChemistry(BaseFeaturizer):
    """Descriptors of Na-ion conductor chemistry (seed review, section 4: doping, vacancies, lattice
    expansion, mixed anions). Works on fractional formulas; assigns oxidation states by rule (ml.chemistry).

    Args:
        mobile_ion: the conducting ion (default "Na").
    """

    _ANIONS = CHALCOGENS + HALOGENS + ("N", "H")

    def __init__(self, mobile_ion: str = "Na"):
        self.mobile_ion = mobile_ion

    def feature_labels(self) -> list[str]:
        labels = [
            "mobile ion fraction",
            "mobile ion per anion charge",
            "mobile excess vs nearest parent",
            "distance to nearest parent",
        ]
        labels += [f"frac {a}" for a in self._ANIONS]
        labels += ["n anion species", "mixed anion", "hydride cage", "H/B ratio", "carba cage", "amide"]
        labels += [f"polyanion {c}-{a}" for c, a in POLYANION_PAIRS]
        labels += [
            "framework cation radius mean", "framework cation radius std",
            "framework cation valence mean", "framework cation valence std",
            "n framework cation species", "anion radius cubed mean", "anion electronegativity mean",
            "charge imbalance",
        ]
        labels += [f"family is {f}" for f in FAMILIES]
        return labels

    def featurize(self, comp: Composition) -> list[float]:
        mob = self.mobile_ion
        amounts = comp.get_el_amt_dict()
        total = sum(amounts.values())
        els = set(amounts)
        frac = {e: a / total for e, a in amounts.items()}
        na_per_q = _na_per_anion_charge(amounts, mob)
        pf, pq = _parents(mob)
        x = fraction_matrix([comp])[0]
        d = np.abs(pf - x).sum(axis=1)
        k = int(np.argmin(d))
        out = [frac.get(mob, 0.0), na_per_q, na_per_q - pq[k], float(d[k])]
        out += [frac.get(a, 0.0) for a in self._ANIONS]
        an = anions_of(comp)
        heavy = [a for a in an if a in CHALCOGENS + HALOGENS]
        cage = has_hydride_cage(comp)
        out += [
            float(len(an)),
            float(len(heavy) >= 2),
            float(cage),
            amounts.get("H", 0.0) / amounts["B"] if cage and "B" in amounts else 0.0,
            float(cage and "C" in els and "B" in els),
            float(cage and "N" in els and "B" not in els) + float(cage and "N" in els and "B" in els),
        ]
        for c, a in POLYANION_PAIRS:
            out.append(frac.get(c, 0.0) if (c in els and a in els and c != a) else 0.0)
        fw = framework_cations(comp, mob)
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
            out += [float(wa @ np.array([_ANION_R3[a] for a in an])),
                    float(wa @ np.array([Element(a).X for a in an]))]
        else:
            out += [0.0, 0.0]
        pos = amounts.get(mob, 0.0) + sum(cation_state(e) * a for e, a in fw.items())
        neg = sum(-q * amounts[s] for s, q in an.items())
        out.append(0.0 if cage else (pos - neg) / max(pos + neg, 1e-9))
        fam = infer_family(comp)
        out += [float(fam == f) for f in FAMILIES]
        return out

    def citations(self) -> list[str]:
        return ["@article{wang2024nacond_seed, title={Research progress of inorganic sodium ion conductors for "
                "solid-state batteries}, author={Wang, Qiao and Jiang, Ziling and Yu, Chuang and Li, Liping and "
                "Li, Guangshe}, year={2024}}"]

    def implementors(self) -> list[str]:
        return ["nacond developers"]


# ---------------------------------------------------------------------------------------------- presets


class CompositionFeaturizer(BaseFeaturizer):
    """A named, dated composition feature preset with a per-formula cache.

    Use :meth:`transform_formulas` for many formulas (vectorised Magpie/Stoichiometry/ValenceOrbital, cached
    NaChemistry rows); ``featurize`` for one ``Composition``.
    """

    def __init__(self, preset: str = "na-chem-2026-11-26"):
        if preset not in PRESETS:
            raise ValueError(f"unknown feature preset {preset!r}; choose from {sorted(PRESETS)}")
        self.preset = preset
        spec = PRESETS[preset]
        self.vectorized = [cls() for cls in spec["vectorized"]]
        self.chemistry = NaChemistry(mobile_ion=spec.get("mobile_ion", "Na")) if spec["chemistry"] else None
        self._cache: dict[str, np.ndarray] = {}

    def feature_labels(self) -> list[str]:
        labels = [lab for f in self.vectorized for lab in f.feature_labels()]
        if self.chemistry:
            labels += self.chemistry.feature_labels()
        return labels

    def featurize(self, comp: Composition) -> list[float]:
        return self.transform_compositions([comp])[0].tolist()

    def transform_compositions(self, comps: Sequence[Composition]) -> np.ndarray:
        fr = fraction_matrix(comps)
        blocks = [f.featurize_matrix(fr) for f in self.vectorized]
        if self.chemistry:
            rows = []
            for c in comps:
                key = c.formula
                row = self._cache.get(key)
                if row is None:
                    row = np.asarray(self.chemistry.featurize(c), dtype=float)
                    self._cache[key] = row
                rows.append(row)
            blocks.append(np.vstack(rows) if rows else np.zeros((0, len(self.chemistry.feature_labels()))))
        return np.hstack(blocks) if blocks else np.zeros((len(comps), 0))

    def transform_formulas(self, formulas: Sequence[str]) -> np.ndarray:
        """Featurize formula strings (validated by :func:`ml.formula.parse_formula`; errors name the input)."""
        return self.transform_compositions([parse_formula(f) for f in formulas])

    def citations(self) -> list[str]:
        cites = [c for f in self.vectorized for c in f.citations()]
        return cites + (self.chemistry.citations() if self.chemistry else [])

    def implementors(self) -> list[str]:
        return ["nacond developers"]


# Add a new preset rather than editing one: a trained model records its preset name, so it stays reproducible.
PRESETS: dict[str, dict] = {
    "magpie-2026-11-26": {
        "vectorized": (VectorizedElementProperty, VectorizedStoichiometry, VectorizedValenceOrbital),
        "chemistry": False,
    },
    "na-chem-2026-11-26": {
        "vectorized": (VectorizedElementProperty, VectorizedStoichiometry, VectorizedValenceOrbital),
        "chemistry": True,
    },
}


def get_preset(name: str) -> CompositionFeaturizer:
    return CompositionFeaturizer(name)
