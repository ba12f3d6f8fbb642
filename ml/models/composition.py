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
# Intervals scale with (tree spread) ** 0.5: on grouped out-of-fold predictions of log10 sigma (2 fold
# assignments, calibrated on half the folds, scored on the other half) power 0.5 gave 90 % coverage at a median
# width of 4.3 decades, power 1 92 % at 4.9, power 0 (constant width) 86 % at 4.3.
NORMALISE_POWER = 0.5


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


def conformal_quantile(scores: np.ndarray, coverage: float = COVERAGE) -> float:
    """The finite-sample split-conformal quantile: ceil((n + 1) coverage) / n."""
    scores = np.asarray(scores, dtype=float)
    level = min(1.0, np.ceil((len(scores) + 1) * coverage) / len(scores))
    return float(np.quantile(scores, level))


@dataclass
class TargetFit:
    """What one target's model keeps besides the estimator: interval scale and training summary."""

    n_train: int = 0
    q90: float = float("nan")  # conformal quantile of the (normalised) out-of-fold residual
    normalised: bool = False
    spread_floor: float = 0.0
    power: float = 1.0  # the interval scales with spread ** power (models before 2026-12-07: 1)
    y_median: float = float("nan")
    # Mondrian conformal by applicability domain: quantiles of the out-of-fold scores of compositions the
    # calibrated domain rules keep in domain / flag (NaN: not calibrated, q90 for all)
    q90_in: float = float("nan")
    q90_out: float = float("nan")
    n_in: int = 0
    n_out: int = 0


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
        self.oof_predictions: dict[str, np.ndarray] = {}

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
        self.fits, self._estimators, self._oof = {}, {}, {}
        # grouped out-of-fold predictions of the training rows per target (NaN where the target is unknown or
        # no calibration folds ran); not saved: what a stacked model (the residual GNN) trains on
        self.oof_predictions = {t: np.full(len(frame), np.nan) for t in self.targets}
        for t in self.targets:
            if t not in frame:
                continue
            m = frame[t].notna().to_numpy()
            if m.sum() < 2:
                log.warning("target %s has %d rows; not trained", t, int(m.sum()))
                continue
            y = frame[t].to_numpy(dtype=float)[m]
            est, tf = self._fit_target(X[m], y, fams[m], groups[m], t, np.flatnonzero(m))
            self._estimators[t], self.fits[t] = est, tf
        amounts = [parse_formula(f).get_el_amt_dict() for f in frame["formula"]]
        self.meta["elements"] = sorted({e for a in amounts for e in a})
        self.meta["families"] = sorted(set(fams))
        self.meta["domain"] = fit_domain(X, amounts, self.mobile_ion)
        self._calibrate_domain(X, amounts)
        keep = [c for c in ("formula", "group", "family", "log10_sigma_S_cm", "ea_eV", "dois", "references",
                            "entry_ids", "n_rt_rows", "log10_sigma_rt_spread") if c in frame]
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

    def _fit_target(self, X, y, fams, groups, target: str = "", rows: np.ndarray | None = None):
        tf = TargetFit(n_train=len(y), y_median=float(np.median(y)))
        k = min(self.calibration_folds, len(np.unique(groups)))
        if k >= 2:
            from sklearn.model_selection import GroupKFold

            resid, spread, fold = np.empty(len(y)), np.empty(len(y)), np.empty(len(y), dtype=int)
            oof_mu = np.empty(len(y))
            for i, (tr, te) in enumerate(GroupKFold(n_splits=k, shuffle=True, random_state=self.seed)
                                         .split(X, y, groups)):
                mu, sd = self._predict_one(self._fit_one(X[tr], y[tr], fams[tr]), X[te], fams[te])
                resid[te] = np.abs(y[te] - mu)
                oof_mu[te] = mu
                spread[te] = sd if sd is not None else 1.0
                fold[te] = i
            # tree ensembles give a per-composition spread; the others get a constant-width interval
            tf.normalised = self.learner in FORESTS
            if tf.normalised:
                tf.spread_floor = float(np.quantile(spread, 0.05)) + 1e-6
                tf.power = NORMALISE_POWER
                scores = resid / np.maximum(spread, tf.spread_floor) ** tf.power
            else:
                scores = resid
            tf.q90 = conformal_quantile(scores)
            if rows is not None and target in getattr(self, "oof_predictions", {}):
                self.oof_predictions[target][rows] = oof_mu
            if rows is not None:
                self._oof[target] = {"rows": rows, "resid": resid, "scores": scores, "fold": fold,
                                     "spread": spread if tf.normalised else None}
        return self._fit_one(X, y, fams), tf

    def _calibrate_domain(self, X: np.ndarray, amounts: list[dict]) -> None:
        """Domain thresholds from the log10-sigma out-of-fold errors, then Mondrian interval quantiles (in/out
        of domain) for every target (see :mod:`ml.domain`)."""
        from ml.domain import calibrate_rules, flagged_by, oof_domain_features

        oof = getattr(self, "_oof", {})
        if "log10_sigma_S_cm" not in oof:
            return
        feats = {t: oof_domain_features(X, amounts, o["rows"], o["fold"], self.meta["domain"], self.mobile_ion)
                 for t, o in oof.items()}
        f, s = feats["log10_sigma_S_cm"], oof["log10_sigma_S_cm"]
        spread = s["spread"] if s["spread"] is not None else np.zeros(len(s["resid"]))
        rules = calibrate_rules(f["nn_dist"], f["fam_support"], f["always"], spread, s["resid"])
        self.meta["domain"]["rules"] = rules
        for t, o in oof.items():
            g = feats[t]
            # the tree-spread rule is about log10 sigma; other targets' strata use the other rules
            flagged = flagged_by(rules, g["nn_dist"], g["fam_support"], g["always"],
                                 spread if t == "log10_sigma_S_cm" else None)
            tf = self.fits[t]
            tf.n_in, tf.n_out = int((~flagged).sum()), int(flagged.sum())
            if tf.n_in >= 10:
                tf.q90_in = conformal_quantile(o["scores"][~flagged])
            if tf.n_out >= 10:  # never narrower than the pooled interval
                tf.q90_out = max(tf.q90, conformal_quantile(o["scores"][flagged]))
            elif tf.n_out > 0:
                tf.q90_out = max(tf.q90, float(np.max(o["scores"][flagged])))
        self._oof = {}

    # --------------------------------------------------------------------------------------------- predict
    def predict_arrays(self, X: np.ndarray, families: np.ndarray,
                       in_domain: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """``{target, target_lo, target_hi, target_spread, target_scale}`` arrays for precomputed features
        (``spread``: the trees' standard deviation, 1 for unnormalised learners; ``scale``: what the interval is
        normalised by, spread ** power). With ``in_domain`` (the domain
        check's verdict per row) the interval uses the in- or out-of-domain conformal quantile; the domain check
        can also come after (:meth:`set_intervals`), since it looks at the tree spread."""
        out = {}
        for t in self.targets:
            if t not in self._estimators:
                continue
            tf = self.fits[t]
            mu, sd = self._predict_one(self._estimators[t], X, families)
            out[t] = mu
            spread = np.maximum(sd, tf.spread_floor) if tf.normalised and sd is not None else np.ones(len(mu))
            out[f"{t}_spread"] = spread
            out[f"{t}_scale"] = spread ** tf.power
        return self.set_intervals(out, in_domain)

    def set_intervals(self, pred: dict[str, np.ndarray], in_domain: np.ndarray | None = None) -> dict:
        """(Re)compute the 90 % bounds of ``pred`` from its scales: pooled quantile, or in/out-of-domain ones."""
        for t in self.targets:
            if t not in pred:
                continue
            tf = self.fits[t]
            q = np.full(len(pred[t]), tf.q90)
            if in_domain is not None:
                flags = np.asarray(in_domain, dtype=bool)
                if tf.q90_in == tf.q90_in:
                    q[flags] = tf.q90_in
                if tf.q90_out == tf.q90_out:
                    q[~flags] = tf.q90_out
            half = q * pred[f"{t}_scale"]
            pred[f"{t}_lo"], pred[f"{t}_hi"] = pred[t] - half, pred[t] + half
        return pred

    def predict(self, frame, X: np.ndarray | None = None):
        """Predictions per target with 90 % interval bounds: DataFrame columns ``<t>``, ``<t>_lo``, ``<t>_hi``."""
        return self.predict_with_domain(frame, X)[0]

    def predict_with_domain(self, frame, X: np.ndarray | None = None):
        """:meth:`predict` and the domain check's reasons per row (empty = in domain), computed once."""
        import pandas as pd

        X = self.features(frame) if X is None else X
        pred = self.predict_arrays(X, self.families_of(frame))
        notes, _ = self.domain(list(frame["formula"]), X, self.mobile_ion,
                               tree_spread=pred.get("log10_sigma_S_cm_spread"))
        self.set_intervals(pred, np.array([not n for n in notes]))
        return pd.DataFrame({k: v for k, v in pred.items() if not k.endswith(("_scale", "_spread"))},
                            index=frame.index), notes

    def domain(self, formulas: list[str], X: np.ndarray, mobile_ion: str = "Na", amounts: list[dict] | None = None,
               families: list[str] | None = None,
               tree_spread: np.ndarray | None = None) -> tuple[list[list[str]], list]:
        """Out-of-domain reasons per formula and the 3 nearest training compositions (as dicts)."""
        rows = self.meta.get("training_rows", {})
        neigh: list = [[] for _ in formulas]
        idx = dist = None
        if self.meta.get("domain"):
            if self._standardiser is None:
                self._standardiser = Standardiser(self._train_X, self.meta["domain"])
            idx, dist = self._standardiser.nearest(X, k=3)
        if tree_spread is None and "log10_sigma_S_cm" in self._estimators and self.fits["log10_sigma_S_cm"].normalised:
            tree_spread = self._predict_one(self._estimators["log10_sigma_S_cm"], X, None)[1]
        notes = check_domain(formulas, X, self._train_X, self.meta, mobile_ion=mobile_ion, amounts=amounts,
                             families=families, nn_dist=None if dist is None else dist[:, 0],
                             tree_spread=tree_spread)
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
