"""Inputs that used to crash, hang or pass silently (issue 14): each now gives a clear error naming the input,
or a correct result."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from cif_text import cif_text
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ml.errors import DatasetError, InvalidFormulaError, ModelLoadError, StructureParseError, UnsupportedElementError
from ml.formula import parse_formula
from ml.models.composition import NacondModel
from ml.models.manifest import MANIFEST, staged_dir, write_manifest
from ml.structures.cif import MAX_SITES, MAX_SYMOPS, StructureTooLargeError, parse_cif_text, read_cif
from serving import Predictor
from serving.app import MAX_BODY_BYTES, create_app
from training.cli import app

runner = CliRunner()
DEFAULT = Path(__file__).resolve().parents[1] / "models" / "default"


@pytest.fixture(scope="module")
def predictor():
    return Predictor.load()


# ------------------------------------------------------------------------------------------------- formulas


@pytest.mark.parametrize("formula, error, match", [
    ("Na3OgO4", UnsupportedElementError, "Og"),
    ("NaRf2O3", UnsupportedElementError, "Rf"),
    ("Na1e309Cl", InvalidFormulaError, "non-finite"),
    ("Na1e5Cl", InvalidFormulaError, "at most"),
    ("Na0Cl", InvalidFormulaError, "zero amount"),
    ("Na0.0PS4", InvalidFormulaError, "zero amount"),
])
def test_formula_gate(formula, error, match):
    with pytest.raises(error, match=match) as exc:
        parse_formula(formula)
    assert formula in str(exc.value)


@pytest.mark.parametrize("hydrate", ["Na2SO4·10H2O", "Na2SO4.10H2O", "Na2SO4 10H2O", "Na2SO4*10H2O"])
def test_hydrates_add_up(hydrate):
    assert parse_formula(hydrate).get_el_amt_dict() == {"Na": 2, "S": 1, "O": 14, "H": 20}


def test_decimals_are_not_hydrates():
    assert parse_formula("Na2.88Sb0.88W0.12S4").get_el_amt_dict() == {"Na": 2.88, "Sb": 0.88, "W": 0.12, "S": 4}
    assert parse_formula("Na3 P S4").get_el_amt_dict() == {"Na": 3, "P": 1, "S": 4}


def test_hydrate_echo_shows_what_was_read(predictor):
    r = predictor.predict("Na2SO4.10H2O")
    assert r.formula == "Na2SO14H20" and r.input == "Na2SO4.10H2O"


def test_predict_many_takes_one_string_as_one_item(predictor):
    out = predictor.predict_many("Na3PS4")
    assert len(out) == 1 and out[0].formula == "Na3PS4"


def test_unsupported_element_is_a_failure_in_batches(predictor):
    out = predictor.predict_many(["Na3PS4", "NaRf2O3"], on_error="skip")
    assert out[0].ok and not out[1].ok and "Rf" in out[1].error


def test_batch_and_single_agree(predictor):
    one = predictor.predict("Na3.2Sb0.8Sn0.2S4")
    many = predictor.predict_many(["Na3PS4", "Na3.2Sb0.8Sn0.2S4"])[1]
    assert one.log10_sigma_S_cm == many.log10_sigma_S_cm


# ------------------------------------------------------------------------------------------------------ CIFs


def test_fifo_device_and_directory_are_refused_fast(tmp_path):
    fifo = tmp_path / "x.cif"
    os.mkfifo(fifo)
    link = tmp_path / "z.cif"
    link.symlink_to("/dev/zero")
    for path, what in ((fifo, "FIFO"), (link, "device"), (tmp_path, "directory")):
        t0 = time.perf_counter()
        with pytest.raises(StructureParseError, match=what) as exc:
            read_cif(path)
        assert str(path) in str(exc.value) and time.perf_counter() - t0 < 1.0


def _cif(n_sites: int, n_ops: int) -> str:
    ops = [f"x,y,z{'+0' * (k % 2)}" for k in range(n_ops)]
    sites = [(f"Na{k}", "Na", f"{(k % 97) / 97:.4f}", f"{(k % 89) / 89:.4f}", f"{(k % 83) / 83:.4f}", 1)
             for k in range(n_sites)]
    return cif_text(sites, ops=ops)


def test_cif_counts_are_checked_before_parsing():
    t0 = time.perf_counter()
    with pytest.raises(StructureTooLargeError, match="symmetry operations"):
        parse_cif_text(_cif(2, 20_000), "big.cif")
    with pytest.raises(StructureTooLargeError, match=f"at most {MAX_SITES}"):
        parse_cif_text(_cif(80_000, 1), "many.cif")
    with pytest.raises(StructureTooLargeError, match="would expand"):
        parse_cif_text(_cif(1000, MAX_SYMOPS), "expand.cif")
    assert time.perf_counter() - t0 < 5.0


def test_not_a_cif_is_named():
    with pytest.raises(StructureParseError, match="notes.cif.*cannot be read: no _atom_site"):
        parse_cif_text("hello", "notes.cif")


# ------------------------------------------------------------------------------------------------------ REST


@pytest.fixture(scope="module")
def client(predictor):
    return TestClient(create_app(predictor))


def test_rest_never_reads_server_paths(client, tmp_path):
    real = tmp_path / "real.cif"
    real.write_text(_cif(1, 1))
    for formula in (str(real), "/nonexistent/x.cif"):
        res = client.post("/predict", json={"formula": formula})
        assert res.status_code == 422 and "formulas only" in res.json()["detail"]
        assert "does not exist" not in res.json()["detail"]


def test_rest_accepts_cif_text(client):
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.cif import CifWriter

    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    res = client.post("/predict", json={"cif": str(CifWriter(nacl))})
    assert res.status_code == 200 and res.json()["prediction"]["sigma_S_cm"] > 0


def test_rest_bad_elements_are_422_not_500(client):
    for f in ("Na3OgO4", "Na1e309Cl", "NaRf2O3"):
        res = client.post("/predict", json={"formula": f})
        assert res.status_code == 422 and f in res.json()["detail"]


def test_rest_chunked_oversized_body_gets_413(client):
    sent = {"n": 0}

    def body():
        chunk = b" " * 65536
        for _ in range(64):  # 4 MB, no Content-Length
            sent["n"] += len(chunk)
            yield chunk

    res = client.post("/predict", content=body(), headers={"content-type": "application/json"})
    assert res.status_code == 413 and str(MAX_BODY_BYTES) in res.json()["detail"]


# -------------------------------------------------------------------------------------------- model integrity


@pytest.fixture
def model_copy(tmp_path):
    d = tmp_path / "model"
    shutil.copytree(DEFAULT, d)
    return d


@pytest.mark.parametrize("name", ["model.json", "arrhenius/arrhenius.json", "README.md", "estimators.npz",
                                  "arrhenius/MANIFEST.json"])
def test_editing_any_file_fails_loading(model_copy, name):
    p = model_copy / name
    data = p.read_bytes()
    p.write_bytes(data.replace(b"2", b"7", 1) if b"2" in data else data + b" ")
    with pytest.raises(ModelLoadError, match="checksum"):
        Predictor.load(model_copy)


def test_manifest_cannot_be_switched_off(model_copy):
    info = json.loads((model_copy / "model.json").read_text())
    info["files_sha256"] = {}
    (model_copy / "model.json").write_text(json.dumps(info))
    (model_copy / MANIFEST).unlink()
    with pytest.raises(ModelLoadError, match=MANIFEST):
        Predictor.load(model_copy)


def test_unlisted_file_fails_loading(model_copy):
    (model_copy / "extra.txt").write_text("x")
    with pytest.raises(ModelLoadError, match="extra.txt"):
        NacondModel.load(model_copy)


def test_malformed_arrays_are_model_load_errors(model_copy):
    (model_copy / "estimators.npz").write_bytes(b"not a zip")
    # even with matching checksums (model.json's and the manifest), a broken file is a ModelLoadError
    info = json.loads((model_copy / "model.json").read_text())
    from ml.utils import sha256_of

    info["files_sha256"]["estimators.npz"] = sha256_of(model_copy / "estimators.npz")
    (model_copy / "model.json").write_text(json.dumps(info))
    write_manifest(model_copy)
    with pytest.raises(ModelLoadError, match="cannot be loaded"):
        NacondModel.load(model_copy)


def test_interrupted_write_leaves_the_old_model(model_copy):
    before = sorted(p.name for p in model_copy.iterdir())
    with pytest.raises(RuntimeError), staged_dir(model_copy) as tmp:
        (tmp / "model.json").write_text("{}")
        raise RuntimeError("killed")
    assert sorted(p.name for p in model_copy.iterdir()) == before
    assert not [p for p in model_copy.parent.iterdir() if p.name.startswith(".model.")]
    Predictor.load(model_copy)


# --------------------------------------------------------------------------------------------------- training


def _train(data: Path, out: Path, *extra: str):
    return runner.invoke(app, ["train", "--data", str(data), "--cv", "none", "--out", str(out), "--no-mlflow",
                               "--no-learning-curve", *extra])


def test_train_refuses_an_invalid_row(tiny_rows, write_dataset, tmp_path):
    i = tiny_rows.index[tiny_rows["ea_eV"].ne("")][0]
    tiny_rows.loc[i, "ea_eV"] = "50"
    res = _train(write_dataset(tiny_rows), tmp_path / "m")
    assert res.exit_code == 2 and tiny_rows.loc[i, "entry_id"] in res.output and "ea_eV" in res.output
    assert not (tmp_path / "m").exists()


def test_header_only_dataset_is_named(tiny_rows, write_dataset, tmp_path):
    d = write_dataset(tiny_rows.iloc[:0])
    res = _train(d, tmp_path / "m")
    assert res.exit_code == 2 and "no rows" in res.output
    res = runner.invoke(app, ["data", "validate", str(d)])
    assert res.exit_code == 0 and "0 rows" in res.output


def test_train_without_ea_then_predict(tiny_rows, write_dataset, tmp_path):
    tiny_rows = tiny_rows[tiny_rows["sigma_S_cm"].ne("") & tiny_rows["temperature_K"].ne("")].copy()
    tiny_rows["ea_eV"] = ""
    tiny_rows["ea_T_range_K"] = ""
    res = _train(write_dataset(tiny_rows), tmp_path / "m")
    assert res.exit_code == 0, res.output
    r = Predictor.load(tmp_path / "m").predict("Na3PS4")
    assert r.sigma_S_cm > 0 and r.ea_eV != r.ea_eV  # NaN: no Ea model


def test_train_and_predict_another_mobile_ion(tiny_rows, write_dataset, tmp_path):
    li = tiny_rows.copy()
    li["formula"] = li["formula"].str.replace("Na", "Li", regex=False)
    li["mobile_ion"] = "Li"
    res = _train(write_dataset(li), tmp_path / "m", "--mobile-ion", "Li")
    assert res.exit_code == 0, res.output
    p = Predictor.load(tmp_path / "m")
    r = p.predict("Li3PS4")
    assert r.sigma_S_cm > 0 and not any("no Li" in n for n in r.domain_notes)
    assert any("no Li" in n for n in p.predict("Na3PS4").domain_notes)
    assert p.predict("Li3PS4", temperature_K="60C").temperature_K == pytest.approx(333.15)


def test_train_out_refuses_an_unrelated_folder(tiny_rows, write_dataset, tmp_path):
    other = tmp_path / "notes"
    other.mkdir()
    (other / "README.md").write_text("my notes")
    res = _train(write_dataset(tiny_rows), other)
    assert res.exit_code == 2 and "--force" in res.output
    assert (other / "README.md").read_text() == "my notes"


def test_outputs_that_cannot_be_files(tmp_path):
    res = runner.invoke(app, ["predict", "Na3PS4", "--output", str(tmp_path)])
    assert res.exit_code == 2 and "is a directory" in res.output
    res = runner.invoke(app, ["predict", "Na3PS4", "--output", str(tmp_path / ("x" * 300 + ".csv"))])
    assert res.exit_code == 2 and "255" in res.output


# ------------------------------------------------------------------------------------------------- importers


def test_import_obelix_style_table(tmp_path):
    src = tmp_path / "obx.csv"
    pd.DataFrame({"ID": ["a1", "a2", "a3"], "Reduced Composition": ["Li3PS4", "LiX", "Li7La3Zr2O12"],
                  "True Composition": ["Li3PS4", "LiXx", "Li7La3Zr2O12"],
                  "Ionic conductivity (S cm-1)": ["1E-4", "1E-5", "<1E-10"], "Space group": ["P n m a"] * 3,
                  "Family": ["thio", "x", "garnet"], "DOI": ["10.1/A", "", "10.2/b"]}).to_csv(src, index=False)
    res = runner.invoke(app, ["data", "import", str(src), "--format", "obelix", "--out", str(tmp_path / "d")])
    assert res.exit_code == 0, res.output
    assert "skipped obelix row a2" in res.output and "Xx" in res.output
    df = pd.read_csv(tmp_path / "d" / "data.csv", dtype=str, keep_default_na=False)
    assert list(df["sigma_censor"]) == ["", "<"] and list(df["doi"]) == ["10.1/a", "10.2/b"]
    assert runner.invoke(app, ["data", "validate", str(tmp_path / "d")]).exit_code == 0


def test_import_rejects_the_wrong_table(tmp_path):
    src = tmp_path / "x.csv"
    src.write_text("a,b\n1,2\n")
    res = runner.invoke(app, ["data", "import", str(src), "--format", "liverpool", "--out", str(tmp_path / "d")])
    assert res.exit_code == 2 and "not a liverpool table" in res.output
    with pytest.raises(DatasetError, match="one of obelix"):
        from ml.importers import import_table

        import_table(src, "csv")


def test_manifest_itself_is_checked(model_copy):
    m = model_copy / MANIFEST
    m.write_text(m.read_text().replace('"sha256"', '"sha257"', 1))
    with pytest.raises(ModelLoadError, match="unreadable"):
        Predictor.load(model_copy)
