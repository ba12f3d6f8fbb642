"""Applicability domain: is a composition like the ones a model was trained on?

A prediction is *in domain* when every element was seen in training, the mobile ion is present, the
composition's (inferred) family occurs in the training data, and its nearest training composition in
standardised feature space is no farther than the 95th percentile of training nearest-neighbour distances.
"""

from __future__ import annotations

import numpy as np

from ml.chemistry import infer_family
from ml.formula import parse_formula


def fit_domain(X: np.ndarray) -> dict:
    """Statistics of the training features needed by :func:`check_domain` (JSON-serialisable)."""
    stats = {"mean": np.nanmean(X, axis=0).tolist(), "std": np.nanstd(X, axis=0).tolist()}
    d = Standardiser(X, stats).distances(X)
    np.fill_diagonal(d, np.inf)
    nn = d.min(axis=1)
    nn = nn[np.isfinite(nn)]
    stats["nn_threshold"] = float(np.quantile(nn, 0.95)) if len(nn) else float("inf")
    return stats


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
                 families: list[str] | None = None, nn_dist: np.ndarray | None = None) -> list[list[str]]:
    """Per formula, the list of reasons it is out of domain (empty list = in domain). ``amounts``,
    ``families`` and ``nn_dist`` (distance to the nearest training row) may pass what the caller computed."""
    elements = set(meta.get("elements", []))
    trained_families = set(meta.get("families", []))
    stats = meta.get("domain")
    if nn_dist is None and stats:
        nn_dist = nearest(X, train_X, stats, k=1)[1][:, 0]
    dist = None if nn_dist is None else np.asarray(nn_dist)[:, None]
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
        fam = families[i] if families is not None else infer_family(amt)
        if trained_families and fam not in trained_families:
            why.append(f"family {fam!r} (inferred) absent from training data")
        if dist is not None and dist[i, 0] > stats["nn_threshold"]:
            why.append(f"far from training data (nearest-neighbour distance {dist[i, 0]:.1f} > "
                       f"{stats['nn_threshold']:.1f})")
        notes.append(why)
    return notes
