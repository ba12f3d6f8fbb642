"""Prototype library, composition -> structure mapping, user CIFs, occupancy-aware structure features."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Composition, Lattice, Structure

from ml.errors import StructureParseError
from ml.featurizers.structure import NaSiteFeatures, rule_oxidation_states
from ml.structures import read_cif, structure_for
from ml.structures.mapping import MappingError, composition_error, map_entries
from ml.structures.prototypes import PrototypeError, get_prototype, parent_structure, prototype_keys, resolve_key


@pytest.mark.parametrize("key", prototype_keys())
def test_prototype_reproduces_its_formula_and_has_sensible_distances(key):
    proto = get_prototype(key)
    assert proto.source.get("citation") and proto.source.get("where_read"), f"{key} lacks its source"
    s = proto.build()
    assert composition_error(s.composition.get_el_amt_dict(), Composition(proto.formula).get_el_amt_dict()) < 0.01
    d = s.distance_matrix + np.eye(len(s)) * 100
    has_h = "H" in s.composition.get_el_amt_dict()
    assert d.min() > (0.9 if has_h else 1.4), f"{key}: atoms {d.min():.2f} A apart"
    # the primitive parent used for mapping keeps the composition
    p = parent_structure(key)
    assert composition_error(p.composition.get_el_amt_dict(), s.composition.get_el_amt_dict()) < 1e-6


def test_doped_nasicon_gets_the_right_partial_occupancies():
    m = structure_for("Na3.4Zr1.6Sc0.4Si2PO12", "nasicon_R-3c")
    assert m.composition_error < 1e-6
    assert m.assignments == {"Sc": "Zr"}
    occ = {frozenset(site.species.as_dict().items()) for site in m.structure}
    octa = [site for site in m.structure if "Sc" in site.species.as_dict()]
    assert octa and all(site.species.as_dict() == pytest.approx({"Zr": 0.8, "Sc": 0.2}) for site in octa)
    tetra = [site for site in m.structure if "Si" in site.species.as_dict()]
    assert all(site.species.as_dict() == pytest.approx({"Si": 2 / 3, "P": 1 / 3}) for site in tetra)
    na = m.structure.composition.get_el_amt_dict()["Na"] / m.structure.composition.get_el_amt_dict()["O"]
    assert na == pytest.approx(3.4 / 12)
    assert len(occ) >= 4


def test_aliovalent_dopant_takes_the_site_with_room_and_anion_dopant_shares_anion_sites():
    m = structure_for("Na1.3Al0.3Zr1.7(PO4)3", "nasicon_R-3c")
    assert m.assignments == {"Al": "Zr"} and m.composition_error < 1e-6
    m = structure_for("Na2.9375PS3.9375Cl0.0625", "Na3PS4_tetragonal")
    assert m.assignments == {"Cl": "S"} and m.composition_error < 1e-6
    na_occ = {round(site.species.as_dict()["Na"], 6) for site in m.structure if "Na" in site.species.as_dict()}
    assert na_occ == {round(2.9375 / 3, 6)}  # Na vacancies spread over the Na sites


def test_shared_framework_substitutes_elements():
    assert resolve_key("Na3PSe4_cubic") == "Na3SbS4_cubic"
    m = structure_for("Na3PSe4", "Na3PSe4_cubic")
    assert m.structure.composition.reduced_formula == "Na3PSe4"
    assert resolve_key("closo_borate_nonexistent") is None


def test_mapping_errors_name_the_input():
    with pytest.raises(MappingError, match="'Na11Sn2PS12' of 'Na11Sn2PS12' has no prototype"):
        structure_for("Na11Sn2PS12", "Na11Sn2PS12")
    with pytest.raises(MappingError, match="lattice mode 'relaxed' is not one of radii, parent"):
        structure_for("Na3PS4", "Na3PS4_tetragonal", lattice="relaxed")
    with pytest.raises(MappingError, match="no Na"):
        structure_for("Li3PS4", "Na3PS4_tetragonal")
    with pytest.raises(PrototypeError, match="no prototype for structure type 'bogus'"):
        get_prototype("bogus")
    with pytest.raises(MappingError, match="three positive numbers"):
        structure_for("Na3PS4", "Na3PS4_tetragonal", abc=(6.9, -1, 7.1))


def test_lattice_lengths_scale_the_cell():
    a = structure_for("Na3PS4", "Na3PS4_tetragonal").structure.volume
    ref = get_prototype("Na3PS4_tetragonal").lattice
    b = structure_for("Na3PS4", "Na3PS4_tetragonal", abc=(ref["a"] * 1.01, ref["b"] * 1.01, ref["c"])).structure
    assert b.volume == pytest.approx(a * 1.01 ** 2, rel=1e-6)


def test_map_entries_reports_fallbacks():
    ms, reasons = map_entries(["Na3PS4", "Na11Sn2PS12"], ["Na3PS4_tetragonal", "Na11Sn2PS12"])
    assert ms[0] is not None and reasons[0] == ""
    assert ms[1] is None and "no prototype" in reasons[1]


def test_user_cif_with_partial_occupancy(tmp_path):
    s = Structure(Lattice.cubic(7.2), [{"Na": 0.95}, {"Sb": 0.85, "W": 0.15}, "S"],
                  [[0, 0.5, 0.5], [0, 0, 0], [0.18, 0.18, 0.18]])
    p = tmp_path / "doped.cif"
    s.to(filename=str(p))
    back = read_cif(p)
    assert back.composition.get_el_amt_dict()["W"] == pytest.approx(0.15)
    assert not back.is_ordered


def test_bad_cifs_raise_naming_the_file(tmp_path):
    bad = tmp_path / "garbage.cif"
    bad.write_text("data_x\n_cell_length_a 5\nthis is not a cif loop\n")
    with pytest.raises(StructureParseError, match="garbage.cif"):
        read_cif(bad)
    with pytest.raises(StructureParseError, match="missing.cif.*does not exist"):
        read_cif(tmp_path / "missing.cif")
    empty = tmp_path / "empty.cif"
    empty.write_text("")
    with pytest.raises(StructureParseError, match="empty.cif"):
        read_cif(empty)


def test_structure_features_work_on_disordered_structures():
    fz = NaSiteFeatures()
    ordered = fz.featurize(structure_for("Na3SbS4", "Na3SbS4_cubic").structure)
    doped = fz.featurize(structure_for("Na2.85Sb0.85W0.15S4", "Na3SbS4_cubic").structure)
    f = dict(zip(fz.feature_labels(), doped, strict=True))
    assert np.all(np.isfinite(doped)) and len(doped) == len(fz.feature_labels())
    assert f["na_site_filling"] == pytest.approx(0.95)
    assert f["spacegroup_number"] == 217
    assert f["volume_per_na"] > dict(zip(fz.feature_labels(), ordered, strict=True))["volume_per_na"]
    assert 1.5 < f["na_anion_min"] < 3.5 and f["na_coordination"] > 0
    with pytest.raises(ValueError, match="has no Na"):
        fz.featurize(Structure(Lattice.cubic(4.0), ["K", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]))


def test_rule_oxidation_states_balance_cage_anions():
    st = rule_oxidation_states({"Na": 2, "B": 12, "H": 12})
    assert st["H"] == -1 and 2 * st["Na"] + 12 * st["B"] - 12 == pytest.approx(0)


def test_closo_borate_parent_is_a_rigid_icosahedron_and_carba_borates_share_it():
    s = parent_structure("closo_borate")
    b = [i for i, site in enumerate(s) if "B" in site.species.as_dict()]
    d = sorted(s.get_distance(b[0], j) for j in b[1:])
    assert d[:5] == pytest.approx([1.78] * 5, abs=1e-3)  # five cage neighbours at the cited B-B length
    assert resolve_key("carba_closo_borate") == "closo_borate"
    m = structure_for("NaCB11H12", "carba_closo_borate")
    assert m.assignments == {"C": "B"} and m.composition_error < 1e-6
    # B10H10 salts have more Na per cage atom: the split Na sites fill further, the composition is kept
    assert structure_for("Na2B10H10", "closo_borate").composition_error < 1e-6


def test_ucl3_parent_puts_na_on_the_channel_and_the_rare_earth_site():
    s = parent_structure("UCl3_P63m")
    na = {round(site.frac_coords[2] % 1, 3): site.species.as_dict()["Na"] for site in s
          if "Na" in site.species.as_dict()}
    assert na[0.0] == pytest.approx(0.25) and na[0.25] == pytest.approx(0.125)  # 2b channel and 2c (with La)
    m = structure_for("Na0.75Sm1.75Cl6", "UCl3_P63m")
    assert m.assignments == {"Sm": "La"} and m.composition_error < 1e-6


def test_cell_follows_the_substituted_ions_radii():
    """Vegard in bond lengths: Sb5+ for P5+ on the tetragonal Na3PS4 parent expands the cell toward the measured
    Na3SbS4 cell (prototypes: +2.5 % linear); Ti4+ for Zr4+ shrinks NASICON; the parent's own formula keeps it."""
    from ml.structures.prototypes import parent_structure

    parent = parent_structure("Na3PS4_tetragonal").volume
    sb = structure_for("Na3SbS4", "Na3PS4_tetragonal")
    f = (sb.structure.volume / parent) ** (1 / 3)
    assert 1.01 < f < 1.03 and any("radii" in n for n in sb.notes)
    assert structure_for("Na3SbS4", "Na3PS4_tetragonal", lattice="parent").structure.volume == pytest.approx(parent)
    assert structure_for("Na3PS4", "Na3PS4_tetragonal").structure.volume == pytest.approx(parent)
    nzp = structure_for("NaZr2(PO4)3", "nasicon_R-3c").structure.volume
    assert structure_for("NaTi2(PO4)3", "nasicon_R-3c").structure.volume < 0.95 * nzp
    # measured lattice lengths win over the radii rule
    ref = get_prototype("Na3PS4_tetragonal").lattice
    m = structure_for("Na3SbS4", "Na3PS4_tetragonal", abc=(ref["a"], ref["b"], ref["c"]))
    assert m.structure.volume == pytest.approx(parent)


