"""One place that writes small CIF texts for the tests (cubic/orthogonal cell, given operations and sites)."""

from __future__ import annotations


def cif_text(sites: list[tuple], *, a: float = 10.0, ops: list[str] | None = None,
             formula_sum: str | None = None, name: str = "x") -> str:
    """``sites``: (label, element, x, y, z, occupancy) tuples; ``ops``: symmetry operations (default identity)."""
    ops_block = "\n".join(f"  '{op}'" for op in (ops or ["x, y, z"]))
    site_block = "\n".join("  " + " ".join(str(v) for v in s) for s in sites)
    stated = f"_chemical_formula_sum '{formula_sum}'\n" if formula_sum else ""
    return (f"data_{name}\n{stated}_cell_length_a {a}\n_cell_length_b {a}\n_cell_length_c {a}\n"
            "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n"
            f"loop_\n _symmetry_equiv_pos_as_xyz\n{ops_block}\n"
            "loop_\n _atom_site_label\n _atom_site_type_symbol\n _atom_site_fract_x\n _atom_site_fract_y\n"
            f" _atom_site_fract_z\n _atom_site_occupancy\n{site_block}\n")
