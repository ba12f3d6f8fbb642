"""Models: baselines, composition learners with calibrated intervals, save/load without pickle."""

from ml.models.composition import LEARNERS, TARGETS, NacondModel

__all__ = ["LEARNERS", "TARGETS", "NacondModel"]
