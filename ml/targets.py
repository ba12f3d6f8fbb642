"""From measurement rows to one training row per composition.

* log10 sigma at 25 degC: median of log10 sigma over rows measured at 20-30 degC with a stated value
  (bounds ``<``/``>`` are not values and are left out; rows at other temperatures never enter this target).
* Ea: median over rows reporting Ea (any temperature range).
A composition with only one of the two still trains the other target. Compositions are grouped by pymatgen's
reduced formula, so a compound reported by several papers is one training row and stays on one side of
every split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.data import RT_WINDOW_K
from ml.formula import parse_formula


def training_frame(rows: pd.DataFrame, mobile_ion: str = "Na") -> pd.DataFrame:
    """Aggregate dataset rows (from :func:`ml.data.load_dataset`) into one row per reduced composition.

    Returns columns: ``group`` (reduced formula), ``formula`` (first reported normalised formula),
    ``family``, ``structure_type``, ``log10_sigma_S_cm``, ``ea_eV``, ``n_rt_rows``, ``n_ea_rows``,
    ``entry_ids`` (comma-separated source rows), ``dois``.
    """
    df = rows[rows["mobile_ion"].eq(mobile_ion)].copy()
    df["group"] = df["formula"].map(lambda f: parse_formula(f).reduced_formula)
    rt = (df["temperature_K"].between(*RT_WINDOW_K) & df["sigma_S_cm"].gt(0)
          & df["sigma_censor"].eq(""))
    df["_log_sigma_rt"] = np.where(rt, np.log10(df["sigma_S_cm"].where(rt, 1.0)), np.nan)
    out = []
    for g, grp in df.groupby("group", sort=True):
        ls = grp["_log_sigma_rt"].dropna()
        ea = grp["ea_eV"].dropna()
        if ls.empty and ea.empty:
            continue
        out.append({
            "group": g,
            "formula": grp["formula"].iloc[0],
            "family": grp["family"].mode().iloc[0],
            "structure_type": grp["structure_type"].mode().iloc[0],
            "log10_sigma_S_cm": float(ls.median()) if not ls.empty else np.nan,
            "ea_eV": float(ea.median()) if not ea.empty else np.nan,
            "n_rt_rows": int(len(ls)),
            "n_ea_rows": int(len(ea)),
            "entry_ids": ",".join(grp["entry_id"]),
            "dois": ";".join(sorted({d for d in grp["doi"] if d})),
            "sigma_rt_S_cm": float(10 ** ls.median()) if not ls.empty else np.nan,
        })
    return pd.DataFrame(out)
