"""Applicability domain: is a composition like the ones a model was trained on?

A prediction is *out of domain* (with a note saying why) when

* the mobile ion is missing, or an element never occurs in training;
* its (inferred) family has fewer than ``min_family_support`` training compositions;
* its nearest training composition (standardised feature space) is farther than ``nn_threshold``;
* the trees of the ensemble disagree on its log10 sigma by more than ``max_tree_spread`` (standard deviation
  in decades): the training data do not pin it down, so the prediction is a guess;
* its mobile-ion fraction lies outside the training range;
* it is not charge-balanced with common oxidation states (:func:`charge_balanced`).

The three thresholds are not set by hand: :func:`calibrate_rules` picks them on grouped out-of-fold
errors of the training data (the inner folds the conformal intervals are calibrated on), as the combination that
best separates large misses (> 1.5 decades) from the rest (Youden's J) while keeping at least half of the
out-of-fold compositions in domain.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from itertools import product

import numpy as np

from ml.chemistry import infer_family
from ml.formula import parse_formula

LARGE_MISS = 1.5  # decades of sigma: what the calibration tries to flag
MIN_IN_DOMAIN = 0.5  # share of out-of-fold compositions the calibrated rules must leave in domain
# Candidate thresholds, as quantiles of the out-of-fold values (1.0 = rule off) or counts. Measured on the
# 2026-12-07 dataset (grouped CV, AUC for misses > 1.5 decades): tree spread 0.70-0.76, family support
# 0.65-0.71, nearest-neighbour distance 0.61-0.64, element support 0.46 (not used beyond unseen elements),
# spread of the neighbours' measured values 0.56-0.59 (not used).
FAMILY_SUPPORT = (1, 3, 5, 10, 20)
NN_QUANTILES = (0.7, 0.8, 0.9, 0.95, 1.0)
SPREAD_QUANTILES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
# Charge-balance roles: halogens are anions; chalcogens and H may be anions or cations (S2- beside O2- in an
# oxysulfide, S6+ in a sulfate; H- or H+); every other element is a cation unless it is the compound's most
# electronegative element (P3- in a phosphide, N3- in a nitride).
HALOGENS = {"F", "Cl", "Br", "I"}
EITHER_SIGN = {"H", "S", "Se", "Te"}


def fit_domain(X: np.ndarray, amounts: Sequence[dict] | None = None, mobile_ion: str = "Na") -> dict:
    """Statistics of the training compositions that :func:`check_domain` needs (JSON-serialisable)."""
    stats = {"mean": np.nanmean(X, axis=0).tolist(), "std": np.nanstd(X, axis=0).tolist()}
    d = Standardiser(X, stats).distances(X)
    np.fill_diagonal(d, np.inf)
    nn = d.min(axis=1)
    nn = nn[np.isfinite(nn)]
    stats["nn_threshold"] = float(np.quantile(nn, 0.95)) if len(nn) else float("inf")
    if amounts is not None:
        frac = [mobile_fraction(a, mobile_ion) for a in amounts]
        stats["mobile_fraction_range"] = [float(min(frac)), float(max(frac))]
    if amounts is not None:  # counted by inferred family, which is what a new formula is compared on
        fams, counts = np.unique(np.asarray([infer_family(a) for a in amounts], dtype=str), return_counts=True)
        stats["family_support"] = {str(f): int(c) for f, c in zip(fams, counts, strict=True)}
    stats["rules"] = {"min_family_support": 1, "nn_threshold": stats["nn_threshold"],
                      "max_tree_spread": float("inf"), "calibrated": False}
    return stats


def element_support(amounts: Sequence[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in amounts:
        for el in a:
            out[el] = out.get(el, 0) + 1
    return out


def mobile_fraction(amounts: dict, mobile_ion: str = "Na") -> float:
    total = sum(amounts.values())
    return float(amounts.get(mobile_ion, 0.0) / total) if total > 0 else 0.0


@lru_cache(maxsize=256)
def _element_roles(symbol: str) -> tuple[float, tuple[int, ...]]:
    """Electronegativity (NaN if none) and common oxidation states of an element (cached: called per formula)."""
    import warnings

    from pymatgen.core import Element

    el = Element(symbol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = float(el.X)
    return x, tuple(el.common_oxidation_states)


def charge_balanced(amounts: dict, tolerance: float = 0.02) -> bool | None:
    """Can common oxidation states sum to zero? (continuous relaxation: mixed valence allowed).

    The most electronegative element and halogens take negative common states, chalcogens and H either sign,
    all other elements positive states. Returns None where the rule does not apply (boron, carbon or
    nitrogen hydride clusters such as B12H12 2-, BH4-, NH2-, CB11H12-, whose formal states pymatgen cannot give).
    """
    els = {e: _element_roles(e) for e in amounts}
    if ("H" in amounts and ({"B", "N", "C", "Al"} & set(amounts))) or ("B" in amounts and HALOGENS & set(amounts)):
        return None
    most = max(els, key=lambda e: els[e][0] if els[e][0] == els[e][0] else 0.0)
    lo = hi = 0.0
    scale = 0.0
    for e, n in amounts.items():
        states = list(els[e][1]) or [0]
        if e == most or e in HALOGENS:
            allowed = [s for s in states if s < 0] or [min(states)]
        elif e in EITHER_SIGN:
            allowed = states
        else:
            allowed = [s for s in states if s > 0] or [max(states)]
        lo += n * min(allowed)
        hi += n * max(allowed)
        scale += n * max(abs(s) for s in allowed)
    tol = tolerance * max(scale, 1.0) / 2
    return lo - tol <= 0.0 <= hi + tol


class Standardiser:
    """The training set in standardised feature space, prepared once for nearest-neighbour queries."""

    def __init__(self, train_X: np.ndarray, stats: dict):
        mu, sd = np.asarray(stats["mean"]), np.asarray(stats["std"])
        self.keep = sd > 1e-12
        self.mu, self.sd = mu[self.keep], sd[self.keep]
        self.Z = (train_X[:, self.keep] - self.mu) / self.sd
        self.Z_sq = (self.Z**2).sum(1)

    def distances(self, X: np.ndarray) -> np.ndarray:
        """(n, n_train) Euclidean distances in the standardised space."""
        A = (X[:, self.keep] - self.mu) / self.sd
        return np.sqrt(np.maximum((A**2).sum(1)[:, None] + self.Z_sq[None, :] - 2 * A @ self.Z.T, 0.0))

    def nearest(self, X: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """Indices and distances of the ``k`` nearest training rows."""
        d = self.distances(X)
        k = min(k, d.shape[1])
        idx = np.argpartition(d, k - 1, axis=1)[:, :k] if k < d.shape[1] else np.tile(np.arange(k), (len(d), 1))
        order = np.argsort(np.take_along_axis(d, idx, axis=1), axis=1)
        idx = np.take_along_axis(idx, order, axis=1)
        return idx, np.take_along_axis(d, idx, axis=1)


def nearest(X: np.ndarray, train_X: np.ndarray, stats: dict, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Indices and distances of the ``k`` nearest training rows (standardised features)."""
    return Standardiser(train_X, stats).nearest(X, k)


