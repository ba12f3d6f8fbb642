"""Formula -> parent structure (ml.structures.infer) and a GNN model directory that answers formulas."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ml.errors import InvalidFormulaError, UnsupportedElementError
from ml.structures.infer import (
    InferenceError,
    ParentIndex,
    confidence_of,
    framework,
    is_crystalline,
    leave_one_out,
    roles_of,
)

ROOT = Path(__file__).resolve().parents[1]
REFS = [  # (formula, structure_type, family): a small labelled set in the dataset's vocabulary
    ("Na3Zr2Si2PO12", "nasicon_C2c", "nasicon"),
    ("Na3.2Zr2Si2.2P0.8O12", "nasicon_C2c", "nasicon"),
    ("Na1.4Al0.4Ti1.6P3O12", "nasicon_R-3c", "nasicon"),
    ("Na3.4Zr1.6Sc0.4Si2PO12", "nasicon", "nasicon"),
    ("Na3SbS4", "Na3SbS4_cubic", "sulfide"),
    ("Na2.88Sb0.88W0.12S4", "Na3SbS4_cubic", "sulfide"),
    ("Na3YCl6", "Na3YCl6_P21n", "halide"),
    ("Na2.25Y0.25Zr0.75Cl6", "Na3YCl6_P21n", "halide"),
    ("Na0.75La1.75Cl6", "UCl3_P63m", "halide"),
    ("Na2B12H12", "closo_borate", "complex_hydride"),
    ("Na11Sn2PS12", "Na11Sn2PS12", "sulfide"),
    ("Na25Si75O150Cl25", "glass_Na2O-NaCl-SiO2", "other"),  # not crystalline: never a parent
    ("Na3PS4", "unknown", "sulfide"),
]


def _index() -> ParentIndex:
    f, t, fam = zip(*REFS, strict=True)
    return ParentIndex(f, t, fam)


def test_roles_group_isovalent_cations_and_keep_anions_apart():
    r = roles_of({"Na": 3, "Zr": 1.6, "Sc": 0.4, "Si": 2, "P": 1, "O": 12})
    assert r["X:O"] == pytest.approx(12 / 20) and r["Na"] == pytest.approx(3 / 20)
    assert roles_of({"Na": 2, "Hf": 1, "Cl": 6}).keys() == roles_of({"Na": 2, "Zr": 1, "Cl": 6}).keys()
    assert "cage" in roles_of({"Na": 2, "B": 12, "H": 12})
    assert not is_crystalline("unknown") and not is_crystalline("glass_phosphate") and is_crystalline("nasicon")
    assert framework("nasicon_C2c") == framework("nasicon") == "nasicon_R-3c"


def test_nearest_parent_of_a_doped_nasicon_maps_with_high_confidence():
    idx = _index()
    assert "glass_Na2O-NaCl-SiO2" not in idx.types and "unknown" not in idx.types
    inf = idx.infer("Na3.3Zr1.7Sc0.3Si2PO12")
    assert inf.ok and inf.guess.family == "nasicon" and inf.mapped.prototype == "nasicon_R-3c"
    assert framework(inf.guess.structure_type) == "nasicon_R-3c"
    assert inf.guess.confidence > 0.9 and inf.guess.distance < 0.05
    assert inf.mapped.composition_error < 1e-6
    inf = idx.infer("Na2.9Sb0.9W0.1S4")
    assert inf.ok and inf.mapped.prototype == "Na3SbS4_cubic"


def test_no_structure_when_the_parent_has_no_prototype_is_too_far_or_cannot_hold_the_formula():
    idx = _index()
    inf = idx.infer("Na11Sn2.1P0.9S12")  # nearest parent: the Na11Sn2PS12 type, which has no prototype yet
    assert not inf.ok and inf.guess.structure_type == "Na11Sn2PS12" and "has no prototype" in inf.reason
    inf = idx.infer("Na3ErCl6")  # the cryolite-type Na3YCl6 parent has one
    assert inf.ok and inf.mapped.prototype == "Na3YCl6_P21n" and inf.mapped.composition_error < 1e-6
    inf = idx.infer("NaFeO2")
    assert not inf.ok and "is at distance" in inf.reason and inf.guess.confidence < 0.5
    inf = idx.infer("Na3Zr2Si2PO12", max_error=-1.0)  # nothing fits a negative tolerance
    assert not inf.ok and "does not fit nasicon_R-3c" in inf.reason
    with pytest.raises(UnsupportedElementError, match="Xx"):
        idx.infer("Xx2O")
    with pytest.raises(InvalidFormulaError):
        idx.infer("Na3((PS4")


def test_confidence_falls_with_distance():
    c = confidence_of([0.0, 0.3, 0.6])
    assert c[0] > 0.9 and c[1] == pytest.approx(0.5) and c[2] < 0.05


def test_index_round_trips_and_bad_inputs_raise(tmp_path):
    idx = _index()
    back = ParentIndex.load(idx.save(tmp_path / "parents.json"))
    assert back.formulas == idx.formulas and back.types == idx.types
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InferenceError, match="bad.json.*cannot be read"):
        ParentIndex.load(tmp_path / "bad.json")
    (tmp_path / "old.json").write_text(json.dumps({"format_version": 0}))
    with pytest.raises(InferenceError, match="has format 0"):
        ParentIndex.load(tmp_path / "old.json")
    with pytest.raises(InferenceError, match="no reference composition has a crystalline structure type"):
        ParentIndex(["Na3PS4"], ["unknown"], ["sulfide"])
    import pandas as pd

    with pytest.raises(InferenceError, match="lacks column.*structure_type"):
        ParentIndex.from_frame(pd.DataFrame({"formula": ["Na3PS4"], "family": ["sulfide"]}))


def test_leave_one_out_reports_accuracy():
    r = leave_one_out(_index())
    assert r["n"] == 11 and 0.0 <= r["accuracy_framework"] <= 1.0
    assert r["accuracy_framework"] >= r["accuracy_structure_type"]
    assert set(r["by_confidence"]) == {"0.0-0.5", "0.5-0.8", "0.8-0.9", "0.9-1.0"}


# ------------------------------------------------------------------------------- GNN directory with formulas
@pytest.fixture(scope="module")
def gnn_dir(tmp_path_factory):
    """A tiny GNN ensemble directory carrying reference compositions and (a copy of) the default composition
    model, sealed like ``nacond train --model gnn`` seals it."""
    from pymatgen.core import Lattice, Structure

    from ml.models.gnn import GNNConfig, GNNEnsemble, structure_to_graph
    from ml.models.manifest import write_manifest
    from ml.structures.infer import COMPOSITION_DIR, PARENTS_FILE

    cfg = GNNConfig(hidden=8, n_layers=1, n_rbf=8, epochs=2, n_models=2, cutoff=4.5, max_neighbors=6)
    cells = [Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [{"Na": occ}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
             .get_primitive_structure() for a in (5.5, 5.8, 6.1) for occ in (0.7, 1.0)]
    graphs = [structure_to_graph(c, cutoff=cfg.cutoff, max_neighbors=cfg.max_neighbors, n_rbf=cfg.n_rbf)
              for c in cells]
    d = tmp_path_factory.mktemp("gnn") / "gnn"
    GNNEnsemble(cfg).fit(graphs, np.column_stack([np.linspace(-6, -2, 6), np.linspace(0.6, 0.2, 6)])).save(
        d, extra={"training_domain": {"elements": ["Cl", "Na"], "spacegroups": [225]}})
    _index().save(d / PARENTS_FILE)
    shutil.copytree(ROOT / "models" / "default", d / COMPOSITION_DIR)
    write_manifest(d)
    cells[0].to(filename=str(d.parent / "NaCl.cif"))
    return d


def test_gnn_directory_answers_formulas_through_an_inferred_structure_or_its_composition_model(gnn_dir):
    from serving.structure_predictor import GNNPredictor

    p = GNNPredictor.load(gnn_dir)
    rows = p.predict_many(["Na3.3Zr1.7Sc0.3Si2PO12", "Na11Sn2.1P0.9S12", "Li3PS4", gnn_dir.parent / "NaCl.cif"])
    nasicon, chloride, lithium, cif = rows
    assert nasicon["model_used"] == "gnn" and nasicon["structure_source"] == "prototype:nasicon_R-3c"
    assert 0.9 < nasicon["structure_confidence"] <= 1.0 and np.isfinite(nasicon["log10_sigma_S_cm"])
    assert "structure inferred: parent" in nasicon["domain_notes"] and nasicon["formula"] == "Na3.3Zr1.7Sc0.3Si2PO12"
    assert chloride["model_used"] == "composition" and chloride["structure_source"] == ""
    assert chloride["structure_confidence"] is None and "has no prototype" in chloride["domain_notes"]
    assert np.isfinite(chloride["log10_sigma_S_cm"]) and chloride["error"] == ""
    # a valid formula without the mobile ion is still answered (out of domain), never an error
    assert lithium["model_used"] == "composition" and lithium["error"] == "" and not lithium["in_domain"]
    assert cif["model_used"] == "gnn" and cif["structure_source"] == "cif" and cif["structure_confidence"] is None


def test_gnn_directory_bad_inputs(gnn_dir):
    from serving.structure_predictor import GNNPredictor

    p = GNNPredictor.load(gnn_dir)
    with pytest.raises(UnsupportedElementError, match="Xx"):
        p.predict_many(["Xx2O"], on_error="raise")
    with pytest.raises(ValueError, match="on_error must be"):
        p.predict_many(["Na3PS4"], on_error="ignore")
    row = p.predict_many(["Xx2O", "Na3SbS4"], on_error="skip")
    assert "Xx" in row[0]["error"] and row[1]["model_used"] == "gnn"


def test_gnn_directory_without_references_falls_back_to_the_default_composition_model(gnn_dir, tmp_path):
    from ml.models.manifest import write_manifest
    from serving.structure_predictor import GNNPredictor

    old = tmp_path / "old"
    shutil.copytree(gnn_dir, old)
    (old / "parents.json").unlink()
    shutil.rmtree(old / "composition")
    write_manifest(old)
    row = GNNPredictor.load(old).predict_many(["Na3Zr2Si2PO12"])[0]
    assert row["model_used"] == "composition" and "carries no reference compositions" in row["domain_notes"]


def test_predict_cli_answers_formulas_with_a_gnn_directory(gnn_dir, tmp_path):
    import csv

    from training.cli import app

    out = tmp_path / "p.csv"
    res = CliRunner().invoke(app, ["predict", "--model", str(gnn_dir), "Na3.3Zr1.7Sc0.3Si2PO12", "Na11Sn2.1P0.9S12",
                                   "--output", str(out)])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(out.open()))
    assert [r["model_used"] for r in rows] == ["gnn", "composition"]
    assert rows[0]["structure_source"] == "prototype:nasicon_R-3c"


def test_composition_predictions_say_which_model_answered():
    import serving

    r = serving.predict("Na3PS4")
    assert r.model_used == "composition" and r.structure_source == "" and r.structure_confidence is None
    assert r.to_row()["model_used"] == "composition"


def test_training_gives_unknown_structure_types_an_inferred_parent():
    import pandas as pd

    from training.structure_train import structured_frame

    f, t, fam = zip(*REFS, strict=True)
    frame = pd.DataFrame({"formula": [*f, "Na3.3Zr1.7Sc0.3Si2PO12"], "structure_type": [*t, "unknown"],
                          "family": [*fam, "nasicon"]})
    sub, mapped, report = structured_frame(frame)
    inferred = report["inferred_for_unknown_structure_type"]
    by = {r["formula"]: r for r in inferred}
    assert set(by) == {"Na3.3Zr1.7Sc0.3Si2PO12", "Na3PS4"}  # Na3PS4 is labelled 'unknown' in REFS
    assert by["Na3.3Zr1.7Sc0.3Si2PO12"]["prototype"] == "nasicon_R-3c"
    assert by["Na3.3Zr1.7Sc0.3Si2PO12"]["confidence"] > 0.9
    assert "Na3.3Zr1.7Sc0.3Si2PO12" in set(sub["formula"])
    _, _, plain = structured_frame(frame, infer_unknown=False)
    assert plain["with_structure"] == report["with_structure"] - 2 and not plain["inferred_for_unknown_structure_type"]


def test_residual_gnn_directory_answers_composition_model_plus_its_correction(gnn_dir, tmp_path):
    """A residual GNN directory (``GNNConfig.residual``) answers a formula with the composition model it carries
    plus the GNN's correction on the inferred structure, and says so."""
    from ml.models.gnn import GNNEnsemble
    from ml.models.manifest import write_manifest
    from serving.structure_predictor import GNNPredictor

    res = tmp_path / "residual"
    shutil.copytree(gnn_dir, res)
    meta = json.loads((res / "model.json").read_text())
    meta["config"]["residual"] = True
    meta["shrink"] = [0.5, 0.25]
    (res / "model.json").write_text(json.dumps(meta))
    write_manifest(res)
    p = GNNPredictor.load(res)
    assert p.residual and not GNNPredictor.load(gnn_dir).residual
    row = p.predict_many(["Na3.3Zr1.7Sc0.3Si2PO12"])[0]
    comp = p.composition.predict_many(["Na3.3Zr1.7Sc0.3Si2PO12"])[0].to_row()
    assert row["model_used"] == "gnn" and row["structure_source"] == "prototype:nasicon_R-3c"
    assert row["log10_sigma_S_cm"] == pytest.approx(comp["log10_sigma_S_cm"] + row["gnn_correction_log10_sigma"])
    assert row["ea_eV"] == pytest.approx(comp["ea_eV"] + row["gnn_correction_ea_eV"])
    # the correction is the plain ensemble's output scaled by the stored shrink factors
    plain = GNNPredictor.load(gnn_dir).predict_many(["Na3.3Zr1.7Sc0.3Si2PO12"])[0]
    assert row["gnn_correction_log10_sigma"] == pytest.approx(0.5 * plain["log10_sigma_S_cm"])
    assert GNNEnsemble.load(res).shrink.tolist() == [0.5, 0.25]
    # the interval: the composition model's, moved by the correction (the tiny GNN has no calibrated one)
    assert row["log10_sigma_lo"] == pytest.approx(comp["log10_sigma_lo"] + row["gnn_correction_log10_sigma"])
    assert row["ea_hi_eV"] == pytest.approx(comp["ea_hi_eV"] + row["gnn_correction_ea_eV"])
    assert row["in_domain"] == (comp["in_domain"] and "space group" not in row["domain_notes"])
