"""Every MLflow call of nacond lives here (ml/ never imports mlflow)."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ml.utils import round_sig

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[1]
# MLflow 3's UI opens an experiment without this tag in its GenAI (traces) view; with it, in the model-training
# view (runs table with metric columns, run pages with metrics and artifacts).
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
INPUT_EXAMPLE = ["Na3Zr2Si2PO12", "Na3PS4"]


def resolve_tracking_uri(uri: str | None) -> str:
    """``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else the embedded sqlite store ``./mlflow.db``."""
    if uri:
        return uri
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def start(tracking_uri: str | None, experiment: str):
    # MLflow's own chatter (table creation, artifact download bars) would bury nacond's progress lines
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    uri = resolve_tracking_uri(tracking_uri)
    mlflow.set_tracking_uri(uri)
    exp = mlflow.set_experiment(experiment)
    for k, v in EXPERIMENT_KIND.items():
        if (exp.tags or {}).get(k) != v:
            mlflow.MlflowClient().set_experiment_tag(exp.experiment_id, k, v)
    return mlflow, uri


@dataclass
class TrackedRun:
    """An open MLflow run and what the summary needs to point at it."""

    mlflow: Any
    uri: str
    run_id: str
    experiment: str
    experiment_id: str

    def info(self) -> dict:
        return {"tracking_uri": self.uri, "run_id": self.run_id, "experiment": self.experiment,
                "experiment_id": self.experiment_id}

    def log_metrics(self, metrics: dict[str, float]) -> None:
        """Metrics rounded to 4 significant digits (more digits are noise for a CV estimate)."""
        clean = {k: round_sig(float(v), 4) for k, v in metrics.items() if v is not None and pd.notna(v)}
        self.mlflow.log_metrics(clean)

    def log_dataset(self, rows: pd.DataFrame, source: Path, digest: str, name: str) -> None:
        """The training data as an MLflow dataset input (name, digest, source) of context "training"."""
        with warnings.catch_warnings():  # "source can be interpreted in multiple ways": it is a local file
            warnings.simplefilter("ignore", UserWarning)
            ds = self.mlflow.data.from_pandas(rows, source=str(source), name=name, digest=digest[:16])
        self.mlflow.log_input(ds, context="training")


@contextmanager
def run(tracking_uri: str | None, experiment: str, run_name: str, enabled: bool = True) -> Iterator[
        TrackedRun | None]:
    """An MLflow run around the whole training (featurize -> CV -> fit -> log), so its duration is the work's;
    ``enabled=False`` yields None and touches no store."""
    if not enabled:
        yield None
        return
    mlflow, uri = start(tracking_uri, experiment)
    with mlflow.start_run(run_name=run_name) as r:
        yield TrackedRun(mlflow, uri, r.info.run_id, experiment, r.info.experiment_id)


def headline_metrics(table: pd.DataFrame, learner: str) -> dict[str, float]:
    """A few short-named metrics of the CV table: the model's and both baselines' MAE (the full table is an
    artifact). ``cv_mae_log10_sigma``, ``cv_mae_ea_eV``, ``cv_spearman_log10_sigma``, ``cv_r2_log10_sigma``,
    ``cv_coverage90_log10_sigma``, ``cv_coverage90_ea_eV``, ``baseline_mae_log10_sigma`` (global median),
    ``baseline_family_mae_log10_sigma`` (family median), and the same for Ea."""
    short = {"log10_sigma_S_cm": "log10_sigma", "ea_eV": "ea_eV"}
    out: dict[str, float] = {}
    for r in table.to_dict("records"):
        t = short.get(r["target"])
        if t is None:
            continue
        if r["learner"] == learner:
            for k in ("mae", "spearman", "r2", "coverage90"):
                if k in r:
                    out[f"cv_{k}_{t}"] = r[k]
        elif r["learner"] == "global_median":
            out[f"baseline_mae_{t}"] = r.get("mae")
        elif r["learner"] == "family_median":
            out[f"baseline_family_mae_{t}"] = r.get("mae")
    return {k: v for k, v in out.items() if v is not None and pd.notna(v)}


def log_pyfunc(mlflow, model_dir: Path, registered_name: str | None):
    """Log the model directory as a pyfunc (models-from-code) with its signature and an input example, and
    register it."""
    from mlflow.models import infer_signature
    from mlflow.types.schema import ColSpec, Schema

    from serving.predictor import Predictor

    example = pd.DataFrame({"formula": INPUT_EXAMPLE})
    output = pd.DataFrame([r.to_row() for r in Predictor.load(model_dir).predict_many(INPUT_EXAMPLE)])
    signature = infer_signature(example, output)
    signature.inputs = Schema([ColSpec("string", "formula"),
                               ColSpec("string", "temperature", required=False)])
    with warnings.catch_warnings():  # "add type hints to predict": the signature is given explicitly
        warnings.simplefilter("ignore", UserWarning)
        return _log_model(mlflow, model_dir, registered_name, signature, example)


def _log_model(mlflow, model_dir, registered_name, signature, example):
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=str(REPO_ROOT / "serving" / "pyfunc_model.py"),
        artifacts={"model_dir": str(model_dir)},
        code_paths=[str(REPO_ROOT / "ml"), str(REPO_ROOT / "serving")],
        registered_model_name=registered_name,
        pip_requirements=["scikit-learn==1.9.1", "matminer==0.10.1", "pymatgen==2026.10.24", "skops",
                          "pandas", "numpy", "mlflow==3.17.2"],
        signature=signature,
        input_example=example,
    )
