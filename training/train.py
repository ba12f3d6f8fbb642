"""``nacond train``: one MLflow run around featurize -> grouped CV (model + both baselines) -> fit on all data ->
model directory -> log (params, dataset input, headline metrics, CV table, plots, config, split ids, model with
signature; registered)."""

from __future__ import annotations

import json
import logging
import subprocess
import time
from pathlib import Path

import pandas as pd

from ml.data import load_dataset, sha256_of, validate_dataset
from ml.errors import DatasetError
from ml.models import NacondModel
from ml.models.composition import BASELINES
from ml.models.manifest import check_output_dir, staged_dir
from ml.targets import training_frame
from training import plots
from training.config import TrainConfig
from training.evaluate import cross_validate, format_table, learning_curve
from training.progress import Reporter, silent

log = logging.getLogger(__name__)


def _git_sha() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).resolve().parents[1]).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def check_dataset(cfg: TrainConfig) -> None:
    """Run the dataset validator; stop on errors (those of columns named in ``cfg.warn_only`` are logged)."""
    report = validate_dataset(cfg.data)
    if report.n_rows == 0:
        raise DatasetError(f"dataset {cfg.data!r} has no rows; at least 3 compositions with a measurement are "
                           "needed")
    errors = [f for f in report.errors if f.column not in cfg.warn_only]
    for f in report.errors:
        if f.column in cfg.warn_only:
            log.warning("%s (downgraded by --warn-only)", f)
    if errors:
        shown = "\n  ".join(map(str, errors[:10]))
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise DatasetError(f"dataset {cfg.data!r} fails validation with {len(errors)} error(s) (see `nacond data "
                           f"validate {cfg.data}`):\n  {shown}{more}")


def prepare(cfg: TrainConfig) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    check_dataset(cfg)
    rows = load_dataset(cfg.data, verify_checksum="sha256" not in cfg.warn_only)
    frame = training_frame(rows, mobile_ion=cfg.mobile_ion)
    other = rows[rows["mobile_ion"] != cfg.mobile_ion]
    info = {"rows": len(rows), "rows_other_mobile_ion": int(len(other)),
            "compositions": len(frame), "n_sigma_rt": int(frame["log10_sigma_S_cm"].notna().sum()),
            "n_ea": int(frame["ea_eV"].notna().sum())}
    if len(other):
        log.warning("%d rows with another mobile ion (%s) are set aside for this %s model", len(other),
                    ", ".join(sorted(set(other["mobile_ion"]))), cfg.mobile_ion)
    if len(frame) < 3:
        raise DatasetError(f"dataset {cfg.data!r} yields {len(frame)} usable compositions for mobile ion "
                           f"{cfg.mobile_ion!r}; at least 3 are needed")
    for target, label in (("log10_sigma_S_cm", "a 20-30 degC conductivity"), ("ea_eV", "an activation energy")):
        n = int(frame[target].notna().sum())
        if 0 < n < 3:
            raise DatasetError(f"dataset {cfg.data!r} has {n} compositions with {label} for {cfg.mobile_ion!r}; "
                               "at least 3 are needed (or none, and that target is left out)")
    if frame["log10_sigma_S_cm"].notna().sum() == 0:
        raise DatasetError(f"dataset {cfg.data!r} has no composition with a 20-30 degC conductivity for "
                           f"{cfg.mobile_ion!r}; the room-temperature model needs at least 3")
    return rows, frame, info


def train(cfg: TrainConfig, *, log_to_mlflow: bool = True, progress: Reporter | None = None) -> dict:
    """Featurize -> CV (model + both baselines) -> fit on all data -> model directory, all inside one MLflow run
    (opened first, so its duration is the work's) when ``log_to_mlflow``. ``progress`` shows steps and bars."""
    from training import tracking

    rep = progress or silent()
    t0 = time.perf_counter()
    results: dict = {"config": cfg.to_dict()}
    if log_to_mlflow:
        rep.step(f"MLflow: opening a run in experiment {cfg.experiment!r} "
                 f"({tracking.resolve_tracking_uri(cfg.tracking_uri)})")
    with tracking.run(cfg.tracking_uri, cfg.experiment, f"{cfg.model}-{cfg.cv}", enabled=log_to_mlflow) as run:
        rep.step(f"reading {cfg.data}")
        rows, frame, info = prepare(cfg)
        results["data"] = info
        csv_path = Path(cfg.data) / "data.csv" if Path(cfg.data).is_dir() else Path(cfg.data)
        dataset_sha = sha256_of(csv_path)
        if run is not None:
            run.mlflow.log_params({k: v for k, v in cfg.to_dict().items() if v is not None})
            run.mlflow.log_params({f"data_{k}": v for k, v in info.items()})
            run.log_dataset(rows, csv_path, dataset_sha, name=_dataset_name(cfg.data))
            results["mlflow"] = run.info()
        final = Path(cfg.out)
        check_output_dir(final, cfg.force)  # before the work, not after it
        rep.step(f"featurizing {info['compositions']} compositions ({info['rows']} rows, preset {cfg.preset})")
        model = NacondModel(learner=cfg.model, preset=cfg.preset, seed=cfg.seed, mobile_ion=cfg.mobile_ion)
        X = model.features(frame)
        with staged_dir(final, cfg.force) as out:  # renamed into place only when everything is written
            _train_into(cfg, rows, frame, info, model, X, out, rep, run, dataset_sha, results)
        results["plots"] = [str(p) for p in sorted(final.glob("*.png"))]
        if run is not None:
            rep.step("MLflow: logging metrics, artifacts and the pyfunc model (registering it)")
            results["mlflow"] = _log(run, cfg, results, final)
    results["train_seconds"] = round(time.perf_counter() - t0, 2)
    return results


