"""Dopant what-if screening: charge-balanced substitution series of a parent composition.

A fraction ``x`` of the ``site`` element is replaced by a dopant; the mobile ion (Na) changes to keep the formula
neutral under nacond's rule-based oxidation states (``ml.chemistry``): a higher-valent dopant on a cation site
(Zr4+ on Y3+) removes Na (vacancy compensation), a lower-valent one (Sc3+ on Zr4+) adds Na (interstitial/excess
compensation); on an anion site (Cl- on S2-) the same bookkeeping runs with anion charges. When the site is Na
itself (Ca2+ on Na+), each dopant replaces one Na and removes q-1 more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pymatgen.core import Element

from ml.chemistry import ANION_STATES, cation_state
from ml.errors import NacondError
from ml.formula import parse_formula

Compensation = Literal["vacancy", "interstitial", "auto"]


class ScreeningError(NacondError):
    """A parent, site, dopant or option that cannot define a substitution series."""


@dataclass(frozen=True)
class Candidate:
    formula: str
    dopant: str
    fraction: float  # x: share of the site replaced
    dopant_per_formula: float  # x times the site's amount in the parent formula
    mobile_per_formula: float
    compensation: str  # "vacancy", "interstitial", "isovalent" or "parent"


def _state(symbol: str, anion_site: bool) -> int:
    if anion_site:
        if symbol not in ANION_STATES:
            raise ScreeningError(f"dopant {symbol!r} cannot sit on an anion site (not one of "
                                 f"{', '.join(ANION_STATES)})")
        return ANION_STATES[symbol]
    q = cation_state(symbol)
    if q <= 0:
        raise ScreeningError(f"element {symbol!r} has no positive oxidation state to sit on a cation site")
    return q


def _fmt(amounts: dict[str, float]) -> str:
    parts = []
    for el, a in amounts.items():
        a = round(a, 6)
        if a > 0:
            parts.append(el if a == 1 else f"{el}{a:g}")
    return "".join(parts)


def _with_dopant(amounts: dict[str, float], site: str, dopant: str, n: float) -> dict[str, float]:
    """``amounts`` with ``n`` of ``site`` replaced by ``dopant``, the dopant written right after the site it
    occupies (site order: Na3.4Zr1.8Zn0.2Si2PO12, not ...PO12Zn0.2); a dopant already in the parent keeps its
    place."""
    new: dict[str, float] = {}
    for el, a in amounts.items():
        new[el] = a - n if el == site else a
        if el == site and dopant not in amounts:
            new[dopant] = n
    if dopant in amounts:
        new[dopant] += n
    return new


def enumerate_dopants(parent: str, site: str, dopants: list[str], *, max_fraction: float = 0.5, step: float = 0.05,
                      compensation: Compensation = "auto", mobile_ion: str = "Na") -> list[Candidate]:
    """All charge-balanced compositions ``parent`` with x = step, 2 step, ... <= max_fraction of ``site``
    replaced by each dopant (plus the parent itself, x = 0). Errors name the offending argument."""
    comp = parse_formula(parent)
    amounts = comp.get_el_amt_dict()
    if mobile_ion not in amounts:
        raise ScreeningError(f"parent {parent!r} contains no {mobile_ion}")
    if site not in amounts:
        raise ScreeningError(f"site {site!r} is not an element of parent {parent!r} ({', '.join(amounts)})")
    if not 0 < step <= max_fraction <= 1:
        raise ScreeningError(f"need 0 < step ({step}) <= max fraction ({max_fraction}) <= 1")
    if compensation not in ("vacancy", "interstitial", "auto"):
        raise ScreeningError(f"compensation {compensation!r} is not vacancy, interstitial or auto")
    if not dopants:
        raise ScreeningError("give at least one dopant")
    anion_site = site in ANION_STATES and site != mobile_ion
    q_site = 1 if site == mobile_ion else _state(site, anion_site)
    out = [Candidate(_fmt(amounts), "", 0.0, 0.0, amounts[mobile_ion], "parent")]
    n_site = amounts[site]
    xs = np.round(np.arange(step, max_fraction + 1e-9, step), 6)
    for d in dopants:
        try:
            Element(d)
        except ValueError:
            raise ScreeningError(f"dopant {d!r} is not a chemical element") from None
        if d == site:
            raise ScreeningError(f"dopant {d!r} is the site element itself")
        q_d = _state(d, anion_site)
        dq = q_d - q_site  # charge added per substituted site
        kind = "isovalent" if dq == 0 else ("vacancy" if dq > 0 else "interstitial")
        if site == mobile_ion and dq > 0:
            kind = "vacancy"
        if compensation != "auto" and kind not in (compensation, "isovalent"):
            raise ScreeningError(f"dopant {d!r} ({q_d:+d}) on {site} ({q_site:+d}) needs {kind} compensation, "
                                 f"not {compensation}")
        for x in xs:
            n = x * n_site
            new = _with_dopant(amounts, site, d, n)
            new[mobile_ion] = new[mobile_ion] - dq * n if site != mobile_ion else new[mobile_ion] - (q_d - 1) * n
            if new[mobile_ion] <= 1e-9:
                break
            out.append(Candidate(_fmt(new), d, float(x), float(n), float(new[mobile_ion]), kind))
    return out


def charge(formula: str, site_anion_states: dict[str, int] | None = None) -> float:
    """Total charge under the rule-based states (mobile ion +1, anions their usual state, others their highest
    common positive state) — 0 for a neutral formula."""
    amounts = parse_formula(formula).get_el_amt_dict()
    states = {**ANION_STATES, **(site_anion_states or {})}
    total = 0.0
    for el, a in amounts.items():
        q = states.get(el, None)
        if q is None:
            q = 1 if el == "Na" else cation_state(el)
        total += q * a
    return total
