import numpy as np
import pandas as pd
import pytest

from ml.data import load_dataset
from ml.targets import ea_fit_window, ea_regime, training_frame
from training.evaluate import cross_validate, learning_curve, metrics, splits


@pytest.fixture
def frame(tiny_csv):
    return training_frame(load_dataset(tiny_csv))


def _rows(**over):
    base = dict(entry_id="X-1", formula="Na3PS4", mobile_ion="Na", family="sulfide", sigma_S_cm=np.nan,
                sigma_censor="", temperature_K=np.nan, ea_eV=np.nan, doi="10.1/x", structure_type="u")
    base.update(over)
    return base


def test_targets_use_only_20_to_30_C_values_and_no_bounds():
    rows = pd.DataFrame([
        _rows(entry_id="a", sigma_S_cm=1e-4, temperature_K=298.15),
        _rows(entry_id="b", sigma_S_cm=1e-2, temperature_K=373.15),  # elevated T: not a 25 C target
        _rows(entry_id="c", sigma_S_cm=1e-3, temperature_K=298.15, sigma_censor=">"),  # bound
        _rows(entry_id="d", formula="Na6P2S8", sigma_S_cm=1e-3, temperature_K=300.15),  # same compound
        _rows(entry_id="e", formula="Na3SbS4", ea_eV=0.25),  # Ea only
    ])
    fr = training_frame(rows).set_index("group")
    assert fr.loc["Na3PS4", "log10_sigma_S_cm"] == pytest.approx(np.median([-4, -3]))
    assert fr.loc["Na3PS4", "n_rt_rows"] == 2
    assert np.isnan(fr.loc["Na3SbS4", "log10_sigma_S_cm"]) and fr.loc["Na3SbS4", "ea_eV"] == 0.25


def test_ea_target_prefers_the_room_temperature_regime():
    rows = pd.DataFrame([
        _rows(entry_id="a", ea_eV=0.34, ea_T_range_K="<431"),  # monoclinic, fit down to r.t.
        _rows(entry_id="b", ea_eV=0.28, ea_T_range_K=">431"),  # superionic phase: not the r.t. Ea
        _rows(entry_id="c", ea_eV=0.40, ea_T_range_K="298-373"),
        _rows(entry_id="d", formula="NaB11H14", ea_eV=0.27, ea_T_range_K=">343"),  # only a high-T value
        _rows(entry_id="e", formula="Na3SbS4", ea_eV=0.50, ea_T_range_K="218-273"),
        _rows(entry_id="f", formula="Na3SbS4", ea_eV=0.20, ea_T_range_K="414-473"),
    ])
    fr = training_frame(rows).set_index("group")
    assert fr.loc["Na3PS4", "ea_eV"] == pytest.approx(0.37) and fr.loc["Na3PS4", "n_ea_rows"] == 2
    assert fr.loc["Na3PS4", "ea_regime"] == "rt"
    assert fr.loc["NaB11H14", "ea_eV"] == 0.27 and fr.loc["NaB11H14", "ea_regime"] == "high_T"
    assert fr.loc["Na3SbS4", "ea_eV"] == pytest.approx(0.35)
    assert fr.loc["Na3SbS4", "ea_regime"] == "high_T,sub_ambient"


@pytest.mark.parametrize("text, window, regime", [
    ("298-373", (298, 373), "rt"), (">431", (431, None), "high_T"), ("<414", (None, 414), "rt"),
    ("218-273", (218, 273), "sub_ambient"), ("~373 (local slope)", (373, 373), "high_T"),
    ("local slope at -40 C", (233.15, 233.15), "sub_ambient"), ("low T (below ~313)", (None, 313), "rt"),
    (">~333 (above phase transition)", (333, None), "high_T"), ("above room temperature", (None, None), "rt"),
    ("", (None, None), "rt"), (np.nan, (None, None), "rt"),
])
def test_ea_fit_window_reads_the_free_text_ranges_of_the_dataset(text, window, regime):
    lo, hi = ea_fit_window(text)
    assert (lo, hi) == (pytest.approx(window[0]) if window[0] is not None else None,
                        pytest.approx(window[1]) if window[1] is not None else None)
    assert ea_regime(text) == regime


@pytest.mark.parametrize("cv", ["grouped", "family"])
def test_no_composition_on_both_sides_of_a_split(frame, cv):
    n_test = 0
    for _, tr, te in splits(frame, cv, n_splits=3):
        assert not set(frame["group"].iloc[tr]) & set(frame["group"].iloc[te])
        n_test += len(te)
    assert n_test == len(frame)


def test_leak_check_would_fail_on_a_leaky_split(frame):
    # the same check on a deliberately leaky split (duplicate a composition into train and test) must fail
    leaky = pd.concat([frame, frame.iloc[[0]]], ignore_index=True)
    tr, te = np.arange(len(frame)), np.array([len(frame)])
    assert set(leaky["group"].iloc[tr]) & set(leaky["group"].iloc[te])


def test_family_cv_holds_out_whole_families(frame):
    for name, tr, te in splits(frame, "family"):
        assert set(frame["family"].iloc[te]) == {name}
        assert name not in set(frame["family"].iloc[tr])


def test_unknown_cv_raises(frame):
    with pytest.raises(ValueError, match="unknown cv 'random'"):
        list(splits(frame, "random"))


def test_metrics_are_correct():
    y, p = np.array([-3.0, -5.0, -2.0]), np.array([-3.5, -4.0, -2.0])
    m = metrics("log10_sigma_S_cm", y, p, p - 1, p + 0.1)
    assert m["mae"] == pytest.approx(0.5)
    assert m["acc_1e-4"] == pytest.approx(2 / 3)  # -5 vs -4.0: opposite sides of 1e-4 S/cm
    assert m["coverage90"] == pytest.approx(2 / 3)


def test_cross_validate_reports_baselines_beside_models(frame):
    res = cross_validate(frame, ["global_median", "family_median", "hist_gbm"], "grouped", n_splits=3)
    assert set(res.table["learner"]) == {"global_median", "family_median", "hist_gbm"}
    assert set(res.table["target"]) == {"log10_sigma_S_cm", "ea_eV"}
    assert res.oof.groupby("learner").size().nunique() == 1  # same compositions for every model


def test_learning_curve_and_plots(frame, tmp_path):
    from training import plots

    curve = learning_curve(frame, ["family_median"], fractions=(0.5, 1.0), n_splits=2)
    assert set(curve["fraction"]) == {0.5, 1.0}
    assert (curve.groupby("target")["n_train"].apply(lambda s: s.is_monotonic_increasing)).all()
    assert plots.learning_curve(curve, tmp_path / "lc.png").stat().st_size > 1000
