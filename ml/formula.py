"""Turn user-supplied formula strings into pymatgen compositions, or raise a clear domain error.

pymatgen is permissive: it reads "Xx2O" as a dummy species and silently accepts odd input, so every formula
that enters nacond goes through :func:`parse_formula`.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

from pymatgen.core import Composition, Element

from ml.errors import InvalidFormulaError, UnsupportedElementError

MAX_FORMULA_LENGTH = 200
MAX_AMOUNT = 1000.0  # atoms of one element per formula unit; beyond this a formula is a typo, not a material
MAX_Z = 103  # the featurizer's element tables stop at Lr (matminer's Magpie data)
_ALLOWED = re.compile(r"^[A-Za-z0-9.()\[\]{}·•∙*\s]+$")
# Adduct separators: "Na2SO4·10H2O", "Na2SO4*10H2O", "Na2SO4 10H2O", and "Na2SO4.10H2O" where the part after the
# dot is a whole number of a neutral molecule (water, ammonia); "Na2.88Sb0.88W0.12S4" keeps its decimals.
_ADDUCT_SEP = re.compile(r"[·•∙*]")
_MOLECULE_ADDUCT = re.compile(r"(?:\.|\s+)(?=\d+(?:H2O|NH3|H3N)(?:$|[·•∙*\s.]))")
_ZERO = re.compile(r"([A-Z][a-z]?|\))(0+(?:\.0*)?)(?![\d.])")
_LEADING = re.compile(r"^(\d+(?:\.\d+)?)(?=[A-Z(\[])")
_PAIRS = {")": "(", "]": "[", "}": "{"}


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _check_brackets(formula: str) -> None:
    stack: list[str] = []
    for ch in formula:
        if ch in "([{":
            stack.append(ch)
        elif ch in _PAIRS:
            if not stack or stack.pop() != _PAIRS[ch]:
                raise InvalidFormulaError(f"formula {formula!r} has unbalanced brackets")
    if stack:
        raise InvalidFormulaError(f"formula {formula!r} has unbalanced brackets")


@lru_cache(maxsize=65536)
def parse_formula(formula: str) -> Composition:
    """Parse a chemical formula into a pymatgen ``Composition``.

    Args:
        formula: e.g. ``"Na3Zr2Si2PO12"``, ``"Na2.88Sb0.88W0.12S4"``, ``"Na2(B12H12)0.5(B10H10)0.5"``;
            hydrates and adducts add up: ``"Na2SO4·10H2O"`` = ``"Na2SO4.10H2O"`` = ``"Na2SO4 10H2O"``.

    Returns:
        The composition (amounts per formula unit as written).

    Raises:
        InvalidFormulaError: empty, too long, illegal characters (including minus signs), unbalanced brackets,
            or not parseable.
        UnsupportedElementError: a symbol that is not a real element (pymatgen would make it a dummy species),
            or an element beyond Lr (Z > 103) that the featurizer has no data for.
    """
    if not isinstance(formula, str):
        raise InvalidFormulaError(f"formula must be a string, got {type(formula).__name__}: {formula!r}")
    text = formula.strip()
    if not text:
        raise InvalidFormulaError("formula is empty; give a composition such as 'Na3PS4'")
    if len(text) > MAX_FORMULA_LENGTH:
        raise InvalidFormulaError(
            f"formula {_short(text)!r} is longer than {MAX_FORMULA_LENGTH} characters; "
            "give one composition per entry"
        )
    if "-" in text:
        raise InvalidFormulaError(
            f"formula {text!r} contains '-': negative amounts and 'A-B' mixture notation are not compositions; "
            "write the resulting composition (e.g. '75Na2S-25P2S5' -> 'Na3PS4')"
        )
    if not _ALLOWED.match(text):
        bad = sorted({ch for ch in text if not _ALLOWED.match(ch)})
        raise InvalidFormulaError(f"formula {_short(text)!r} contains characters {bad!r} that are not allowed")
    _check_brackets(text)
    zero = _ZERO.search(text.replace(" ", ""))
    if zero:
        raise InvalidFormulaError(f"formula {text!r} has a zero amount ({zero.group(0)!r}); leave the element out "
                                  "or give its amount")
    parts = _adduct_parts(text)
    comp = _parse_part(parts[0], text) if parts else Composition()
    for part in parts[1:]:
        comp = comp + _parse_part(part, text)
    if len(comp) == 0 or comp.num_atoms <= 0:
        raise InvalidFormulaError(f"formula {text!r} contains no atoms")
    for el in comp.elements:
        if not isinstance(el, Element):
            raise UnsupportedElementError(
                f"formula {text!r} contains {getattr(el, 'symbol', str(el))!r}, which is not a chemical element"
            )
        if el.Z > MAX_Z:
            raise UnsupportedElementError(
                f"formula {text!r} contains {el.symbol} (Z = {el.Z}); nacond's element data stop at Lr (Z = {MAX_Z})"
            )
    for el, amt in comp.items():
        if not math.isfinite(amt) or amt <= 0:
            raise InvalidFormulaError(f"formula {text!r} has a non-positive or non-finite amount of {el}")
        if amt > MAX_AMOUNT:
            raise InvalidFormulaError(f"formula {text!r} has {amt:g} {el} per formula unit; at most "
                                      f"{MAX_AMOUNT:g} are accepted (a typo?)")
    return comp


def _adduct_parts(text: str) -> list[str]:
    """Split a hydrate/adduct ("Na2SO4·10H2O") into its parts; a plain formula is one part."""
    joined = re.sub(r"\s+", "", _MOLECULE_ADDUCT.sub("·", text))
    return [p for p in _ADDUCT_SEP.split(joined) if p]


def _parse_part(part: str, text: str) -> Composition:
    m = _LEADING.match(part)  # "10H2O" -> 10 x H2O
    factor = float(m.group(1)) if m else 1.0
    body = part[m.end():] if m else part
    if not body:
        raise InvalidFormulaError(f"formula {text!r} cannot be parsed: {part!r} holds no element")
    try:
        comp = Composition(body)
    except Exception as exc:  # pymatgen raises ValueError, KeyError, OverflowError, ... for malformed strings
        raise InvalidFormulaError(f"formula {text!r} cannot be parsed: {exc}") from None
    return comp * factor if factor != 1.0 else comp


def normalised_formula(formula: str) -> str:
    """The formula to echo back: as written, except hydrates/adducts, which are summed so the echo shows what
    was read (``"Na2SO4.10H2O"`` -> ``"Na2SO14H20"``)."""
    comp = parse_formula(formula)
    text = formula.strip()
    if len(_adduct_parts(text)) == 1:
        return text
    return "".join(el + ("" if amt == 1 else f"{amt:g}") for el, amt in comp.get_el_amt_dict().items())


def reduced_formula(formula: str) -> str:
    """The reduced formula used to group measurements of one compound (e.g. for leak-free CV splits)."""
    return parse_formula(formula).reduced_formula
