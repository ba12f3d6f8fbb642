"""Every MLflow call of nacond lives here (ml/ never imports mlflow)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[1]


def resolve_tracking_uri(uri: str | None) -> str:
    """``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else the embedded sqlite store ``./mlflow.db``."""
    if uri:
        return uri
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def start(tracking_uri: str | None, experiment: str):
    import mlflow

    uri = resolve_tracking_uri(tracking_uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment)
    return mlflow, uri


def log_pyfunc(mlflow, model_dir: Path, registered_name: str | None):
    """Log the model directory as a pyfunc (models-from-code) and register it."""
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=str(REPO_ROOT / "serving" / "pyfunc_model.py"),
        artifacts={"model_dir": str(model_dir)},
        code_paths=[str(REPO_ROOT / "ml"), str(REPO_ROOT / "serving")],
        registered_model_name=registered_name,
        pip_requirements=["scikit-learn==1.9.1", "matminer==0.10.1", "pymatgen==2026.10.24", "skops",
                          "pandas", "numpy", "mlflow==3.17.2"],
        input_example=None,
    )
