from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def tiny_csv() -> Path:
    return FIXTURES / "tiny.csv"


@pytest.fixture
def tiny_rows(tiny_csv) -> pd.DataFrame:
    return pd.read_csv(tiny_csv, dtype=str, keep_default_na=False)


@pytest.fixture
def write_dataset(tmp_path):
    """Write a DataFrame as a dataset folder (data.csv + sealed metadata.json) and return the folder."""
    from ml.data import write_metadata

    def _write(df: pd.DataFrame, seal: bool = True) -> Path:
        d = tmp_path / "ds"
        d.mkdir(exist_ok=True)
        df.to_csv(d / "data.csv", index=False)
        if seal:
            write_metadata(d)
        return d

    return _write
