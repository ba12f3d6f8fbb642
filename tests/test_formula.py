import pytest

from ml.errors import InvalidFormulaError, UnsupportedElementError
from ml.formula import parse_formula, reduced_formula


@pytest.mark.parametrize("formula, na", [("Na3PS4", 3), ("Na2.88Sb0.88W0.12S4", 2.88),
                                         ("Na2(B12H12)0.5(B10H10)0.5", 2), ("NaZr2(PO4)3", 1)])
def test_valid_formulas_parse(formula, na):
    assert parse_formula(formula)["Na"] == pytest.approx(na)


def test_reduced_formula_groups_multiples():
    assert reduced_formula("Na6P2S8") == reduced_formula("Na3PS4")
    assert reduced_formula("Na2.88Sb0.88W0.12S4") != reduced_formula("Na3SbS4")


@pytest.mark.parametrize(
    "bad, err, match",
    [
        ("", InvalidFormulaError, "empty"),
        ("   ", InvalidFormulaError, "empty"),
        ("Xx2O", UnsupportedElementError, r"'Xx2O' contains 'Xx'"),
        ("Na-1Cl", InvalidFormulaError, r"'Na-1Cl'.*negative"),
        ("Na3(PS4", InvalidFormulaError, r"'Na3\(PS4' has unbalanced brackets"),
        ("Na3PS4)", InvalidFormulaError, "unbalanced brackets"),
        ("na3ps4", InvalidFormulaError, "'na3ps4' cannot be parsed"),
        ("Na3PS4; DROP", InvalidFormulaError, "characters"),
        ("A" * 10_000, InvalidFormulaError, "longer than 200 characters"),
    ],
)
def test_bad_formulas_raise_naming_the_input(bad, err, match):
    with pytest.raises(err, match=match):
        parse_formula(bad)


def test_non_string_rejected():
    with pytest.raises(InvalidFormulaError, match="must be a string"):
        parse_formula(3)


def test_errors_are_value_errors():
    with pytest.raises(ValueError):
        parse_formula("Xx2O")
