import pandas as pd
import pytest
from typer.testing import CliRunner

from training.cli import app

runner = CliRunner()


def test_train_then_predict_round_trip(tiny_csv, tmp_path):
    out = tmp_path / "model"
    res = runner.invoke(app, ["train", "--data", str(tiny_csv), "--cv", "none", "--out", str(out), "--no-mlflow"])
    assert res.exit_code == 0, res.output
    assert (out / "model.json").exists()
    inp = tmp_path / "in.csv"
    pd.DataFrame({"formula": ["Na3PS4", "Na3Zr2Si2PO12"], "note": ["a", "b"]}).to_csv(inp, index=False)
    res = runner.invoke(app, ["predict", "--input", str(inp), "--output", str(tmp_path / "o.csv"),
                              "--model", str(out)])
    assert res.exit_code == 0, res.output
    got = pd.read_csv(tmp_path / "o.csv")
    assert list(got["note"]) == ["a", "b"]
    for c in ("log10_sigma_S_cm", "sigma_S_cm", "log10_sigma_lo", "log10_sigma_hi", "ea_eV", "ea_lo_eV",
              "ea_hi_eV", "in_domain"):
        assert c in got and got[c].notna().all()
    assert (got["log10_sigma_lo"] <= got["log10_sigma_hi"]).all()


def test_train_logs_to_mlflow_sqlite(tiny_csv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    res = runner.invoke(app, ["train", "--data", str(tiny_csv), "--cv", "grouped", "--out", str(tmp_path / "m"),
                              "--tracking-uri", uri, "--experiment", "t", "--n-splits", "3",
                              "--no-learning-curve"])
    assert res.exit_code == 0, res.output
    import mlflow

    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["t"])
    assert len(runs) == 1
    assert (tmp_path / "m" / "parity_grouped.png").exists() and (tmp_path / "m" / "cv_grouped_splits.json").exists()
    for m in ("cv_mae_log10_sigma", "cv_mae_ea_eV", "baseline_mae_log10_sigma", "baseline_family_mae_log10_sigma",
              "baseline_family_mae_ea_eV"):
        assert f"metrics.{m}" in runs.columns, m
    assert not [c for c in runs.columns if c.startswith("metrics.grouped.")]  # the full table is an artifact
    v = runs["metrics.cv_mae_log10_sigma"].iloc[0]
    assert v == float(f"{v:.4g}")
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name("t")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    run = client.get_run(runs["run_id"].iloc[0])
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["fixtures/tiny"]
    assert run.inputs.dataset_inputs[0].dataset.digest and "tiny.csv" in run.inputs.dataset_inputs[0].dataset.source
    arts = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert "evaluation/cv_grouped_metrics.csv" in arts
    # the run spans the work (opened before featurizing, closed after logging the model)
    assert (run.info.end_time - run.info.start_time) / 1000 >= 0.5 * res_seconds(res.output)
    versions = mlflow.MlflowClient().search_model_versions("name='nacond-extra_trees'")
    assert len(versions) == 1
    uri_model = f"models:/nacond-extra_trees/{versions[0].version}"
    model = mlflow.pyfunc.load_model(uri_model)
    pred = model.predict(pd.DataFrame({"formula": ["Na3PS4"]}))
    assert pred["log10_sigma_S_cm"].notna().all()
    from serving import Predictor

    direct = Predictor.load(tmp_path / "m").predict("Na3PS4")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    via_registry = Predictor.load(uri_model, tracking_uri=uri).predict("Na3PS4")
    assert not (elsewhere / "mlflow.db").exists()  # no stray store in the caller's folder
    mlmodel = mlflow.models.get_model_info(uri_model)
    assert mlmodel.signature is not None and "formula" in mlmodel.signature.inputs.input_names()
    assert mlmodel.saved_input_example_info is not None
    assert via_registry.log10_sigma_S_cm == pytest.approx(direct.log10_sigma_S_cm)
    assert pred["log10_sigma_S_cm"].iloc[0] == pytest.approx(direct.log10_sigma_S_cm)


def res_seconds(output: str) -> float:
    import re

    return float(re.search(r"nacond train done in ([0-9.]+) s", output).group(1))


