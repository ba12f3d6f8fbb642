import json

import pytest
from typer.testing import CliRunner

from ml.data import DEFAULT_DATASET, dataset_stats, load_dataset, validate_dataset
from ml.errors import DatasetError
from training.cli import app

runner = CliRunner()


def faults_of(report, column):
    return [f for f in report.errors if f.column == column]


def test_shipped_dataset_validates_without_errors():
    report = validate_dataset(DEFAULT_DATASET)
    assert report.n_rows > 0
    assert report.ok, "\n".join(map(str, report.errors[:20]))


def test_tiny_fixture_is_clean(tiny_rows, write_dataset):
    assert validate_dataset(write_dataset(tiny_rows)).ok


@pytest.mark.parametrize("factor", [1000.0, 1e-6])
def test_unit_slip_is_caught(tiny_rows, write_dataset, factor):
    i = tiny_rows.index[tiny_rows["sigma_S_cm"].ne("")][0]
    tiny_rows.loc[i, "sigma_S_cm"] = str(float(tiny_rows.loc[i, "sigma_S_cm"]) * factor)
    if factor < 1:  # push a tiny value below 1e-14
        tiny_rows.loc[i, "sigma_S_cm"] = "1e-16"
    report = validate_dataset(write_dataset(tiny_rows))
    assert [f.entry_id for f in faults_of(report, "sigma_S_cm")] == [tiny_rows.loc[i, "entry_id"]]
    assert "unit slip" in faults_of(report, "sigma_S_cm")[0].message


def test_ea_in_kj_per_mol_is_caught(tiny_rows, write_dataset):
    i = tiny_rows.index[tiny_rows["ea_eV"].ne("")][0]
    tiny_rows.loc[i, "ea_eV"] = "25.1"
    assert faults_of(validate_dataset(write_dataset(tiny_rows)), "ea_eV")


def test_celsius_as_kelvin_is_caught(tiny_rows, write_dataset):
    tiny_rows.loc[0, "temperature_K"] = "25"
    assert "outside" in faults_of(validate_dataset(write_dataset(tiny_rows)), "temperature_K")[0].message


def test_missing_provenance_is_caught(tiny_rows, write_dataset):
    tiny_rows.loc[0, ["doi", "seed_ref"]] = ""
    f = faults_of(validate_dataset(write_dataset(tiny_rows)), "doi")
    assert f and "no provenance" in f[0].message and f[0].entry_id == tiny_rows.loc[0, "entry_id"]


def test_bad_doi_is_caught(tiny_rows, write_dataset):
    tiny_rows.loc[0, "doi"] = "https://example.org/paper"
    assert "not a DOI" in faults_of(validate_dataset(write_dataset(tiny_rows)), "doi")[0].message


def test_composition_without_na_is_caught(tiny_rows, write_dataset):
    tiny_rows.loc[1, "formula"] = "Li3PS4"
    f = faults_of(validate_dataset(write_dataset(tiny_rows)), "formula")
    assert f and "does not contain the mobile ion 'Na'" in f[0].message


@pytest.mark.parametrize("formula, match", [("Xx2O", "not a chemical element"), ("Na3(PS4", "unbalanced"),
                                            ("Na3PS4-xClx", "contains '-'")])
def test_bad_formula_is_caught(tiny_rows, write_dataset, formula, match):
    tiny_rows.loc[2, "formula"] = formula
    f = faults_of(validate_dataset(write_dataset(tiny_rows)), "formula")
    assert f and match in f[0].message


def test_duplicate_id_is_caught(tiny_rows, write_dataset):
    tiny_rows.loc[3, "entry_id"] = tiny_rows.loc[4, "entry_id"]
    f = faults_of(validate_dataset(write_dataset(tiny_rows)), "entry_id")
    assert len(f) == 2 and all("not unique" in x.message for x in f)


def test_duplicate_measurement_is_caught(tiny_rows, write_dataset):
    dup = tiny_rows.iloc[[0]].copy()
    dup["entry_id"] = "DUP-0001"
    import pandas as pd

    report = validate_dataset(write_dataset(pd.concat([tiny_rows, dup], ignore_index=True)))
    assert any(f.entry_id == "DUP-0001" for f in faults_of(report, "duplicate"))


def test_bad_checksum_is_caught(tiny_rows, write_dataset):
    d = write_dataset(tiny_rows)
    with open(d / "data.csv", "a") as fh:
        fh.write("\n")
    report = validate_dataset(d)
    assert faults_of(report, "sha256")
    with pytest.raises(DatasetError, match="sha256"):
        load_dataset(d)


def test_missing_dataset_raises_naming_it(tmp_path):
    with pytest.raises(DatasetError, match="nowhere"):
        load_dataset(tmp_path / "nowhere")


def test_cli_validate_exit_codes(tiny_rows, write_dataset):
    ok = runner.invoke(app, ["data", "validate", str(write_dataset(tiny_rows))])
    assert ok.exit_code == 0, ok.output
    tiny_rows.loc[0, "doi"] = ""
    tiny_rows.loc[0, "seed_ref"] = ""
    bad = runner.invoke(app, ["data", "validate", str(write_dataset(tiny_rows))])
    assert bad.exit_code == 1
    assert tiny_rows.loc[0, "entry_id"] in bad.output and "no provenance" in bad.output


def test_stats_counts(tiny_rows, write_dataset):
    d = write_dataset(tiny_rows)
    s = dataset_stats(load_dataset(d))
    assert s["rows"] == len(tiny_rows)
    assert sum(v["rows"] for v in s["families"].values()) == len(tiny_rows)
    assert s["with_ea"] == int(tiny_rows["ea_eV"].ne("").sum())
    assert sum(s["temperature_bands"].values()) == len(tiny_rows)
    res = runner.invoke(app, ["data", "stats", str(d), "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["rows"] == len(tiny_rows)
