"""``Predictor``: validate -> featurize -> predict -> post-process, for formulas, pymatgen compositions,
structures and CIF files."""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ml.chemistry import infer_family
from ml.errors import NacondError
from ml.formula import normalised_formula, parse_formula
from ml.models.composition import ModelLoadError, NacondModel
from ml.structures.cif import check_size, read_cif

log = logging.getLogger(__name__)

ROOM_TEMPERATURE_K = 298.15
OnError = Literal["raise", "warn", "skip"]


def default_model_dir() -> Path:
    """``NACOND_MODEL``, else the repository's ``models/default``, else the copy installed with the package."""
    env = os.environ.get("NACOND_MODEL")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parents[1] / "models" / "default"
    if here.exists():
        return here
    return Path(sys.prefix) / "share" / "nacond" / "models" / "default"


@dataclass(frozen=True)
class Neighbour:
    formula: str
    log10_sigma_S_cm: float | None
    ea_eV: float | None
    doi: str | None
    distance: float


@dataclass(frozen=True)
class PredictionResult:
    """One prediction at ``temperature_K`` (25 degC unless asked). Intervals are 90 % (split-conformal)."""

    input: str
    formula: str
    log10_sigma_S_cm: float
    sigma_S_cm: float
    log10_sigma_interval: tuple[float, float]
    ea_eV: float
    ea_interval_eV: tuple[float, float]
    in_domain: bool
    domain_notes: tuple[str, ...]
    neighbours: tuple[Neighbour, ...]
    model_version: str
    family: str
    temperature_K: float = ROOM_TEMPERATURE_K
    # measured values of this composition (reduced formula) in the training data; the prediction stays the model's
    measured_log10_sigma_S_cm: float | None = None  # median of the 20-30 degC rows
    n_measurements: int = 0  # 20-30 degC rows behind that median
    measured_spread_decades: float | None = None  # max - min of those rows
    measured_sources: tuple[str, ...] = ()  # DOIs / references of the composition's rows
    model_used: str = "composition"  # which model answered: "composition" or "gnn" (serving.structure_predictor)
    structure_source: str = ""  # "cif", "structure" or "prototype:<key>" when a structure was used, else ""
    structure_confidence: float | None = None  # probability that an inferred parent is right (None: not inferred)
    ok: bool = field(default=True, repr=False)

    def to_row(self) -> dict[str, Any]:
        """One flat CSV/table row (see :func:`flat_row`)."""
        return flat_row(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("ok")
        d["log10_sigma_interval"] = list(self.log10_sigma_interval)
        d["ea_interval_eV"] = list(self.ea_interval_eV)
        d["domain_notes"] = list(self.domain_notes)
        d["measured_sources"] = list(self.measured_sources)
        return d


@dataclass(frozen=True)
class PredictionFailure:
    """A batch item that could not be predicted (``on_error`` = "warn" or "skip")."""

    input: str
    error: str
    ok: bool = field(default=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.input, "error": self.error}

    def to_row(self) -> dict[str, Any]:
        return flat_row(self.to_dict())


def flat_row(d: dict[str, Any]) -> dict[str, Any]:
    """A prediction (``to_dict`` form, e.g. as returned by Ray workers) as one flat row with the columns of
    ``nacond predict --output``; a failure becomes ``{"error": ...}``. The CLI, the screening table and the
    MLflow pyfunc all write rows through this one function."""
    if "error" in d:
        return {"error": d["error"]}
    return {
        "formula": d["formula"], "temperature_K": d["temperature_K"],
        "log10_sigma_S_cm": d["log10_sigma_S_cm"], "sigma_S_cm": d["sigma_S_cm"],
        "log10_sigma_lo": d["log10_sigma_interval"][0], "log10_sigma_hi": d["log10_sigma_interval"][1],
        "ea_eV": d["ea_eV"], "ea_lo_eV": d["ea_interval_eV"][0], "ea_hi_eV": d["ea_interval_eV"][1],
        "in_domain": d["in_domain"], "domain_notes": "; ".join(d["domain_notes"]),
        "neighbours": "; ".join(f"{n['formula']} ({n['doi'] or '-'})" for n in d["neighbours"]),
        "measured_log10_sigma_S_cm": d.get("measured_log10_sigma_S_cm"),
        "n_measurements": d.get("n_measurements", 0),
        "measured_spread_decades": d.get("measured_spread_decades"),
        "measured_sources": "; ".join(d.get("measured_sources") or []),
        "model_used": d.get("model_used", "composition"), "structure_source": d.get("structure_source", ""),
        "structure_confidence": d.get("structure_confidence"),
        "error": "",
    }


def _describe(x: Any) -> str:
    s = str(x) if not hasattr(x, "composition") else f"{type(x).__name__}({x.composition.reduced_formula})"
    return s if len(s) <= 80 else s[:80] + "..."


def to_formula(x: Any, allow_paths: bool = True) -> str:
    """Validate any supported input and return a normalised formula string (see :func:`resolve_input`)."""
    return resolve_input(x, allow_paths)[0]


def resolve_input(x: Any, allow_paths: bool = True) -> tuple[str, list[str]]:
    """Validate any supported input and return a normalised formula string (errors name the input).

    Accepts a formula string, a CIF path (``str`` ending in ``.cif`` or ``pathlib.Path``; only with
    ``allow_paths``, which a server turns off), a pymatgen ``Composition`` or a ``Structure``/``IStructure``
    (partial occupancies allowed).
    """
    from pymatgen.core import Composition

    if isinstance(x, Path) or (isinstance(x, str) and x.strip().lower().endswith(".cif")):
        if not allow_paths:
            raise NacondError(f"{_describe(x)!r} looks like a file path; this service reads formulas only "
                              "(post CIF content in 'cif' instead)")
        x = read_cif(Path(x))
    notes: list[str] = []
    if hasattr(x, "sites") and hasattr(x, "composition"):
        structure = check_size(x, f"structure {_describe(x)}")
        x = structure.composition
        stated = getattr(structure, "properties", {}).get("cif_formula_sum")
        if stated:
            from ml.structures.cif import formula_disagreement

            why = formula_disagreement(structure, stated)
            if why:
                label = structure.properties.get("cif_label", "the CIF")
                notes.append(f"{label}: {why}; predicted for the stated formula")
                log.warning("%s: %s; predicting for the stated formula", label, why)
                return normalised_formula(stated.replace(" ", "")), notes
    if isinstance(x, Composition):
        text = x.formula.replace(" ", "")
        if any(amt < 0 for amt in x.values()):
            raise NacondError(f"composition {text!r} has a negative amount")
        parse_formula(text)  # rejects dummy species and empty compositions, naming the input
        return text, notes
    if isinstance(x, str):
        return normalised_formula(x), notes
    raise NacondError(f"cannot predict for {_describe(x)!r} of type {type(x).__name__}: give a formula string, "
                      "a CIF path, or a pymatgen Composition/Structure")


def _fraction_key(amounts: dict) -> tuple:
    """Equal for two compositions with the same reduced formula (atomic fractions to 1e-6)."""
    total = sum(amounts.values())
    return tuple(sorted((el, round(a / total, 6)) for el, a in amounts.items()))


def _none_if_nan(v) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


class Predictor:
    """A loaded model; construct with :meth:`load`. Thread-safe for prediction."""

    def __init__(self, model: NacondModel, source: str, arrhenius=None, model_dir: Path | None = None):
        self.model = model
        self.model_dir = model_dir  # the local folder the model was read from (an MLflow URI: its download)
        self.arrhenius = arrhenius  # sigma(T) model (ml.models.arrhenius.ArrheniusModel) or None
        self.source = source
        info = model.meta.get("model_json", {})
        digest = "".join(v[:6] for v in sorted(info.get("files_sha256", {}).values()))[:12]
        self.model_version = f"{model.learner}@{digest or 'unsaved'}"
        self.mobile_ion = model.mobile_ion
        self._measured_index: dict[str, int] | None = None

    def _measured(self, amounts: dict) -> dict[str, Any]:
        """What the training data hold for this composition (same reduced formula, i.e. the same atomic
        fractions), or nothing."""
        if self._measured_index is None:
            rows = self.model.meta.get("training_rows", {})
            self._measured_index = {_fraction_key(parse_formula(f).get_el_amt_dict()): i
                                    for i, f in enumerate(rows.get("formula", []))}
        i = self._measured_index.get(_fraction_key(amounts))
        if i is None:
            return {}
        rows = self.model.meta["training_rows"]
        n = int((rows.get("n_rt_rows") or [0] * (i + 1))[i] or 0)
        srcs = [s for key in ("dois", "references") for s in ((rows.get(key) or [""] * (i + 1))[i] or "").split(";")
                if s]
        return {"measured_log10_sigma_S_cm": _none_if_nan(rows["log10_sigma_S_cm"][i]) if n else None,
                "n_measurements": n,
                "measured_spread_decades": _none_if_nan((rows.get("log10_sigma_rt_spread") or [None] * (i + 1))[i])
                if n else None,
                "measured_sources": tuple(srcs)}

    @classmethod
    def load(cls, source: str | Path | None = None, *, tracking_uri: str | None = None) -> Predictor:
        """Load from a model directory, an MLflow URI (``models:/name/version``, ``runs:/...``) or, with
        ``source=None``, the bundled default model. An MLflow URI is resolved in ``tracking_uri``, else the
        store set by ``MLFLOW_TRACKING_URI`` / ``mlflow.set_tracking_uri``, else an existing ``./mlflow.db``
        (the ``nacond train`` default); no store is ever created."""
        if source is None:
            d, label = default_model_dir(), "default"
        elif str(source).startswith(("models:/", "runs:/")):
            d, label = _download_mlflow_model(str(source), tracking_uri), str(source)
        else:
            d, label = Path(source), str(source)
        model = NacondModel.load(d)
        arrhenius = None
        if (Path(d) / "arrhenius").is_dir():
            from ml.models.arrhenius import ArrheniusModel

            arrhenius = ArrheniusModel.load(Path(d) / "arrhenius")
        return cls(model, label, arrhenius, model_dir=Path(d))

    def info(self) -> dict[str, Any]:
        j = self.model.meta.get("model_json", {})
        return {"model_version": self.model_version, "source": self.source, "learner": self.model.learner,
                "preset": self.model.preset, "targets": list(self.model.targets),
                "n_train": {t: f.n_train for t, f in self.model.fits.items()},
                "dataset_sha256": j.get("dataset_sha256"), "cv": j.get("cv"), "metrics": j.get("metrics", {}),
                "temperature_K": ROOM_TEMPERATURE_K, "elements": self.model.meta.get("elements", []),
                "families": self.model.meta.get("families", [])}

    def predict(self, x: Any, temperature_K: float | str | None = None) -> PredictionResult:
        """Predict one input; raises a ``ValueError`` subclass naming the input when it is not usable.
        ``temperature_K`` (a number in K, or "60C"/"333K"): sigma at that temperature on the Arrhenius curve
        anchored at the 25 degC prediction (same number at 25 degC; its slope is the reported Ea); default 25 degC."""
        return self.predict_many([x], on_error="raise", temperature_K=temperature_K)[0]

    def predict_many(self, xs: Iterable[Any], on_error: OnError = "raise",
                     temperature_K: float | str | None = None,
                     allow_paths: bool = True) -> list[PredictionResult | PredictionFailure]:
        """Vectorised prediction. ``on_error``: "raise" (first bad item raises, naming it and its index),
        "warn" (log a warning, return a :class:`PredictionFailure` in its place) or "skip" (failure returned
        silently)."""
        if on_error not in ("raise", "warn", "skip"):
            raise ValueError(f"on_error must be 'raise', 'warn' or 'skip', not {on_error!r}")
        t_k = None
        if temperature_K is not None:
            from ml.temperature import parse_temperature

            t_k = parse_temperature(temperature_K)
            if self.arrhenius is None:
                raise ModelLoadError(f"model {self.source!r} has no temperature (Arrhenius) part; retrain it with "
                                     "`nacond train` to predict at other temperatures")
        # one formula string, path or composition is one item, not a sequence of characters
        xs = [xs] if isinstance(xs, str | Path) or hasattr(xs, "composition") or hasattr(xs, "get_el_amt_dict") \
            else list(xs)
        formulas: list[str | None] = []
        input_notes: dict[int, list[str]] = {}
        failures: dict[int, PredictionFailure] = {}
        for i, x in enumerate(xs):
            try:
                f, why = resolve_input(x, allow_paths=allow_paths)
                formulas.append(f)
                if why:
                    input_notes[i] = why
            except NacondError as exc:
                if on_error == "raise":
                    if len(xs) > 1:
                        raise type(exc)(f"item {i}: {exc}") from None
                    raise
                if on_error == "warn":
                    log.warning("item %d (%s): %s", i, _describe(x), exc)
                failures[i] = PredictionFailure(_describe(x), str(exc))
                formulas.append(None)
        good = [i for i, f in enumerate(formulas) if f is not None]
        out: list[PredictionResult | PredictionFailure] = [failures.get(i) for i in range(len(xs))]
        if not good:
            return out
        fs = [formulas[i] for i in good]
        amounts = [parse_formula(f).get_el_amt_dict() for f in fs]
        fams = np.array([infer_family(a) for a in amounts])
        X = self.model.kernel.transform_compositions(amounts, families=fams)
        pred = self.model.predict_arrays(X, fams)
        notes, neigh = self.model.domain(fs, X, self.mobile_ion, amounts=amounts, families=list(fams),
                                         tree_spread=pred.get("log10_sigma_S_cm_spread"))
        notes = [input_notes.get(i, []) + n for i, n in zip(good, notes, strict=True)]
        self.model.set_intervals(pred, np.array([not n for n in notes]))
        if t_k is not None:
            if "ea_eV" not in pred:
                raise ModelLoadError(f"model {self.source!r} has no activation-energy model, so no sigma(T)")
            pred = self.arrhenius.at(pred, t_k)
            groups = [parse_formula(f).reduced_formula for f in fs]
            notes = [n + extra for n, extra in zip(notes, self.arrhenius.notes(groups, fams, t_k), strict=True)]
        s_key, e_key = "log10_sigma_S_cm", "ea_eV"
        if e_key not in pred:  # a model trained on data without activation energies
            nan = np.full(len(good), np.nan)
            pred.update({e_key: nan, f"{e_key}_lo": nan, f"{e_key}_hi": nan})
        for k, i in enumerate(good):
            ls = float(pred[s_key][k])
            out[i] = PredictionResult(
                input=_describe(xs[i]), formula=fs[k], log10_sigma_S_cm=ls, sigma_S_cm=10.0**ls,
                log10_sigma_interval=(float(pred[f"{s_key}_lo"][k]), float(pred[f"{s_key}_hi"][k])),
                ea_eV=float(pred[e_key][k]),
                ea_interval_eV=(float(np.fmax(0.0, pred[f"{e_key}_lo"][k])), float(pred[f"{e_key}_hi"][k])),
                in_domain=not notes[k], domain_notes=tuple(notes[k]),
                neighbours=tuple(Neighbour(n["formula"], _none_if_nan(n["log10_sigma_S_cm"]),
                                           _none_if_nan(n["ea_eV"]), n["doi"], n["distance"]) for n in neigh[k]),
                model_version=self.model_version, family=str(fams[k]),
                temperature_K=ROOM_TEMPERATURE_K if t_k is None else t_k, **self._measured(amounts[k]))
        return out


def _store_uri(tracking_uri: str | None) -> str:
    """The tracking store an MLflow model URI is read from, without creating one: MLflow's own default would
    create an empty ``./mlflow.db`` in whatever folder the caller runs in."""
    from mlflow.tracking._tracking_service.utils import get_tracking_uri, is_tracking_uri_set

    if tracking_uri:
        uri = tracking_uri
    elif is_tracking_uri_set():  # MLFLOW_TRACKING_URI or mlflow.set_tracking_uri(...)
        uri = get_tracking_uri()
    elif Path("mlflow.db").is_file():
        uri = f"sqlite:///{Path('mlflow.db').resolve()}"
    else:
        raise ModelLoadError("no MLflow tracking store to read the model from: pass tracking_uri=..., set "
                             "MLFLOW_TRACKING_URI, or run in the folder holding mlflow.db")
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise ModelLoadError(f"MLflow tracking store {uri!r} does not exist")
    return uri


def _download_mlflow_model(uri: str, tracking_uri: str | None = None) -> Path:
    """Fetch a registered nacond pyfunc and return its embedded model directory."""
    import mlflow

    store = _store_uri(tracking_uri)
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, tracking_uri=store, registry_uri=store))
    except Exception as exc:
        raise ModelLoadError(f"MLflow model {uri!r} cannot be fetched from {store}: {exc}") from None
    hits = sorted(p.parent for p in local.rglob("model.json"))
    if not hits:
        raise ModelLoadError(f"MLflow model {uri!r} holds no nacond model directory")
    return hits[0]


@lru_cache(maxsize=1)
def _default() -> Predictor:
    return Predictor.load()


def predict(x: Any) -> PredictionResult:
    """Predict with the bundled default model (loaded once)."""
    return _default().predict(x)


def predict_many(xs: Sequence[Any], on_error: OnError = "raise"):
    return _default().predict_many(xs, on_error=on_error)
