"""The prediction module: load a model once, predict in milliseconds, say how far to trust each number.

    >>> import serving
    >>> serving.predict("Na3PS4").sigma_S_cm          # doctest: +SKIP
    >>> p = serving.Predictor.load()                   # bundled default; or a model dir / "models:/name/1"
    >>> p.predict_many(["Na3Zr2Si2PO12", "Na3SbS4"])   # doctest: +SKIP

Heavy libraries (scikit-learn, matminer, pandas, MLflow) are not imported on this path.
"""

from __future__ import annotations

from ml.structures.cif import StructureTooLargeError
from serving.predictor import (
    Neighbour,
    PredictionFailure,
    PredictionResult,
    Predictor,
    predict,
)

__all__ = ["Neighbour", "PredictionFailure", "PredictionResult", "Predictor", "StructureTooLargeError", "predict"]
