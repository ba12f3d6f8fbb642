"""Tree ensembles as plain arrays: export a fitted scikit-learn forest, predict with numpy.

A saved model stores every tree's nodes in one ``.npz`` (loaded with ``allow_pickle=False``), so prediction
imports neither scikit-learn nor an unpickler, loads in milliseconds, and yields the per-tree spread the
conformal intervals use in one vectorised pass.
"""

from __future__ import annotations

import numpy as np

FIELDS = ("left", "right", "feature", "threshold", "value", "missing_left", "roots")


class ForestArrays:
    """All trees of a regression forest, nodes concatenated; ``left``/``right`` are global node indices
    (-1 at leaves)."""

    def __init__(self, left, right, feature, threshold, value, missing_left, roots):
        self.left = np.asarray(left, dtype=np.int64)
        self.right = np.asarray(right, dtype=np.int64)
        self.feature = np.asarray(feature, dtype=np.int64)
        self.threshold = np.asarray(threshold, dtype=float)
        self.value = np.asarray(value, dtype=float)
        self.missing_left = np.asarray(missing_left, dtype=bool)
        self.roots = np.asarray(roots, dtype=np.int64)
        # traversal tables (leaves point to themselves)
        idx = np.arange(len(self.left))
        leaf = self.left == -1
        self._left = np.where(leaf, idx, self.left).astype(np.int32)
        self._right = np.where(leaf, idx, self.right).astype(np.int32)
        self._feature = self.feature.astype(np.int32)

    @classmethod
    def from_sklearn(cls, forest) -> ForestArrays:
        parts = {k: [] for k in FIELDS if k != "roots"}
        roots, offset = [], 0
        for est in forest.estimators_:
            t = est.tree_
            leaf = t.children_left == -1
            roots.append(offset)
            parts["left"].append(np.where(leaf, -1, t.children_left + offset))
            parts["right"].append(np.where(leaf, -1, t.children_right + offset))
            parts["feature"].append(np.where(leaf, 0, t.feature))
            parts["threshold"].append(t.threshold)
            parts["value"].append(t.value[:, 0, 0])
            mgl = getattr(t, "missing_go_to_left", None)
            parts["missing_left"].append(np.zeros(t.node_count, bool) if mgl is None else mgl.astype(bool))
            offset += t.node_count
        return cls(**{k: np.concatenate(v) for k, v in parts.items()}, roots=np.array(roots))

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}{k}": getattr(self, k) for k in FIELDS}

    @classmethod
    def from_arrays(cls, arrays, prefix: str) -> ForestArrays:
        return cls(**{k: arrays[f"{prefix}{k}"] for k in FIELDS})

    def leaf_values(self, X: np.ndarray) -> np.ndarray:
        """(n_samples, n_trees) prediction of every tree. Each (sample, tree) pair walks down until it reaches
        a leaf; pairs that arrived drop out, so the work is the total path length, not n x max depth."""
        X = np.ascontiguousarray(X, dtype=float)
        n, n_features = X.shape
        n_trees = len(self.roots)
        flat = X.ravel()
        has_nan = bool(np.isnan(flat).any())
        node = np.tile(self.roots.astype(np.int32), n)  # pair p = sample * n_trees + tree
        base = np.repeat(np.arange(n, dtype=np.int64) * n_features, n_trees)
        active = np.flatnonzero(self.left[node] != -1)
        while len(active):
            nd = node[active]
            x = flat[base[active] + self._feature[nd]]
            go_left = x <= self.threshold[nd]
            if has_nan:
                go_left = np.where(np.isnan(x), self.missing_left[nd], go_left)
            nxt = np.where(go_left, self._left[nd], self._right[nd])
            node[active] = nxt
            active = active[self.left[nxt] != -1]
        return self.value[node].reshape(n, n_trees)

    def predict_mean_std(self, X: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation over trees. Large batches run in cache-sized chunks on two threads
        (numpy's gathers release the GIL)."""
        X = np.asarray(X, dtype=float)
        if len(X) <= chunk:
            v = self.leaf_values(X)
            return v.mean(axis=1), v.std(axis=1)
        from concurrent.futures import ThreadPoolExecutor

        starts = range(0, len(X), chunk)
        with ThreadPoolExecutor(max_workers=2) as pool:
            parts = list(pool.map(lambda i: self.leaf_values(X[i:i + chunk]), starts))
        v = np.vstack(parts)
        return v.mean(axis=1), v.std(axis=1)
