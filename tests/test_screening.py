import pytest
from typer.testing import CliRunner

from ml.formula import parse_formula
from ml.screening import ScreeningError, charge, enumerate_dopants
from training.cli import app


@pytest.mark.parametrize("parent, site, dopant", [
    ("Na3Zr2Si2PO12", "Zr", "Sc"), ("Na3Zr2Si2PO12", "Zr", "Mg"), ("Na3SbS4", "Sb", "W"),
    ("Na3YCl6", "Y", "Zr"), ("Na3PS4", "S", "Cl"), ("Na3PS4", "Na", "Ca"),
])
def test_every_candidate_is_neutral_and_on_the_grid(parent, site, dopant):
    cands = enumerate_dopants(parent, site, [dopant], max_fraction=0.3, step=0.1)
    assert cands[0].compensation == "parent" and cands[0].fraction == 0
    assert [c.fraction for c in cands[1:]] == pytest.approx([0.1, 0.2, 0.3])
    n_site = parse_formula(parent)[site]
    for c in cands:
        assert charge(c.formula) == pytest.approx(charge(parent), abs=1e-9) == pytest.approx(0.0, abs=1e-9)
        if c.dopant:
            assert parse_formula(c.formula)[dopant] == pytest.approx(c.fraction * n_site)
            assert c.dopant_per_formula == pytest.approx(c.fraction * n_site)


def test_compensation_direction():
    sc = enumerate_dopants("Na3Zr2Si2PO12", "Zr", ["Sc"], max_fraction=0.1, step=0.1)[1]
    assert sc.formula == "Na3.2Zr1.8Sc0.2Si2PO12" and sc.compensation == "interstitial"
    zr = enumerate_dopants("Na3YCl6", "Y", ["Zr"], max_fraction=0.5, step=0.5)[1]
    assert zr.mobile_per_formula == pytest.approx(2.5) and zr.compensation == "vacancy"
    ca = enumerate_dopants("Na3PS4", "Na", ["Ca"], max_fraction=0.1, step=0.1)[1]
    assert parse_formula(ca.formula)["Na"] == pytest.approx(3 - 2 * 0.3)


def test_candidates_are_written_in_site_order():
    zn = enumerate_dopants("Na3Zr2Si2PO12", "Zr", ["Zn"], max_fraction=0.1, step=0.1)[1]
    assert zn.formula == "Na3.4Zr1.8Zn0.2Si2PO12"
    cl = enumerate_dopants("Na3PS4", "S", ["Cl"], max_fraction=0.25, step=0.25)[1]
    assert cl.formula == "Na2PS3Cl"
    w = enumerate_dopants("Na3SbS4", "Sb", ["W"], max_fraction=0.1, step=0.1)[1]
    assert w.formula == "Na2.9Sb0.9W0.1S4"


def test_enumeration_stops_when_na_runs_out():
    cands = enumerate_dopants("NaAlCl4", "Al", ["Zr"], max_fraction=1.0, step=0.25)
    assert all(c.mobile_per_formula > 0 for c in cands) and max(c.fraction for c in cands) < 1.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(parent="Na3PS4", site="Q", dopants=["Cl"]), "site 'Q' is not an element of parent 'Na3PS4'"),
    (dict(parent="Li3PS4", site="P", dopants=["Si"]), "parent 'Li3PS4' contains no Na"),
    (dict(parent="Na3P(S4", site="P", dopants=["Si"]), "unbalanced"),
    (dict(parent="Na3PS4", site="P", dopants=["Xx"]), "dopant 'Xx' is not a chemical element"),
    (dict(parent="Na3PS4", site="P", dopants=["P"]), "is the site element itself"),
    (dict(parent="Na3PS4", site="S", dopants=["Zr"]), "cannot sit on an anion site"),
    (dict(parent="Na3PS4", site="P", dopants=[]), "at least one dopant"),
    (dict(parent="Na3YCl6", site="Y", dopants=["Zr"], compensation="interstitial"), "needs vacancy compensation"),
    (dict(parent="Na3PS4", site="P", dopants=["Si"], step=0), "step"),
    (dict(parent="Na3PS4", site="P", dopants=["Si"], compensation="magic"), "compensation 'magic'"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ScreeningError if "unbalanced" not in match else ValueError, match=match):
        enumerate_dopants(**kwargs)


def test_cli_writes_ranked_csv_and_plot(tmp_path):
    import pandas as pd

    out = tmp_path / "s.csv"
    res = CliRunner().invoke(app, ["screen-dopants", "Na3SbS4", "--site", "Sb", "--dopants", "W,Mo", "--max-fraction",
                                   "0.2", "--step", "0.05", "--output", str(out), "--rank", "ucb"])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out)
    assert list(df["rank"]) == list(range(1, len(df) + 1)) and len(df) == 9
    assert df["log10_sigma_hi"].is_monotonic_decreasing
    assert out.with_suffix(".png").stat().st_size > 1000
    bad = CliRunner().invoke(app, ["screen-dopants", "Na3SbS4", "--site", "Sb", "--dopants", "Xx", "--output",
                                   str(out)])
    assert bad.exit_code == 2 and "dopant 'Xx'" in bad.output
