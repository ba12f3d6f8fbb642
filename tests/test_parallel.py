import pytest

from serving import Predictor


def test_ray_batch_matches_serial_in_order():
    pytest.importorskip("ray")
    from serving.parallel import predict_ray

    items = ["Na3PS4", "Xx2O", "Na3Zr2Si2PO12", "Na3SbS4", "Na3YCl6"]
    seen = []
    out = predict_ray(items, workers=1, chunk=2, progress=seen.append)
    serial = Predictor.load().predict_many(items, on_error="skip")
    assert sum(seen) == len(items)
    assert out[1] == {"input": "Xx2O", "error": serial[1].error}
    for o, s in zip(out, serial, strict=True):
        if s.ok:
            assert o["formula"] == s.formula and o["log10_sigma_S_cm"] == pytest.approx(s.log10_sigma_S_cm)
