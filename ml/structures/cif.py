"""User CIFs -> pymatgen ``Structure`` (partial occupancies and vacancies kept); errors name the file.

Before pymatgen sees a CIF, :func:`read_cif` checks what it is (a regular file, not a device, FIFO or a link to
one), its size, and counts its atom-site rows and symmetry operations with a cheap line scan, so a hostile or
broken file is refused in milliseconds instead of being expanded for minutes.
"""

from __future__ import annotations

import os
import signal
import stat
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path

from ml.errors import StructureParseError

MAX_CIF_BYTES = 5_000_000
MAX_SITES = 2000
MAX_SYMOPS = 192  # the most any space group has in its conventional cell (Fm-3m and friends)
MAX_EXPANDED = 50_000  # atom-site rows x symmetry operations that pymatgen would generate before merging
PARSE_SECONDS = 15


class StructureTooLargeError(StructureParseError):
    """A structure with more sites (or a CIF with more bytes, rows or operations) than nacond featurizes."""


def check_size(structure, label: str):
    """Return ``structure``; raise :class:`StructureTooLargeError` naming ``label`` if it has too many sites."""
    if len(structure) > MAX_SITES:
        raise StructureTooLargeError(f"{label} has {len(structure)} sites; nacond featurizes at most {MAX_SITES}")
    return structure


def _read_bytes(path: Path) -> bytes:
    label = f"CIF file {str(path)!r}"
    try:
        st = os.stat(path)  # follows links: a link to /dev/zero is a character device here
    except FileNotFoundError:
        raise StructureParseError(f"{label} does not exist") from None
    except OSError as exc:
        raise StructureParseError(f"{label} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = ("a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file")
        raise StructureParseError(f"{label} is {kind}, not a regular file")
    if st.st_size > MAX_CIF_BYTES:
        raise StructureTooLargeError(f"{label} is larger than {MAX_CIF_BYTES // 1_000_000} MB")
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CIF_BYTES + 1)  # never more than the limit, whatever the size said
    except OSError as exc:
        raise StructureParseError(f"{label} cannot be read: {exc.strerror}") from None
    if len(data) > MAX_CIF_BYTES:
        raise StructureTooLargeError(f"{label} is larger than {MAX_CIF_BYTES // 1_000_000} MB")
    return data


def scan_loops(text: str) -> tuple[int, int]:
    """(atom-site rows, symmetry operations) of the first data block, counted line by line without parsing."""
    sites = ops = 0
    tags: list[str] = []
    in_loop = reading_tags = False
    blocks = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        low = line.lower()
        if low.startswith("data_"):
            blocks += 1
            if blocks > 1:
                break
            in_loop = False
            continue
        if low.startswith("loop_"):
            in_loop, reading_tags, tags = True, True, []
            continue
        if line.startswith("_"):
            if in_loop and reading_tags:
                tags.append(low.split()[0])
                continue
            in_loop = False
            continue
        if in_loop:
            reading_tags = False
            if any(t.startswith("_atom_site_fract_") or t == "_atom_site_label" for t in tags):
                sites += 1
            elif any(t in ("_symmetry_equiv_pos_as_xyz", "_space_group_symop_operation_xyz") for t in tags):
                ops += 1
    return sites, ops