def _train_into(cfg: TrainConfig, rows, frame, info, model, X, out: Path, rep: Reporter, run, dataset_sha: str,
                results: dict) -> None:
    """Everything a model directory holds, written into ``out`` (a staging folder renamed into place)."""
    from training import tracking

    cv_result = None
    if cfg.cv != "none":
        learners = list(dict.fromkeys([*BASELINES, cfg.model]))
        cv_result = cross_validate(frame, learners, cfg.cv, n_splits=cfg.n_splits, seed=cfg.seed,
                                   preset=cfg.preset, X=X, progress=rep)
        table = cv_result.table
        results["cv"] = table.to_dict("records")
        results["cv_table_md"] = format_table(table)
        results["headline"] = tracking.headline_metrics(table, cfg.model)
        _write_csv(table, out / f"cv_{cfg.cv}_metrics.csv")
        _write_csv(cv_result.oof, out / f"cv_{cfg.cv}_oof.csv")
        (out / f"cv_{cfg.cv}_splits.json").write_text(json.dumps(cv_result.folds, indent=1))
        plots.parity(cv_result.oof, cfg.model, out / f"parity_{cfg.cv}.png",
                     title=f"{cfg.model}, {cfg.cv} CV (out-of-fold)")
        if cfg.learning_curve and cfg.cv == "grouped":
            curve = learning_curve(frame, list(dict.fromkeys(["family_median", cfg.model])),
                                   n_splits=cfg.n_splits, seed=cfg.seed, preset=cfg.preset, X=X, progress=rep)
            _write_csv(curve, out / "learning_curve.csv")
            plots.learning_curve(curve, out / "learning_curve.png")
        if run is not None:
            run.log_metrics(results["headline"])
    rep.step(f"fitting {cfg.model} on all {info['compositions']} compositions")
    t_fit = time.perf_counter()
    model.fit(frame, X=X)
    results["fit_seconds"] = round(time.perf_counter() - t_fit, 2)
    extra = {"dataset_sha256": dataset_sha, "git_sha": _git_sha(), "data_info": info,
             "metrics": {r["learner"] + "/" + r["target"]: {k: v for k, v in r.items()
                                                          if k not in ("learner", "target")}
                         for r in results.get("cv", [])}, "cv": cfg.cv}
    model.save(out, extra=extra)
    t_arr = time.perf_counter()
    from ml.models.arrhenius import ArrheniusModel

    if info["n_ea"] >= 3:
        rep.step("fitting the sigma(T) (Arrhenius) model on every temperature")
        ArrheniusModel(learner=model.learner if model.learner in ("extra_trees", "random_forest")
                       else "extra_trees", preset=cfg.preset, seed=cfg.seed, mobile_ion=cfg.mobile_ion).fit(
            rows[rows["mobile_ion"].eq(cfg.mobile_ion)]).save(out / "arrhenius")
        results["arrhenius_fit_seconds"] = round(time.perf_counter() - t_arr, 2)
    else:
        results["arrhenius"] = "not trained: fewer than 3 compositions with an activation energy"
        log.warning("no sigma(T) model: the data hold %d compositions with an activation energy (3 needed); "
                    "predictions at other temperatures are unavailable and Ea is not predicted", info["n_ea"])
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    (out / "README.md").write_text(_readme(cfg, info, results))


def _dataset_name(data: str) -> str:
    p = Path(data)
    return p.name if p.is_dir() else p.parent.name + "/" + p.stem


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    """A CSV whose numbers are rounded to their meaning (ml.utils.round_column)."""
    from ml.utils import round_column

    df = df.copy()
    for c in df.columns:
        if pd.api.types.is_float_dtype(df[c]):
            df[c] = df[c].map(lambda v, c=c: round_column(c, v))
    df.to_csv(path, index=False)


def _readme(cfg: TrainConfig, info: dict, results: dict) -> str:
    return (f"# nacond model: {cfg.model}\n\nTrained by `nacond train --data {cfg.data} --model {cfg.model} "
            f"--cv {cfg.cv} --out {cfg.out}`.\n\nData: {info}\n\nTargets: log10 sigma at 25 C (S/cm), Ea (eV); "
            f"90 % split-conformal intervals.\n\n## Cross-validation ({cfg.cv})\n"
            f"{results.get('cv_table_md', 'not run (--cv none)')}\n")


def _log(run, cfg: TrainConfig, results: dict, out: Path) -> dict:
    """Artifacts and the registered pyfunc into the open run; returns where they are."""
    from training import tracking

    mlflow = run.mlflow
    mlflow.log_metrics({"fit_seconds": results["fit_seconds"]})
    mlflow.log_dict(cfg.to_dict(), "config.json")
    for p in sorted(out.glob("*.png")) + sorted(out.glob("cv_*")) + sorted(out.glob("learning_curve.csv")):
        mlflow.log_artifact(str(p), artifact_path="evaluation")
    name = cfg.register_as or f"nacond-{cfg.model}"
    info_model = tracking.log_pyfunc(mlflow, out, name)
    return {**run.info(), "registered_model": name, "model_uri": info_model.model_uri,
            "registered_version": getattr(info_model, "registered_model_version", None)}
