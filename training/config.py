"""Typed, frozen training configuration; the resolved config is saved with every run."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

CV = Literal["grouped", "family", "none"]


@dataclass(frozen=True)
class TrainConfig:
    data: str
    model: str = "extra_trees"
    cv: CV = "grouped"
    out: str = "build/model"
    experiment: str = "nacond"
    tracking_uri: str | None = None
    preset: str = "na-chem-2026-11-26"
    seed: int = 0
    n_splits: int = 5
    mobile_ion: str = "Na"
    register_as: str | None = None
    learning_curve: bool = True
    warn_only: tuple[str, ...] = ()  # validator columns whose errors are downgraded to warnings (--warn-only)
    force: bool = False  # replace an --out folder that is not a nacond model

    def to_dict(self) -> dict:
        return asdict(self)
