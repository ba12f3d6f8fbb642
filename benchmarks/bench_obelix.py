"""OBELiX official split (Li, room-temperature conductivity): the nacond composition model trained through the
same path as a user's (`nacond data import --format obelix`, then the Li model) on the official train split and
scored on the official test split, beside the global- and family-median baselines.

OBELiX (Therrien et al., Digital Discovery 2026, CC-BY 4.0) is read from a local copy of its CSVs, by default
``../shared/external/obelix`` (nothing of it is committed here).

    .venv/bin/python benchmarks/bench_obelix.py --obelix ../shared/external/obelix --out docs/bench
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def frame_of(csv: Path):
    from ml.importers import import_table
    from ml.targets import training_frame

    res = import_table(csv, "obelix", mobile_ion="Li")
    import pandas as pd

    rows = res.rows.copy()
    for c in ("sigma_S_cm", "temperature_K", "ea_eV"):
        rows[c] = pd.to_numeric(rows[c].str.strip(), errors="coerce")
    return training_frame(rows, mobile_ion="Li"), res, rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--obelix", type=Path, default=ROOT.parent / "shared" / "external" / "obelix")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "bench")
    args = ap.parse_args()
    from ml.models import NacondModel

    train, tr_res, _ = frame_of(args.obelix / "train.csv")
    test, te_res, te_rows = frame_of(args.obelix / "test.csv")
    # bounds ("<1E-10") are not values: the test score uses the uncensored compositions, as training does
    t0 = time.perf_counter()
    out = {"train_compositions": int(train["log10_sigma_S_cm"].notna().sum()),
           "test_compositions": int(test["log10_sigma_S_cm"].notna().sum()),
           "skipped_rows": {"train": len(tr_res.skipped), "test": len(te_res.skipped)},
           "censored_test_rows": int(te_rows["sigma_censor"].ne("").sum()), "models": {}}
    y = test["log10_sigma_S_cm"].to_numpy(float)
    keep = ~np.isnan(y)
    for learner in ("global_median", "family_median", "extra_trees", "random_forest"):
        m = NacondModel(learner=learner, mobile_ion="Li", targets=("log10_sigma_S_cm",)).fit(train)
        p = m.predict(test)
        pred, lo, hi = (p[f"log10_sigma_S_cm{s}"].to_numpy(float) for s in ("", "_lo", "_hi"))
        err = np.abs(pred - y)[keep]
        out["models"][learner] = {"mae": round(float(err.mean()), 3),
                                  "rmse": round(float(np.sqrt((err ** 2).mean())), 3),
                                  "coverage90": round(float(((y >= lo) & (y <= hi))[keep].mean()), 3),
                                  "median_interval_width": round(float(np.median((hi - lo)[keep])), 2)}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "obelix.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
