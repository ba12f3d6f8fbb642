import math

import numpy as np
import pytest
from typer.testing import CliRunner

from ml.models.arrhenius import K_B_EV, log10_a_from, log10_sigma_at
from ml.temperature import TemperatureError, parse_temperature
from serving import Predictor
from training.cli import app


@pytest.mark.parametrize("text, kelvin", [("60C", 333.15), ("60 °C", 333.15), ("25degC", 298.15), ("333K", 333.0),
                                          ("333.15", 333.15), (298.15, 298.15), ("-20C", 253.15)])
def test_parse_temperature(text, kelvin):
    assert parse_temperature(text) == pytest.approx(kelvin)


@pytest.mark.parametrize("bad, match", [("hot", "'hot' is not understood"), ("60F", "'60F' is not understood"),
                                        ("5000K", "outside 150-1300 K"), (0, "outside"),
                                        (True, "not a number")])
def test_bad_temperatures(bad, match):
    with pytest.raises(TemperatureError, match=match):
        parse_temperature(bad)
    assert issubclass(TemperatureError, ValueError)


def test_arrhenius_algebra_round_trips():
    a = log10_a_from(-3.0, 0.3, 298.15)
    assert log10_sigma_at(a, 0.3, 298.15) == pytest.approx(-3.0)


@pytest.fixture(scope="module")
def predictor():
    return Predictor.load()


def test_sigma_t_rises_with_t_and_implies_the_reported_ea(predictor):
    t1, t2 = 298.15, 373.15
    r1 = predictor.predict("Na3.1Zr1.9Sc0.1Si2PO12", temperature_K=t1)
    r2 = predictor.predict("Na3.1Zr1.9Sc0.1Si2PO12", temperature_K=t2)
    assert r2.log10_sigma_S_cm > r1.log10_sigma_S_cm
    # Ea implied by two points of sigma*T = A exp(-Ea/kT)
    y1, y2 = r1.log10_sigma_S_cm + math.log10(t1), r2.log10_sigma_S_cm + math.log10(t2)
    implied = -K_B_EV * math.log(10) * (y2 - y1) / (1 / t2 - 1 / t1)
    assert implied == pytest.approx(r1.ea_eV, abs=0.05)
    assert r1.ea_eV == pytest.approx(r2.ea_eV)
    assert r2.temperature_K == pytest.approx(t2)


def test_phase_transition_families_are_flagged(predictor):
    hot = predictor.predict("Na2B12H12", temperature_K="250C")
    assert any("phase transition" in n for n in hot.domain_notes) and not hot.in_domain
    assert not any("phase transition" in n for n in predictor.predict("Na2B12H12").domain_notes)
    assert not any("phase transition" in n for n in predictor.predict("Na3PS4", temperature_K="60C").domain_notes)


def test_temperature_outside_measured_range_is_noted(predictor):
    r = predictor.predict("Na3PS4", temperature_K=1200)
    assert any("outside the measured temperatures" in n for n in r.domain_notes)


def test_cli_temperature(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["predict", "Na3Zr2Si2PO12", "--temperature", "60C"])
    assert res.exit_code == 0 and "sigma(60 C)" in res.output
    bad = runner.invoke(app, ["predict", "Na3Zr2Si2PO12", "--temperature", "warm"])
    assert bad.exit_code == 2 and "--temperature: temperature 'warm'" in bad.output
    out = tmp_path / "o.csv"
    runner.invoke(app, ["predict", "Na3PS4", "--temperature", "373K", "--output", str(out)])
    import pandas as pd

    assert pd.read_csv(out)["temperature_K"].iloc[0] == pytest.approx(373.0)


def test_rest_temperature():
    from fastapi.testclient import TestClient

    from serving.app import create_app

    c = TestClient(create_app(Predictor.load()))
    r = c.post("/predict", json={"formula": "Na3PS4", "temperature": "100C"})
    assert r.status_code == 200 and r.json()["prediction"]["temperature_K"] == pytest.approx(373.15)
    bad = c.post("/predict", json={"formula": "Na3PS4", "temperature": "boiling"})
    assert bad.status_code == 422 and "boiling" in bad.json()["detail"]


def test_model_without_arrhenius_part_says_so(tmp_path):
    import shutil

    from ml.errors import NacondError
    from serving.predictor import default_model_dir

    d = tmp_path / "m"
    shutil.copytree(default_model_dir(), d)
    shutil.rmtree(d / "arrhenius")
    from ml.models.manifest import write_manifest

    write_manifest(d)  # a model trained without activation energies has no arrhenius/ part
    with pytest.raises(NacondError, match="no temperature"):
        Predictor.load(d).predict("Na3PS4", temperature_K=400)
    assert np.isfinite(Predictor.load(d).predict("Na3PS4").log10_sigma_S_cm)


def test_25c_on_the_curve_is_the_25c_prediction(predictor):
    for f in ("Na3Zr2Si2PO12", "Na3PS4", "Na2B12H12", "Na3.2Sb0.8Sn0.2S4", "Na3YCl6"):
        a, b = predictor.predict(f), predictor.predict(f, temperature_K="25C")
        assert abs(a.log10_sigma_S_cm - b.log10_sigma_S_cm) < 1e-9 and abs(a.ea_eV - b.ea_eV) < 1e-9
        assert b.log10_sigma_interval == pytest.approx(a.log10_sigma_interval)


def test_intervals_grow_away_from_room_temperature(predictor):
    w = [np.diff(predictor.predict("Na3Zr2Si2PO12", temperature_K=t).log10_sigma_interval)[0]
         for t in (298.15, 333.15, 573.15)]
    assert w[0] <= w[1] <= w[2] and w[1] <= 3.0


def test_transitions_come_from_the_data_and_fire_only_near_them(predictor):
    import pandas as pd

    from ml.models.arrhenius import transitions_from

    rows = pd.DataFrame({"mobile_ion": ["Na"] * 3, "formula": ["Na2B12H12", "Na2B12H12", "Na3PS4"],
                         "family": ["complex_hydride", "complex_hydride", "sulfide"], "ea_eV": [0.7, 0.2, 0.3],
                         "ea_T_range_K": ["298-500", ">529", "298-373"]})
    tr = transitions_from(rows)
    assert list(tr.values()) == [{"family": "complex_hydride", "range_K": [500.0, 529.0]}]  # Na3PS4: one regime
    arr = predictor.arrhenius
    g, fam = next(iter(arr.transitions.items()))
    lo = fam["range_K"][0]
    assert not any("phase transition" in n for n in arr.notes([g], [fam["family"]], 298.15)[0])
    assert any("phase transition" in n for n in arr.notes([g], [fam["family"]], lo + 5)[0])
