"""``nacond train --model gnn``: entries -> parent structures -> graphs -> grouped CV (GNN beside the
composition model and both baselines, on the same structured compositions) -> GNN ensemble on all of them ->
model directory -> MLflow run.

Compositions without a prototype fall back to the composition models; the report counts them per structure type.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from ml.models import NacondModel
from ml.models.composition import BASELINES
from training.config import TrainConfig

log = logging.getLogger(__name__)


def structured_frame(frame: pd.DataFrame, *, infer_unknown: bool = True):
    """The compositions that map onto a prototype, their structures, and a report of the others.

    ``infer_unknown``: a composition whose dataset ``structure_type`` is 'unknown' gets the parent inferred from
    the labelled compositions of the same frame (:mod:`ml.structures.infer`) when one fits with confidence
    >= 0.5; the report lists each such inference."""
    from ml.structures.infer import InferenceError, ParentIndex
    from ml.structures.mapping import map_entries

    mapped, reasons = map_entries(frame["formula"].tolist(), frame["structure_type"].tolist())
    inferred = []
    if infer_unknown and frame["structure_type"].eq("unknown").any():
        try:
            index = ParentIndex.from_frame(frame)
        except InferenceError as exc:
            log.info("no parent inference for unknown structure types: %s", exc)
            index = None
        for i, (f, st) in enumerate(zip(frame["formula"], frame["structure_type"], strict=True)):
            if index is None or st != "unknown":
                continue
            inf = index.infer(f)
            if inf.ok:
                mapped[i], reasons[i] = inf.mapped, ""
                inferred.append({"formula": f, "parent": inf.guess.structure_type, "prototype": inf.mapped.prototype,
                                 "via": inf.guess.neighbour, "confidence": round(inf.guess.confidence, 3)})
    keep = np.array([m is not None for m in mapped])
    fallback = Counter(st for st, m in zip(frame["structure_type"], mapped, strict=True) if m is None)
    report = {"compositions": int(len(frame)), "with_structure": int(keep.sum()),
              "fallback_composition_only": int((~keep).sum()),
              "fallback_by_structure_type": dict(fallback.most_common()),
              "by_prototype": dict(Counter(m.prototype for m in mapped if m is not None).most_common()),
              "fallback_reasons": sorted({r for r in reasons if r})[:50],
              "inferred_for_unknown_structure_type": inferred}
    return frame[keep].reset_index(drop=True), [m for m in mapped if m is not None], report


def save_formula_path(frame: pd.DataFrame, out: Path, *, preset: str, seed: int) -> tuple[dict, NacondModel]:
    """What lets a GNN directory answer formulas: the labelled compositions its parents are inferred from
    (``parents.json``) and a composition model for formulas without a fitting parent (``composition/``; for a
    residual GNN also the model it corrects), both from all compositions of the training frame (structured or
    not). Returns a summary and the fitted composition model."""
    from ml.structures.infer import COMPOSITION_DIR, PARENTS_FILE, ParentIndex

    index = ParentIndex.from_frame(frame)
    index.save(out / PARENTS_FILE)
    t0 = time.perf_counter()
    comp = NacondModel(learner="extra_trees", preset=preset, seed=seed).fit(frame)
    comp.save(out / COMPOSITION_DIR, extra={"role": "composition model of a GNN directory: answers formulas "
                                                    "that have no fitting parent structure"})
    return ({"reference_compositions": len(index.formulas), "structure_types": len(set(index.types)),
             "composition_model": "extra_trees", "composition_fit_seconds": round(time.perf_counter() - t0, 1)},
            comp)


def graphs_for(structures, config) -> np.ndarray:
    from ml.models.gnn import structure_to_graph

    out = np.empty(len(structures), dtype=object)
    out[:] = [structure_to_graph(s, **config.graph_kwargs()) for s in structures]
    return out


def structure_features(structures) -> np.ndarray:
    from ml.featurizers.structure import NaSiteFeatures

    fz = NaSiteFeatures()
    return np.array([fz.featurize(s) for s in structures], dtype=float)


def comparison_models(sub: pd.DataFrame, structures, config, *, seed: int = 0, preset: str = "na-chem-2026-11-26",
                      on_epoch=None):
    """The models of the structure benchmark on one frame: composition ET (features ``Xc``), structure-featurizer
    ET (composition + occupancy-aware structure features) and the GNN ensemble (``on_epoch`` called after each of
    its epochs)."""
    from ml.models.gnn import GNNRegressor

    Xc = NacondModel(preset=preset).features(sub)
    Xs = np.hstack([Xc, structure_features(structures)])
    graphs = graphs_for(structures, config)
    extra = {"structure_features_et": (lambda: NacondModel(learner="extra_trees", preset=preset, seed=seed), Xs),
             "gnn": (lambda: GNNRegressor(config, on_epoch=on_epoch, preset=preset), graphs)}
    return Xc, extra, graphs


def train_gnn(cfg: TrainConfig, *, log_to_mlflow: bool = True, gnn_overrides: dict | None = None,
              progress=None) -> dict:
    """Structures -> graphs -> CV -> GNN ensemble on all structured compositions -> model directory, inside one
    MLflow run (opened first) when ``log_to_mlflow``; ``progress`` (training.progress.Reporter) shows epochs."""
    from ml.data import sha256_of
    from ml.models.gnn import TARGETS, GNNConfig, GNNEnsemble, residual_base
    from training import plots, tracking
    from training.evaluate import cross_validate, format_table
    from training.progress import silent
    from training.train import _dataset_name, _git_sha, _write_csv, prepare

    rep = progress or silent()
    t0 = time.perf_counter()
    with tracking.run(cfg.tracking_uri, cfg.experiment, f"gnn-{cfg.cv}", enabled=log_to_mlflow) as run:
        rep.step(f"reading {cfg.data}")
        rows, frame, info = prepare(cfg)
        csv_path = Path(cfg.data) / "data.csv" if Path(cfg.data).is_dir() else Path(cfg.data)
        dataset_sha = sha256_of(csv_path)
        rep.step(f"mapping {len(frame)} compositions onto parent structures")
        sub, mapped, report = structured_frame(frame)
        if len(sub) < 3:
            raise ValueError(f"only {len(sub)} compositions of {cfg.data!r} have a parent structure; the GNN needs 3")
        config = GNNConfig(seed=cfg.seed, **(gnn_overrides or {}))
        structures = [m.structure for m in mapped]
        from ml.models.manifest import check_output_dir, staged_dir

        final = Path(cfg.out)
        check_output_dir(final, cfg.force)
        with staged_dir(final, cfg.force) as out:  # renamed into place only when everything is written
            results: dict = {"data": info, "structures": report, "config": cfg.to_dict(), "gnn_config": vars(config)}
            if run is not None:
                run.mlflow.log_params({k: v for k, v in cfg.to_dict().items() if v is not None})
                run.mlflow.log_params({f"gnn_{k}": v for k, v in results["gnn_config"].items()})
                run.mlflow.log_params({f"data_{k}": v for k, v in info.items()})
                run.log_dataset(rows, csv_path, dataset_sha, name=_dataset_name(cfg.data))
                results["mlflow"] = run.info()
            log.info("%d of %d compositions have a structure; %d fall back to composition-only models",
                     report["with_structure"], report["compositions"], report["fallback_composition_only"])
            cv_result = None
            if cfg.cv != "none":
                t_cv = time.perf_counter()
                rep.step(f"building crystal graphs and structure features of {len(sub)} structures")
                from training.evaluate import splits

                n_folds = sum(1 for _ in splits(sub, cfg.cv, n_splits=cfg.n_splits, seed=cfg.seed))
                with rep.task("GNN epochs in CV", n_folds * config.n_models * config.epochs) as epochs:
                    Xc, extra, graphs = comparison_models(sub, structures, config, seed=cfg.seed, preset=cfg.preset,
                                                          on_epoch=epochs.advance)
                    cv_result = cross_validate(sub, [*BASELINES, "extra_trees"], cfg.cv, n_splits=cfg.n_splits,
                                               seed=cfg.seed, preset=cfg.preset, X=Xc, extra=extra, progress=rep)
                results["cv_seconds"] = round(time.perf_counter() - t_cv, 1)
                results["cv"] = cv_result.table.to_dict("records")
                results["cv_table_md"] = format_table(cv_result.table)
                results["headline"] = tracking.headline_metrics(cv_result.table, "gnn")
                _write_csv(cv_result.table, out / f"cv_{cfg.cv}_metrics.csv")
                (out / f"cv_{cfg.cv}_splits.json").write_text(json.dumps(cv_result.folds, indent=1))
                plots.parity(cv_result.oof, "gnn", out / f"parity_{cfg.cv}.png", title=f"GNN ensemble, {cfg.cv} CV")
                if run is not None:
                    run.log_metrics(results["headline"])
            else:
                rep.step(f"building crystal graphs of {len(sub)} structures")
                graphs = graphs_for(structures, config)
            results["formula_fallback"], comp = save_formula_path(frame, out, preset=cfg.preset, seed=cfg.seed)
            t_fit = time.perf_counter()
            Y = sub[list(TARGETS)].to_numpy(dtype=float)
            if config.residual:  # the GNN learns the composition model's out-of-fold errors on these rows
                row_of = {g: k for k, g in enumerate(frame["group"])}
                Y = Y - residual_base(comp)[[row_of[g] for g in sub["group"]]]
            with rep.task(f"GNN ensemble on all {len(sub)} structures: {config.n_models} members x {config.epochs} "
                          "epochs", config.n_models * config.epochs) as epochs:
                ens = GNNEnsemble(config).fit(list(graphs), Y, on_epoch=epochs.advance)
            results["fit_seconds"] = round(time.perf_counter() - t_fit, 1)
            if config.residual:
                results["residual_shrink"] = dict(zip(TARGETS, ens.shrink.tolist(), strict=True))
            elements = sorted({el for s in structures for el in s.composition.get_el_amt_dict()})
            spacegroups = sorted({int(s.get_space_group_info(symprec=0.1)[1]) for s in structures})
            ens.save(out, extra={"dataset_sha256": dataset_sha, "git_sha": _git_sha(), "data_info": info,
                                 "structures": {k: v for k, v in report.items() if k != "fallback_reasons"},
                                 "training_domain": {"elements": elements, "spacegroups": spacegroups},
                                 "training_groups": sub["group"].tolist(), "cv": cfg.cv,
                                 "metrics": {r["learner"] + "/" + r["target"]: {k: v for k, v in r.items()
                                                                              if k not in ("learner", "target")}
                                             for r in results.get("cv", [])}})
            (out / "structures_report.json").write_text(json.dumps(report, indent=1))
            (out / "config.json").write_text(json.dumps({**cfg.to_dict(), "gnn": vars(config)}, indent=2))
            (out / "README.md").write_text(
                f"# nacond GNN ensemble\n\nTrained by `nacond train --data {cfg.data} --model gnn --cv {cfg.cv} --out "
                f"{cfg.out}`.\n\nStructures: {report['with_structure']} of {report['compositions']} compositions "
                f"mapped onto prototypes ({report['by_prototype']}); {report['fallback_composition_only']} fall "
                "back to the composition model.\n\nFormulas: `nacond predict --model DIR FORMULA` infers the parent "
                "structure from the labelled compositions in `parents.json` and answers with the GNN when a prototype "
                "fits (`model_used=gnn`, `structure_source=prototype:<key>`), else with the composition model in "
                f"`composition/` (`model_used=composition`).\n\n{_residual_text(results)}GNN: {vars(config)}\n\n"
                "## Cross-validation "
                f"({cfg.cv}, structured compositions)\n{results.get('cv_table_md', 'not run (--cv none)')}\n")
        results["plots"] = [str(p) for p in sorted(final.glob("*.png"))]
        if run is not None:
            rep.step("MLflow: logging metrics and the model directory")
            _log(run, results, final)
    results["train_seconds"] = round(time.perf_counter() - t0, 1)
    return results


def _residual_text(results: dict) -> str:
    w = results.get("residual_shrink")
    if not w:
        return ""
    return (f"Residual GNN: answers the composition model in `composition/` + the GNN's correction weighted "
            f"{w['log10_sigma_S_cm']:.2f} (log10 sigma) / {w['ea_eV']:.2f} (Ea), the least-squares slope of the "
            "composition model's out-of-fold errors on the GNN's out-of-bag corrections, clipped to [0, 1] "
            "(docs/structures.md).\n\n")


def _log(run, results: dict, out: Path) -> None:
    s = results["structures"]
    run.log_metrics({"structures_mapped": s["with_structure"], "structures_fallback": s["fallback_composition_only"],
                     "fit_seconds": results["fit_seconds"]})
    if results.get("residual_shrink"):  # the out-of-bag weights of a residual GNN's correction
        run.log_metrics({f"residual_weight_{t}": w for t, w in results["residual_shrink"].items()})
    run.mlflow.log_dict(results["structures"], "structures_report.json")
    run.mlflow.log_artifacts(str(out), artifact_path="model")
