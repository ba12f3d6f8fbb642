"""Turn user-supplied formula strings into pymatgen compositions, or raise a clear domain error.

pymatgen is permissive: it reads "Xx2O" as a dummy species and silently accepts odd input, so every formula
that enters nacond goes through :func:`parse_formula`.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pymatgen.core import Composition, Element

from ml.errors import InvalidFormulaError, UnsupportedElementError

MAX_FORMULA_LENGTH = 200
_ALLOWED = re.compile(r"^[A-Za-z0-9.()\[\]{}·\s]+$")
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
        formula: e.g. ``"Na3Zr2Si2PO12"``, ``"Na2.88Sb0.88W0.12S4"``, ``"Na2(B12H12)0.5(B10H10)0.5"``.

    Returns:
        The composition (amounts per formula unit as written).

    Raises:
        InvalidFormulaError: empty, too long, illegal characters (including minus signs), unbalanced brackets,
            or not parseable.
        UnsupportedElementError: a symbol that is not a real element (pymatgen would make it a dummy species).
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
    try:
        comp = Composition(text.replace("·", "").replace(" ", ""))
    except Exception as exc:  # pymatgen raises ValueError, KeyError, ... for malformed strings
        raise InvalidFormulaError(f"formula {text!r} cannot be parsed: {exc}") from None
    if len(comp) == 0 or comp.num_atoms <= 0:
        raise InvalidFormulaError(f"formula {text!r} contains no atoms")
    for el in comp.elements:
        if not isinstance(el, Element):
            raise UnsupportedElementError(
                f"formula {text!r} contains {getattr(el, 'symbol', str(el))!r}, which is not a chemical element"
            )
    for el, amt in comp.items():
        if amt < 0:
            raise InvalidFormulaError(f"formula {text!r} has a negative amount of {el}")
    return comp


def reduced_formula(formula: str) -> str:
    """The reduced formula used to group measurements of one compound (e.g. for leak-free CV splits)."""
    return parse_formula(formula).reduced_formula
