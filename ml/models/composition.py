"""Composition models for log10 sigma (25 degC) and Ea, with split-conformal 90 % intervals.

A :class:`NacondModel` holds one regressor per target; a row missing one target still trains the other.
Intervals: the learner's out-of-fold residuals (grouped inner CV on the training data) are scaled by the
ensemble's per-tree spread where the learner has one (normalised conformal), and the 90 % quantile of those
scores sets the interval half-width. Baselines (global median, family median) share the same interface.

Saved as a directory: ``model.json`` (class, format version, init args, feature preset and labels, element
set, dataset sha256, metrics) and ``estimators.skops`` loaded with an explicit trusted-type list (no pickle).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import ExtraTreesRegressor, HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.model_selection import GroupKFold

from ml.chemistry import infer_family
from ml.data import sha256_of
from ml.domain import check_domain, fit_domain, nearest
from ml.errors import NacondError
from ml.featurizers import CompositionFeaturizer
from ml.formula import parse_formula

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
TARGETS = ("log10_sigma_S_cm", "ea_eV")
LEARNERS = ("global_median", "family_median", "extra_trees", "random_forest", "hist_gbm")
BASELINES = ("global_median", "family_median")
COVERAGE = 0.90


def _estimator(learner: str, seed: int):
    if learner == "extra_trees":
        return ExtraTreesRegressor(n_estimators=200, min_samples_leaf=1, max_features=0.3, n_jobs=-1,
                                   random_state=seed)
    if learner == "random_forest":
        return RandomForestRegressor(n_estimators=200, min_samples_leaf=1, max_features=0.33, n_jobs=-1,
                                     random_state=seed)
    if learner == "hist_gbm":
        return HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05, max_leaf_nodes=15,
                                             min_samples_leaf=5, l2_regularization=1.0, random_state=seed)
    raise ValueError(f"unknown learner {learner!r}; choose from {LEARNERS}")


class MedianRegressor:
    """Global or per-family median (the family of a new formula is inferred from its composition)."""

    def __init__(self, by_family: bool):
        self.by_family = by_family
        self.global_ = float("nan")
        self.family_: dict[str, float] = {}

    def fit(self, y: np.ndarray, families: np.ndarray) -> MedianRegressor:
        self.global_ = float(np.median(y))
        if self.by_family:
            self.family_ = {f: float(np.median(y[families == f])) for f in np.unique(families)}
        return self

    def predict(self, families: np.ndarray) -> np.ndarray:
        if not self.by_family:
            return np.full(len(families), self.global_)
        return np.array([self.family_.get(f, self.global_) for f in families])


@dataclass
class TargetFit:
    """What one target's model keeps besides the estimator: interval scale and training summary."""

    n_train: int = 0
    q90: float = float("nan")  # conformal quantile of the (normalised) out-of-fold residual
    normalised: bool = False
    spread_floor: float = 0.0
    y_median: float = float("nan")


