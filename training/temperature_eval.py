"""sigma(T) on the anchored Arrhenius curve: grouped CV over compositions, every measured (T, sigma) row of a
held-out composition predicted from the 25 degC model trained without it; error, 90 % coverage and interval
width by temperature band, and the seed review's elevated-temperature points."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

from ml.models import NacondModel
from ml.models.arrhenius import ArrheniusModel, temperature_rows
from ml.targets import training_frame

BANDS_K = (("below 20 C", 0, 293.15), ("20-30 C", 293.15, 303.16), ("30-100 C", 303.16, 373.15),
           ("100-300 C", 373.15, 573.15), ("above 300 C", 573.15, 2000))


def temperature_cv(rows: pd.DataFrame, *, n_splits: int = 5, seed: int = 0, learner: str = "extra_trees") -> dict:
    rows = rows[rows["mobile_ion"].eq("Na")].reset_index(drop=True)
    comp = training_frame(rows)
    trows = temperature_rows(rows)
    groups = comp["group"].to_numpy()
    row_groups = rows["formula"].map(_group)
    pred = np.full(len(trows), np.nan)
    lo, hi = pred.copy(), pred.copy()
    for tr, te in GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(comp, groups=groups):
        held = set(comp["group"].iloc[te])
        train_rows = rows[~row_groups.isin(held)]
        model = NacondModel(learner=learner, seed=seed).fit(comp.iloc[tr])
        curve = ArrheniusModel(learner=learner, seed=seed).fit(train_rows)
        sel = trows["group"].isin(held).to_numpy()
        if not sel.any():
            continue
        r = trows[sel]
        p = model.predict(r)
        out = curve.at({k: p[k].to_numpy() for k in p.columns}, r["temperature_K"].to_numpy())
        pred[sel], lo[sel], hi[sel] = (out[f"log10_sigma_S_cm{s}"] for s in ("", "_lo", "_hi"))
    y = trows["log10_sigma"].to_numpy()
    t = trows["temperature_K"].to_numpy()
    ok = ~np.isnan(pred)
    res = {"n_rows": int(ok.sum()), "n_compositions": int(trows.loc[ok, "group"].nunique()), "bands": {}}
    for name, a, b in BANDS_K:
        m = ok & (t >= a) & (t < b)
        if m.sum() == 0:
            continue
        res["bands"][name] = {"n": int(m.sum()), "mae": float(np.mean(np.abs(pred[m] - y[m]))),
                              "coverage90": float(np.mean((y[m] >= lo[m]) & (y[m] <= hi[m]))),
                              "median_width": float(np.median(hi[m] - lo[m]))}
    m = ok
    res["all"] = {"mae": float(np.mean(np.abs(pred[m] - y[m]))),
                  "coverage90": float(np.mean((y[m] >= lo[m]) & (y[m] <= hi[m]))),
                  "median_width": float(np.median(hi[m] - lo[m]))}
    seed_ids = set(rows.loc[rows["seed_ref"].ne(""), "entry_id"])
    hot = ok & (t > 303.15) & trows["entry_id"].isin(seed_ids).to_numpy()
    res["seed_elevated"] = [{"entry_id": e, "formula": f, "temperature_K": float(tk), "log10_sigma": float(yy),
                             "pred_log10_sigma": float(pp), "abs_err": float(abs(pp - yy)),
                             "within_90pct_interval": bool(ll <= yy <= hh)}
                            for e, f, tk, yy, pp, ll, hh in zip(trows["entry_id"][hot], trows["formula"][hot], t[hot],
                                                                y[hot], pred[hot], lo[hot], hi[hot], strict=True)]
    return res


def _group(formula: str) -> str:
    from ml.formula import parse_formula

    return parse_formula(formula).reduced_formula
