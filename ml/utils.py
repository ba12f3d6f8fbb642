"""Small shared helpers with no heavy imports."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def strict_json(obj):
    """``obj`` with every non-finite float (NaN, inf) replaced by None and numpy scalars made plain, so that
    ``json.dumps(..., allow_nan=False)`` accepts it (strict JSON has no NaN)."""
    import math

    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [strict_json(v) for v in obj]
    if hasattr(obj, "item") and hasattr(obj, "dtype"):  # numpy scalar
        return strict_json(obj.item())
    return obj


def round_sig(x: float, digits: int = 4) -> float:
    """``x`` rounded to ``digits`` significant digits (NaN and 0 unchanged)."""
    import math

    if x is None or not isinstance(x, int | float) or isinstance(x, bool) or not math.isfinite(x) or x == 0:
        return x
    return round(x, digits - 1 - math.floor(math.log10(abs(x))))


# How each kind of number is written in CSVs: sigma (S/cm) to 4 significant digits, log10 values and eV to
# 3 decimals (a thousandth of a decade / of an eV is below any measurement's precision), kelvin to 2 decimals.
def round_column(name: str, x):
    """``x`` rounded to the meaning of column ``name`` (unchanged for columns without a known unit)."""
    if x is None or isinstance(x, bool) or not isinstance(x, int | float):
        return x
    base = name.removeprefix("pred_").removesuffix("_lo").removesuffix("_hi")
    if "log10" in base or base.endswith("_eV") or base.startswith("ea_") or base in (
            "mae", "rmse", "r2", "spearman", "coverage90", "acc_1e-4"):
        return round(float(x), 3)
    if base.startswith("sigma") or base.endswith("_S_cm"):
        return round_sig(float(x), 4)
    if name.endswith("_K"):
        return round(float(x), 2)
    if name in ("site_fraction", "dopant_per_formula", "na_per_formula"):
        return round(float(x), 6)
    return x


def round_row(row: dict) -> dict:
    return {k: round_column(k, v) for k, v in row.items()}
