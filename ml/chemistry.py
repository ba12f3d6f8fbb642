"""Composition-level chemistry rules shared by featurizers and domain checks.

Everything here is deterministic and bounded: no oxidation-state guessing (pymatgen's guesser fails on
fractional formulas and can run for minutes; see shared/STACK.md). Oxidation states are assigned by rule:
anions take their usual negative state; every other element takes its highest common positive state
(P5+, Sb5+, Si4+, Zr4+, W6+, Te6+ in tellurates). Cluster anions (BH4-, B12H12 2-, CB11H12-, NH2-) are
recognised from the B/C/N/H content and kept out of the "framework cation" statistics.
"""

from __future__ import annotations

from functools import lru_cache

from pymatgen.core import Composition, Element

# Usual anion states. Te counts as an anion only when no O is present (tellurides vs tellurates).
ANION_STATES = {"O": -2, "S": -2, "Se": -2, "Te": -2, "F": -1, "Cl": -1, "Br": -1, "I": -1, "N": -3}
HALOGENS = ("F", "Cl", "Br", "I")
CHALCOGENS = ("O", "S", "Se", "Te")
CAGE_ELEMENTS = ("B", "C", "H")  # the skeleton of borohydride / closo-borate anions

MOBILE_IONS = ("Li", "Na", "K", "Ag", "Cu", "Mg")
FAMILIES = (
    "beta_alumina", "nasicon", "layered_oxide", "antiperovskite", "sulfide", "selenide", "halide",
    "complex_hydride", "other",
)


Amounts = dict[str, float]


def amounts_of(comp: Composition | Amounts) -> Amounts:
    """Element symbol -> amount. Every rule below takes either a Composition or such a dict (the dict is the
    fast path: pymatgen's Composition accessors dominate the cost of featurizing thousands of formulas)."""
    return comp if isinstance(comp, dict) else comp.get_el_amt_dict()


def anions_of(comp: Composition | Amounts) -> dict[str, int]:
    """Anion elements present and their assigned states."""
    els = amounts_of(comp).keys()
    out = {s: q for s, q in ANION_STATES.items() if s in els}
    if "Te" in out and "O" in els:
        out.pop("Te")
    if "N" in out and "O" in els:
        # nitrate/nitrite-like N is a cation; oxynitrides (NaPON) keep N3- only when N < O/4 is not decidable
        # without structure, so N is treated as an anion only in the absence of O.
        out.pop("N")
    return out


def has_hydride_cage(comp: Composition | Amounts) -> bool:
    """True for borohydrides, closo/nido-borates, carba-borates and amides (B or N bonded to H)."""
    els = amounts_of(comp).keys()
    return "H" in els and ("B" in els or "N" in els or "Al" in els)


@lru_cache(maxsize=4096)
def cation_state(symbol: str) -> int:
    """Highest common positive oxidation state (rule-based, never guessed)."""
    el = Element(symbol)
    pos = [s for s in el.common_oxidation_states if s > 0] or [s for s in el.icsd_oxidation_states if s > 0]
    return max(pos) if pos else 0


@lru_cache(maxsize=4096)
def ionic_radius(symbol: str, state: int) -> float:
    """Shannon ionic radius (pymatgen, Angstrom) at ``state``; the element's average radius as a fallback."""
    el = Element(symbol)
    r = el.ionic_radii.get(state)
    if r is None:
        r = float(el.average_ionic_radius) or float(el.atomic_radius or 0.0)
    return float(r)


def framework_cations(comp: Composition | Amounts, mobile_ion: str = "Na") -> dict[str, float]:
    """Elements that are neither the mobile ion, nor anions, nor part of a hydride cage; with amounts."""
    amounts = amounts_of(comp)
    anions = anions_of(amounts)
    cage = has_hydride_cage(amounts)
    out = {}
    for el, amt in amounts.items():
        if el == mobile_ion or el in anions:
            continue
        if cage and el in CAGE_ELEMENTS + ("N",):
            continue
        out[el] = amt
    return out


def infer_family(comp: Composition | Amounts) -> str:
    """Best guess of the dataset family from composition alone (used for new formulas and domain checks).

    The rules follow the seed review's classification; they are a guess, and the dataset's own ``family``
    column wins wherever it exists.
    """
    amt = amounts_of(comp)
    els = set(amt)
    if has_hydride_cage(amt) and "O" not in els:
        return "complex_hydride"
    if "O" in els and (els & set(HALOGENS) or "H" in els) and "Na" in els:
        na, o = amt.get("Na", 0.0), amt.get("O", 0.0)
        # Na3OX / Na3OBH4 / Na4OI2: little O, Na-rich, no framework cations beyond dopants
        fw = sum(framework_cations(amt).values())
        if o > 0 and na / o >= 2.5 and fw <= 0.5 * o:
            return "antiperovskite"
    if els & set(HALOGENS) and not els & {"S", "Se"}:
        return "halide"
    if "Se" in els and amt.get("Se", 0) >= amt.get("S", 0):
        return "selenide"
    if "S" in els and "O" not in els:
        return "sulfide"
    if "O" in els:
        if "Te" in els and els & {"Ni", "Co", "Zn", "Mg", "Cu", "Ga", "Ca", "Mn", "Fe"}:
            return "layered_oxide"
        al = amt.get("Al", 0.0)
        if al >= 4 * max(amt.get("Na", 0.0), 1e-9) and al >= 5:
            return "beta_alumina"
        pz = amt.get("P", 0.0) + amt.get("Si", 0.0) + amt.get("Ge", 0.0)
        o = amt.get("O", 0.0)
        fw = framework_cations(amt)
        octa = sum(v for k, v in fw.items() if k not in ("P", "Si", "Ge", "As"))
        # NASICON A_x M2 (XO4)3: 3 tetrahedral X per 2 octahedral M and 12 O
        if pz > 0 and abs(o / (pz + 1e-12) - 4.0) < 0.5 and abs(pz / max(octa, 1e-9) - 1.5) < 0.35:
            return "nasicon"
    return "other"
