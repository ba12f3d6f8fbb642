"""The mobile-ion node channel, pretraining on another mobile ion and fine-tuning, old model directories, and the
errors of the pretraining inputs (issue #12, 3b)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from ml.errors import DatasetError, NacondError
from ml.models.gnn import MOBILE_CHANNEL, GNNConfig, GNNEnsemble, PretrainedGNN, pretrain_gnn, structure_to_graph
from ml.structures.obelix import obelix_pretrain_set

FIXTURES = Path(__file__).parent / "fixtures"
TINY = GNNConfig(hidden=8, n_layers=1, n_rbf=8, epochs=3, n_models=2, cutoff=4.5, max_neighbors=6,
                 mobile_channel=True)


def _rocksalt(cation: str, a: float, occ: float = 1.0, anion: str = "Cl") -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [{cation: occ}, anion],
                                     [[0, 0, 0], [0.5, 0.5, 0.5]]).get_primitive_structure()


def _graph(s, mobile_ion="Na", cfg=TINY):
    return structure_to_graph(s, **cfg.graph_kwargs(), mobile_ion=mobile_ion)


@pytest.mark.parametrize(("ion", "z"), [("Li", 3), ("Na", 11)])
def test_mobile_channel_marks_li_and_na(ion, z):
    g = _graph(_rocksalt(ion, 5.2, occ=0.75), mobile_ion=ion)
    assert g.x.shape == (2, MOBILE_CHANNEL + 1)
    cation = g.x[:, z] > 0
    assert g.x[cation, MOBILE_CHANNEL].item() == pytest.approx(0.75)  # = the mobile ion's occupancy
    assert g.x[~cation, MOBILE_CHANNEL].item() == 0.0
    assert g.x[cation, 0].item() == pytest.approx(0.25)  # vacancy channel unchanged by the extra column
    assert sorted(g.w.tolist()) == pytest.approx([0.75, 1.0])  # pool weights: site occupancy, as before
    # without the channel: the graph of format 1, 95 columns
    plain = structure_to_graph(_rocksalt(ion, 5.2, occ=0.75), cutoff=4.5, max_neighbors=6, n_rbf=8, mobile_ion=ion)
    assert plain.x.shape == (2, MOBILE_CHANNEL)
    assert torch.equal(plain.x, g.x[:, :MOBILE_CHANNEL])


def test_pretrain_then_finetune_changes_the_weights():
    li = [_graph(_rocksalt("Li", a, occ), "Li") for a in (4.9, 5.1, 5.3) for occ in (0.8, 1.0)]
    y = np.array([-3.0, -4.0, np.nan, -6.0, -7.0, np.nan])
    upper = np.array([np.nan, np.nan, -10.0, np.nan, np.nan, -10.0])  # '<1E-10': a bound, never a value
    torch.manual_seed(TINY.seed)
    init = {k: v.clone() for k, v in TINY.network().state_dict().items()}
    pt = pretrain_gnn(li, y, TINY, upper=upper, epochs=3, batch_size=4, seed=TINY.seed, source="synthetic Li")
    assert pt.meta["n_values"] == 4 and pt.meta["n_upper_bounds"] == 2 and pt.meta["source"] == "synthetic Li"
    assert any(not torch.allclose(init[k], pt.state[k]) for k in init)

    na = [_graph(_rocksalt("Na", a, occ)) for a in (5.5, 5.7, 5.9) for occ in (0.8, 1.0)]
    Y = np.column_stack([np.linspace(-6, -2, 6), np.linspace(0.6, 0.2, 6)])
    # lr = 0: a fine-tuned member is exactly the pretrained network (every member starts from it)
    frozen = GNNEnsemble(GNNConfig(**{**vars(TINY), "lr": 0.0}), pretrained=pt).fit(na, Y)
    assert all(torch.equal(frozen.members[0].state_dict()[k], v) for k, v in pt.state.items())
    tuned = GNNEnsemble(TINY, pretrained=pt).fit(na, Y)
    assert len(tuned.members) == 2
    assert any(not torch.allclose(tuned.members[0].state_dict()[k], v) for k, v in pt.state.items())
    out = tuned.predict(na)
    assert np.all(np.isfinite(out["log10_sigma_S_cm"])) and np.all(np.isfinite(out["ea_eV"]))


def test_pretrained_round_trip_and_provenance(tmp_path):
    li = [_graph(_rocksalt("Li", a), "Li") for a in (4.9, 5.1, 5.3)]
    pt = pretrain_gnn(li, np.array([-3.0, -4.0, -5.0]), TINY, epochs=1, source="synthetic Li")
    back = PretrainedGNN.load(pt.save(tmp_path / "pt.pt"))
    assert back.meta == pt.meta and all(torch.equal(back.state[k], v) for k, v in pt.state.items())
    na = [_graph(_rocksalt("Na", a)) for a in (5.5, 5.7, 5.9)]
    ens = GNNEnsemble(TINY, pretrained=back).fit(na, np.array([[-3.0, 0.3], [-4.0, 0.4], [-5.0, 0.5]]))
    ens.save(tmp_path / "gnn")
    again = GNNEnsemble.load(tmp_path / "gnn")
    assert again.config.mobile_channel is True
    assert again.meta["pretrained"]["source"] == "synthetic Li"
    np.testing.assert_allclose(again.predict(na)["log10_sigma_S_cm"], ens.predict(na)["log10_sigma_S_cm"])


def test_format1_model_directory_still_loads_and_predicts():
    """A directory written before the mobile-ion channel (no ``mobile_channel`` in its config) loads unchanged."""
    d = FIXTURES / "gnn_format1_tiny"
    meta = json.loads((d / "model.json").read_text())
    assert meta["format_version"] == 1 and "mobile_channel" not in meta["config"] and "pretrained" not in meta
    ens = GNNEnsemble.load(d)
    assert ens.config.mobile_channel is False and ens.config.n_features == MOBILE_CHANNEL
    expected = json.loads((FIXTURES / "gnn_format1_tiny.expected.json").read_text())
    cfg = ens.config
    graphs = [structure_to_graph(_rocksalt("Na", a, occ), **cfg.graph_kwargs())
              for a, occ in zip(expected["a"], expected["na_occ"], strict=True)]
    out = ens.predict(graphs)
    np.testing.assert_allclose(out["log10_sigma_S_cm"], expected["log10_sigma_S_cm"], rtol=1e-5)
    np.testing.assert_allclose(out["ea_eV"], expected["ea_eV"], rtol=1e-5)


def test_pretraining_inputs_that_do_not_exist_are_named(tmp_path):
    with pytest.raises(DatasetError, match="OBELiX directory .*nowhere.* does not exist"):
        obelix_pretrain_set(tmp_path / "nowhere", config=TINY, cache_dir=None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="OBELiX table .*all.csv.* does not exist"):
        obelix_pretrain_set(tmp_path / "empty", config=TINY, cache_dir=None)
    with pytest.raises(NacondError, match="pretrained GNN file .*missing.pt.* does not exist"):
        PretrainedGNN.load(tmp_path / "missing.pt")


def _obelix_copy(root: Path, entries: dict[str, tuple[Structure, str]]) -> Path:
    (root / "cifs").mkdir(parents=True)
    lines = ["ID,Ionic conductivity (S cm-1),Cif ID"]
    for rid, (s, sigma) in entries.items():
        s.to(filename=str(root / "cifs" / f"{rid}.cif"))
        lines.append(f"{rid},{sigma},done")
    (root / "all.csv").write_text("\n".join(lines) + "\n")
    return root


def test_a_cif_without_the_mobile_ion_is_reported_by_file_name(tmp_path):
    root = _obelix_copy(tmp_path / "obx", {"li1": (_rocksalt("Li", 5.1), "1e-4"),
                                           "li2": (_rocksalt("Li", 5.2), "<1E-10"),
                                           "nac": (_rocksalt("Na", 5.64), "2e-5")})
    ps = obelix_pretrain_set(root, config=TINY, cache_dir=tmp_path / "cache")
    assert ps.ids == ["li1", "li2"]
    assert ps.skipped == {"nac.cif": "structure NaCl has no Li"}
    assert ps.y[0] == pytest.approx(-4.0) and np.isnan(ps.y[1])
    assert ps.upper[1] == pytest.approx(-10.0) and np.isnan(ps.upper[0])  # the bound stays a bound
    again = obelix_pretrain_set(root, config=TINY, cache_dir=tmp_path / "cache")  # parsed once, then cached
    assert again.from_cache and again.ids == ps.ids and again.skipped == ps.skipped
    only_na = _obelix_copy(tmp_path / "na_only", {"nac": (_rocksalt("Na", 5.64), "2e-5")})
    with pytest.raises(DatasetError, match="no usable OBELiX structure"):
        obelix_pretrain_set(only_na, config=TINY, cache_dir=None)


def test_pretrained_network_must_match_the_configuration():
    li = [_graph(_rocksalt("Li", a), "Li") for a in (4.9, 5.1, 5.3)]
    pt = pretrain_gnn(li, np.array([-3.0, -4.0, -5.0]), TINY, epochs=1, source="synthetic Li")
    with pytest.raises(NacondError, match="pretrained GNN .synthetic Li. has architecture"):
        GNNEnsemble(GNNConfig(**{**vars(TINY), "mobile_channel": False}), pretrained=pt)
    plain = [structure_to_graph(_rocksalt("Li", 5.0), cutoff=4.5, max_neighbors=6, n_rbf=8, mobile_ion="Li")] * 2
    with pytest.raises(NacondError, match="pretraining graphs have 95 node channels"):
        pretrain_gnn(plain, np.array([-3.0, -4.0]), TINY, epochs=1)