def test_na_bond_valence_sums_tell_a_loose_na_from_a_tight_one():
    """Rock-salt NaCl (a = 5.6402 A): Na is close to fully bonded; cubic Na3SbS4's Na is under-bonded."""
    fz = NaSiteFeatures()
    labels = fz.feature_labels()
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.6402), ["Na", "Cl"], [[0.5, 0.5, 0.5], [0, 0, 0]])
    a = dict(zip(labels, fz.featurize(nacl), strict=True))
    b = dict(zip(labels, fz.featurize(structure_for("Na3SbS4", "Na3SbS4_cubic").structure), strict=True))
    assert a["na_bvs_mean"] == pytest.approx(a["na_bvs_min"]) and 0.7 < a["na_bvs_mean"] < 1.0
    assert b["na_bvs_mean"] < a["na_bvs_mean"] - 0.15
    assert a["hop_bottleneck_mean"] < b["hop_bottleneck_mean"]


def test_new_prototypes_place_their_families():
    assert structure_for("Na3ErCl6", "Na3YCl6_P21n").composition_error < 1e-6
    y = structure_for("Na3YCl6", "Na3YCl6_P21n").structure
    ycl = [n.nn_distance for n in y.get_neighbors(next(s for s in y if s.species_string == "Y"), 3.0)]
    assert len(ycl) == 6 and 2.55 < min(ycl) and max(ycl) < 2.75  # measured mean Y-Cl 2.62 A
    br = structure_for("Na3OBr", "antiperovskite_Pm-3m")
    assert br.structure.lattice.a > structure_for("Na3OCl", "antiperovskite_Pm-3m").structure.lattice.a
    assert structure_for("NaB11H14", "nido_borate").composition_error < 0.01
    assert structure_for("Na1.67Mg0.67Al10.33O17", "beta2_alumina").composition_error < 0.01


