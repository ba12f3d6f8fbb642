"""Property-based fuzzing of the input boundary (issue 14): a random formula or CIF fragment gives either a
prediction with finite numbers or a ``ValueError`` subclass naming the input, within a time bound."""

from __future__ import annotations

import math
import time

import pytest
from cif_text import cif_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml.structures.cif import parse_cif_text
from serving import Predictor

TOKENS = st.sampled_from(["Na", "Li", "P", "S", "Se", "Cl", "O", "Zr", "Si", "B", "H", "Og", "Rf", "Xx", "D", "e",
                          "(", ")", "[", "]", ".", "·", "*", " ", "-", "0", "1", "2", "3.5", "0.0", "1e309", "10",
                          "H2O", ".10H2O", "nan", "inf", "ü", "²", "\t"])
FORMULAS = st.lists(TOKENS, max_size=10).map("".join) | st.text(max_size=40)
SETTINGS = settings(max_examples=150, deadline=2000, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

GOOD_CIF = cif_text([("Na1", "Na", 0.0, 0.0, 0.0, 1), ("Cl1", "Cl", 0.5, 0.5, 0.5, 1)], a=5.64,
                    ops=["x, y, z", "-x, -y, -z"], name="NaCl")


@pytest.fixture(scope="module")
def predictor():
    return Predictor.load()


def _finite(r) -> bool:
    return all(math.isfinite(v) for v in (r.log10_sigma_S_cm, *r.log10_sigma_interval))


@SETTINGS
@given(formula=FORMULAS)
def test_random_formulas_predict_or_fail_clearly(predictor, formula):
    t0 = time.perf_counter()
    try:
        r = predictor.predict(formula)
    except ValueError as exc:
        msg = str(exc)
        text = formula.strip()
        assert msg, "an error must say what is wrong"
        assert not text or text[:30] in msg or repr(text)[1:30] in msg, f"{msg!r} does not name {formula!r}"
    else:
        assert _finite(r)
    assert time.perf_counter() - t0 < 2.0


@SETTINGS
@given(formulas=st.lists(FORMULAS, min_size=1, max_size=8))
def test_batches_never_raise_with_skip(predictor, formulas):
    out = predictor.predict_many(formulas, on_error="skip")
    assert len(out) == len(formulas)
    for r in out:
        assert (r.ok and _finite(r)) or (not r.ok and r.error)


@SETTINGS
@given(data=st.data())
def test_mutated_cifs_parse_or_fail_clearly(data):
    chars = list(GOOD_CIF)
    for _ in range(data.draw(st.integers(1, 20))):
        i = data.draw(st.integers(0, len(chars) - 1))
        chars[i] = data.draw(st.sampled_from(list("0123456789.-+ ()'\n_xyzNaCl#?")))
    text = "".join(chars)
    t0 = time.perf_counter()
    try:
        s = parse_cif_text(text, "fuzz.cif")
    except ValueError as exc:
        assert "fuzz.cif" in str(exc)
    else:
        assert len(s) > 0
    assert time.perf_counter() - t0 < 5.0
