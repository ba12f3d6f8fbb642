"""Composition models for log10 sigma (25 degC) and Ea, with split-conformal 90 % intervals.

A :class:`NacondModel` holds one regressor per target; a row missing one target still trains the other.
Intervals: the learner's out-of-fold residuals (grouped inner CV on the training data) are scaled by the
ensemble's per-tree spread where the learner has one (normalised conformal), and the finite-sample 90 %
quantile of those scores sets the interval half-width. Baselines (global median, family median) share the
same interface.

Saved as a directory that loads without executing code from it:
``model.json`` (class, format version, init args, feature labels, element set, dataset sha256, metrics,
sha256 of every file), ``featurizer.npz`` (the feature preset's element tables), ``estimators.npz`` (tree
ensembles as node arrays, medians, training features; ``allow_pickle=False``). Only the ``hist_gbm``
learner, which has no array export, is stored with skops and an explicit trusted-type list.
Prediction imports neither scikit-learn nor matminer.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ml.chemistry import infer_family
from ml.domain import Standardiser, check_domain, fit_domain
from ml.errors import ModelLoadError
from ml.featurizers.kernels import FeatureKernel
from ml.formula import parse_formula
from ml.models.forest import ForestArrays
from ml.models.manifest import verify_manifest, write_manifest
from ml.utils import sha256_of

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
TARGETS = ("log10_sigma_S_cm", "ea_eV")
LEARNERS = ("global_median", "family_median", "extra_trees", "random_forest", "hist_gbm")
BASELINES = ("global_median", "family_median")
FORESTS = ("extra_trees", "random_forest")
COVERAGE = 0.90


def _estimator(learner: str, seed: int):
    from sklearn.ensemble import ExtraTreesRegressor, HistGradientBoostingRegressor, RandomForestRegressor

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

    def __init__(self, by_family: bool, global_: float = float("nan"), family_: dict | None = None):
        self.by_family = by_family
        self.global_ = global_
        self.family_: dict[str, float] = dict(family_ or {})

    def fit(self, y: np.ndarray, families: np.ndarray) -> MedianRegressor:
        self.global_ = float(np.median(y))
        if self.by_family:
            self.family_ = {str(f): float(np.median(y[families == f])) for f in np.unique(families)}
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
        calibration_folds: grouped inner folds used to calibrate the intervals (< 2: no intervals).
    """

    learner: str = "extra_trees"
    preset: str = "na-chem-2026-11-26"
    seed: int = 0
    calibration_folds: int = 5
    targets: tuple[str, ...] = TARGETS
    mobile_ion: str = "Na"
    fits: dict[str, TargetFit] = field(default_factory=dict, repr=False)
    meta: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.learner not in LEARNERS:
            raise ValueError(f"unknown learner {self.learner!r}; choose from {LEARNERS}")
        self._kernel: FeatureKernel | None = None
        self._labels: list[str] | None = None
        self._estimators: dict[str, object] = {}
        self._train_X: np.ndarray | None = None
        self._standardiser: Standardiser | None = None

    # -------------------------------------------------------------------------------------------- features
    @property
    def kernel(self) -> FeatureKernel:
        if self._kernel is None:
            from ml.featurizers import CompositionFeaturizer

            f = CompositionFeaturizer(self.preset, mobile_ion=self.mobile_ion)
            self._kernel, self._labels = f.kernel(), f.feature_labels()
        return self._kernel

    @property
    def feature_labels(self) -> list[str]:
        if self._labels is None:
            _ = self.kernel
        return list(self._labels)

    def features_of(self, formulas) -> np.ndarray:
        return self.kernel.transform_compositions([parse_formula(f) for f in formulas])

    def features(self, frame) -> np.ndarray:
        return self.features_of(list(frame["formula"]))

    @staticmethod
    def families_of(frame) -> np.ndarray:
        if "family" in frame and frame["family"].astype(str).str.len().gt(0).all():
            return frame["family"].astype(str).to_numpy()
        return np.array([infer_family(parse_formula(f)) for f in frame["formula"]])

    # ------------------------------------------------------------------------------------------------- fit
    def fit(self, frame, X: np.ndarray | None = None) -> NacondModel:
        """Fit on a per-composition frame with ``formula``, ``family``, ``group`` and target columns (NaN =
        missing). ``X`` may pass precomputed features (same row order)."""
        X = self.features(frame) if X is None else X
        fams = self.families_of(frame)
        groups = frame["group"].to_numpy() if "group" in frame else frame["formula"].to_numpy()
        self._train_X, self._standardiser = X, None
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

    def _fit_one(self, X, y, fams):
        est = self._make()
        if isinstance(est, MedianRegressor):
            return est.fit(y, fams)
        est.fit(X, y)
        return ForestArrays.from_sklearn(est) if self.learner in FORESTS else est

    @staticmethod
    def _predict_one(est, X, fams) -> tuple[np.ndarray, np.ndarray | None]:
        if isinstance(est, MedianRegressor):
            return est.predict(fams), None
        if isinstance(est, ForestArrays):
            return est.predict_mean_std(X)
        return est.predict(X), None

    def _fit_target(self, X, y, fams, groups):
        tf = TargetFit(n_train=len(y), y_median=float(np.median(y)))
        k = min(self.calibration_folds, len(np.unique(groups)))
        if k >= 2:
            from sklearn.model_selection import GroupKFold

            resid, spread = np.empty(len(y)), np.empty(len(y))
            for tr, te in GroupKFold(n_splits=k, shuffle=True, random_state=self.seed).split(X, y, groups):
                mu, sd = self._predict_one(self._fit_one(X[tr], y[tr], fams[tr]), X[te], fams[te])
                resid[te] = np.abs(y[te] - mu)
                spread[te] = sd if sd is not None else 1.0
            # tree ensembles give a per-composition spread; the others get a constant-width interval
            tf.normalised = self.learner in FORESTS
            if tf.normalised:
                tf.spread_floor = float(np.quantile(spread, 0.05)) + 1e-6
                scores = resid / np.maximum(spread, tf.spread_floor)
            else:
                scores = resid
            level = min(1.0, np.ceil((len(scores) + 1) * COVERAGE) / len(scores))  # finite-sample quantile
            tf.q90 = float(np.quantile(scores, level))
        return self._fit_one(X, y, fams), tf

    # --------------------------------------------------------------------------------------------- predict
    def predict_arrays(self, X: np.ndarray, families: np.ndarray) -> dict[str, np.ndarray]:
        """``{target, target_lo, target_hi}`` arrays for precomputed features."""
        out = {}
        for t in self.targets:
            if t not in self._estimators:
                continue
            tf = self.fits[t]
            mu, sd = self._predict_one(self._estimators[t], X, families)
            half = tf.q90 * (np.maximum(sd, tf.spread_floor) if tf.normalised and sd is not None else 1.0)
            out[t], out[f"{t}_lo"], out[f"{t}_hi"] = mu, mu - half, mu + half
        return out

    def predict(self, frame, X: np.ndarray | None = None):
        """Predictions per target with 90 % interval bounds: DataFrame columns ``<t>``, ``<t>_lo``, ``<t>_hi``."""
        import pandas as pd

        X = self.features(frame) if X is None else X
        return pd.DataFrame(self.predict_arrays(X, self.families_of(frame)), index=frame.index)

    def domain(self, formulas: list[str], X: np.ndarray, mobile_ion: str = "Na", amounts: list[dict] | None = None,
               families: list[str] | None = None) -> tuple[list[list[str]], list]:
        """Out-of-domain reasons per formula and the 3 nearest training compositions (as dicts)."""
        rows = self.meta.get("training_rows", {})
        neigh: list = [[] for _ in formulas]
        idx = dist = None
        if self.meta.get("domain"):
            if self._standardiser is None:
                self._standardiser = Standardiser(self._train_X, self.meta["domain"])
            idx, dist = self._standardiser.nearest(X, k=3)
        notes = check_domain(formulas, X, self._train_X, self.meta, mobile_ion=mobile_ion, amounts=amounts,
                             families=families, nn_dist=None if dist is None else dist[:, 0])
        if rows and idx is not None:
            neigh = [[{"formula": rows["formula"][j],
                       "log10_sigma_S_cm": rows.get("log10_sigma_S_cm", [None] * (j + 1))[j],
                       "ea_eV": rows.get("ea_eV", [None] * (j + 1))[j],
                       "doi": (rows.get("dois") or [""] * (j + 1))[j] or None,
                       "distance": float(d)} for j, d in zip(r, dr, strict=True)]
                     for r, dr in zip(idx, dist, strict=True)]
        return notes, neigh

    # ------------------------------------------------------------------------------------------- save/load
    def save(self, directory: str | Path, *, extra: dict | None = None) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        np.savez(d / "featurizer.npz", **self.kernel.to_arrays())
        arrays = {"train_X": self._train_X}
        medians, skops_targets = {}, []
        for t, est in self._estimators.items():
            if isinstance(est, ForestArrays):
                arrays.update(est.to_arrays(f"{t}."))
            elif isinstance(est, MedianRegressor):
                medians[t] = {"by_family": est.by_family, "global": est.global_, "family": est.family_}
            else:
                skops_targets.append(t)
        np.savez(d / "estimators.npz", **arrays)
        files = ["featurizer.npz", "estimators.npz"]
        if skops_targets:
            import skops.io as sio

            sio.dump({t: self._estimators[t] for t in skops_targets}, d / "estimators.skops")
            files.append("estimators.skops")
        info = {
            "format_version": FORMAT_VERSION,
            "class": "ml.models.composition.NacondModel",
            "init_args": {"learner": self.learner, "preset": self.preset, "seed": self.seed,
                          "calibration_folds": self.calibration_folds, "targets": list(self.targets),
                          "mobile_ion": self.mobile_ion},
            "feature_labels": self.feature_labels,
            "fits": {t: asdict(f) for t, f in self.fits.items()},
            "medians": medians,
            "forest_targets": [t for t, e in self._estimators.items() if isinstance(e, ForestArrays)],
            "skops_targets": skops_targets,
            "meta": self.meta,
            "files_sha256": {f: sha256_of(d / f) for f in files},
            **(extra or {}),
        }
        (d / "model.json").write_text(json.dumps(info, indent=2, default=str))
        write_manifest(d)
        return d

    @classmethod
    def load(cls, directory: str | Path) -> NacondModel:
        """Load a model directory after checking every file against its manifest; any failure is
        :class:`ModelLoadError` naming the directory."""
        d = Path(directory)
        verify_manifest(d)
        try:
            return cls._load(d)
        except ModelLoadError:
            raise
        except Exception as exc:  # malformed arrays, missing keys, wrong types: never a raw traceback
            raise ModelLoadError(f"model {str(d)!r} cannot be loaded: {type(exc).__name__}: {exc}") from None

    @classmethod
    def _load(cls, d: Path) -> NacondModel:
        info_path = d / "model.json"
        try:
            info = json.loads(info_path.read_text())
        except json.JSONDecodeError as exc:
            raise ModelLoadError(f"model {str(d)!r}: model.json is not valid JSON ({exc})") from None
        if info.get("format_version") != FORMAT_VERSION:
            raise ModelLoadError(f"model {str(d)!r} has format version {info.get('format_version')}, "
                                 f"this nacond reads {FORMAT_VERSION}")
        for name, digest in info["files_sha256"].items():
            if not (d / name).exists() or sha256_of(d / name) != digest:
                raise ModelLoadError(f"model {str(d)!r}: {name} is missing or does not match its checksum "
                                     "in model.json")
        args = info["init_args"]
        model = cls(learner=args["learner"], preset=args["preset"], seed=args["seed"],
                    calibration_folds=args["calibration_folds"], targets=tuple(args["targets"]),
                    mobile_ion=args.get("mobile_ion", "Na"))
        model.fits = {t: TargetFit(**f) for t, f in info["fits"].items()}
        model.meta = info.get("meta", {})
        model.meta["model_json"] = {k: v for k, v in info.items() if k not in ("feature_labels", "meta")}
        model._labels = info["feature_labels"]
        with np.load(d / "featurizer.npz", allow_pickle=False) as z:
            model._kernel = FeatureKernel.from_arrays(z)
        with np.load(d / "estimators.npz", allow_pickle=False) as z:
            model._train_X = z["train_X"]
            for t in info["forest_targets"]:
                model._estimators[t] = ForestArrays.from_arrays(z, f"{t}.")
        for t, m in info["medians"].items():
            model._estimators[t] = MedianRegressor(m["by_family"], m["global"], m["family"])
        if info["skops_targets"]:
            model._estimators.update(_load_skops(d / "estimators.skops"))
        return model


def _load_skops(path: Path) -> dict:
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=path)
    unexpected = [t for t in untrusted if t not in TRUSTED_TYPES]
    if unexpected:
        raise ModelLoadError(f"{str(path)!r} contains types outside nacond's trusted list: {unexpected}")
    return sio.load(path, trusted=untrusted)


# Types skops may instantiate when loading a hist_gbm model (checked before loading; nothing else is allowed).
TRUSTED_TYPES = (
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn._loss.loss.HalfSquaredError",
    "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.Interval",
    "sklearn._loss._loss.CyHalfSquaredError",
)