def test_element_overfilling_one_site_class_takes_the_room_its_host_has_elsewhere():
    """NaGa11O17 on beta''-alumina: Ga replaces Al on all Al sites, including the Al2/Mg site whose Mg share is
    left free by the Mg-free composition (before: Ga split as Al is, 0.58 Ga scaled away, error 0.025)."""
    m = structure_for("NaGa11O17", "beta_alumina")
    assert m.assignments == {"Ga": "Al"} and m.composition_error < 1e-6
    ga = [site.species.as_dict().get("Ga", 0.0) for site in m.structure if "Ga" in site.species.as_dict()]
    assert ga == pytest.approx([1.0] * 11)  # every Al site of the parent, the tetrahedral Mg site included
    na = [site.species.as_dict()["Na"] for site in m.structure if "Na" in site.species.as_dict()]
    assert na == pytest.approx([0.5, 0.5])  # 1 Na for the parent's 5/3: vacancies on the conduction plane
    # the parent's own formula is unchanged: Mg keeps its third of the Al2/Mg site
    mg = [site.species.as_dict() for site in structure_for("Na1.67Mg0.67Al10.33O17", "beta2_alumina").structure
          if "Mg" in site.species.as_dict()]
    assert len(mg) == 2 and all(d["Mg"] == pytest.approx(0.335, abs=2e-3) for d in mg)


