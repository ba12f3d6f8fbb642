"""From measurement rows to one training row per composition.

* log10 sigma at 25 degC: median of log10 sigma over rows measured at 20-30 degC with a stated value
  (bounds ``<``/``>`` are not values and are left out; rows at other temperatures never enter this target).
* Ea: median over rows whose Arrhenius fit window reaches room temperature (``ea_T_range_K`` read by
  :func:`ea_regime`); a composition with Ea only from a high-temperature (superionic phase, fit entirely above
  330 K) or sub-ambient (fit entirely below 280 K) regime keeps that value rather than none, and its
  ``ea_regime`` column says so.
A composition with only one of the two still trains the other target. Secondary rows (``same_as`` set: a
measurement quoted again elsewhere) are left out, so each measurement counts once. Compositions are grouped by
pymatgen's reduced formula, so a compound reported by several papers is one training row and stays on one side of
every split.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ml.data import RT_WINDOW_K, is_primary
from ml.formula import parse_formula

HIGH_T_REGIME_K = 330.0  # an Ea fitted entirely above this is a high-temperature (often superionic-phase) value
LOW_T_REGIME_K = 280.0  # an Ea fitted entirely below this is a sub-ambient value

_NUM = r"[-+]?\d+(?:\.\d+)?"
_RANGE = re.compile(rf"(?<![\d.])({_NUM})\s*(?:-|–|to)\s*(\d+(?:\.\d+)?)")
_CELSIUS = re.compile(rf"({_NUM})\s*°?\s*C\b")


def ea_fit_window(text: object) -> tuple[float | None, float | None]:
    """Lower and upper temperature (K) of an activation-energy fit from the dataset's free-text ``ea_T_range_K``.

    ``"298-373"`` -> (298, 373); ``">431"``/``"above 414"`` -> (431, None); ``"<431"``/``"below ~313"`` ->
    (None, 313); ``"~373 (local slope)"`` -> (373, 373); ``"local slope at -40 C"`` -> (233.15, 233.15);
    blank or no number (``"above room temperature"``) -> (None, None).
    """
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return None, None
    s = str(text).strip()
    if not s:
        return None, None
    m = _RANGE.search(s)
    if m:
        a, b = float(m.group(1)), float(m.group(2))
        return min(a, b), max(a, b)
    m = _CELSIUS.search(s)
    if m:
        t = float(m.group(1)) + 273.15
        return t, t
    m = re.search(_NUM, s.replace("~", ""))
    if not m:
        return None, None
    t = float(m.group(0))
    low = s.lower()
    if ">" in s or "above" in low:
        return t, None
    if "<" in s or "below" in low:
        return None, t
    return t, t


def ea_regime(text: object) -> str:
    """``"high_T"``, ``"sub_ambient"`` or ``"rt"`` (fit window reaches room temperature, or not stated)."""
    lo, hi = ea_fit_window(text)
    if lo is not None and lo >= HIGH_T_REGIME_K:
        return "high_T"
    if hi is not None and hi <= LOW_T_REGIME_K:
        return "sub_ambient"
    return "rt"


def training_frame(rows: pd.DataFrame, mobile_ion: str = "Na") -> pd.DataFrame:
    """Aggregate dataset rows (from :func:`ml.data.load_dataset`) into one row per reduced composition.

    Returns columns: ``group`` (reduced formula), ``formula`` (first reported normalised formula),
    ``family``, ``structure_type``, ``log10_sigma_S_cm``, ``ea_eV``, ``ea_regime`` (``rt`` or, when no
    room-temperature-regime Ea exists, the regime of the value used), ``n_rt_rows``, ``n_ea_rows`` (Ea rows
    used), ``entry_ids`` (comma-separated source rows), ``dois``, ``references`` (sources without a DOI),
    ``log10_sigma_rt_spread`` (max - min of the 20-30 degC values, decades).
    """
    df = rows[rows["mobile_ion"].eq(mobile_ion) & is_primary(rows)].copy()
    df["group"] = df["formula"].map(lambda f: parse_formula(f).reduced_formula)
    rt = (df["temperature_K"].between(*RT_WINDOW_K) & df["sigma_S_cm"].gt(0)
          & df["sigma_censor"].eq(""))
    df["_log_sigma_rt"] = np.where(rt, np.log10(df["sigma_S_cm"].where(rt, 1.0)), np.nan)
    ranges = df["ea_T_range_K"] if "ea_T_range_K" in df else pd.Series("", index=df.index)
    df["_ea_regime"] = [ea_regime(t) if pd.notna(e) else "" for t, e in zip(ranges, df["ea_eV"], strict=True)]
    out = []
    for g, grp in df.groupby("group", sort=True):
        ls = grp["_log_sigma_rt"].dropna()
        ea = grp["ea_eV"].dropna()
        ea_rt = ea[grp.loc[ea.index, "_ea_regime"].eq("rt")]
        regime = "rt" if not ea_rt.empty else ",".join(sorted(set(grp.loc[ea.index, "_ea_regime"])))
        ea = ea_rt if not ea_rt.empty else ea
        if ls.empty and ea.empty:
            continue
        out.append({
            "group": g,
            "formula": grp["formula"].iloc[0],
            "family": grp["family"].mode().iloc[0],
            "structure_type": grp["structure_type"].mode().iloc[0],
            "log10_sigma_S_cm": float(ls.median()) if not ls.empty else np.nan,
            "ea_eV": float(ea.median()) if not ea.empty else np.nan,
            "ea_regime": regime if not ea.empty else "",
            "n_rt_rows": int(len(ls)),
            "n_ea_rows": int(len(ea)),
            "entry_ids": ",".join(grp["entry_id"]),
            "dois": ";".join(sorted({d for d in grp["doi"] if d})),
            "references": ";".join(sorted({r for r, d in zip(grp.get("reference", pd.Series("", index=grp.index)),
                                                             grp["doi"], strict=True) if r and not d})),
            "log10_sigma_rt_spread": float(ls.max() - ls.min()) if len(ls) > 1 else (0.0 if len(ls) else np.nan),
            "sigma_rt_S_cm": float(10 ** ls.median()) if not ls.empty else np.nan,
        })
    return pd.DataFrame(out)