@contextmanager
def _time_limit(seconds: int, label: str):
    """Raise :class:`StructureParseError` after ``seconds`` (main thread only; elsewhere the pre-checks bound the
    work)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def _stop(signum, frame):
        raise StructureParseError(f"{label} took longer than {seconds} s to parse")

    old = signal.signal(signal.SIGALRM, _stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


FORMULA_TOLERANCE = 0.02  # relative difference of any element's atomic fraction that counts as a disagreement


def stated_formula(text: str) -> str | None:
    """``_chemical_formula_sum`` of the first data block, as written ("Na2.85 S4 Sb0.85 W0.15"), or None."""
    import re

    m = re.search(r"^\s*_chemical_formula_sum\s+(?:'([^']*)'|\"([^\"]*)\"|(\S+))", text, re.M)
    if not m:
        return None
    return (m.group(1) or m.group(2) or m.group(3) or "").strip() or None


def formula_disagreement(structure, stated: str) -> str | None:
    """Why the parsed sites disagree with the CIF's stated formula (any element's atomic fraction off by more
    than 2 %, or a different element set), or None when they agree or the statement cannot be read."""
    from ml.formula import parse_formula

    try:
        want = parse_formula(stated.replace(" ", "")).fractional_composition.get_el_amt_dict()
    except ValueError:
        return None
    have = structure.composition.fractional_composition.get_el_amt_dict()
    if set(want) != set(have):
        return f"elements {sorted(have)} of the sites differ from the stated {sorted(want)}"
    worst = max(want, key=lambda e: abs(have[e] - want[e]) / want[e])
    if abs(have[worst] - want[worst]) / want[worst] > FORMULA_TOLERANCE:
        return (f"the sites give {structure.composition.reduced_formula} but _chemical_formula_sum states "
                f"{stated!r} ({worst} fraction {have[worst]:.3f} vs {want[worst]:.3f}; coincident split positions "
                "merged by the CIF reader?)")
    return None


def parse_cif_text(text: str, label: str = "CIF text", *, occupancy_tolerance: float = 1.05):
    """Parse CIF content (already read) into the first structure, after the cheap size checks. The stated
    ``_chemical_formula_sum`` (if any) and the file label are kept in ``structure.properties``
    (``cif_formula_sum``, ``cif_label``)."""
    from pymatgen.io.cif import CifParser

    if len(text.encode("utf-8", "ignore")) > MAX_CIF_BYTES:
        raise StructureTooLargeError(f"{label} is larger than {MAX_CIF_BYTES // 1_000_000} MB")
    if "_atom_site" not in text:
        raise StructureParseError(f"{label} cannot be read: no _atom_site loop (not a CIF)")
    sites, ops = scan_loops(text)
    if sites > MAX_SITES:
        raise StructureTooLargeError(f"{label} lists {sites} atom sites; nacond featurizes at most {MAX_SITES}")
    if ops > MAX_SYMOPS:
        raise StructureTooLargeError(f"{label} lists {ops} symmetry operations; a space group has at most "
                                     f"{MAX_SYMOPS}")
    if sites * max(ops, 1) > MAX_EXPANDED:
        raise StructureTooLargeError(f"{label}: {sites} sites x {ops} symmetry operations would expand to more "
                                     f"than {MAX_EXPANDED} positions")
    try:
        with warnings.catch_warnings(), _time_limit(PARSE_SECONDS, label):
            warnings.simplefilter("ignore")
            structures = CifParser.from_str(text, occupancy_tolerance=occupancy_tolerance).parse_structures(
                primitive=False)
    except StructureParseError:
        raise
    except Exception as exc:  # pymatgen raises many exception types for unreadable CIFs
        raise StructureParseError(f"{label} cannot be read: {exc}") from None
    if not structures:
        raise StructureParseError(f"{label} contains no structure")
    s = check_size(structures[0], label)
    if len(s) == 0 or not s.volume > 0:
        raise StructureParseError(f"{label} has no sites or a degenerate cell")
    s.properties["cif_label"] = label
    stated = stated_formula(text)
    if stated:
        s.properties["cif_formula_sum"] = stated
    return s


def read_cif(path: str | Path, *, occupancy_tolerance: float = 1.05):
    """Read the first structure of a CIF file.

    Partial occupancies become disordered sites (``{"Na": 0.75}``); a site whose occupancies sum above 1 within
    ``occupancy_tolerance`` is scaled to 1 by pymatgen. Raises :class:`StructureParseError` naming the file: not
    a regular file, larger than 5 MB, more than 2,000 atom sites or 192 symmetry operations, unparseable, or
    taking longer than 15 s.
    """
    path = Path(path)
    text = _read_bytes(path).decode("utf-8", errors="replace")
    return parse_cif_text(text, f"CIF file {str(path)!r}", occupancy_tolerance=occupancy_tolerance)
