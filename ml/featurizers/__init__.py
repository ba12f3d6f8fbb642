"""Featurizers: composition (``composition``) presets; structure featurizers come with the structure work."""

from ml.featurizers.composition import (
    PRESETS,
    CompositionFeaturizer,
    NaChemistry,
    VectorizedElementProperty,
    get_preset,
)

__all__ = ["PRESETS", "CompositionFeaturizer", "NaChemistry", "VectorizedElementProperty", "get_preset"]
