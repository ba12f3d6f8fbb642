"""Screening past one machine: 100,000 candidate compositions, serial vs Ray actors on this 2-core machine.

    .venv/bin/python benchmarks/bench_ray.py --out docs/bench
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ml.data import dataset_stamp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    from benchmarks.bench_composition import candidate_formulas
    from serving import Predictor
    from serving.parallel import predict_ray

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/bench")
    ap.add_argument("--n", type=int, default=100_000)
    args = ap.parse_args()
    res = {"n": args.n}
    fs = candidate_formulas(args.n, seed=31)
    t = time.perf_counter()
    Predictor.load().predict_many(fs, on_error="skip")
    res["serial_s"] = time.perf_counter() - t
    for workers in (1, 2):
        fs = candidate_formulas(args.n, seed=40 + workers)  # fresh formulas: no cache hits
        t = time.perf_counter()
        out = predict_ray(fs, workers=workers, chunk=5000)
        res[f"ray_{workers}_workers_s"] = time.perf_counter() - t
        assert len(out) == args.n
    for k in [k for k in res if k.endswith("_s")]:
        res[k.replace("_s", "_per_s")] = args.n / res[k]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    res["dataset"] = dataset_stamp()  # which data.csv these numbers come from
    (Path(args.out) / "ray.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
