"""Conductivity at any temperature, consistent with sigma*T = A*exp(-Ea/kT).

The model predicts two composition properties, log10 A (A in S K/cm) and Ea (eV), and composes them:
``log10 sigma(T) = log10 A - Ea / (k ln10 T) - log10 T``. So the Ea implied by the predicted sigma(T) curve is,
by construction, the Ea it reports. It learns from every uncensored (T, sigma) row: each row gives
``log10 A = log10(sigma T) + Ea / (k ln10 T)`` with the composition's measured Ea (median), or, where none was
measured, the Ea model's prediction; log10 A of a composition is the median over its rows. Intervals on
log10 sigma(T) are split-conformal, calibrated on grouped out-of-fold residuals of all (T, sigma) rows.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ml.models.composition import COVERAGE, ModelLoadError, NacondModel

K_B_EV = 8.617333262e-5  # Boltzmann constant, eV/K (CODATA 2018)
LN10 = math.log(10.0)
FILE = "arrhenius.json"

# Families whose conductivity is known to jump at a phase transition (seed review): extrapolating sigma(T)
# across it is unsafe.
TRANSITIONS = {
    "complex_hydride": "closo-/nido-borates and borohydrides have order-disorder transitions (sigma jumps by "
                       "orders of magnitude)",
    "nasicon": "monoclinic C2/c -> rhombohedral R-3c transition near 420-450 K in Na3Zr2Si2PO12-type NASICON",
    "sulfide": "Na3PS4 / Na3SbS4 tetragonal -> cubic polymorphs",
}


def log10_sigma_at(log10_a: np.ndarray, ea: np.ndarray, temperature_k) -> np.ndarray:
    t = np.asarray(temperature_k, dtype=float)
    return np.asarray(log10_a) - np.asarray(ea) / (K_B_EV * LN10 * t) - np.log10(t)


def log10_a_from(log10_sigma, ea, temperature_k) -> np.ndarray:
    t = np.asarray(temperature_k, dtype=float)
    return np.asarray(log10_sigma) + np.log10(t) + np.asarray(ea) / (K_B_EV * LN10 * t)


def temperature_rows(rows, mobile_ion: str = "Na"):
    """Uncensored (composition, T, sigma) primary rows with their reduced-formula group."""
    from ml.data import is_primary
    from ml.formula import parse_formula

    ok = (rows["mobile_ion"].eq(mobile_ion) & is_primary(rows) & rows["sigma_S_cm"].gt(0)
          & rows["temperature_K"].notna()
          & rows["sigma_censor"].eq(""))
    out = rows.loc[ok, ["entry_id", "formula", "family", "sigma_S_cm", "temperature_K", "ea_eV"]].copy()
    out["group"] = out["formula"].map(lambda f: parse_formula(f).reduced_formula)
    out["log10_sigma"] = np.log10(out["sigma_S_cm"].to_numpy(float))
    return out.reset_index(drop=True)


def _composition_frame(trows, measured_ea: dict, ea_model: NacondModel | None):
    """One row per composition with log10_A (median over its rows) and measured ea_eV (NaN if none)."""
    import pandas as pd

    first = trows.groupby("group", sort=True).first()
    groups = list(first.index)
    ea_used = np.array([measured_ea.get(g, np.nan) for g in groups], dtype=float)
    missing = np.isnan(ea_used)
    if missing.any() and ea_model is not None:
        ea_used[missing] = ea_model.predict_arrays(ea_model.features_of(first["formula"].iloc[np.flatnonzero(missing)]),
                                                   first["family"].to_numpy()[missing])["ea_eV"]
    ea_of = dict(zip(groups, ea_used, strict=True))
    a_rows = log10_a_from(trows["log10_sigma"], trows["group"].map(ea_of), trows["temperature_K"])
    a = pd.Series(a_rows).groupby(trows["group"]).median()
    return pd.DataFrame({"group": groups, "formula": first["formula"].to_numpy(), "family": first["family"].to_numpy(),
                         "log10_A": a.reindex(groups).to_numpy(),
                         "ea_eV": [measured_ea.get(g, np.nan) for g in groups]})


@dataclass
class ArrheniusModel:
    """log10 A and Ea models composed into sigma(T). ``fit`` takes dataset rows (``ml.data.load_dataset``)."""

    learner: str = "extra_trees"
    preset: str = "na-chem-2026-11-26"
    seed: int = 0
    calibration_folds: int = 5
    q90: float = float("nan")
    t_range_k: tuple[float, float] = (float("nan"), float("nan"))
    mobile_ion: str = "Na"
    model: NacondModel | None = field(default=None, repr=False)

    def _fit_core(self, rows, calibration_folds: int) -> NacondModel:
        import pandas as pd

        from ml.targets import training_frame

        comp = training_frame(rows, mobile_ion=self.mobile_ion)
        measured = dict(zip(comp["group"], comp["ea_eV"], strict=True))
        measured = {g: v for g, v in measured.items() if not np.isnan(v)}
        ea_frame = comp[comp["ea_eV"].notna()]
        ea_model = NacondModel(learner=self.learner, preset=self.preset, seed=self.seed, calibration_folds=0,
                               targets=("ea_eV",), mobile_ion=self.mobile_ion).fit(ea_frame) \
            if len(ea_frame) >= 2 else None
        frame = _composition_frame(temperature_rows(rows, self.mobile_ion), measured, ea_model)
        # compositions with a measured Ea but no usable sigma(T) row still train the Ea head
        extra = ea_frame[~ea_frame["group"].isin(frame["group"])][["group", "formula", "family", "ea_eV"]]
        frame = pd.concat([frame, extra.assign(log10_A=np.nan)], ignore_index=True)
        return NacondModel(learner=self.learner, preset=self.preset, seed=self.seed,
                           calibration_folds=calibration_folds, targets=("log10_A", "ea_eV"),
                           mobile_ion=self.mobile_ion).fit(frame)

    def fit(self, rows) -> ArrheniusModel:
        from sklearn.model_selection import GroupKFold

        trows = temperature_rows(rows, self.mobile_ion)
        if trows.empty:
            raise ValueError(f"no (temperature, conductivity) rows for mobile ion {self.mobile_ion!r}")
        self.t_range_k = (float(trows["temperature_K"].min()), float(trows["temperature_K"].max()))
        # conformal calibration of log10 sigma(T) on grouped out-of-fold residuals of every (T, sigma) row
        groups = trows["group"].to_numpy()
        k = min(self.calibration_folds, len(np.unique(groups)))
        if k >= 2:
            resid = np.full(len(trows), np.nan)
            all_groups = rows["formula"].map(_reduced).to_numpy()
            for _, te in GroupKFold(n_splits=k, shuffle=True, random_state=self.seed).split(trows, groups=groups):
                held = set(groups[te])
                core = self._fit_core(rows[~np.isin(all_groups, list(held))], calibration_folds=0)
                resid[te] = np.abs(trows["log10_sigma"].to_numpy()[te] - _predict_core(core, trows.iloc[te]))
            scores = resid[~np.isnan(resid)]
            level = min(1.0, np.ceil((len(scores) + 1) * COVERAGE) / len(scores))
            self.q90 = float(np.quantile(scores, level))
        self.model = self._fit_core(rows, calibration_folds=self.calibration_folds)
        return self

    def predict(self, X: np.ndarray, families, temperature_k) -> dict[str, np.ndarray]:
        """log10 sigma at ``temperature_k`` (scalar or per row) with 90 % bounds, and Ea with its bounds."""
        p = self.model.predict_arrays(X, np.asarray(families))
        ls = log10_sigma_at(p["log10_A"], p["ea_eV"], temperature_k)
        return {"log10_sigma_S_cm": ls, "log10_sigma_S_cm_lo": ls - self.q90, "log10_sigma_S_cm_hi": ls + self.q90,
                "ea_eV": p["ea_eV"], "ea_eV_lo": p["ea_eV_lo"], "ea_eV_hi": p["ea_eV_hi"], "log10_A": p["log10_A"]}

    def notes(self, families, temperature_k: float) -> list[list[str]]:
        out = []
        lo, hi = self.t_range_k
        for fam in families:
            why = []
            if not lo <= temperature_k <= hi:
                why.append(f"{temperature_k:.0f} K is outside the measured temperatures {lo:.0f}-{hi:.0f} K")
            if fam in TRANSITIONS and abs(temperature_k - 298.15) > 5:
                why.append(f"phase transition risk: {TRANSITIONS[fam]}")
            out.append(why)
        return out

    def save(self, directory: str | Path) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / FILE).write_text(json.dumps({"q90_log10_sigma": self.q90, "t_range_k": list(self.t_range_k),
                                          "learner": self.learner, "seed": self.seed,
                                          "mobile_ion": self.mobile_ion}, indent=2))
        self.model.save(d)  # writes the manifest last, covering arrhenius.json
        return d

    @classmethod
    def load(cls, directory: str | Path) -> ArrheniusModel:
        d = Path(directory)
        if not (d / FILE).exists():
            raise ModelLoadError(f"{str(d)!r} holds no temperature (Arrhenius) model")
        model = NacondModel.load(d)  # checks the manifest (arrhenius.json included) first
        try:
            info = json.loads((d / FILE).read_text())
            m = cls(learner=info["learner"], seed=info["seed"], q90=float(info["q90_log10_sigma"]),
                    t_range_k=tuple(float(t) for t in info["t_range_k"]), mobile_ion=info.get("mobile_ion", "Na"))
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(f"{str(d / FILE)!r} is malformed: {type(exc).__name__}: {exc}") from None
        m.model = model
        return m


def _reduced(formula: str) -> str:
    from ml.formula import parse_formula

    return parse_formula(formula).reduced_formula


def _predict_core(core: NacondModel, trows) -> np.ndarray:
    X = core.features_of(trows["formula"])
    p = core.predict_arrays(X, trows["family"].to_numpy())
    return log10_sigma_at(p["log10_A"], p["ea_eV"], trows["temperature_K"].to_numpy())
