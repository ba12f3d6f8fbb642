"""Leak-free cross-validation of every learner beside both baselines on the same splits.

Splits: grouped K-fold on the reduced composition (``group``), and leave-one-family-out. Metrics for
log10 sigma: MAE, RMSE, R2, Spearman, 90 %-interval coverage, accuracy at the 1e-4 S/cm threshold; for Ea:
MAE, RMSE, R2, coverage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

from ml.models import TARGETS, NacondModel
from training.progress import Reporter, silent

log = logging.getLogger(__name__)
SIGMA_THRESHOLD_LOG10 = -4.0  # 1e-4 S/cm: "good enough for a solid-state battery" in the seed review


def splits(frame: pd.DataFrame, cv: str, n_splits: int = 5, seed: int = 0) -> Iterator[tuple[str, np.ndarray,
                                                                                                 np.ndarray]]:
    """Yield ``(fold_name, train_idx, test_idx)``. Groups (reduced compositions) never straddle a split."""
    groups = frame["group"].to_numpy()
    if cv == "grouped":
        k = min(n_splits, len(np.unique(groups)))
        for i, (tr, te) in enumerate(GroupKFold(n_splits=k, shuffle=True, random_state=seed)
                                     .split(frame, groups=groups)):
            yield f"fold{i}", tr, te
    elif cv == "family":
        fams = frame["family"].to_numpy()
        for tr, te in LeaveOneGroupOut().split(frame, groups=fams):
            yield str(fams[te][0]), tr, te
    else:
        raise ValueError(f"unknown cv {cv!r}; choose 'grouped' or 'family'")


def metrics(target: str, y: np.ndarray, pred: np.ndarray, lo: np.ndarray | None = None,
            hi: np.ndarray | None = None) -> dict[str, float]:
    m = np.isfinite(y) & np.isfinite(pred)
    y, pred = y[m], pred[m]
    if len(y) == 0:
        return {"n": 0}
    out = {
        "n": int(len(y)),
        "mae": float(mean_absolute_error(y, pred)),
        "rmse": float(np.sqrt(mean_squared_error(y, pred))),
        "r2": float(r2_score(y, pred)) if len(y) > 1 else float("nan"),
    }
    if lo is not None and hi is not None:
        out["coverage90"] = float(np.mean((y >= lo[m]) & (y <= hi[m])))
    if target == "log10_sigma_S_cm":
        constant = np.ptp(pred) == 0 or np.ptp(y) == 0
        out["spearman"] = float(spearmanr(y, pred).statistic) if len(y) > 2 and not constant else float("nan")
        out["acc_1e-4"] = float(np.mean((y >= SIGMA_THRESHOLD_LOG10) == (pred >= SIGMA_THRESHOLD_LOG10)))
    return out


@dataclass
class CVResult:
    cv: str
    table: pd.DataFrame  # one row per (learner, target): metrics
    oof: pd.DataFrame  # out-of-fold predictions, one row per (learner, composition)
    folds: dict[str, list[str]] = field(default_factory=dict)  # fold -> test groups (logged as split ids)
    per_fold: pd.DataFrame | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per learner (all folds)


def cross_validate(frame: pd.DataFrame, learners: Sequence[str], cv: str = "grouped", *, n_splits: int = 5,
                   seed: int = 0, preset: str = "na-chem-2026-11-26", X: np.ndarray | None = None,
                   extra: dict[str, tuple[Callable[[], object], np.ndarray]] | None = None,
                   progress: Reporter | None = None) -> CVResult:
    """Out-of-fold predictions and metrics for each learner on identical splits.

    ``extra`` adds models that are not composition learners: name -> (factory, inputs), where ``factory()``
    returns an object with ``fit(frame, X=inputs[train])`` and ``predict(frame, X=inputs[test])`` (a frame with
    the target columns and their ``_lo``/``_hi`` bounds), e.g. the structure-featurizer model or the GNN; the
    inputs are row-aligned with ``frame`` (a feature matrix, or an object array of graphs). ``progress`` (a
    :class:`training.progress.Reporter`) shows one bar over every (learner, fold).
    """
    extra = dict(extra or {})
    learners = list(learners) + [k for k in extra if k not in learners]
    if X is None and any(name not in extra for name in learners):
        X = NacondModel(preset=preset).features(frame)
    fold_list = list(splits(frame, cv, n_splits=n_splits, seed=seed))
    folds = {name: sorted(frame["group"].iloc[te]) for name, _, te in fold_list}
    oof_parts, per_fold, seconds = [], [], {}
    bar = (progress or silent()).task(f"{cv} CV, {len(learners)} models x {len(fold_list)} folds",
                                      len(learners) * len(fold_list))
    for learner in learners:
        t0 = time.perf_counter()
        cols = {f"{t}{s}": np.full(len(frame), np.nan) for t in TARGETS for s in ("", "_lo", "_hi")}
        fold_of = np.empty(len(frame), dtype=object)
        in_domain = np.full(len(frame), np.nan, dtype=object)
        notes = np.full(len(frame), "", dtype=object)
        for name, tr, te in fold_list:
            if learner in extra:
                factory, inputs = extra[learner]
                model = factory().fit(frame.iloc[tr], X=inputs[tr])
                pred = model.predict(frame.iloc[te], X=inputs[te])
            else:
                model = NacondModel(learner=learner, preset=preset, seed=seed).fit(frame.iloc[tr], X=X[tr])
                # the domain check sees what a user's prediction sees: the family inferred from the formula
                pred, why = model.predict_with_domain(frame.iloc[te], X=X[te])
                in_domain[te] = [not w for w in why]
                notes[te] = ["; ".join(w) for w in why]
            for c in pred.columns:
                cols[c][te] = pred[c].to_numpy()
            fold_of[te] = name
            bar.advance(detail=f"{learner} {name}")
            for t in TARGETS:
                if t in pred:
                    per_fold.append({"learner": learner, "fold": name, "target": t,
                                     **metrics(t, frame[t].to_numpy()[te], pred[t].to_numpy())})
        seconds[learner] = time.perf_counter() - t0
        oof_parts.append(pd.DataFrame({"learner": learner, "group": frame["group"], "family": frame["family"],
                                       "fold": fold_of, **{t: frame[t] for t in TARGETS},
                                       **{f"pred_{k}": v for k, v in cols.items()},
                                       "in_domain": in_domain, "domain_notes": notes}))
    bar.close()
    oof = pd.concat(oof_parts, ignore_index=True)
    rows = []
    for learner in learners:
        sub = oof[oof["learner"] == learner]
        for t in TARGETS:
            rows.append({"learner": learner, "target": t,
                         **metrics(t, sub[t].to_numpy(), sub[f"pred_{t}"].to_numpy(),
                                   sub[f"pred_{t}_lo"].to_numpy(), sub[f"pred_{t}_hi"].to_numpy())})
    return CVResult(cv=cv, table=pd.DataFrame(rows), oof=oof, folds=folds, per_fold=pd.DataFrame(per_fold),
                    seconds=seconds)


def format_table(table: pd.DataFrame) -> str:
    """A markdown table per target, baselines first."""
    order = {"global_median": 0, "family_median": 1}
    lines = []
    for t, sub in table.groupby("target", sort=False):
        sub = sub.assign(_o=sub["learner"].map(lambda x: order.get(x, 2))).sort_values(["_o", "mae"])
        cols = [c for c in ("n", "mae", "rmse", "r2", "spearman", "coverage90", "acc_1e-4") if c in sub]
        lines.append(f"\n{t}\n")
        lines.append("| model | " + " | ".join(cols) + " |")
        lines.append("|---|" + "---|" * len(cols))
        for _, r in sub.iterrows():
            vals = ["-" if pd.isna(r[c]) else f"{int(r[c])}" if c == "n" else f"{r[c]:.3f}" for c in cols]
            lines.append(f"| {r['learner']} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def learning_curve(frame: pd.DataFrame, learners: Sequence[str], *, fractions=(0.2, 0.4, 0.6, 0.8, 1.0),
                   n_splits: int = 5, seed: int = 0, preset: str = "na-chem-2026-11-26",
                   X: np.ndarray | None = None, progress: Reporter | None = None) -> pd.DataFrame:
    """Grouped-CV MAE when each training fold is subsampled to a fraction of its compositions."""
    if X is None:
        X = NacondModel(preset=preset).features(frame)
    rng = np.random.default_rng(seed)
    rows = []
    fold_list = list(splits(frame, "grouped", n_splits=n_splits, seed=seed))
    bar = (progress or silent()).task("learning curve", len(learners) * len(fractions))
    for learner in learners:
        for frac in fractions:
            preds = {t: np.full(len(frame), np.nan) for t in TARGETS}
            n_tr = []
            for _, tr, te in fold_list:
                sub = np.sort(rng.choice(tr, size=max(2, int(round(frac * len(tr)))), replace=False))
                n_tr.append(len(sub))
                model = NacondModel(learner=learner, preset=preset, seed=seed, calibration_folds=0)
                model.fit(frame.iloc[sub], X=X[sub])
                p = model.predict(frame.iloc[te], X=X[te])
                for t in TARGETS:
                    if t in p:
                        preds[t][te] = p[t].to_numpy()
            for t in TARGETS:
                m = metrics(t, frame[t].to_numpy(), preds[t])
                rows.append({"learner": learner, "target": t, "fraction": frac,
                             "n_train": float(np.mean(n_tr)), "mae": m.get("mae", np.nan)})
            bar.advance(detail=f"{learner} {frac:.0%}")
    bar.close()
    return pd.DataFrame(rows)
