import json

import pytest
from typer.testing import CliRunner

from ml.data import DEFAULT_DATASET, dataset_stamp, dataset_stats, load_dataset, validate_dataset
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


def test_reference_is_provenance_enough(tiny_rows, write_dataset):
    tiny_rows["reference"] = ""
    tiny_rows.loc[0, ["doi", "seed_ref"]] = ""
    tiny_rows.loc[0, "reference"] = "Winand, J. Mater. Sci. 25 (1990) 4008"
    assert validate_dataset(write_dataset(tiny_rows)).ok


def test_malformed_reference_is_caught(tiny_rows, write_dataset):
    tiny_rows["reference"] = ""
    tiny_rows.loc[0, ["doi", "seed_ref"]] = ""
    tiny_rows.loc[0, "reference"] = "some paper"
    f = faults_of(validate_dataset(write_dataset(tiny_rows)), "reference")
    assert f and "does not look like" in f[0].message and f[0].entry_id == tiny_rows.loc[0, "entry_id"]


def test_doi_in_two_cases_is_caught(tiny_rows, write_dataset):
    i = tiny_rows.index[tiny_rows["doi"].str.upper().ne(tiny_rows["doi"])]
    a, b = i[0], i[1]
    tiny_rows.loc[b, "doi"] = tiny_rows.loc[a, "doi"].upper()
    msgs = [f.message for f in faults_of(validate_dataset(write_dataset(tiny_rows)), "doi")
            if f.entry_id == tiny_rows.loc[b, "entry_id"]]
    assert any("not stored lower-case" in m for m in msgs)
    assert any(f"DOI of {tiny_rows.loc[a, 'entry_id']} written in another letter case" in m for m in msgs)


def test_row_without_target_is_caught(tiny_rows, write_dataset):
    i = tiny_rows.index[tiny_rows["sigma_S_cm"].ne("") & tiny_rows["ea_eV"].eq("")][0]
    tiny_rows.loc[i, "temperature_K"] = ""
    f = faults_of(validate_dataset(write_dataset(tiny_rows)), "temperature_K")
    assert f and "feeds no target" in f[0].message and f[0].entry_id == tiny_rows.loc[i, "entry_id"]
    res = runner.invoke(app, ["data", "validate", str(write_dataset(tiny_rows))])
    assert res.exit_code == 1 and tiny_rows.loc[i, "entry_id"] in res.output


def test_same_as_must_name_a_primary_row(tiny_rows, write_dataset):
    tiny_rows["same_as"] = ""
    tiny_rows.loc[1, "same_as"] = "NOPE-0001"
    f = faults_of(validate_dataset(write_dataset(tiny_rows)), "same_as")
    assert f and "not an entry_id" in f[0].message and f[0].entry_id == tiny_rows.loc[1, "entry_id"]


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

    dup["sigma_S_cm"] = str(float(dup["sigma_S_cm"].iloc[0]) * 1.015)  # within 2 %: still the same value
    both = pd.concat([tiny_rows, dup], ignore_index=True)
    report = validate_dataset(write_dataset(both))
    f = [x for x in faults_of(report, "duplicate") if x.entry_id == "DUP-0001"]
    assert f and f"same_as={tiny_rows.loc[0, 'entry_id']}" in f[0].message
    res = runner.invoke(app, ["data", "validate", str(write_dataset(both))])
    assert res.exit_code == 1 and "DUP-0001" in res.output
    # flagged as a repeat of the primary row, it is accepted and left out of training
    both["same_as"] = ""
    both.loc[both.index[-1], "same_as"] = tiny_rows.loc[0, "entry_id"]
    d = write_dataset(both)
    assert validate_dataset(d).ok
    from ml.targets import training_frame

    frame = training_frame(load_dataset(d))
    assert not frame["entry_ids"].str.contains("DUP-0001").any()


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


def test_dataset_stamp_names_the_rows_and_changes_with_them(tiny_rows, write_dataset):
    """Benchmarks stamp their results with it; a changed data.csv must give another stamp."""
    d = write_dataset(tiny_rows)
    first = dataset_stamp(d)
    assert first["rows"] == len(tiny_rows)
    assert first["sha256"] == json.loads((d / "metadata.json").read_text())["sha256"]
    second = dataset_stamp(write_dataset(tiny_rows.iloc[:-1]))
    assert second["rows"] == len(tiny_rows) - 1 and second["sha256"] != first["sha256"]
    with pytest.raises(DatasetError, match="nowhere"):
        dataset_stamp(d.parent / "nowhere")


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
    assert s["usable_rows"] == len(tiny_rows) and s["secondary_rows"] == 0 and s["rows_without_target"] == 0
    assert 0 <= s["provenance"]["untraced_pct"] <= 100
    res = runner.invoke(app, ["data", "stats", str(d), "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["rows"] == len(tiny_rows)
