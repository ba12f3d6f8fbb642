"""User CIFs -> pymatgen ``Structure`` (partial occupancies and vacancies kept); errors name the file."""

from __future__ import annotations

import warnings
from pathlib import Path

from ml.errors import StructureParseError

MAX_CIF_BYTES = 5_000_000
MAX_SITES = 2000


class StructureTooLargeError(StructureParseError):
    """A structure with more sites (or a CIF with more bytes) than nacond featurizes."""


def check_size(structure, label: str):
    """Return ``structure``; raise :class:`StructureTooLargeError` naming ``label`` if it has too many sites."""
    if len(structure) > MAX_SITES:
        raise StructureTooLargeError(f"{label} has {len(structure)} sites; nacond featurizes at most {MAX_SITES}")
    return structure


def read_cif(path: str | Path, *, occupancy_tolerance: float = 1.05):
    """Read the first structure of a CIF.

    Partial occupancies become disordered sites (``{"Na": 0.75}``); a site whose occupancies sum above 1 within
    ``occupancy_tolerance`` is scaled to 1 by pymatgen. Raises :class:`StructureParseError` naming the file.
    """
    from pymatgen.io.cif import CifParser

    path = Path(path)
    if not path.exists():
        raise StructureParseError(f"CIF file {str(path)!r} does not exist")
    if path.stat().st_size > MAX_CIF_BYTES:
        raise StructureTooLargeError(f"CIF file {str(path)!r} is larger than {MAX_CIF_BYTES // 1_000_000} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structures = CifParser(str(path), occupancy_tolerance=occupancy_tolerance).parse_structures(
                primitive=False)
    except Exception as exc:  # pymatgen raises many exception types for unreadable CIFs
        raise StructureParseError(f"CIF file {str(path)!r} cannot be read: {exc}") from None
    if not structures:
        raise StructureParseError(f"CIF file {str(path)!r} contains no structure")
    s = check_size(structures[0], f"CIF file {str(path)!r}")
    if s.volume <= 0 or len(s) == 0:
        raise StructureParseError(f"CIF file {str(path)!r} has no sites or a degenerate cell")
    return s
