"""Temperatures given by users: "25C", "60 °C", "333K", "333.15" (kelvin) -> kelvin, or a clear error."""

from __future__ import annotations

import re

from ml.errors import NacondError

T_MIN_K, T_MAX_K = 150.0, 1300.0
_PAT = re.compile(r"^\s*([-+]?\d+(?:\.\d*)?|[-+]?\.\d+)\s*(°?\s*[cCkK]|degC|degK)?\s*$")


class TemperatureError(NacondError):
    """A temperature that cannot be read or lies outside the range nacond models."""


def parse_temperature(value: str | float | int) -> float:
    """Kelvin from "25C", "25 °C", "298.15K", "298.15" (a bare number is kelvin) or a number (kelvin)."""
    if isinstance(value, bool):
        raise TemperatureError(f"temperature {value!r} is not a number")
    if isinstance(value, int | float):
        kelvin = float(value)
    else:
        m = _PAT.match(str(value))
        if not m:
            raise TemperatureError(f"temperature {value!r} is not understood; write e.g. '60C', '333K' or '333.15'")
        number = float(m.group(1))
        unit = (m.group(2) or "K").replace("°", "").replace(" ", "").upper()
        kelvin = number + 273.15 if unit in ("C", "DEGC") else number
    if not T_MIN_K <= kelvin <= T_MAX_K:
        raise TemperatureError(f"temperature {value!r} = {kelvin:.2f} K is outside {T_MIN_K:.0f}-{T_MAX_K:.0f} K")
    return kelvin
