"""Featurizers. The matminer-facing classes load lazily so that ``ml.featurizers.kernels`` (numpy + pymatgen)
can be imported by the prediction path without importing matminer."""

from __future__ import annotations

__all__ = ["PRESETS", "CompositionFeaturizer", "NaChemistry", "VectorizedElementProperty", "get_preset"]


def __getattr__(name: str):
    if name in __all__:
        from ml.featurizers import composition

        return getattr(composition, name)
    raise AttributeError(f"module 'ml.featurizers' has no attribute {name!r}")