def check_domain(formulas: list[str], X: np.ndarray, train_X: np.ndarray, meta: dict,
                 mobile_ion: str = "Na", amounts: list[dict] | None = None,
                 families: list[str] | None = None, nn_dist: np.ndarray | None = None,
                 tree_spread: np.ndarray | None = None) -> list[list[str]]:
    """Per formula, the list of reasons it is out of domain (empty list = in domain). ``amounts``,
    ``families`` and ``nn_dist`` (distance to the nearest training row) may pass what the caller computed;
    ``tree_spread`` is the ensemble's standard deviation of log10 sigma (no spread rule without it)."""
    elements = set(meta.get("elements", []))
    trained_families = set(meta.get("families", []))
    stats = meta.get("domain") or {}
    rules = stats.get("rules", {"min_family_support": 1, "nn_threshold": stats.get("nn_threshold", float("inf"))})
    fam_support = stats.get("family_support", {})
    frac_range = stats.get("mobile_fraction_range")
    if nn_dist is None and stats:
        nn_dist = nearest(X, train_X, stats, k=1)[1][:, 0]
    max_spread = rules.get("max_tree_spread", float("inf"))
    notes = []
    for i, f in enumerate(formulas):
        amt = amounts[i] if amounts is not None else parse_formula(f).get_el_amt_dict()
        syms = set(amt)
        why = []
        if mobile_ion not in syms:
            why.append(f"no {mobile_ion}: not a {mobile_ion}-ion conductor composition")
        unseen = sorted(syms - elements)
        if unseen:
            why.append("elements not in training data: " + ", ".join(unseen))
        fam = str(families[i]) if families is not None else infer_family(amt)
        n_fam = fam_support.get(fam, 0) if fam_support else (1 if fam in trained_families else 0)
        if trained_families and fam not in trained_families:
            why.append(f"family {fam!r} (inferred) absent from training data")
        elif fam_support and n_fam < rules["min_family_support"]:
            why.append(f"family {fam!r} (inferred) has only {n_fam} training compositions "
                       f"(< {rules['min_family_support']})")
        if nn_dist is not None and nn_dist[i] > rules["nn_threshold"]:
            why.append(f"far from training data (nearest-neighbour distance {nn_dist[i]:.1f} > "
                       f"{rules['nn_threshold']:.1f})")
        if tree_spread is not None and tree_spread[i] > max_spread:
            why.append(f"the model's trees disagree on log10 sigma (sd {tree_spread[i]:.2f} > {max_spread:.2f} "
                       "decades): the training data do not pin this composition down")
        if frac_range and mobile_ion in syms:
            x = mobile_fraction(amt, mobile_ion)
            lo, hi = frac_range
            if not lo - 1e-9 <= x <= hi + 1e-9:
                why.append(f"{mobile_ion} fraction {x:.3f} outside the training range {lo:.3f}-{hi:.3f}")
        if charge_balanced(amt) is False:
            why.append("not charge-balanced with common oxidation states")
        notes.append(why)
    return notes