@dataclass
class NacondModel:
    """Multi-target composition model (log10 sigma at 25 degC, Ea), sklearn-like ``fit``/``predict``.

    Args:
        learner: one of :data:`LEARNERS`.
        preset: composition feature preset (see ``ml.featurizers.PRESETS``).
        seed: drives every random choice.
        calibration_folds: grouped inner folds used to calibrate the intervals.
    """

    learner: str = "extra_trees"
    preset: str = "na-chem-2026-11-26"
    seed: int = 0
    calibration_folds: int = 5
    targets: tuple[str, ...] = TARGETS
    fits: dict[str, TargetFit] = field(default_factory=dict, repr=False)
    meta: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.learner not in LEARNERS:
            raise ValueError(f"unknown learner {self.learner!r}; choose from {LEARNERS}")
        self._featurizer = None
        self._estimators: dict[str, object] = {}
        self._train_X: np.ndarray | None = None

    # -------------------------------------------------------------------------------------------- features
    @property
    def featurizer(self) -> CompositionFeaturizer:
        if self._featurizer is None:
            self._featurizer = CompositionFeaturizer(self.preset)
        return self._featurizer

    def features(self, frame: pd.DataFrame) -> np.ndarray:
        return self.featurizer.transform_formulas(list(frame["formula"]))

    @staticmethod
    def families_of(frame: pd.DataFrame) -> np.ndarray:
        if "family" in frame and frame["family"].astype(str).str.len().gt(0).all():
            return frame["family"].astype(str).to_numpy()
        return np.array([infer_family(parse_formula(f)) for f in frame["formula"]])

    # ------------------------------------------------------------------------------------------------- fit
    def fit(self, frame: pd.DataFrame, X: np.ndarray | None = None) -> NacondModel:
        """Fit on a per-composition frame with ``formula``, ``family``, ``group`` and target columns (NaN =
        missing). ``X`` may pass precomputed features (same row order)."""
        X = self.features(frame) if X is None else X
        fams = self.families_of(frame)
        groups = frame["group"].to_numpy() if "group" in frame else frame["formula"].to_numpy()
        self._train_X = X
        self.fits, self._estimators = {}, {}
        for t in self.targets:
            if t not in frame:
                continue
            m = frame[t].notna().to_numpy()
            if m.sum() < 2:
                log.warning("target %s has %d rows; not trained", t, int(m.sum()))
                continue
            y = frame[t].to_numpy(dtype=float)[m]
            est, tf = self._fit_target(X[m], y, fams[m], groups[m])
            self._estimators[t], self.fits[t] = est, tf
        self.meta["elements"] = sorted({e.symbol for f in frame["formula"] for e in parse_formula(f).elements})
        self.meta["families"] = sorted(set(fams))
        self.meta["domain"] = fit_domain(X)
        keep = [c for c in ("formula", "family", "log10_sigma_S_cm", "ea_eV", "dois", "entry_ids") if c in frame]
        self.meta["training_rows"] = frame[keep].astype(object).where(frame[keep].notna(), None).to_dict("list")
        return self

    def _make(self):
        if self.learner in BASELINES:
            return MedianRegressor(by_family=self.learner == "family_median")
        return _estimator(self.learner, self.seed)

    def _fit_one(self, est, X, y, fams):
        if isinstance(est, MedianRegressor):
            return est.fit(y, fams)
        return est.fit(X, y)

    def _predict_one(self, est, X, fams) -> tuple[np.ndarray, np.ndarray | None]:
        if isinstance(est, MedianRegressor):
            return est.predict(fams), None
        mean = est.predict(X)
        if hasattr(est, "estimators_") and not isinstance(est, HistGradientBoostingRegressor):
            per_tree = np.stack([t.predict(X) for t in est.estimators_])
            return mean, per_tree.std(axis=0)
        return mean, None

    def _fit_target(self, X, y, fams, groups):
        tf = TargetFit(n_train=len(y), y_median=float(np.median(y)))
        n_groups = len(np.unique(groups))
        k = min(self.calibration_folds, n_groups)
        if k >= 2:
            resid, spread = np.empty(len(y)), np.empty(len(y))
            cv = GroupKFold(n_splits=k, shuffle=True, random_state=self.seed)
            for tr, te in cv.split(X, y, groups):
                est = self._fit_one(self._make(), X[tr], y[tr], fams[tr])
                mu, sd = self._predict_one(est, X[te], fams[te])
                resid[te] = np.abs(y[te] - mu)
                spread[te] = sd if sd is not None else 1.0
            # tree ensembles give a per-composition spread; the others get a constant-width interval
            tf.normalised = self.learner in ("extra_trees", "random_forest")
            if tf.normalised:
                tf.spread_floor = float(np.quantile(spread, 0.05)) + 1e-6
                scores = resid / np.maximum(spread, tf.spread_floor)
            else:
                scores = resid
            # finite-sample conformal quantile
            level = min(1.0, np.ceil((len(scores) + 1) * COVERAGE) / len(scores))
            tf.q90 = float(np.quantile(scores, level))
        est = self._fit_one(self._make(), X, y, fams)
        return est, tf

    # --------------------------------------------------------------------------------------------- predict
    def predict(self, frame: pd.DataFrame, X: np.ndarray | None = None) -> pd.DataFrame:
        """Predictions per target with 90 % interval bounds: columns ``<t>``, ``<t>_lo``, ``<t>_hi``."""
        X = self.features(frame) if X is None else X
        fams = self.families_of(frame)
        out = {}
        for t in self.targets:
            if t not in self._estimators:
                continue
            tf = self.fits[t]
            mu, sd = self._predict_one(self._estimators[t], X, fams)
            half = tf.q90 * (np.maximum(sd, tf.spread_floor) if tf.normalised and sd is not None else 1.0)
            out[t], out[f"{t}_lo"], out[f"{t}_hi"] = mu, mu - half, mu + half
        return pd.DataFrame(out, index=frame.index)

    def predict_with_domain(self, formulas: list[str], mobile_ion: str = "Na") -> pd.DataFrame:
        """Predictions plus ``in_domain``, ``domain_notes`` and the 3 nearest training compositions."""
        frame = pd.DataFrame({"formula": formulas})
        X = self.features(frame)
        out = self.predict(frame, X=X)
        notes = check_domain(formulas, X, self._train_X, self.meta, mobile_ion=mobile_ion)
        out["in_domain"] = [not n for n in notes]
        out["domain_notes"] = ["; ".join(n) for n in notes]
        rows = self.meta.get("training_rows", {})
        if rows and self.meta.get("domain"):
            idx, _ = nearest(X, self._train_X, self.meta["domain"], k=min(3, len(self._train_X)))
            out["neighbours"] = [
                "; ".join(f"{rows['formula'][j]} (log10 sigma {_fmt(rows['log10_sigma_S_cm'][j])}, "
                          f"doi {(rows.get('dois') or [''] * (j + 1))[j] or '-'})" for j in row)
                for row in idx]
        return out

    # ------------------------------------------------------------------------------------------- save/load
    def save(self, directory: str | Path, *, extra: dict | None = None) -> Path:
        import skops.io as sio

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        est_path = d / "estimators.skops"
        sio.dump({"estimators": self._estimators, "train_X": self._train_X}, est_path)
        info = {
            "format_version": FORMAT_VERSION,
            "class": "ml.models.composition.NacondModel",
            "init_args": {"learner": self.learner, "preset": self.preset, "seed": self.seed,
                          "calibration_folds": self.calibration_folds, "targets": list(self.targets)},
            "feature_labels": self.featurizer.feature_labels(),
            "fits": {t: asdict(f) for t, f in self.fits.items()},
            "meta": self.meta,
            "estimators_sha256": sha256_of(est_path),
            **(extra or {}),
        }
        (d / "model.json").write_text(json.dumps(info, indent=2, default=str))
        return d

    @classmethod
    def load(cls, directory: str | Path) -> NacondModel:
        import skops.io as sio

        d = Path(directory)
        info_path = d / "model.json"
        if not info_path.exists():
            raise ModelLoadError(f"model directory {str(d)!r} has no model.json")
        info = json.loads(info_path.read_text())
        if info.get("format_version") != FORMAT_VERSION:
            raise ModelLoadError(f"model {str(d)!r} has format version {info.get('format_version')}, "
                                 f"this nacond reads {FORMAT_VERSION}")
        est_path = d / "estimators.skops"
        if sha256_of(est_path) != info["estimators_sha256"]:
            raise ModelLoadError(f"model {str(d)!r}: estimators.skops does not match its checksum in model.json")
        untrusted = sio.get_untrusted_types(file=est_path)
        unexpected = [t for t in untrusted if t not in TRUSTED_TYPES]
        if unexpected:
            raise ModelLoadError(f"model {str(d)!r} contains types outside nacond's trusted list: {unexpected}")
        payload = sio.load(est_path, trusted=untrusted)
        args = info["init_args"]
        model = cls(learner=args["learner"], preset=args["preset"], seed=args["seed"],
                    calibration_folds=args["calibration_folds"], targets=tuple(args["targets"]))
        model.fits = {t: TargetFit(**f) for t, f in info["fits"].items()}
        model.meta = info.get("meta", {})
        model.meta["model_json"] = {k: v for k, v in info.items() if k not in ("feature_labels",)}
        model._estimators = payload["estimators"]
        model._train_X = payload["train_X"]
        if model.featurizer.feature_labels() != info["feature_labels"]:
            raise ModelLoadError(f"model {str(d)!r} was trained with other feature labels than preset "
                                 f"{args['preset']!r} gives now")
        return model


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.2f}"


class ModelLoadError(NacondError):
    """A model directory that is missing, corrupted or of another format version."""


# Types skops may instantiate when loading a nacond model (checked before loading; nothing else is allowed).
TRUSTED_TYPES = (
    "ml.models.composition.MedianRegressor",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn._loss.loss.HalfSquaredError",
    "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.Interval",
    "sklearn._loss._loss.CyHalfSquaredError",
    "numpy.dtype",
    "builtins.float",
)