def test_cation_dopant_of_na_size_without_framework_room_shares_the_na_sites():
    """Na3-2xCaxPS4: P fills the framework cation site, and Ca2+ (Shannon radius within 2 % of Na+'s) goes to
    the Na sites, where Ca and the Na vacancies it creates share the capacity (before: Ca squeezed onto the full
    P/Sb site, error 0.024)."""
    m = structure_for("Na2.73Ca0.135PS4", "Na3PS4_cubic")
    assert m.assignments == {"Ca": "Na", "P": "Sb"} and m.composition_error < 1e-6
    na_sites = [site.species.as_dict() for site in m.structure if "Na" in site.species.as_dict()]
    assert len(na_sites) == 3 and all(d == pytest.approx({"Na": 0.91, "Ca": 0.045}) for d in na_sites)
    assert all(site.species.as_dict() == {"P": 1.0} for site in m.structure if "P" in site.species.as_dict())
    assert any("Ca shares the Na sites" in n for n in m.notes)
    # a cation far from Na+'s size (Cs+: +56 %) keeps the old rule (nearest framework site) and is refused
    cs = structure_for("Na2.8Cs0.2PS4", "Na3PS4_cubic")
    assert cs.assignments["Cs"] == "Sb" and cs.composition_error > 0.02
    ms, reasons = map_entries(["Na2.8Cs0.2PS4"], ["Na3PS4_cubic"])
    assert ms[0] is None and "composition error 0.035 > 0.02" in reasons[0]
    # a dopant with room on the framework still goes there (Sc3+ in NASICON, radius -24 % of Na+'s anyway)
    assert structure_for("Na3.4Zr1.6Sc0.4Si2PO12", "nasicon_R-3c").assignments == {"Sc": "Zr"}


def test_tetrahedral_xh4_anion_replaces_a_monatomic_halide_site():
    """Na3O(BH4) on the Na3OCl anti-perovskite: BH4- is one unit on the Cl site, B at the site and H on the 8
    cube diagonals at half occupancy (two orientations, as in cubic NaBH4); before, B and H were counted as
    five separate atoms (error 0.25)."""
    m = structure_for("Na3OBH4", "antiperovskite_Pm-3m")
    assert m.composition_error < 1e-6 and m.assignments == {"B": "Cl", "H": "Cl"}
    s = m.structure
    b = next(i for i, site in enumerate(s) if site.species_string == "B")
    h = [i for i, site in enumerate(s) if "H" in site.species.as_dict()]
    assert len(h) == 8 and all(s[i].species.as_dict() == pytest.approx({"H": 0.5}) for i in h)
    assert [s.get_distance(b, i) for i in h] == pytest.approx([1.21] * 8, abs=1e-6)
    na = [i for i, site in enumerate(s) if site.species_string == "Na"]
    assert min(s.get_distance(i, j) for i in na for j in h) > 2.0
    assert s.lattice.a == pytest.approx(get_prototype("antiperovskite_Pm-3m").lattice["a"])  # rigid: not scaled
    # half the Cl replaced: the site holds both, H at a quarter each
    half = structure_for("Na3OCl0.5(BH4)0.5", "antiperovskite_Pm-3m")
    assert half.composition_error < 1e-6
    hq = [site.species.as_dict()["H"] for site in half.structure if "H" in site.species.as_dict()]
    assert hq == pytest.approx([0.25] * 8)
    # the nitrite of Na3ONO2 is not a tetrahedral XH4 anion: no rule places it
    ms, reasons = map_entries(["Na3ONO2"], ["antiperovskite_Pm-3m"])
    assert ms[0] is None and "composition error" in reasons[0]
