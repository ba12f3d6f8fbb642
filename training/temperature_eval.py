"""Does learning from every temperature help at 25 degC? Grouped CV of the direct 25 degC model against the
Arrhenius model's sigma(298.15 K) on identical folds, plus out-of-fold sigma(T) at the seed review's
elevated-temperature points."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

from ml.models import NacondModel
from ml.models.arrhenius import ArrheniusModel, _predict_core, temperature_rows
from ml.targets import training_frame
from training.evaluate import metrics


def temperature_cv(rows: pd.DataFrame, *, n_splits: int = 5, seed: int = 0,
                   learner: str = "extra_trees") -> dict:
    rows = rows[rows["mobile_ion"].eq("Na")].reset_index(drop=True)
    from ml.formula import parse_formula

    groups = rows["formula"].map(lambda f: parse_formula(f).reduced_formula).to_numpy()
    uniq = np.unique(groups)
    fold_of = {}
    for i, (_, te) in enumerate(GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(uniq,
                                                                                                     groups=uniq)):
        fold_of.update({g: i for g in uniq[te]})
    comp = training_frame(rows)
    trows = temperature_rows(rows)
    direct = np.full(len(comp), np.nan)
    arr_rt = np.full(len(comp), np.nan)
    arr_rows = np.full(len(trows), np.nan)
    for k in range(n_splits):
        train = rows[[fold_of[g] != k for g in groups]]
        test_c = comp["group"].map(fold_of).eq(k).to_numpy()
        test_r = trows["group"].map(fold_of).eq(k).to_numpy()
        m = NacondModel(learner=learner, seed=seed, calibration_folds=0).fit(training_frame(train))
        if test_c.any():
            direct[test_c] = m.predict(comp[test_c])["log10_sigma_S_cm"].to_numpy()
        core = ArrheniusModel(learner=learner, seed=seed)._fit_core(train, calibration_folds=0)
        if test_c.any():
            X = core.features_of(comp.loc[test_c, "formula"])
            p = core.predict_arrays(X, comp.loc[test_c, "family"].to_numpy())
            arr_rt[test_c] = p["log10_A"] - p["ea_eV"] / (8.617333262e-5 * np.log(10) * 298.15) - np.log10(298.15)
        if test_r.any():
            arr_rows[test_r] = _predict_core(core, trows[test_r])
    y = comp["log10_sigma_S_cm"].to_numpy()
    mask = ~np.isnan(y)
    out = {"n_rt_compositions": int(mask.sum()),
           "direct_25C": metrics("log10_sigma_S_cm", y[mask], direct[mask]),
           "arrhenius_25C": metrics("log10_sigma_S_cm", y[mask], arr_rt[mask])}
    resid = np.abs(trows["log10_sigma"].to_numpy() - arr_rows)
    hot = trows["temperature_K"].to_numpy() > 303.15
    out["arrhenius_all_rows"] = {"n": int((~np.isnan(resid)).sum()), "mae": float(np.nanmean(resid)),
                                 "mae_above_30C": float(np.nanmean(resid[hot])), "n_above_30C": int(hot.sum())}
    trows = trows.assign(pred_log10_sigma=arr_rows, abs_err=resid)
    seed_ids = set(rows.loc[rows["seed_ref"].ne(""), "entry_id"])
    out["seed_elevated"] = trows[hot & trows["entry_id"].isin(seed_ids)][
        ["entry_id", "formula", "temperature_K", "log10_sigma", "pred_log10_sigma", "abs_err"]].to_dict("records")
    return out
