"""The Na-ion conductivity dataset: schema, loading with checksum verification, and validation.

The schema here is the single source of truth: ``metadata.json`` column descriptions, the validator and the
loader all read :data:`COLUMNS`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ml.chemistry import FAMILIES
from ml.errors import DatasetError, NacondError
from ml.formula import parse_formula
from ml.utils import sha256_of

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = REPO_ROOT / "datasets" / "na_sse"


FORMS = ("ceramic", "glass", "glass-ceramic", "amorphous", "single crystal", "thin film", "composite", "powder")
MEASURES = ("total", "bulk", "grain boundary", "unknown")
CENSORS = ("", "<", ">")
QUALIFIERS = ("", "approx", "range", "order_of_magnitude", "figure")

# Physical bounds a row must respect (a unit slip of x100 or x1000 usually lands outside them).
SIGMA_RANGE_S_CM = (1e-14, 1.0)
T_RANGE_K = (150.0, 1300.0)
EA_RANGE_EV = (0.05, 2.0)
_REFERENCE = re.compile(r",.*\b(1[89]\d\d|20\d\d)\b")
# "Room temperature" for the 25 degC target: rows measured between 20 and 30 degC.
RT_WINDOW_K = (293.15, 303.15)


@dataclass(frozen=True)
class Column:
    name: str
    description: str
    unit: str = ""
    required: bool = False
    numeric: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("entry_id", "Stable row identifier (family prefix + number); never reused", required=True),
    Column("formula_reported", "Composition as the source writes it", required=True),
    Column("formula", "Normalised, pymatgen-parseable composition (no x, no fractions, clusters expanded)",
           required=True),
    Column("mobile_ion", "The conducting ion (Na for this dataset; other ions allowed in user data)",
           required=True),
    Column("family", "Material family: " + ", ".join(FAMILIES), required=True),
    Column("structure_type", "Key of the parent structure (e.g. nasicon_C2c, Na3PS4_cubic); 'unknown' if not said",
           required=True),
    Column("space_group", "Hermann-Mauguin symbol when the source reports it"),
    Column("form", "Sample form: " + ", ".join(FORMS)),
    Column("measure", "Which conductivity: " + ", ".join(MEASURES)),
    Column("sigma_S_cm", "Ionic conductivity", unit="S/cm", numeric=True),
    Column("sigma_censor", "'<' upper bound, '>' lower bound, empty for a value"),
    Column("sigma_qualifier", "empty (stated value), approx, range (geometric mid; range in notes), "
           "order_of_magnitude, figure (read off a plot)"),
    Column("temperature_K", "Measurement temperature; empty only where the source does not record it",
           unit="K", numeric=True),
    Column("ea_eV", "Activation energy; empty if not reported", unit="eV", numeric=True),
    Column("ea_T_range_K", "Temperature range of the Arrhenius fit, e.g. '298-373'", unit="K"),
    Column("synthesis", "Short synthesis route"),
    Column("doi", "DOI of the source paper, lower-case"),
    Column("reference", "Bibliographic reference when no DOI is known: 'First-author, Journal volume (year) "
           "first-page', or 'Title, First-author, year' for a full text whose journal is not printed"),
    Column("seed_ref", "For rows from the 2024 seed review: its reference number and line, e.g. '[37] L103'"),
    Column("evidence", "Shortest verbatim fragment holding the number and its condition"),
    Column("evidence_locator", "Where the fragment stands (abstract, Table 2, seed L103, ...)"),
    Column("evidence_seen", "How the curator saw it: seed, search:abstract, fulltext:<repo>/<path>, or none"),
    Column("same_as", "entry_id of the primary row when this row repeats a measurement already in the dataset "
           "(a review quoting a paper); such secondary rows are kept for provenance but never trained on"),
    Column("notes", "Curation notes (dopant level, r.t. unstated, ranges, disagreements)"),
)
COLUMN_NAMES = tuple(c.name for c in COLUMNS)
REQUIRED = tuple(c.name for c in COLUMNS if c.required)
NUMERIC = tuple(c.name for c in COLUMNS if c.numeric)


def resolve_paths(path: str | Path | None) -> tuple[Path, Path]:
    """Return ``(data.csv, metadata.json)`` for a dataset directory or a CSV path (metadata may not exist)."""
    p = Path(path) if path is not None else DEFAULT_DATASET
    if p.is_dir():
        csv = p / "data.csv"
    else:
        csv = p
    if not csv.exists():
        raise DatasetError(f"dataset {str(p)!r} not found (expected a CSV file or a folder with data.csv)")
    return csv, csv.with_name("metadata.json")


def read_csv(csv: Path) -> pd.DataFrame:
    """Read a dataset CSV with every column as text (nothing coerced or imputed), then numeric columns."""
    try:
        df = pd.read_csv(csv, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise DatasetError(f"dataset {str(csv)!r} is not a readable CSV: {exc}") from None
    return df


def load_dataset(path: str | Path | None = None, *, verify_checksum: bool = True) -> pd.DataFrame:
    """Load a dataset in the nacond schema.

    Args:
        path: a folder holding ``data.csv`` (+ ``metadata.json``) or a CSV file; default: the bundled dataset.
        verify_checksum: check ``data.csv`` against the sha256 in ``metadata.json`` when that file exists.

    Returns:
        DataFrame with text columns as ``str`` and ``sigma_S_cm``, ``temperature_K``, ``ea_eV`` as floats
        (NaN where empty).

    Raises:
        DatasetError: missing file, missing required columns, checksum mismatch, non-numeric numbers.
    """
    csv, meta = resolve_paths(path)
    if verify_checksum and meta.exists():
        expected = json.loads(meta.read_text()).get("sha256")
        actual = sha256_of(csv)
        if expected and expected != actual:
            raise DatasetError(
                f"dataset {str(csv)!r}: sha256 {actual[:12]}... does not match metadata.json ({expected[:12]}...); "
                "the file changed without its metadata being rebuilt"
            )
    df = read_csv(csv)
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise DatasetError(f"dataset {str(csv)!r} lacks required columns {missing}")
    for c in COLUMN_NAMES:
        if c not in df.columns:
            df[c] = ""
    for c in NUMERIC:
        numbers = pd.to_numeric(df[c].str.strip().replace("", None), errors="coerce")
        bad = df[c].str.strip().ne("") & numbers.isna()
        if bad.any():
            i = int(bad.idxmax())
            raise DatasetError(f"dataset {str(csv)!r}: row {i + 2} ({df.at[i, 'entry_id']}) has non-numeric "
                               f"{c}={df.at[i, c]!r}")
        df[c] = numbers.astype(float)
    return df


def feeds_target(row: pd.Series) -> bool:
    """True when a row can train something: a conductivity (value or bound) with its temperature, or an Ea."""
    has_sigma = not pd.isna(row["sigma_S_cm"]) and not pd.isna(row["temperature_K"])
    return has_sigma or not pd.isna(row["ea_eV"])


def is_primary(rows: pd.DataFrame) -> pd.Series:
    """Mask of primary rows (``same_as`` empty): the rows training uses; secondary rows repeat a measurement."""
    if "same_as" not in rows:
        return pd.Series(True, index=rows.index)
    return rows["same_as"].fillna("").astype(str).str.strip().eq("")


def source_key(rows: pd.DataFrame) -> pd.Series:
    """One key per source: the DOI (case-folded), else the reference, else the seed reference."""
    doi = rows["doi"].fillna("").astype(str).str.strip().str.lower()
    ref = rows["reference"].fillna("").astype(str).str.strip() if "reference" in rows else ""
    seed = rows["seed_ref"].fillna("").astype(str).str.strip()
    return doi.where(doi.ne(""), pd.Series(ref, index=rows.index).where(lambda r: r.ne(""), seed))


# ---------------------------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class Fault:
    """One problem found by :func:`validate_dataset`; ``line`` is the CSV line (header = 1)."""

    line: int
    entry_id: str
    column: str
    message: str
    severity: str = "error"  # "error" fails validation, "warning" is reported only

    def __str__(self) -> str:
        return f"{self.severity.upper():7s} line {self.line} [{self.entry_id}] {self.column}: {self.message}"


@dataclass
class ValidationReport:
    path: Path
    n_rows: int = 0
    faults: list[Fault] = field(default_factory=list)

    @property
    def errors(self) -> list[Fault]:
        return [f for f in self.faults if f.severity == "error"]

    @property
    def warnings(self) -> list[Fault]:
        return [f for f in self.faults if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors


def _blank(v: object) -> bool:
    return v is None or (isinstance(v, float) and pd.isna(v)) or (isinstance(v, str) and not v.strip())


def _check_row(line: int, row: pd.Series) -> Iterable[Fault]:
    eid = row["entry_id"] or "?"

    def fault(col: str, msg: str, severity: str = "error") -> Fault:
        return Fault(line, eid, col, msg, severity)

    for c in REQUIRED:
        if _blank(row[c]):
            yield fault(c, "required value is empty")
    ion = (row["mobile_ion"] or "").strip()
    if not _blank(row["formula"]):
        try:
            comp = parse_formula(row["formula"])
        except NacondError as exc:
            yield fault("formula", str(exc))
        else:
            if ion and ion not in {el.symbol for el in comp.elements}:
                yield fault("formula", f"formula {row['formula']!r} does not contain the mobile ion {ion!r}")
    if row["family"] and ion == "Na" and row["family"] not in FAMILIES:
        yield fault("family", f"unknown family {row['family']!r}; expected one of {', '.join(FAMILIES)}")
    if row["form"] and row["form"] not in FORMS:
        yield fault("form", f"unknown form {row['form']!r}; expected one of {', '.join(FORMS)}")
    if row["measure"] and row["measure"] not in MEASURES:
        yield fault("measure", f"unknown measure {row['measure']!r}; expected one of {', '.join(MEASURES)}")
    if row["sigma_censor"] not in CENSORS:
        yield fault("sigma_censor", f"{row['sigma_censor']!r} is not '<', '>' or empty")
    if row["sigma_qualifier"] not in QUALIFIERS:
        yield fault("sigma_qualifier", f"{row['sigma_qualifier']!r} is not one of {QUALIFIERS}")

    sigma, temp, ea = row["sigma_S_cm"], row["temperature_K"], row["ea_eV"]
    if pd.isna(sigma) and pd.isna(ea):
        yield fault("sigma_S_cm", "row has neither a conductivity nor an activation energy")
    if not pd.isna(sigma):
        lo, hi = SIGMA_RANGE_S_CM
        if not lo <= sigma <= hi:
            yield fault("sigma_S_cm", f"{sigma:g} S/cm is outside [{lo:g}, {hi:g}] (unit slip? S/m or mS/cm?)")
    elif row["sigma_censor"]:
        yield fault("sigma_censor", "censor given without a conductivity")
    if not pd.isna(temp):
        lo, hi = T_RANGE_K
        if not lo <= temp <= hi:
            yield fault("temperature_K", f"{temp:g} K is outside [{lo:g}, {hi:g}] (Celsius given as Kelvin?)")
    if not pd.isna(ea):
        lo, hi = EA_RANGE_EV
        if not lo <= ea <= hi:
            yield fault("ea_eV", f"{ea:g} eV is outside [{lo:g}, {hi:g}] (kJ/mol or meV given as eV?)")
    if _blank(row["doi"]) and _blank(row["reference"]) and _blank(row["seed_ref"]):
        yield fault("doi", "no provenance: neither a DOI, a reference nor a seed_ref")
    if not _blank(row["doi"]):
        doi = str(row["doi"])
        if not doi.startswith("10."):
            yield fault("doi", f"{doi!r} is not a DOI (must start with '10.')")
        elif doi != doi.strip().lower():
            yield fault("doi", f"DOI {doi!r} is not stored lower-case (DOIs are case-insensitive; write "
                               f"{doi.strip().lower()!r})")
    if not _blank(row["reference"]) and not _REFERENCE.search(str(row["reference"])):
        yield fault("reference", f"reference {row['reference']!r} does not look like 'First-author, Journal "
                                 "volume (year) first-page' (no comma and year found)")
    if _blank(row["same_as"]) and not feeds_target(row):
        yield fault("temperature_K", "row feeds no target: a conductivity without a measurement temperature and "
                                     "no activation energy (complete it from its source or remove it)")


def validate_dataset(path: str | Path | None = None) -> ValidationReport:
    """Check a dataset against the schema and return every fault found (never stops at the first).

    Checks: required columns and values, formula parses and contains the mobile ion (dummy species such as
    ``Xx`` rejected), controlled vocabularies, physical ranges of sigma/T/Ea, provenance (DOI or seed_ref),
    unique ``entry_id``, duplicated measurements (same source, composition, temperature and value: error;
    same composition and temperature from different sources: warning), and the sha256 in ``metadata.json``.
    """
    csv, meta = resolve_paths(path)
    report = ValidationReport(path=csv)
    if meta.exists():
        try:
            expected = json.loads(meta.read_text()).get("sha256")
        except json.JSONDecodeError as exc:
            report.faults.append(Fault(0, "-", "metadata.json", f"not valid JSON: {exc}"))
            expected = None
        actual = sha256_of(csv)
        if expected and expected != actual:
            report.faults.append(Fault(0, "-", "sha256", f"data.csv sha256 {actual} does not match "
                                                         f"metadata.json {expected}"))
    df = read_csv(csv)
    report.n_rows = len(df)
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        report.faults.append(Fault(1, "-", ",".join(missing), "required columns missing"))
        return report
    for c in COLUMN_NAMES:
        if c not in df.columns:
            df[c] = ""
    for c in NUMERIC:
        raw = df[c].str.strip()
        num = pd.to_numeric(raw.replace("", None), errors="coerce")
        for i in df.index[raw.ne("") & num.isna()]:
            report.faults.append(Fault(i + 2, df.at[i, "entry_id"], c, f"{df.at[i, c]!r} is not a number"))
        df[c] = num.astype(float)

    for i, row in df.iterrows():
        report.faults.extend(_check_row(int(i) + 2, row))

    dup_ids = df["entry_id"][df["entry_id"].duplicated(keep=False) & df["entry_id"].ne("")]
    for i in dup_ids.index:
        report.faults.append(Fault(i + 2, df.at[i, "entry_id"], "entry_id", "entry_id is not unique"))

    report.faults.extend(_same_as(df))
    report.faults.extend(_doi_cases(df))
    report.faults.extend(_duplicates(df))
    report.faults.sort(key=lambda f: (f.line, f.column))
    return report


def _same_as(df: pd.DataFrame) -> Iterable[Fault]:
    """``same_as`` must name another, primary row (no chains, no self-reference)."""
    ids = set(df["entry_id"])
    primary = dict(zip(df["entry_id"], is_primary(df), strict=True))
    for i, target in df["same_as"].str.strip().items():
        if not target:
            continue
        eid = df.at[i, "entry_id"]
        if target == eid:
            yield Fault(i + 2, eid, "same_as", "same_as names the row itself")
        elif target not in ids:
            yield Fault(i + 2, eid, "same_as", f"same_as names {target!r}, which is not an entry_id of this dataset")
        elif not primary[target]:
            yield Fault(i + 2, eid, "same_as", f"same_as names {target!r}, which is itself secondary; point at "
                                               "the primary row")


def _doi_cases(df: pd.DataFrame) -> Iterable[Fault]:
    doi = df["doi"].str.strip()
    for _, grp in df[doi.ne("")].groupby(doi[doi.ne("")].str.lower(), sort=False):
        spellings = sorted(set(grp["doi"].str.strip()))
        if len(spellings) > 1:
            first = grp.index[0]
            for i in grp.index[1:]:
                if df.at[i, "doi"].strip() != df.at[first, "doi"].strip():
                    yield Fault(i + 2, df.at[i, "entry_id"], "doi",
                                f"DOI {df.at[i, 'doi']!r} is the DOI of {df.at[first, 'entry_id']} written in "
                                "another letter case: one paper, one spelling (lower-case)")


def _duplicates(df: pd.DataFrame) -> Iterable[Fault]:
    """Same composition, temperature (within 1 K), measure and value (within 2 %): an error from one source
    unless one of the rows is flagged ``same_as``; a warning across sources (set ``same_as`` if one quotes
    the other)."""
    reduced = []
    for f in df["formula"]:
        try:
            reduced.append(parse_formula(f).reduced_formula)
        except NacondError:
            reduced.append(None)
    df = df.assign(_red=reduced, _src=source_key(df), _primary=is_primary(df))
    for _, grp in df[df["_red"].notna()].groupby("_red", sort=False):
        if len(grp) < 2:
            continue
        idx = list(grp.index)
        for a_pos, a in enumerate(idx):
            for b in idx[a_pos + 1:]:
                ta, tb = df.at[a, "temperature_K"], df.at[b, "temperature_K"]
                same_t = (pd.isna(ta) and pd.isna(tb)) or (not pd.isna(ta) and not pd.isna(tb) and abs(ta - tb) <= 1.0)
                if not same_t or df.at[a, "measure"] != df.at[b, "measure"]:
                    continue
                sa, sb = df.at[a, "sigma_S_cm"], df.at[b, "sigma_S_cm"]
                if pd.isna(sa) and pd.isna(sb):  # Ea-only rows: the same Ea is the same measurement
                    ea, eb = df.at[a, "ea_eV"], df.at[b, "ea_eV"]
                    same_val = not pd.isna(ea) and not pd.isna(eb) and abs(ea - eb) <= 0.02 * max(ea, eb)
                else:
                    same_val = (not pd.isna(sa) and not pd.isna(sb) and abs(sa - sb) <= 0.02 * max(sa, sb)
                                and df.at[a, "sigma_censor"] == df.at[b, "sigma_censor"])
                if not same_val:
                    continue
                other = df.at[a, "entry_id"]
                flagged = not (df.at[a, "_primary"] and df.at[b, "_primary"])
                if df.at[a, "_src"] == df.at[b, "_src"] and not flagged:
                    yield Fault(b + 2, df.at[b, "entry_id"], "duplicate",
                                f"same source, composition, temperature, measure and value as {other}: a measurement "
                                f"is counted once (remove it or set same_as={other})")
                elif not flagged:
                    yield Fault(b + 2, df.at[b, "entry_id"], "duplicate",
                                f"same composition, temperature and value as {other} from another source; if one "
                                "quotes the other, set same_as", "warning")


# ---------------------------------------------------------------------------------------------- statistics

T_BANDS_K = (
    ("below 20 C", 0.0, RT_WINDOW_K[0]),
    ("20-30 C (r.t. target)", RT_WINDOW_K[0], RT_WINDOW_K[1] + 1e-9),
    ("30-100 C", RT_WINDOW_K[1] + 1e-9, 373.15),
    ("100-300 C", 373.15, 573.15),
    ("above 300 C", 573.15, 1e9),
)


def dataset_stats(df: pd.DataFrame) -> dict:
    """Counts a curator or reviewer wants to see: rows (usable, secondary, feeding no target), Ea coverage,
    provenance (DOI / reference / seed, untraced share, papers), families (rows and room-temperature
    compositions), structure types, temperature bands. ``df`` comes from :func:`load_dataset`."""
    t = df["temperature_K"]
    bands = {}
    for name, lo, hi in T_BANDS_K:
        bands[name] = int(((t >= lo) & (t < hi)).sum())
    bands["not recorded"] = int(t.isna().sum())
    seen = df["evidence_seen"].str.strip()
    primary = is_primary(df)
    feeds = df.apply(feeds_target, axis=1) if len(df) else pd.Series(dtype=bool)
    usable = primary & feeds
    red = df["formula"].map(lambda s: parse_formula(s).reduced_formula)
    rt_value = (df["temperature_K"].between(*RT_WINDOW_K) & df["sigma_S_cm"].notna() & df["sigma_censor"].eq("")
                & primary)
    per_family = {
        f: {
            "rows": int(len(g)),
            "usable_rows": int(usable[g.index].sum()),
            "with_ea": int(g["ea_eV"].notna().sum()),
            "rt_sigma": int((g["temperature_K"].between(*RT_WINDOW_K) & g["sigma_S_cm"].notna()).sum()),
            "rt_compositions": int(red[g.index][rt_value[g.index]].nunique()),
            "compositions": int(red[g.index].nunique()),
        }
        for f, g in df.groupby("family")
    }
    doi = df["doi"].str.strip().str.lower()
    ref = df["reference"].str.strip()
    traced = seen.ne("") & seen.ne("none")
    return {
        "rows": int(len(df)),
        "usable_rows": int(usable.sum()),
        "secondary_rows": int((~primary).sum()),
        "rows_without_target": int((primary & ~feeds).sum()),
        "compositions": int(red.nunique()),
        "with_sigma": int(df["sigma_S_cm"].notna().sum()),
        "with_ea": int(df["ea_eV"].notna().sum()),
        "rt_sigma_rows": int((df["temperature_K"].between(*RT_WINDOW_K) & df["sigma_S_cm"].notna()).sum()),
        "censored": int(df["sigma_censor"].ne("").sum()),
        "qualified": {k: int(v) for k, v in df.loc[df["sigma_qualifier"].ne(""), "sigma_qualifier"]
                      .value_counts().items()},
        "provenance": {
            "doi": int(doi.ne("").sum()),
            "reference_only": int((doi.eq("") & ref.ne("")).sum()),
            "seed_ref_only": int((doi.eq("") & ref.eq("") & df["seed_ref"].str.strip().ne("")).sum()),
            "with_source_pct": round(100 * float((doi.ne("") | ref.ne("") | df["seed_ref"].str.strip().ne(""))
                                                 .mean()), 1) if len(df) else 0.0,
            "evidence_seen_pct": round(100 * float(traced.mean()), 1) if len(df) else 0.0,
            "untraced_pct": round(100 * float((~traced).mean()), 1) if len(df) else 0.0,
            "papers": int(doi[doi.ne("")].nunique() + ref[doi.eq("") & ref.ne("")].nunique()),
        },
        "families": per_family,
        "families_with_10_rows": int(sum(v["rows"] >= 10 for v in per_family.values())),
        "structure_types": {k: int(v) for k, v in df["structure_type"].value_counts().items()},
        "temperature_bands": bands,
    }


def write_metadata(path: str | Path | None = None, *, sources: list[dict] | None = None) -> Path:
    """(Re)write ``metadata.json`` beside ``data.csv``: column descriptions with units, sources, counts and
    the sha256 that :func:`load_dataset` checks. Existing ``sources`` are kept unless new ones are given."""
    csv, meta = resolve_paths(path)
    old = json.loads(meta.read_text()) if meta.exists() else {}
    df = load_dataset(csv, verify_checksum=False)
    info = {
        "name": old.get("name", csv.parent.name),
        "description": old.get("description", ""),
        "license": old.get("license", ""),
        "columns": [{"name": c.name, "description": c.description, "unit": c.unit, "required": c.required}
                    for c in COLUMNS],
        "sources": sources if sources is not None else old.get("sources", []),
        "counts": {"rows": int(len(df)), "with_ea": int(df["ea_eV"].notna().sum()),
                   "families": {k: int(v) for k, v in df["family"].value_counts().items()}},
        "sha256": sha256_of(csv),
    }
    meta.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return meta


def dataset_stamp(path: str | Path | None = None) -> dict:
    """Which dataset a result was computed on: ``{"sha256", "rows"}`` of its ``data.csv`` (the benchmarks write it
    into their JSON, so a page rendered later can say when a number came from an earlier version of the data).

    Raises:
        DatasetError: the dataset is missing or unreadable (as :func:`load_dataset`).
    """
    csv, _ = resolve_paths(path)
    return {"sha256": sha256_of(csv), "rows": int(len(read_csv(csv)))}
