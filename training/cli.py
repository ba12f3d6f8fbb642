"""The ``nacond`` command line (typer)."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from training.progress import Reporter

app = typer.Typer(
    name="nacond",
    help="Ionic conductivity and activation energy of Na-ion solid electrolytes: data, training, prediction.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
if not os.environ.get("TERMINAL_WIDTH") and not sys.stdout.isatty():
    # piped or captured help (a README, CI log) would be cut at rich's 80-column default: options wrap mid-word
    import typer.rich_utils

    typer.rich_utils.MAX_WIDTH = 120

data_app = typer.Typer(help="Check and summarise a conductivity dataset.", no_args_is_help=True)
app.add_typer(data_app, name="data")

DatasetArg = Annotated[
    Path | None,
    typer.Argument(help="Dataset folder (with data.csv + metadata.json) or CSV file; default: the bundled one."),
]


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _check_output(path: Path | None, option: str = "--output") -> None:
    """Refuse an output path that cannot be a file we write, before any work is done."""
    if path is None:
        return
    if len(path.name.encode()) > 255:
        _fail(f"{option}: the file name is {len(path.name.encode())} bytes long; at most 255 are allowed")
    if path.is_dir():
        _fail(f"{option} {str(path)!r} is a directory; give a file name such as {str(path / 'predictions.csv')!r}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail(f"{option} {str(path)!r}: cannot create its folder ({exc.strerror})")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        _fail(f"{option} {str(path)!r} is not writable")


@data_app.command("validate")
def data_validate(
    path: DatasetArg = None,
    warnings: Annotated[bool, typer.Option("--warnings/--no-warnings", help="List warnings too.")] = False,
) -> None:
    """Check schema, formulas, units, provenance, ids, duplicates and checksum; exit 1 on any error."""
    from ml.data import validate_dataset
    from ml.errors import NacondError

    try:
        report = validate_dataset(path)
    except NacondError as exc:
        _fail(str(exc))
    for f in report.errors + (report.warnings if warnings else []):
        typer.echo(str(f))
    typer.echo(f"{report.path}: {report.n_rows} rows, {len(report.errors)} errors, "
               f"{len(report.warnings)} warnings" + ("" if warnings or not report.warnings else
                                                    " (--warnings lists them)"))
    if not report.ok:
        raise typer.Exit(1)


@data_app.command("stats")
def data_stats(
    path: DatasetArg = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Counts per family, structure type, Ea coverage, provenance and temperature band."""
    from ml.data import dataset_stats, load_dataset
    from ml.errors import NacondError

    try:
        stats = dataset_stats(load_dataset(path))
    except NacondError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(stats, indent=2))
        return
    p = stats["provenance"]
    typer.echo(f"rows {stats['rows']}  usable {stats['usable_rows']}  secondary (same_as) {stats['secondary_rows']}  "
               f"feeding no target {stats['rows_without_target']}  compositions {stats['compositions']}")
    typer.echo(f"with sigma {stats['with_sigma']}  with Ea {stats['with_ea']}  sigma at 20-30 C "
               f"{stats['rt_sigma_rows']}  censored {stats['censored']}")
    typer.echo(f"provenance: DOI {p['doi']}  reference only {p['reference_only']}  seed_ref only "
               f"{p['seed_ref_only']}  (with a source {p['with_source_pct']}%)  evidence seen "
               f"{p['evidence_seen_pct']}%  untraced {p['untraced_pct']}%  papers {p['papers']}")
    typer.echo("\nfamily            rows  usable  with_Ea  rt_sigma  rt_compositions  compositions")
    for fam, v in sorted(stats["families"].items(), key=lambda kv: -kv[1]["rows"]):
        typer.echo(f"{fam:16s} {v['rows']:5d} {v['usable_rows']:7d} {v['with_ea']:8d} {v['rt_sigma']:9d} "
                   f"{v['rt_compositions']:16d} {v['compositions']:13d}")
    typer.echo(f"families with >= 10 rows: {stats['families_with_10_rows']}")
    typer.echo("\nstructure type                 rows")
    for st, n in stats["structure_types"].items():
        typer.echo(f"{st:30s} {n:5d}")
    typer.echo("\ntemperature band           rows")
    for band, n in stats["temperature_bands"].items():
        typer.echo(f"{band:25s} {n:5d}")
    if stats["qualified"]:
        typer.echo("\nqualified values: " + ", ".join(f"{k} {v}" for k, v in stats["qualified"].items()))


