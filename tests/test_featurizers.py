import numpy as np
import pytest
from matminer.featurizers.composition import ElementProperty, Stoichiometry, ValenceOrbital
from pymatgen.core import Composition

from ml.chemistry import infer_family
from ml.errors import UnsupportedElementError
from ml.featurizers import PRESETS, CompositionFeaturizer, NaChemistry

FORMULAS = ["Na3PS4", "Na2.88Sb0.88W0.12S4", "Na3Zr2Si2PO12", "Na2B12H12", "Na3OCl", "Na2Zn2TeO6",
            "NaAl11O17", "Na2.25Y0.25Zr0.75Cl6", "NaCB11H12"]


def test_vectorised_magpie_equals_matminer():
    cf = CompositionFeaturizer("magpie-2026-11-26")
    ref = [ElementProperty.from_preset("magpie"), Stoichiometry(), ValenceOrbital()]
    labels = [lab for f in ref for lab in f.feature_labels()]
    assert cf.feature_labels() == labels
    mine = cf.transform_formulas(FORMULAS)
    for i, f in enumerate(FORMULAS):
        expected = np.array(sum((r.featurize(Composition(f)) for r in ref), []), dtype=float)
        np.testing.assert_allclose(mine[i], expected, rtol=1e-9, atol=1e-9)


def test_na_chemistry_values_for_na3ps4():
    feat = NaChemistry()
    v = dict(zip(feat.feature_labels(), feat.featurize(Composition("Na3PS4")), strict=True))
    assert v["mobile ion fraction"] == pytest.approx(3 / 8)
    assert v["frac S"] == pytest.approx(0.5)
    assert v["polyanion P-S"] == pytest.approx(1 / 8)
    assert v["polyanion P-O"] == 0
    assert v["mixed anion"] == 0
    assert v["mobile excess vs nearest parent"] == pytest.approx(0.0)  # Na3PS4 is its own parent
    assert v["framework cation valence mean"] == pytest.approx(5.0)  # P5+
    assert v["charge imbalance"] == pytest.approx(0.0)
    assert v["family is sulfide"] == 1.0


def test_na_chemistry_sees_vacancies_mixed_anions_and_clusters():
    feat = NaChemistry()
    lab = feat.feature_labels()
    doped = dict(zip(lab, feat.featurize(Composition("Na2.875PS3.875Cl0.125")), strict=True))
    assert doped["mixed anion"] == 1 and doped["frac Cl"] > 0
    assert doped["mobile excess vs nearest parent"] < 0  # Na vacancies relative to Na3PS4
    stuffed = dict(zip(lab, feat.featurize(Composition("Na3.4Zr2Si2.4P0.6O12")), strict=True))
    assert stuffed["mobile excess vs nearest parent"] > 0
    cage = dict(zip(lab, feat.featurize(Composition("NaCB11H12")), strict=True))
    assert cage["hydride cage"] == 1 and cage["carba cage"] == 1
    assert cage["H/B ratio"] == pytest.approx(12 / 11)


@pytest.mark.parametrize("formula, family", [
    ("Na3PS4", "sulfide"), ("Na3SbSe4", "selenide"), ("Na3Zr2Si2PO12", "nasicon"), ("NaZr2(PO4)3", "nasicon"),
    ("Na2B12H12", "complex_hydride"), ("Na3OCl", "antiperovskite"), ("Na3YCl6", "halide"),
    ("Na2Zn2TeO6", "layered_oxide"), ("Na1.67Mg0.67Al10.33O17", "beta_alumina"), ("Na5YSi4O12", "other"),
])
def test_family_inference(formula, family):
    assert infer_family(Composition(formula)) == family


def test_presets_are_stable_and_named():
    assert "na-chem-2026-11-26" in PRESETS
    with pytest.raises(ValueError, match="unknown feature preset 'nope'"):
        CompositionFeaturizer("nope")


def test_featurizer_rejects_bad_formula_naming_it():
    with pytest.raises(UnsupportedElementError, match="Xx2O"):
        CompositionFeaturizer().transform_formulas(["Na3PS4", "Xx2O"])


def test_batch_chemistry_equals_per_composition_rules():
    from ml.chemistry import infer_family
    from ml.featurizers.kernels import fraction_matrix, na_chemistry, na_chemistry_batch

    formulas = FORMULAS + ["Fe2O3", "Na3AlH6", "NaNH2", "Na2Te", "Na3PO3N0.1", "Na3OBH4", "Na2.9Ba0.05OCl"]
    amounts = [Composition(f).get_el_amt_dict() for f in formulas]
    batch = na_chemistry_batch(fraction_matrix(amounts), [infer_family(a) for a in amounts])
    rows = np.array([na_chemistry(a) for a in amounts])
    np.testing.assert_allclose(batch, rows, rtol=1e-12, atol=1e-12)


def test_batch_order_does_not_matter():
    cf = CompositionFeaturizer()
    a = cf.transform_formulas(FORMULAS)
    b = cf.transform_formulas(FORMULAS[::-1])[::-1]
    np.testing.assert_array_equal(a, b)
    assert not np.isnan(a).any()