def test_predict_bad_formula_names_input(tmp_path):
    res = runner.invoke(app, ["predict", "Na3PS4", "Xx2O"])
    assert res.exit_code == 2
    assert "Xx2O" in res.output and "not a chemical element" in res.output


def test_predict_bad_csv_row_names_row(tmp_path):
    inp = tmp_path / "in.csv"
    pd.DataFrame({"formula": ["Na3PS4", "Na3(PS4"]}).to_csv(inp, index=False)
    res = runner.invoke(app, ["predict", "--input", str(inp)])
    assert res.exit_code == 2 and "row 3" in res.output and "unbalanced" in res.output


def test_predict_csv_without_formula_column(tmp_path):
    inp = tmp_path / "in.csv"
    pd.DataFrame({"comp": ["Na3PS4"]}).to_csv(inp, index=False)
    res = runner.invoke(app, ["predict", "--input", str(inp)])
    assert res.exit_code == 2 and "no 'formula' column" in res.output


def test_train_rejects_unknown_model(tiny_csv):
    res = runner.invoke(app, ["train", "--data", str(tiny_csv), "--model", "svm", "--no-mlflow"])
    assert res.exit_code == 2 and "--model 'svm'" in res.output


def test_train_accepts_other_mobile_ions_in_data(tiny_rows, tmp_path):
    li = tiny_rows.iloc[[0]].copy()
    li["entry_id"], li["formula"], li["mobile_ion"] = "LI-1", "Li3PS4", "Li"
    path = tmp_path / "mixed.csv"
    pd.concat([tiny_rows, li]).to_csv(path, index=False)
    res = runner.invoke(app, ["train", "--data", str(path), "--cv", "none", "--out", str(tmp_path / "m"),
                              "--no-mlflow"])
    assert res.exit_code == 0, res.output
    assert "'rows_other_mobile_ion': 1" in res.output


def test_predict_uses_committed_default_model():
    res = runner.invoke(app, ["predict", "Na3Zr2Si2PO12", "Fe2O3"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0].startswith("Na3Zr2Si2PO12") and "out of domain" not in lines[0]
    assert lines[1].startswith("Fe2O3") and "no Na" in lines[1]


def test_predict_cif_dir_with_error_column(tmp_path):
    from pymatgen.core import Lattice, Structure

    d = tmp_path / "cifs"
    d.mkdir()
    Structure(Lattice.cubic(7.0), ["Na", "P", "S"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]]).to(
        filename=str(d / "a.cif"))
    (d / "b.cif").write_text("not a cif at all\n")
    res = runner.invoke(app, ["predict", "--cif-dir", str(d)])
    assert res.exit_code == 2 and "b.cif" in res.output
    out = tmp_path / "o.csv"
    res = runner.invoke(app, ["predict", "--cif-dir", str(d), "--on-error", "skip", "--output", str(out)])
    assert res.exit_code == 0, res.output
    got = pd.read_csv(out, keep_default_na=False)
    assert list(got["error"].eq("")) == [True, False]
    assert "b.cif" in got.loc[1, "error"] and got.loc[0, "formula"] == "Na1P1S1"


def test_predict_on_error_is_checked():
    res = runner.invoke(app, ["predict", "Na3PS4", "--on-error", "ignore"])
    assert res.exit_code == 2 and "--on-error 'ignore'" in res.output


