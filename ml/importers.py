"""Public Li-ion conductivity tables -> the nacond dataset schema, so one tool trains on Li and Na data alike.

* OBELiX (Therrien et al., Digital Discovery 2026; CC-BY 4.0): ``all.csv``/``train.csv``/``test.csv`` with
  ``ID``, ``True Composition``, ``Ionic conductivity (S cm-1)`` (room-temperature total conductivity; censored
  values such as ``<1E-10`` become upper bounds), ``Space group``, ``Family``, ``DOI``.
* Liverpool Ionics Dataset (Hargreaves et al., npj Comput. Mater. 9 (2023) 9): ``ID``, ``composition``,
  ``source`` (DOI), ``temperature`` (degC), ``target`` (S/cm), ``family``.

Every imported row names the table and row it came from (``evidence``); a row that cannot be converted is
returned with its reason, never dropped silently.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ml.data import COLUMN_NAMES, SIGMA_RANGE_S_CM, T_RANGE_K
from ml.errors import DatasetError, NacondError
from ml.formula import parse_formula

FORMATS = ("obelix", "liverpool")
_NUMBER = re.compile(r"^\s*([<>])?\s*([0-9.]+(?:[eE][-+]?\d+)?)\s*$")


@dataclass
class ImportResult:
    rows: pd.DataFrame
    skipped: list[tuple[str, str]]  # (source row id, reason)


def _sigma(text: object) -> tuple[float, str]:
    """``'1.58e-06'`` -> (1.58e-06, ''); ``'<1E-10'`` -> (1e-10, '<'); anything else raises ValueError."""
    m = _NUMBER.match(str(text))
    if not m:
        raise ValueError(f"conductivity {text!r} is not a number")
    v = float(m.group(2))
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"conductivity {text!r} is not a positive number")
    lo, hi = SIGMA_RANGE_S_CM
    if not lo <= v <= hi:
        raise ValueError(f"conductivity {text!r} S/cm is outside nacond's range [{lo:g}, {hi:g}]")
    return v, m.group(1) or ""


def _formula(text: str, mobile_ion: str) -> str:
    """The table's composition, validated and holding the mobile ion (ValueError naming it otherwise)."""
    formula = text.strip().strip('"')
    if mobile_ion not in {e.symbol for e in parse_formula(formula).elements}:
        raise ValueError(f"no {mobile_ion} in {formula!r}")
    return formula


def _row(**kw) -> dict:
    return {c: str(kw.get(c, "")) for c in COLUMN_NAMES}


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DatasetError(f"import file {str(path)!r} does not exist or is not a file")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except Exception as exc:
        raise DatasetError(f"import file {str(path)!r} is not a readable CSV: {exc}") from None


def _need(df: pd.DataFrame, cols: tuple[str, ...], path: Path, fmt: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DatasetError(f"{str(path)!r} is not a {fmt} table: columns {missing} are missing")


def import_table(path: str | Path, fmt: str, mobile_ion: str = "Li") -> ImportResult:
    """Convert an OBELiX or Liverpool CSV into nacond rows (mobile ion ``mobile_ion``)."""
    path = Path(path)
    if fmt not in FORMATS:
        raise DatasetError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    df = _read(path)
    out, skipped = [], []
    if fmt == "obelix":
        _need(df, ("ID", "True Composition", "Ionic conductivity (S cm-1)", "DOI"), path, fmt)
        for _, r in df.iterrows():
            rid = r["ID"]
            try:
                formula = _formula(r["True Composition"], mobile_ion)
                sigma, censor = _sigma(r["Ionic conductivity (S cm-1)"])
            except (ValueError, NacondError) as exc:
                skipped.append((rid, str(exc)))
                continue
            out.append(_row(
                entry_id=f"OBX-{rid}", formula_reported=r.get("Reduced Composition", formula), formula=formula,
                mobile_ion=mobile_ion, family=r.get("Family", "").strip() or "unknown", structure_type="unknown",
                space_group=r.get("Space group", "").replace(" ", ""), measure="total", sigma_S_cm=f"{sigma:.6g}",
                sigma_censor=censor, temperature_K="298.15", doi=r["DOI"].strip().lower(),
                reference="" if r["DOI"].strip() else "Therrien, Digital Discovery (2026) OBELiX",
                evidence=f"OBELiX ID {rid}: {r['Ionic conductivity (S cm-1)']} S/cm",
                evidence_locator=f"OBELiX {path.name}", evidence_seen="none",
                notes="OBELiX room-temperature total conductivity (r.t. unstated in the table); CC-BY 4.0"))
    else:
        _need(df, ("ID", "composition", "source", "temperature", "target"), path, fmt)
        for _, r in df.iterrows():
            rid = r["ID"]
            try:
                formula = _formula(r["composition"], mobile_ion)
                sigma, censor = _sigma(r["target"])
                t_c = float(r["temperature"])
                if not T_RANGE_K[0] <= t_c + 273.15 <= T_RANGE_K[1]:
                    raise ValueError(f"temperature {r['temperature']!r} C is outside nacond's range")
            except (ValueError, NacondError) as exc:
                skipped.append((rid, str(exc)))
                continue
            out.append(_row(
                entry_id=f"LIV-{rid}", formula_reported=formula, formula=formula, mobile_ion=mobile_ion,
                family=r.get("family", "").strip() or "unknown", structure_type="unknown", measure="unknown",
                sigma_S_cm=f"{sigma:.6g}", sigma_censor=censor, temperature_K=f"{t_c + 273.15:.2f}",
                doi=r["source"].strip().lower() if r["source"].strip().startswith("10.") else "",
                reference="" if r["source"].strip().startswith("10.") else "Hargreaves, npj Comput. Mater. 9 (2023) 9",
                evidence=f"Liverpool ID {rid}: {r['target']} S/cm at {r['temperature']} C",
                evidence_locator=f"Liverpool Ionics {path.name}", evidence_seen="none",
                notes="Liverpool Ionics Dataset (Hargreaves et al. 2023); temperature in degC in the source"))
    rows = pd.DataFrame(out, columns=list(COLUMN_NAMES))
    n = rows.groupby("entry_id").cumcount()  # the source repeats some ids: keep every row, ids unique
    rows.loc[n > 0, "entry_id"] = rows.loc[n > 0, "entry_id"] + "-" + (n[n > 0] + 1).astype(str)
    return ImportResult(rows, skipped)
