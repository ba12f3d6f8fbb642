"""sigma(T): does learning from every temperature help at 25 degC (grouped CV, identical folds), and how far
are the seed review's elevated-temperature points from out-of-fold sigma(T)?

    .venv/bin/python benchmarks/bench_temperature.py --out docs/bench
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ml.data import load_dataset
from ml.models.arrhenius import ArrheniusModel
from training.temperature_eval import temperature_cv


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/bench")
    args = ap.parse_args()
    rows = load_dataset()
    t = time.perf_counter()
    res = temperature_cv(rows)
    res["cv_seconds"] = time.perf_counter() - t
    t = time.perf_counter()
    q90 = ArrheniusModel().fit(rows).q90
    res["fit_seconds"] = time.perf_counter() - t
    res["q90_log10_sigma"] = q90
    for r in res["seed_elevated"]:
        r["within_90pct_interval"] = bool(r["abs_err"] <= q90)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "temperature.json").write_text(json.dumps(res, indent=2, default=float))
    print(json.dumps({k: v for k, v in res.items() if k != "seed_elevated"}, indent=1, default=float))


if __name__ == "__main__":
    main()