def test_evaluate_json_shows_baselines_beside_models(tiny_csv):
    import json

    res = runner.invoke(app, ["evaluate", "--data", str(tiny_csv), "--cv", "family", "--models", "hist_gbm", "--json"])
    assert res.exit_code == 0, res.output
    # strict JSON (no NaN) on stdout; progress goes to stderr
    out = json.loads(res.stdout, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    learners = {(m["learner"], m["target"]) for m in out["metrics"]}
    for learner in ("global_median", "family_median", "hist_gbm"):
        assert (learner, "log10_sigma_S_cm") in learners and (learner, "ea_eV") in learners
    bad = runner.invoke(app, ["evaluate", "--data", str(tiny_csv), "--models", "svm"])
    assert bad.exit_code == 2 and "unknown learner(s) ['svm']" in bad.output


def test_train_gnn_with_cv_and_mlflow_then_predict_cif(tiny_csv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = tmp_path / "gnn"
    res = runner.invoke(app, ["train", "--data", str(tiny_csv), "--model", "gnn", "--cv", "grouped", "--n-splits",
                              "2", "--out", str(out), "--gnn-epochs", "2", "--gnn-members", "2",
                              "--tracking-uri", uri, "--experiment", "g"])
    assert res.exit_code == 0, res.output
    assert "fall back to composition-only models" in res.output and "gnn" in res.output
    # the default GNN directory is residual: composition model + the GNN's correction, its weights printed
    assert "residual GNN: answers composition model + GNN correction x" in res.output
    assert __import__("json").loads((out / "model.json").read_text())["config"]["residual"] is True
    report = __import__("json").loads((out / "structures_report.json").read_text())
    assert report["with_structure"] >= 3 and report["fallback_composition_only"] > 0
    assert (out / "weights.pt").exists() and (out / "cv_grouped_metrics.csv").exists()
    metrics = pd.read_csv(out / "cv_grouped_metrics.csv")
    assert {"gnn", "structure_features_et", "extra_trees", "global_median", "family_median"} <= set(metrics.learner)
    import mlflow

    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["g"])
    assert len(runs) == 1 and "metrics.cv_mae_ea_eV" in runs.columns
    assert "metrics.residual_weight_log10_sigma_S_cm" in runs.columns  # the residual GNN's weights
    assert "Residual GNN: answers the composition model" in (out / "README.md").read_text()
    from ml.structures import structure_for

    cif = tmp_path / "nzsp.cif"
    structure_for("Na3.4Zr1.6Sc0.4Si2PO12", "nasicon_R-3c").structure.to(filename=str(cif))
    res = runner.invoke(app, ["predict", "--model", str(out), "--cif", str(cif)])
    assert res.exit_code == 0, res.output
    assert "sigma(25 C)" in res.output and "Ea =" in res.output and "[gnn on cif]" in res.output
    # formulas: an inferred parent structure when one fits, else the composition model the directory carries
    assert (out / "parents.json").is_file() and (out / "composition" / "model.json").is_file()
    res = runner.invoke(app, ["predict", "--model", str(out), "Na3.4Zr1.6Sc0.4Si2PO12", "Na3ErCl6"])
    assert res.exit_code == 0, res.output
    assert "[gnn on prototype:nasicon_R-3c]" in res.output and "[composition]" in res.output
    res = runner.invoke(app, ["train", "--data", str(tiny_csv), "--gnn-epochs", "2", "--no-mlflow"])
    assert res.exit_code != 0 and "apply only to --model gnn" in res.output


def test_ui_runner_stops_its_process_group_on_sigterm(tmp_path):
    """`nacond ui`'s runner: SIGTERM ends the child and its own children (an mlflow server's workers), exit 0,
    no traceback."""
    import os
    import signal
    import subprocess
    import sys
    import time

    pidfile = tmp_path / "grandchild.pid"
    child = (f"import subprocess, time; p = subprocess.Popen(['sleep', '60']); "
             f"open({str(pidfile)!r}, 'w').write(str(p.pid)); time.sleep(60)")
    runner_code = (f"import sys; from training.cli import run_until_signal; "
                   f"sys.exit(run_until_signal([sys.executable, '-c', {child!r}]))")
    proc = subprocess.Popen([sys.executable, "-c", runner_code], stderr=subprocess.PIPE, text=True)
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text():
            break
        time.sleep(0.1)
    grandchild = int(pidfile.read_text())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    assert "Traceback" not in proc.stderr.read()
    time.sleep(0.3)
    status = f"/proc/{grandchild}/status"
    alive = os.path.exists(status) and "State:\tZ" not in open(status).read()  # a zombie is dead, not reaped
    assert not alive


def test_help_is_not_cut_at_80_columns():
    res = runner.invoke(app, ["train", "--help"])
    assert res.exit_code == 0
    assert "MLflow tracking URI (default: MLFLOW_TRACKING_URI" in res.output  # one line, not wrapped mid-phrase


def test_predict_warn_reports_each_failure_once(caplog):
    import logging

    with caplog.at_level(logging.WARNING):
        res = runner.invoke(app, ["predict", "Na3PS4", "Xx2O", "--on-error", "warn"])
    assert res.exit_code == 0, res.output
    assert res.output.count("warning: argument: formula 'Xx2O'") == 1
    assert not [r for r in caplog.records if r.name.startswith("serving")]  # no second copy through logging