@data_app.command("import")
def data_import(
    file: Annotated[Path, typer.Argument(help="The public table (CSV) to convert.")],
    fmt: Annotated[str, typer.Option("--format", help="obelix | liverpool")],
    out: Annotated[Path, typer.Option("--out", help="Dataset folder (data.csv + metadata.json) to write.")],
    mobile_ion: Annotated[str, typer.Option("--mobile-ion", help="The conducting ion of the table.")] = "Li",
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing data.csv in --out.")] = False,
) -> None:
    """Convert the OBELiX or Liverpool Li-ion tables into the nacond schema (rows that cannot be converted are
    listed with their reason); then `nacond train --data OUT --mobile-ion Li`."""
    from ml.data import write_metadata
    from ml.errors import NacondError
    from ml.importers import import_table

    try:
        res = import_table(file, fmt, mobile_ion=mobile_ion)
    except NacondError as exc:
        _fail(str(exc))
    if out.exists() and not out.is_dir():
        _fail(f"--out {str(out)!r} is a file; give a folder")
    if (out / "data.csv").exists() and not force:
        _fail(f"--out {str(out)!r} already holds a data.csv; pass --force to overwrite it")
    try:
        out.mkdir(parents=True, exist_ok=True)
        res.rows.to_csv(out / "data.csv", index=False)
    except OSError as exc:
        _fail(f"cannot write {str(out / 'data.csv')!r}: {exc.strerror}")
    write_metadata(out)
    for rid, why in res.skipped:
        typer.echo(f"skipped {fmt} row {rid}: {why}", err=True)
    typer.echo(f"{len(res.rows)} rows written to {out / 'data.csv'}; {len(res.skipped)} skipped (listed above)")


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("mlflow", "alembic", "urllib3", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.command("train")
def train_cmd(
    data: Annotated[Path, typer.Option("--data", help="Dataset folder or CSV in the nacond schema.")],
    model: Annotated[str, typer.Option("--model", help="Learner: extra_trees, random_forest, hist_gbm, "
                                                       "family_median, global_median, or gnn (crystal graph "
                                                       "ensemble on the entries' parent structures).")]
    = "extra_trees",
    cv: Annotated[str, typer.Option("--cv", help="grouped | family | none")] = "grouped",
    out: Annotated[Path, typer.Option("--out", help="Model directory to write.")] = Path("build/model"),
    tracking_uri: Annotated[str | None, typer.Option("--tracking-uri", help="MLflow tracking URI (default: "
                                                     "MLFLOW_TRACKING_URI or sqlite ./mlflow.db).")] = None,
    experiment: Annotated[str, typer.Option("--experiment", help="MLflow experiment name.")] = "nacond",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    mobile_ion: Annotated[str, typer.Option("--mobile-ion", help="Train on rows of this ion.")] = "Na",
    n_splits: Annotated[int, typer.Option("--n-splits", min=2, help="Folds of grouped CV.")] = 5,
    curve: Annotated[bool, typer.Option("--learning-curve/--no-learning-curve",
                                        help="Also compute the grouped-CV learning curve.")] = True,
    no_mlflow: Annotated[bool, typer.Option("--no-mlflow", help="Skip MLflow logging.")] = False,
    gnn_epochs: Annotated[int | None, typer.Option("--gnn-epochs", min=1, help="GNN only: epochs per member "
                                                   "(default 150).")] = None,
    gnn_members: Annotated[int | None, typer.Option("--gnn-members", min=1, help="GNN only: ensemble size "
                                                    "(default 5).")] = None,
    gnn_residual: Annotated[bool, typer.Option(
        "--gnn-residual/--gnn-plain", help="GNN only: residual (default): the GNN learns the composition model's "
                                           "out-of-fold errors and answers composition model + its correction, "
                                           "weighted by what its out-of-bag predictions support; plain: the GNN "
                                           "alone (docs/structures.md).")] = True,
    warn_only: Annotated[str, typer.Option("--warn-only", help="Comma-separated validator checks (columns, e.g. "
                                                               "duplicate,doi,sha256) whose errors are only "
                                                               "warned about; every other error stops training.")]
    = "",
    force: Annotated[bool, typer.Option("--force", help="Replace an --out folder that holds something other "
                                                        "than a nacond model.")] = False,
) -> None:
    """Cross-validate (model beside both baselines), fit on all data, write a model directory, log to MLflow."""
    from ml.errors import NacondError
    from ml.models import LEARNERS
    from training.config import TrainConfig
    from training.train import train

    _setup_logging()
    if model not in (*LEARNERS, "gnn"):
        _fail(f"--model {model!r} is not one of {', '.join(LEARNERS)}, gnn")
    if cv not in ("grouped", "family", "none"):
        _fail(f"--cv {cv!r} is not one of grouped, family, none")
    if model != "gnn" and (gnn_epochs is not None or gnn_members is not None):
        _fail("--gnn-epochs/--gnn-members apply only to --model gnn")
    cfg = TrainConfig(data=str(data), model=model, cv=cv, out=str(out), experiment=experiment,
                      tracking_uri=tracking_uri, seed=seed, mobile_ion=mobile_ion, n_splits=n_splits,
                      learning_curve=curve, force=force,
                      warn_only=tuple(c.strip() for c in warn_only.split(",") if c.strip()))
    try:
        with Reporter() as rep:
            rep.step(f"nacond train: {model}, {cv} CV, data {data}, out {out}")
            if model == "gnn":
                from training.structure_train import train_gnn

                overrides = {k: v for k, v in (("epochs", gnn_epochs), ("n_models", gnn_members)) if v is not None}
                overrides["residual"] = gnn_residual
                res = train_gnn(cfg, log_to_mlflow=not no_mlflow, gnn_overrides=overrides, progress=rep)
            else:
                res = train(cfg, log_to_mlflow=not no_mlflow, progress=rep)
    except (NacondError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"data: {res['data']}")
    if model == "gnn":
        s = res["structures"]
        typer.echo(f"structures: {s['with_structure']} of {s['compositions']} compositions on prototypes "
                   f"{s['by_prototype']}; {s['fallback_composition_only']} fall back to composition-only models "
                   f"({s['fallback_by_structure_type']})")
        if res.get("residual_shrink"):
            w = res["residual_shrink"]
            typer.echo(f"residual GNN: answers composition model + GNN correction x {w['log10_sigma_S_cm']:.2f} "
                       f"(log10 sigma) / x {w['ea_eV']:.2f} (Ea), the weights its out-of-bag predictions support "
                       "(0: the structure adds nothing held-out compositions confirm)")
    if "cv_table_md" in res:
        typer.echo(res["cv_table_md"])
    typer.echo(_train_summary(res, cfg))


def _train_summary(res: dict, cfg) -> str:
    """Where everything went and what to run next (the last lines `nacond train` prints)."""
    out = cfg.out
    lines = ["", f"== nacond train done in {res['train_seconds']} s (fit {res['fit_seconds']} s) =="]
    if res.get("cv"):
        by = {(r["learner"], r["target"]): r for r in res["cv"]}
        learner = "gnn" if cfg.model == "gnn" else cfg.model
        lines.append(f"{cfg.cv} CV, out-of-fold MAE   log10 sigma (S/cm)   Ea (eV)")
        for name, label in ((learner, learner), ("family_median", "family_median (baseline)"),
                            ("global_median", "global_median (baseline)")):
            s, e = by.get((name, "log10_sigma_S_cm"), {}), by.get((name, "ea_eV"), {})
            lines.append(f"  {label:28s} {_num(s.get('mae')):>18s}   {_num(e.get('mae')):>7s}")
    lines.append(f"model    {out}")
    if res.get("plots"):
        lines.append("plots    " + ", ".join(res["plots"]))
    m = res.get("mlflow")
    if m:
        reg = (f"; registered {m['registered_model']} version {m['registered_version']}"
               if m.get("registered_model") else "")
        lines.append(f"MLflow   run {m['run_id']} in experiment {m['experiment']!r} ({m['tracking_uri']}){reg}")
        ui_uri = "" if cfg.tracking_uri is None else f" --tracking-uri {cfg.tracking_uri}"
        lines.append(f"         view it: nacond ui{ui_uri}   then open http://127.0.0.1:5000/#/experiments/"
                     f"{m.get('experiment_id', '')}/runs/{m['run_id']}?workflowType=machine_learning")
    else:
        lines.append("MLflow   not logged (--no-mlflow)")
    if cfg.model == "gnn":
        lines.append(f"next     nacond predict --model {out} --cif FILE.cif")
    else:
        lines.append(f"next     nacond predict --model {out} Na3PS4 Na3Zr2Si2PO12")
        lines.append(f"         nacond serve --model {out}")
    return "\n".join(lines)


def _num(v) -> str:
    import math

    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


@app.command("evaluate")
def evaluate_cmd(
    data: Annotated[Path, typer.Option("--data", help="Dataset folder or CSV in the nacond schema.")],
    cv: Annotated[str, typer.Option("--cv", help="grouped | family")] = "grouped",
    models: Annotated[str, typer.Option("--models", help="Comma-separated learners (baselines always "
                                                         "included).")] = "extra_trees,random_forest,hist_gbm",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The metrics table: every model beside both baselines on identical leak-free splits."""
    from ml.errors import NacondError
    from ml.models import LEARNERS
    from ml.models.composition import BASELINES
    from training.config import TrainConfig
    from training.evaluate import cross_validate, format_table
    from training.train import prepare

    _setup_logging()
    if cv not in ("grouped", "family"):
        _fail(f"--cv {cv!r} is not one of grouped, family")
    chosen = [m.strip() for m in models.split(",") if m.strip()]
    bad = [m for m in chosen if m not in LEARNERS]
    if bad:
        _fail(f"--models: unknown learner(s) {bad}; choose from {', '.join(LEARNERS)}")
    try:
        _, frame, info = prepare(TrainConfig(data=str(data)))
    except (NacondError, ValueError) as exc:
        _fail(str(exc))
    with Reporter() as rep:
        rep.step(f"nacond evaluate: {cv} CV of {', '.join(dict.fromkeys([*BASELINES, *chosen]))} on "
                 f"{info['compositions']} compositions")
        res = cross_validate(frame, list(dict.fromkeys([*BASELINES, *chosen])), cv, seed=seed, progress=rep)
    if as_json:
        from ml.utils import strict_json

        # strict JSON: an undefined metric (e.g. Spearman of a constant prediction) is null, never NaN
        typer.echo(json.dumps(strict_json({"cv": cv, "data": info, "metrics": res.table.to_dict("records")}),
                              indent=2, allow_nan=False))
    else:
        typer.echo(f"data: {info}")
        typer.echo(format_table(res.table))


@app.command("predict")
def predict_cmd(
    formulas: Annotated[list[str] | None, typer.Argument(help="Compositions, e.g. Na3PS4 Na3Zr2Si2PO12.")] = None,
    input_csv: Annotated[Path | None, typer.Option("--input", help="CSV with a 'formula' column.")] = None,
    cif: Annotated[list[Path] | None, typer.Option("--cif", help="A CIF file (repeatable).")] = None,
    cif_dir: Annotated[Path | None, typer.Option("--cif-dir", help="Predict every *.cif in this folder.")] = None,
    output: Annotated[Path | None, typer.Option("--output", help="Write predictions to this CSV.")] = None,
    model_dir: Annotated[str | None, typer.Option("--model", help="Model directory or MLflow URI (default: the "
                                                                  "bundled models/default).")] = None,
    on_error: Annotated[str, typer.Option("--on-error", help="raise: stop at the first bad row; warn/skip: "
                                                              "write the row with its error.")] = "raise",
    temperature: Annotated[str | None, typer.Option("--temperature", help="Predict at this temperature, e.g. "
                                                    "60C or 333K (Arrhenius model); default 25 C.")] = None,
    use_ray: Annotated[bool, typer.Option("--ray", help="Run the batch on Ray (local unless --ray-address).")]
    = False,
    ray_address: Annotated[str | None, typer.Option("--ray-address", help="Ray cluster address, e.g. auto or "
                                                    "ray://head:10001 (implies --ray).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Ray actors (default: all CPUs).")] = None,
) -> None:
    """Predict log10 sigma (25 C or --temperature), Ea and 90 % intervals, with an applicability-domain flag."""
    import csv

    from ml.errors import NacondError
    from serving.predictor import Predictor

    sources = [bool(formulas), input_csv is not None, bool(cif), cif_dir is not None]
    if sum(sources) != 1:
        _fail("give exactly one of: formulas as arguments, --input CSV, --cif FILE..., --cif-dir DIR")
    if on_error not in ("raise", "warn", "skip"):
        _fail(f"--on-error {on_error!r} is not one of raise, warn, skip")
    _check_output(output)
    if input_csv is not None:
        if not input_csv.exists():
            _fail(f"--input {str(input_csv)!r} does not exist")
        with open(input_csv, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        if not rows or "formula" not in rows[0]:
            _fail(f"--input {str(input_csv)!r} has no 'formula' column or no rows")
        items = [r["formula"] for r in rows]
        where = [f"row {i + 2} of {input_csv}" for i in range(len(rows))]
    elif cif_dir is not None:
        if not cif_dir.is_dir():
            _fail(f"--cif-dir {str(cif_dir)!r} is not a folder")
        paths = sorted(cif_dir.glob("*.cif"))
        if not paths:
            _fail(f"--cif-dir {str(cif_dir)!r} holds no *.cif files")
        rows = [{"cif": str(p)} for p in paths]
        items, where = paths, [str(p) for p in paths]
    elif cif:
        rows = [{"cif": str(p)} for p in cif]
        items, where = list(cif), [str(p) for p in cif]
    else:
        rows = [{"formula": f} for f in formulas]
        items, where = list(formulas), ["argument"] * len(formulas)
    from serving.structure_predictor import is_gnn_model

    if is_gnn_model(model_dir):
        _predict_gnn(model_dir, items, rows, where, output, on_error, temperature, bool(use_ray or ray_address))
        return
    try:
        predictor = Predictor.load(model_dir)
        if temperature is not None:
            from ml.temperature import parse_temperature

            parse_temperature(temperature)
    except NacondError as exc:
        _fail(str(exc) if temperature is None else f"--temperature: {exc}")
    # every prediction becomes a flat row (serving.predictor.flat_row), whichever path computed it
    results: list[dict] = []
    chunk = max(50, min(1000, len(items) // 20))  # about 20 steps of the bar, each one vectorised call
    with Reporter(enabled=len(items) >= 100) as rep, rep.task(f"predicting {len(items)} inputs", len(items)) as bar:
        if use_ray or ray_address:
            from serving.parallel import predict_ray
            from serving.predictor import flat_row

            results = [flat_row(d) for d in predict_ray([str(x) for x in items], model=model_dir,
                                                        address=ray_address, workers=workers,
                                                        temperature_K=temperature, on_error="skip",
                                                        progress=bar.advance)]
        else:
            for start in range(0, len(items), chunk):
                part = items[start:start + chunk]
                try:
                    results += [r.to_row() for r in predictor.predict_many(
                        part, on_error="skip", temperature_K=temperature)]  # _emit reports failures, once
                except NacondError as exc:  # no Arrhenius part in this model
                    _fail(str(exc))
                bar.advance(len(part))
    _emit(rows, results, where, output, on_error, show_model=True)


def _predict_gnn(model_dir, items, rows, where, output, on_error, temperature, use_ray) -> None:
    """``nacond predict --model <GNN dir> (FORMULA... | --cif ...)``: structures (given or inferred) through the GNN
    ensemble; formulas without a fitting parent through its composition model (column ``model_used``)."""
    from ml.errors import NacondError
    from serving.structure_predictor import GNNPredictor

    if temperature is not None or use_ray:
        _fail("the GNN model predicts at 25 C on one process: drop --temperature/--ray, or use the composition model")
    # formulas are answered through an inferred parent structure, else the composition model the GNN carries
    try:
        results = GNNPredictor.load(model_dir).predict_many(items, on_error="warn")
    except NacondError as exc:
        _fail(str(exc))
    _emit(rows, results, where, output, on_error, show_model=True)


def _emit(rows, results, where, output, on_error, show_model: bool = False) -> None:
    import csv

    from ml.utils import round_row

    failures = [(i, r) for i, r in enumerate(results) if r["error"]]
    if failures and on_error == "raise":
        i, r = failures[0]
        _fail(f"{where[i]}: {r['error']}")
    for i, r in failures:
        if on_error == "warn":
            typer.secho(f"warning: {where[i]}: {r['error']}", fg=typer.colors.YELLOW, err=True)
    table = [{**row, **r} for row, r in zip(rows, results, strict=True)]
    if output is not None:
        cols = list(dict.fromkeys([k for rec in table for k in rec]))
        try:
            with open(output, "w", newline="", encoding="utf-8") as fh:
                w = csv.DictWriter(fh, fieldnames=cols)
                w.writeheader()
                w.writerows(round_row(r) for r in table)
        except OSError as exc:
            _fail(f"--output {str(output)!r} cannot be written: {exc.strerror}")
        typer.echo(f"{len(table)} rows written to {output} ({len(failures)} with errors)")
        return
    for rec in table:
        label = rec.get("formula") or rec.get("cif")
        if rec.get("cif") and rec.get("formula"):  # the file and what was read from it
            label = f"{Path(rec['cif']).name} ({parse_formula_reduced(rec['formula'])})"
        if rec["error"]:
            typer.echo(f"{label:28s} error: {rec['error']}")
            continue
        flag = "" if rec["in_domain"] else f"  [out of domain: {rec['domain_notes']}]"
        if rec["in_domain"] and rec.get("domain_notes"):
            flag = f"  [note: {rec['domain_notes']}]"
        if show_model:  # say which model answered: the composition model, or a GNN directory's GNN (on what)
            src = rec.get("structure_source") or ""
            flag = f"  [{rec.get('model_used', '')}{' on ' + src if src else ''}]{flag}"
        m = rec.get("measured_log10_sigma_S_cm")
        measured = "" if m is None else (
            f"  [measured at 20-30 C: {10 ** m:.2e} S/cm, {rec['n_measurements']} value(s), spread "
            f"{rec['measured_spread_decades']:.1f} decades; {rec['measured_sources']}]")
        t_label = f"{rec['temperature_K'] - 273.15:.0f} C"
        ea = (f"Ea = {rec['ea_eV']:.3f} eV [{rec['ea_lo_eV']:.3f}, {rec['ea_hi_eV']:.3f}]"
              if rec["ea_eV"] == rec["ea_eV"] else "Ea not modelled")
        typer.echo(f"{label:28s} sigma({t_label}) = {rec['sigma_S_cm']:.2e} S/cm  "
                   f"log10 90% [{rec['log10_sigma_lo']:.2f}, {rec['log10_sigma_hi']:.2f}]  {ea}{flag}{measured}")


def parse_formula_reduced(formula: str) -> str:
    from ml.formula import parse_formula

    try:
        return parse_formula(formula).reduced_formula
    except ValueError:
        return formula


@app.command("screen-dopants")
def screen_cmd(
    parent: Annotated[str, typer.Argument(help="Parent composition, e.g. Na3Zr2Si2PO12.")],
    site: Annotated[str, typer.Option("--site", help="Element whose site the dopants replace, e.g. Zr.")],
    dopants: Annotated[str, typer.Option("--dopants", help="Comma-separated dopant elements, e.g. Sc,Zn,Mg.")],
    output: Annotated[Path, typer.Option("--output", help="CSV of the ranked candidates.")],
    max_fraction: Annotated[float, typer.Option("--max-fraction", help="Largest share of the site replaced.")] = 0.5,
    step: Annotated[float, typer.Option("--step", help="Step of the site share.")] = 0.05,
    compensation: Annotated[str, typer.Option("--compensation", help="vacancy | interstitial | auto")] = "auto",
    temperature: Annotated[str | None, typer.Option("--temperature", help="e.g. 60C; default 25 C.")] = None,
    rank: Annotated[str, typer.Option("--rank", help="mean: by predicted sigma; ucb: by the upper 90 % bound.")]
    = "mean",
    plot: Annotated[Path | None, typer.Option("--plot", help="PNG of sigma vs dopant fraction (default: next to "
                                                             "the CSV).")] = None,
    model_dir: Annotated[str | None, typer.Option("--model", help="Model directory or MLflow URI.")] = None,
    use_ray: Annotated[bool, typer.Option("--ray", help="Predict the candidates on Ray.")] = False,
    ray_address: Annotated[str | None, typer.Option("--ray-address", help="Ray cluster address (implies --ray).")]
    = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Ray actors (default: all CPUs).")] = None,
) -> None:
    """Enumerate charge-balanced dopant series of PARENT, predict sigma and Ea with intervals, rank them."""
    import csv

    _check_output(output)

    from ml.errors import NacondError
    from ml.screening import enumerate_dopants
    from ml.utils import round_row
    from serving.predictor import Predictor

    if rank not in ("mean", "ucb"):
        _fail(f"--rank {rank!r} is not mean or ucb")
    try:
        cands = enumerate_dopants(parent, site, [d.strip() for d in dopants.split(",") if d.strip()],
                                  max_fraction=max_fraction, step=step, compensation=compensation)
        series = list(dict.fromkeys(c.dopant for c in cands))  # "" (the parent) first, then each dopant
        with Reporter() as rep, rep.task(f"screening {len(cands)} candidates of {parent} ({site} site)",
                                         len(series)) as bar:
            if use_ray or ray_address:
                from serving.parallel import predict_ray
                from serving.predictor import flat_row

                preds = [flat_row(d) for d in predict_ray([c.formula for c in cands], model=model_dir,
                                                          address=ray_address, workers=workers,
                                                          temperature_K=temperature, on_error="raise")]
                bar.advance(len(series))
            else:
                predictor, preds = Predictor.load(model_dir), []
                for d in series:  # one vectorised call per dopant series
                    preds += [r.to_row() for r in predictor.predict_many(
                        [c.formula for c in cands if c.dopant == d], temperature_K=temperature)]
                    bar.advance(detail=d or "parent")
    except NacondError as exc:
        _fail(str(exc))
    rows = []
    for c, r in zip(cands, preds, strict=True):
        rows.append({"formula": c.formula, "dopant": c.dopant or "(parent)", "site_fraction": c.fraction,
                     "dopant_per_formula": c.dopant_per_formula, "na_per_formula": c.mobile_per_formula,
                     "compensation": c.compensation,
                     **{k: v for k, v in r.items() if k not in ("formula", "error")}})
    key = "log10_sigma_S_cm" if rank == "mean" else "log10_sigma_hi"
    rows.sort(key=lambda r: -r[key])
    for i, r in enumerate(rows, 1):
        r["rank"] = i
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["rank", *[k for k in rows[0] if k != "rank"]])
        w.writeheader()
        w.writerows(round_row(r) for r in rows)
    png = plot or output.with_suffix(".png")
    _plot_screen(rows, png, f"{parent}: {site} site")
    typer.echo(f"{len(rows)} candidates -> {output} (plot {png}); best by {rank}:")
    for r in rows[:5]:
        typer.echo(f"  {r['formula']:32s} sigma = {r['sigma_S_cm']:.2e} S/cm  log10 90% [{r['log10_sigma_lo']:.2f}, "
                   f"{r['log10_sigma_hi']:.2f}]  Ea = {r['ea_eV']:.3f} eV")


def _plot_screen(rows: list[dict], path: Path, title: str) -> None:
    from training.plots import screening

    screening(rows, path, title)


@app.command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
    model_dir: Annotated[str | None, typer.Option("--model", help="Model directory (e.g. build/model from `make "
                                                                  "run`) or MLflow URI (models:/nacond-extra_trees/1)"
                                                                  "; default: NACOND_MODEL, else the bundled "
                                                                  "models/default.")] = None,
) -> None:
    """Serve predictions over HTTP (FastAPI): POST /predict, GET /health, GET /model, OpenAPI at /docs."""
    import uvicorn

    from ml.errors import NacondError
    from serving.app import create_app
    from serving.predictor import Predictor

    try:
        predictor = Predictor.load(model_dir)
    except NacondError as exc:
        _fail(str(exc))
    info = predictor.info()
    where = str(predictor.model_dir) if predictor.source == "default" else predictor.source
    typer.echo(f"nacond serve: http://{host}:{port} (docs http://{host}:{port}/docs)  model {where}  "
               f"version {predictor.model_version}  dataset sha256 {(info.get('dataset_sha256') or '?')[:12]}",
               err=True)
    uvicorn.run(create_app(predictor), host=host, port=port, log_level="warning", workers=1)


@app.command("ui")
def ui_cmd(
    tracking_uri: Annotated[str | None, typer.Option("--tracking-uri", help="Store to show (default: "
                                                     "MLFLOW_TRACKING_URI or sqlite ./mlflow.db).")] = None,
    port: Annotated[int, typer.Option("--port")] = 5000,
) -> None:
    """Start the MLflow UI on 127.0.0.1 (one worker, no job runner) over the same store as `nacond train`.

    Ctrl-C or SIGTERM stops the server and its workers (their whole process group), without a traceback."""
    import os

    from training.tracking import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1"]
    typer.echo(f"MLflow UI on http://127.0.0.1:{port} (store {uri}); Ctrl-C stops it", err=True)
    raise typer.Exit(run_until_signal(cmd, env))


def run_until_signal(cmd: list[str], env: dict | None = None) -> int:
    """Run ``cmd`` in its own process group until it exits (its exit code) or this process gets SIGTERM/SIGINT:
    then stop the whole group (server and every worker it spawned, none left holding a port) and return 0,
    without a traceback."""
    import signal
    import subprocess

    proc = subprocess.Popen(cmd, env=env, start_new_session=True)

    def stop(signum, _frame):
        raise _Stop(signum)

    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = proc.wait()
    except _Stop:
        code = 0
        _stop_group(proc)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return code


class _Stop(Exception):
    pass


def _stop_group(proc, timeout_s: float = 10.0) -> None:
    """SIGTERM to the child's process group, SIGKILL after ``timeout_s``."""
    import os
    import signal
    import subprocess

    for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            # the group leader is gone; make sure no worker of its group lingers
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue
        return


def main() -> None:  # pragma: no cover - console entry for `python -m training.cli`
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
