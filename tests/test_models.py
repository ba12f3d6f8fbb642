import json

import numpy as np
import pytest

from ml.data import load_dataset
from ml.models import NacondModel
from ml.models.composition import ModelLoadError
from ml.targets import training_frame


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    from pathlib import Path

    frame = training_frame(load_dataset(Path(__file__).parent / "fixtures" / "tiny.csv"))
    model = NacondModel(learner="extra_trees", calibration_folds=3).fit(frame)
    d = tmp_path_factory.mktemp("model")
    model.save(d)
    return frame, model, d


def test_intervals_bracket_predictions(fitted):
    frame, model, _ = fitted
    p = model.predict(frame)
    for t in ("log10_sigma_S_cm", "ea_eV"):
        assert (p[f"{t}_lo"] <= p[t]).all() and (p[t] <= p[f"{t}_hi"]).all()


def test_save_load_round_trip(fitted):
    frame, model, d = fitted
    loaded = NacondModel.load(d)
    np.testing.assert_allclose(loaded.predict(frame).to_numpy(), model.predict(frame).to_numpy())
    assert sorted(p.name for p in d.iterdir()) == ["MANIFEST.json", "estimators.npz", "featurizer.npz", "model.json"]


def test_hist_gbm_round_trip_through_skops_trusted_list(fitted, tmp_path):
    frame, _, _ = fitted
    model = NacondModel(learner="hist_gbm", calibration_folds=0).fit(frame)
    model.save(tmp_path / "gbm")
    loaded = NacondModel.load(tmp_path / "gbm")
    np.testing.assert_allclose(loaded.predict(frame).to_numpy(), model.predict(frame).to_numpy())


def test_forest_arrays_match_sklearn():
    from sklearn.ensemble import ExtraTreesRegressor

    from ml.models.forest import ForestArrays

    rng = np.random.default_rng(0)
    X, y = rng.random((80, 12)), rng.random(80)
    est = ExtraTreesRegressor(n_estimators=20, random_state=0).fit(X, y)
    Xt = rng.random((30, 12))
    Xt[0, 3] = np.nan
    mu, sd = ForestArrays.from_sklearn(est).predict_mean_std(Xt, chunk=8)
    per_tree = np.stack([t.predict(Xt[1:]) for t in est.estimators_])
    np.testing.assert_allclose(mu[1:], est.predict(Xt[1:]))
    np.testing.assert_allclose(sd[1:], per_tree.std(axis=0))


def test_tampered_weights_are_refused(fitted, tmp_path):
    import shutil

    _, _, d = fitted
    bad = tmp_path / "bad"
    shutil.copytree(d, bad)
    with open(bad / "estimators.npz", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(ModelLoadError, match="estimators.npz does not match its checksum"):
        NacondModel.load(bad)


def test_wrong_format_version_is_refused(fitted, tmp_path):
    import shutil

    _, _, d = fitted
    bad = tmp_path / "old"
    shutil.copytree(d, bad)
    info = json.loads((bad / "model.json").read_text())
    info["format_version"] = 99
    (bad / "model.json").write_text(json.dumps(info))
    from ml.models.manifest import write_manifest

    write_manifest(bad)  # a consistent directory of another format version
    with pytest.raises(ModelLoadError, match="format version 99"):
        NacondModel.load(bad)


def test_missing_model_dir_is_named(tmp_path):
    with pytest.raises(ModelLoadError, match="nowhere"):
        NacondModel.load(tmp_path / "nowhere")


def test_domain_flags_composition_without_na(fitted):
    _, model, _ = fitted
    formulas = ["Fe2O3", model.meta["training_rows"]["formula"][0]]
    notes, neighbours = model.domain(formulas, model.features_of(formulas))
    assert notes[0] and "no Na" in "; ".join(notes[0])
    assert not notes[1] and neighbours[1][0]["formula"] == formulas[1]


def test_unknown_learner():
    with pytest.raises(ValueError, match="unknown learner 'svm'"):
        NacondModel(learner="svm")
