"""Crystal graphs from disordered structures, a tiny GNN ensemble, its save/load and its CLI path."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from typer.testing import CliRunner

from ml.models.composition import ModelLoadError
from ml.models.gnn import GNNConfig, GNNEnsemble, GraphError, structure_to_graph
from serving.structure_predictor import GNNPredictor, is_gnn_model

TINY = GNNConfig(hidden=8, n_layers=1, n_rbf=8, epochs=2, n_models=2, cutoff=4.5, max_neighbors=6)


def _cell(a: float, na_occ: float, dopant: float = 0.0) -> Structure:
    """A rock-salt-like NaCl cell with partial Na occupancy and Br on the anion site (synthetic)."""
    anion = {"Cl": 1 - dopant, "Br": dopant} if dopant else "Cl"
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [{"Na": na_occ}, anion],
                                     [[0, 0, 0], [0.5, 0.5, 0.5]]).get_primitive_structure()


def test_graph_node_features_are_occupancies_and_edges_are_periodic():
    g = structure_to_graph(_cell(5.64, 0.75, dopant=0.25), cutoff=4.5, max_neighbors=6, n_rbf=8)
    assert g.num_nodes == 2  # primitive cell: neighbours exist only through periodic images
    na = g.x[:, 11]
    assert sorted(na.tolist()) == pytest.approx([0.0, 0.75])
    assert g.x[na > 0, 0].item() == pytest.approx(0.25)  # vacancy channel
    assert g.x[na == 0, 17].item() == pytest.approx(0.75) and g.x[na == 0, 35].item() == pytest.approx(0.25)
    assert g.edge_index.shape[1] == 12 and g.edge_attr.shape == (12, 8)


def test_graph_errors_name_the_structure():
    with pytest.raises(GraphError, match="KCl has no Na"):
        structure_to_graph(Structure(Lattice.cubic(6.3), ["K", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]))
    with pytest.raises(GraphError, match="no neighbour within 1.0 A"):
        structure_to_graph(_cell(5.64, 1.0), cutoff=1.0)


def test_tiny_gnn_trains_two_epochs_and_round_trips(tmp_path):
    cells = [_cell(a, occ, d) for a in (5.5, 5.7, 5.9) for occ in (0.8, 1.0) for d in (0.0, 0.3)]
    graphs = [structure_to_graph(c, cutoff=TINY.cutoff, max_neighbors=TINY.max_neighbors, n_rbf=TINY.n_rbf)
              for c in cells]
    rng = np.random.default_rng(0)
    Y = np.column_stack([rng.normal(-4, 1, len(cells)), rng.normal(0.4, 0.1, len(cells))])
    Y[::3, 1] = np.nan  # Ea missing for some: the masked loss must cope
    import torch

    ens = GNNEnsemble(TINY)
    torch.manual_seed(0)
    ens.fit(graphs, Y)
    assert len(ens.members) == 2
    out = ens.predict(graphs)
    assert out["log10_sigma_S_cm"].shape == (len(cells),)
    assert np.all(np.isfinite(out["log10_sigma_S_cm"])) and np.all(np.isfinite(out["ea_eV"]))
    assert np.all(out["ea_eV_lo"] <= out["ea_eV"]) and np.all(out["ea_eV"] <= out["ea_eV_hi"])
    ens.save(tmp_path / "gnn", extra={"training_domain": {"elements": ["Na", "Cl", "Br"], "spacegroups": [225]}})
    assert is_gnn_model(tmp_path / "gnn") and not is_gnn_model(tmp_path)
    back = GNNEnsemble.load(tmp_path / "gnn")
    again = back.predict(graphs)
    np.testing.assert_allclose(again["log10_sigma_S_cm"], out["log10_sigma_S_cm"], rtol=1e-6)
    # a corrupted weights file is refused
    (tmp_path / "gnn" / "weights.pt").write_bytes(b"not weights")
    with pytest.raises(ModelLoadError, match="weights.pt does not match its checksum"):
        GNNEnsemble.load(tmp_path / "gnn")


def test_training_changes_the_weights():
    import torch

    graphs = [structure_to_graph(_cell(a, 1.0), cutoff=4.5, max_neighbors=6, n_rbf=8) for a in (5.5, 5.8, 6.1)]
    cfg = GNNConfig(hidden=8, n_layers=1, n_rbf=8, epochs=2, n_models=1, bootstrap=False, cutoff=4.5,
                    max_neighbors=6)
    from ml.models.gnn import _network

    torch.manual_seed(cfg.seed * 1000)
    init = {k: v.clone() for k, v in _network(8, 1, 8, cfg.dropout).state_dict().items()}
    ens = GNNEnsemble(cfg).fit(graphs, np.array([[-3.0, 0.3], [-4.0, 0.4], [-5.0, 0.5]]))
    trained = ens.members[0].state_dict()
    assert any(not torch.allclose(init[k], trained[k]) for k in init)


def test_gnn_needs_two_structures():
    g = structure_to_graph(_cell(5.6, 1.0), cutoff=4.5, max_neighbors=6, n_rbf=8)
    with pytest.raises(ValueError, match="at least 2 training structures"):
        GNNEnsemble(TINY).fit([g], np.array([[-3.0, 0.3]]))


def test_predict_cli_with_a_gnn_model(tmp_path):
    from training.cli import app

    cells = [_cell(a, occ) for a in (5.5, 5.8, 6.1) for occ in (0.7, 1.0)]
    graphs = [structure_to_graph(c, cutoff=TINY.cutoff, max_neighbors=TINY.max_neighbors, n_rbf=TINY.n_rbf)
              for c in cells]
    ens = GNNEnsemble(TINY).fit(graphs, np.column_stack([np.linspace(-6, -2, 6), np.linspace(0.6, 0.2, 6)]))
    ens.save(tmp_path / "gnn", extra={"training_domain": {"elements": ["Cl", "Na"], "spacegroups": [225]}})
    good = tmp_path / "NaCl.cif"
    cells[0].to(filename=str(good))
    bad = tmp_path / "broken.cif"
    bad.write_text("data_broken\nnonsense\n")
    runner = CliRunner()
    res = runner.invoke(app, ["predict", "--model", str(tmp_path / "gnn"), "--cif", str(good), "--cif", str(bad),
                              "--on-error", "warn", "--output", str(tmp_path / "out.csv")])
    assert res.exit_code == 0, res.output
    text = (tmp_path / "out.csv").read_text()
    assert "broken.cif" in text and "cannot be read" in text and "NaCl" in text
    # a formula is never refused (issue 12): this directory carries neither reference compositions nor a
    # composition model, so the bundled default composition model answers and says so
    res = runner.invoke(app, ["predict", "--model", str(tmp_path / "gnn"), "Na3PS4", "--output",
                              str(tmp_path / "f.csv")])
    assert res.exit_code == 0, res.output
    assert "composition" in (tmp_path / "f.csv").read_text().splitlines()[1]
    res = runner.invoke(app, ["predict", "--model", str(tmp_path / "gnn"), "--cif", str(bad)])
    assert res.exit_code != 0 and "broken.cif" in res.output
    p = GNNPredictor.load(tmp_path / "gnn")
    row = p.predict_many([cells[0]])[0]
    assert row["formula"] == "Na0.7Cl1" and row["in_domain"] and np.isfinite(row["log10_sigma_S_cm"])
    kbr = Structure.from_spacegroup("Fm-3m", Lattice.cubic(6.0), ["Na", "Br"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert "Br" in p.predict_many([kbr])[0]["domain_notes"]
    assert json.loads((tmp_path / "gnn" / "model.json").read_text())["class"] == "GNNEnsemble"


def test_descriptor_node_features_place_an_unseen_element_among_its_neighbours():
    """Option node_features="descriptors": each element is a fixed physical descriptor vector (standardised
    columns, 0/1 flags), so Hf sits next to Zr and far from Cl; the network built on it runs."""
    import torch

    from ml.models.gnn import DESCRIPTOR_NAMES, _network, element_descriptors

    E = element_descriptors()
    assert E.shape == (95, len(DESCRIPTOR_NAMES)) and E[0, -1] == 1.0
    assert E[11, DESCRIPTOR_NAMES.index("is_mobile_ion")] == 1
    assert np.linalg.norm(E[72] - E[40]) < np.linalg.norm(E[72] - E[17])
    net = _network(8, 1, 4, 0.0, node_features="descriptors")
    assert net.embed.in_features == len(DESCRIPTOR_NAMES) and isinstance(net.descriptors, torch.Tensor)
    with pytest.raises(ValueError, match="node_features 'bogus' is not one of onehot, descriptors"):
        _network(8, 1, 4, 0.0, node_features="bogus")


def test_residual_shrink_is_the_out_of_bag_slope_clipped_to_0_1():
    """A residual GNN weights its correction by what its out-of-bag predictions support."""
    n = 20
    oob = np.linspace(-1, 1, n)
    for truth, slope, expected in ((0.5 * oob, 0.5, 0.5), (-oob, -1.0, 0.0), (3 * oob, 3.0, 1.0)):
        ens = GNNEnsemble(GNNConfig(residual=True))
        Z = np.column_stack([truth, truth])
        ens._calibrate(list(range(n)), Z, [[[v] for v in oob], [[v] for v in oob]])
        assert ens.shrink == pytest.approx([expected, expected], abs=1e-9)
        assert ens.oob_slope == pytest.approx([slope, slope], abs=1e-9)  # kept unclipped as a diagnostic
        # the interval is scored on the shrunk correction: exact when the slope is in (0, 1)
        assert ens.q90[0] == pytest.approx(0.0 if expected == 0.5 else ens.q90[0])
    plain = GNNEnsemble(GNNConfig())
    plain._calibrate(list(range(n)), np.column_stack([-oob, -oob]), [[[v] for v in oob], [[v] for v in oob]])
    assert plain.shrink == pytest.approx([1.0, 1.0])  # only a residual GNN is shrunk


def test_residual_gnn_regressor_adds_its_correction_to_the_composition_model(tmp_path):
    import pandas as pd

    from ml.models.gnn import GNNRegressor
    from ml.structures.mapping import structure_for

    formulas = [f"Na{3 + x:.2f}Zr{2 - x:.2f}Sc{x:.2f}Si2PO12" for x in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)] + \
               [f"Na{1 + x:.2f}Zr2Si{x:.2f}P{3 - x:.2f}O12" for x in (0.5, 1.0, 1.5, 2.5)]
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"formula": formulas, "group": formulas, "family": "NASICON",
                          "log10_sigma_S_cm": rng.normal(-4, 1, len(formulas)),
                          "ea_eV": rng.normal(0.35, 0.05, len(formulas))})
    cfg = GNNConfig(hidden=8, n_layers=1, n_rbf=8, epochs=2, n_models=2, cutoff=4.5, max_neighbors=6,
                    residual=True)
    graphs = np.empty(len(formulas), dtype=object)
    graphs[:] = [structure_to_graph(structure_for(f, "nasicon_R-3c").structure, **cfg.graph_kwargs())
                 for f in formulas]
    reg = GNNRegressor(cfg).fit(frame, graphs)
    assert reg.base is not None and np.all((reg.ensemble.shrink >= 0) & (reg.ensemble.shrink <= 1))
    # the GNN learned the base model's grouped out-of-fold errors, not its (near-zero) training residuals
    assert np.isfinite(reg.base.oof_predictions["log10_sigma_S_cm"]).all()
    pred = reg.predict(frame, graphs)
    corr = reg.ensemble.predict(list(graphs))
    base = reg.base.predict(frame)
    for t in ("log10_sigma_S_cm", "ea_eV"):
        np.testing.assert_allclose(pred[t], base[t] + corr[t], rtol=1e-9)
        # the interval is the composition model's, moved by the correction
        np.testing.assert_allclose(pred[f"{t}_lo"], base[f"{t}_lo"] + corr[t], rtol=1e-9)
        np.testing.assert_allclose(pred[f"{t}_hi"] - pred[f"{t}_lo"], base[f"{t}_hi"] - base[f"{t}_lo"])