def calibrate_rules(nn_dist: np.ndarray, fam_support: np.ndarray, always: np.ndarray, tree_spread: np.ndarray,
                    abs_err: np.ndarray) -> dict:
    """Thresholds from out-of-fold compositions: ``nn_dist`` (to the fold's training set), ``fam_support``
    (training compositions of its inferred family), ``always`` (flagged by the fixed rules), ``tree_spread``
    (the fold model's tree standard deviation) and ``abs_err`` (|OOF error| of log10 sigma).

    Returns the rule set maximising Youden's J for large misses with at least ``MIN_IN_DOMAIN`` in domain;
    the fixed rules alone when the out-of-fold set holds no large miss.
    """
    big = abs_err > LARGE_MISS
    finite = nn_dist[np.isfinite(nn_dist)]
    best = {"min_family_support": 1, "nn_threshold": float("inf"), "max_tree_spread": float("inf"), "j": 0.0}
    if big.sum() == 0 or (~big).sum() == 0 or len(finite) == 0:
        return {**best, "calibrated": False, "n": int(len(abs_err)), "n_large": int(big.sum())}
    nn_cut = {q: float(np.quantile(finite, q)) if q < 1 else float("inf") for q in NN_QUANTILES}
    sp_cut = {q: float(np.quantile(tree_spread, q)) if q < 1 else float("inf") for q in SPREAD_QUANTILES}
    for mf, qn, qs in product(FAMILY_SUPPORT, NN_QUANTILES, SPREAD_QUANTILES):
        rules = {"min_family_support": mf, "nn_threshold": nn_cut[qn], "max_tree_spread": sp_cut[qs]}
        flagged = flagged_by(rules, nn_dist, fam_support, always, tree_spread)
        if 1 - flagged.mean() < MIN_IN_DOMAIN:
            continue
        j = flagged[big].mean() - flagged[~big].mean()
        if j > best["j"] + 1e-9:
            best = {**rules, "j": float(j)}
    flagged = flagged_by(best, nn_dist, fam_support, always, tree_spread)
    return {**best, "calibrated": True, "n": int(len(abs_err)), "n_large": int(big.sum()),
            "large_flagged": float(flagged[big].mean()), "in_domain": float(1 - flagged.mean())}


def flagged_by(rules: dict, nn_dist, fam_support, always, tree_spread=None) -> np.ndarray:
    """Which out-of-fold compositions a rule set flags (the same rules :func:`check_domain` applies)."""
    out = always | (fam_support < rules["min_family_support"]) | (nn_dist > rules["nn_threshold"])
    if tree_spread is not None:
        out = out | (tree_spread > rules.get("max_tree_spread", np.inf))
    return out


def oof_domain_features(X: np.ndarray, amounts: Sequence[dict], rows: np.ndarray, fold: np.ndarray, stats: dict,
                        mobile_ion: str = "Na") -> dict[str, np.ndarray]:
    """For each out-of-fold composition (``rows`` of the training frame, ``fold`` its inner fold), what the
    domain rules look at, measured against that fold's training part: nearest-neighbour distance, fewest
    training compositions of any of its elements, training compositions of its inferred family, and whether a
    fixed rule (unseen element, no mobile ion, mobile fraction outside range, charge balance) flags it."""
    n = len(rows)
    out = {"nn_dist": np.full(n, np.inf), "fam_support": np.zeros(n), "always": np.zeros(n, dtype=bool)}
    inferred = [infer_family(amounts[r]) for r in rows]
    balanced = [charge_balanced(amounts[r]) for r in rows]
    for k in np.unique(fold):
        te = np.flatnonzero(fold == k)
        tr_rows = rows[fold != k]
        if len(tr_rows) == 0:
            continue
        out["nn_dist"][te] = Standardiser(X[tr_rows], stats).nearest(X[rows[te]], k=1)[1][:, 0]
        support = element_support([amounts[r] for r in tr_rows])
        fam_counts: dict[str, int] = {}
        for r in tr_rows:
            f = infer_family(amounts[r])
            fam_counts[f] = fam_counts.get(f, 0) + 1
        frac = [mobile_fraction(amounts[r], mobile_ion) for r in tr_rows]
        lo, hi = min(frac), max(frac)
        for j in te:
            a = amounts[rows[j]]
            out["fam_support"][j] = fam_counts.get(inferred[j], 0)
            x = mobile_fraction(a, mobile_ion)
            unseen = any(support.get(e, 0) == 0 for e in a)
            out["always"][j] = (mobile_ion not in a or unseen or not lo - 1e-9 <= x <= hi + 1e-9
                                or balanced[j] is False)
    return out
