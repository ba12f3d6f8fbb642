"""Conductivity at any temperature: one curve, anchored on the room-temperature model.

    log10 sigma(T) = log10 sigma(25 degC) - Ea x - log10(T / 298.15 K),   x = (1/T - 1/298.15 K) / (k ln 10)

i.e. sigma*T = A exp(-Ea/kT) through the 25 degC prediction, with the composition model's own Ea (so the curve's
slope is the Ea it reports, and at 25 degC the curve is the 25 degC prediction). The 90 % interval grows with
the distance from room temperature:

    half(T) = half(25 degC) + q_T * half(Ea) * |x|

where ``q_T`` is calibrated split-conformally on grouped out-of-fold predictions of every measured (T, sigma)
row outside 20-30 degC. Phase transitions are read from the data: a composition whose activation energies come
in a room-temperature regime and a high-temperature regime (``ea_T_range_K``) has a transition between them;
a prediction is flagged only when the asked temperature reaches that range (its own, or its family's).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ml.errors import ModelLoadError
from ml.models.composition import COVERAGE, NacondModel, conformal_quantile
from ml.models.manifest import verify_manifest, write_manifest

K_B_EV = 8.617333262e-5  # Boltzmann constant, eV/K (CODATA 2018)
LN10 = math.log(10.0)
T_REF_K = 298.15
FILE = "arrhenius.json"
FORMAT_VERSION = 2
NEAR_TRANSITION_K = 15.0  # a transition this close to the asked temperature is reported


def log10_sigma_at(log10_a: np.ndarray, ea: np.ndarray, temperature_k) -> np.ndarray:
    t = np.asarray(temperature_k, dtype=float)
    return np.asarray(log10_a) - np.asarray(ea) / (K_B_EV * LN10 * t) - np.log10(t)


def log10_a_from(log10_sigma, ea, temperature_k) -> np.ndarray:
    t = np.asarray(temperature_k, dtype=float)
    return np.asarray(log10_sigma) + np.log10(t) + np.asarray(ea) / (K_B_EV * LN10 * t)


def x_of(temperature_k) -> np.ndarray:
    """(1/T - 1/298.15 K) / (k ln 10), in 1/eV: log10 sigma changes by -Ea x between 25 degC and T."""
    return (1.0 / np.asarray(temperature_k, dtype=float) - 1.0 / T_REF_K) / (K_B_EV * LN10)


def anchored(ls_rt, ea, temperature_k) -> np.ndarray:
    """log10 sigma(T) on the curve sigma*T = A exp(-Ea/kT) through log10 sigma(298.15 K) = ``ls_rt``."""
    return log10_sigma_at(log10_a_from(ls_rt, ea, T_REF_K), ea, temperature_k)


def temperature_rows(rows, mobile_ion: str = "Na"):
    """Uncensored (composition, T, sigma) primary rows with their reduced-formula group."""
    from ml.data import is_primary
    from ml.formula import parse_formula

    ok = (rows["mobile_ion"].eq(mobile_ion) & is_primary(rows) & rows["sigma_S_cm"].gt(0)
          & rows["temperature_K"].notna() & rows["sigma_censor"].eq(""))
    out = rows.loc[ok, ["entry_id", "formula", "family", "sigma_S_cm", "temperature_K", "ea_eV"]].copy()
    out["group"] = out["formula"].map(lambda f: parse_formula(f).reduced_formula)
    out["log10_sigma"] = np.log10(out["sigma_S_cm"].to_numpy(float))
    return out.reset_index(drop=True)


def transitions_from(rows, mobile_ion: str = "Na") -> dict[str, dict]:
    """Per reduced composition with activation energies measured in two regimes (a fit window reaching room
    temperature and one entirely above 330 K): the range between the first's upper end and the second's lower
    end (K), and its family."""
    from ml.formula import parse_formula
    from ml.targets import ea_fit_window, ea_regime

    out: dict[str, dict] = {}
    sub = rows[rows["mobile_ion"].eq(mobile_ion) & rows["ea_eV"].notna()]
    for formula, fam, window in zip(sub["formula"], sub["family"], sub["ea_T_range_K"], strict=True):
        g = parse_formula(formula).reduced_formula
        lo, hi = ea_fit_window(window)
        reg = ea_regime(window)
        d = out.setdefault(g, {"family": fam, "below": [], "above": []})
        if reg == "high_T" and lo is not None:
            d["above"].append(lo)
        elif reg == "rt" and hi is not None and hi > T_REF_K + 5:
            d["below"].append(hi)
    res = {}
    for g, d in out.items():  # both regimes measured: the change lies between the two fit windows
        if d["above"] and d["below"]:
            hi = min(d["above"])
            lo = max([t for t in d["below"] if t <= hi], default=hi)
            res[g] = {"family": d["family"], "range_K": [round(lo, 1), round(hi, 1)]}
    return res


@dataclass
class ArrheniusModel:
    """sigma(T) anchored on a room-temperature :class:`NacondModel`; ``fit`` takes dataset rows."""

    learner: str = "extra_trees"
    preset: str = "na-chem-2026-11-26"
    seed: int = 0
    calibration_folds: int = 5
    q_t: float = float("nan")  # conformal factor on half(Ea) |x|
    t_range_k: tuple[float, float] = (float("nan"), float("nan"))
    mobile_ion: str = "Na"
    transitions: dict = field(default_factory=dict)
    n_calibration_rows: int = 0

    def fit(self, rows) -> ArrheniusModel:
        """Calibrate ``q_T`` on grouped out-of-fold predictions of every (T, sigma) row outside 20-30 degC."""
        from sklearn.model_selection import GroupKFold

        from ml.targets import training_frame

        trows = temperature_rows(rows, self.mobile_ion)
        if trows.empty:
            raise ValueError(f"no (temperature, conductivity) rows for mobile ion {self.mobile_ion!r}")
        self.t_range_k = (float(trows["temperature_K"].min()), float(trows["temperature_K"].max()))
        self.transitions = transitions_from(rows, self.mobile_ion)
        comp = training_frame(rows, mobile_ion=self.mobile_ion)
        far = ~trows["temperature_K"].between(293.15, 303.15).to_numpy()
        groups = comp["group"].to_numpy()
        k = min(self.calibration_folds, len(np.unique(groups)))
        needed = []
        if k >= 2 and far.any():
            for tr, te in GroupKFold(n_splits=k, shuffle=True, random_state=self.seed).split(comp, groups=groups):
                model = NacondModel(learner=self.learner, preset=self.preset, seed=self.seed, calibration_folds=3,
                                    mobile_ion=self.mobile_ion).fit(comp.iloc[tr])
                if "ea_eV" not in model.fits or "log10_sigma_S_cm" not in model.fits:
                    continue
                held = comp.iloc[te]
                sel = trows["group"].isin(set(held["group"])).to_numpy() & far
                if not sel.any():
                    continue
                r = trows[sel]
                p = model.predict(r.assign(family=r["family"]))
                self_pred = self.at({key: p[key].to_numpy() for key in p.columns}, r["temperature_K"].to_numpy(),
                                    q_t=0.0)
                resid = np.abs(r["log10_sigma"].to_numpy() - self_pred["log10_sigma_S_cm"])
                half_rt = (p["log10_sigma_S_cm_hi"] - p["log10_sigma_S_cm_lo"]).to_numpy() / 2
                half_ea = (p["ea_eV_hi"] - p["ea_eV_lo"]).to_numpy() / 2
                reach = np.maximum(half_ea * np.abs(x_of(r["temperature_K"].to_numpy())), 1e-9)
                needed.extend(np.maximum(0.0, resid - half_rt) / reach)
        self.n_calibration_rows = len(needed)
        self.q_t = conformal_quantile(np.array(needed), COVERAGE) if needed else float("nan")
        return self

    def at(self, rt_pred: dict, temperature_k, q_t: float | None = None) -> dict[str, np.ndarray]:
        """The room-temperature prediction (``NacondModel.predict_arrays`` keys) carried to ``temperature_k``."""
        q = self.q_t if q_t is None else q_t
        t = np.broadcast_to(np.asarray(temperature_k, dtype=float), np.shape(rt_pred["log10_sigma_S_cm"]))
        ls_rt, ea = np.asarray(rt_pred["log10_sigma_S_cm"]), np.asarray(rt_pred["ea_eV"])
        ls = anchored(ls_rt, ea, t)
        half_rt = (np.asarray(rt_pred["log10_sigma_S_cm_hi"]) - np.asarray(rt_pred["log10_sigma_S_cm_lo"])) / 2
        half_ea = (np.asarray(rt_pred["ea_eV_hi"]) - np.asarray(rt_pred["ea_eV_lo"])) / 2
        half = half_rt + (q if q == q else 1.0) * half_ea * np.abs(x_of(t))
        return {**rt_pred, "log10_sigma_S_cm": ls, "log10_sigma_S_cm_lo": ls - half, "log10_sigma_S_cm_hi": ls + half}

    def notes(self, groups, families, temperature_k: float) -> list[list[str]]:
        """Per prediction: outside the measured temperatures, or at/over a phase transition seen in the data
        (the composition's own, else its family's)."""
        out = []
        lo, hi = self.t_range_k
        by_family: dict[str, list] = {}
        for g, d in self.transitions.items():
            by_family.setdefault(d["family"], []).append((g, d["range_K"]))
        for g, fam in zip(groups, map(str, families), strict=True):
            why = []
            if not lo <= temperature_k <= hi:
                why.append(f"{temperature_k:.0f} K is outside the measured temperatures {lo:.0f}-{hi:.0f} K")
            own = self.transitions.get(g)
            cands = [(g, own["range_K"])] if own else by_family.get(fam, [])
            reached = [(c, r) for c, r in cands if temperature_k >= r[0] - NEAR_TRANSITION_K]
            if reached:
                c, r = min(reached, key=lambda cr: cr[1][0])
                whose = "its" if own else f"in its family {fam} ({c}), the"
                where = f"at about {r[0]:.0f} K" if r[1] - r[0] < 1 else f"between {r[0]:.0f} and {r[1]:.0f} K"
                why.append(f"phase transition: {whose} activation energy changes {where} in the data; sigma(T) "
                           "across it is unreliable")
            out.append(why)
        return out

    def save(self, directory: str | Path) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        info = {"format_version": FORMAT_VERSION, **asdict(self), "t_range_k": list(self.t_range_k)}
        (d / FILE).write_text(json.dumps(info, indent=2))
        write_manifest(d)
        return d

    @classmethod
    def load(cls, directory: str | Path) -> ArrheniusModel:
        d = Path(directory)
        if not (d / FILE).exists():
            raise ModelLoadError(f"{str(d)!r} holds no temperature (Arrhenius) model")
        verify_manifest(d, require=FILE)
        try:
            info = json.loads((d / FILE).read_text())
            if info.get("format_version") != FORMAT_VERSION:
                raise ModelLoadError(f"{str(d / FILE)!r} has format version {info.get('format_version')}, this "
                                     f"nacond reads {FORMAT_VERSION}; retrain the model")
            info.pop("format_version")
            info["t_range_k"] = tuple(float(t) for t in info["t_range_k"])
            info["q_t"] = float(info["q_t"])
            return cls(**info)
        except ModelLoadError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(f"{str(d / FILE)!r} is malformed: {type(exc).__name__}: {exc}") from None
