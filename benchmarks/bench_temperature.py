"""sigma(T) on the anchored curve: grouped CV of every (T, sigma) row by temperature band (error, 90 % coverage,
width), the seed review's elevated-temperature points, and the consistency checks of issue 13 on the reference
model (25 degC on the curve = the 25 degC prediction; NZSP at 60 degC interval width).

    .venv/bin/python benchmarks/bench_temperature.py --out docs/bench
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ml.data import dataset_stamp, load_dataset
from training.temperature_eval import temperature_cv


def consistency() -> dict:
    from ml.targets import training_frame
    from serving import Predictor

    p = Predictor.load()
    formulas = list(training_frame(load_dataset())["formula"])
    a = p.predict_many(formulas)
    b = p.predict_many(formulas, temperature_K="25C")
    d_ls = max(abs(x.log10_sigma_S_cm - y.log10_sigma_S_cm) for x, y in zip(a, b, strict=True))
    d_ea = max(abs(x.ea_eV - y.ea_eV) for x, y in zip(a, b, strict=True))
    nzsp = p.predict("Na3Zr2Si2PO12", temperature_K="60C")
    return {"n": len(formulas), "max_abs_diff_log10_sigma_25C": float(d_ls), "max_abs_diff_ea_eV_25C": float(d_ea),
            "nzsp_60C_interval_width": float(np.diff(nzsp.log10_sigma_interval)[0]),
            "nzsp_60C_log10_sigma": nzsp.log10_sigma_S_cm, "q_t": p.arrhenius.q_t,
            "transitions": p.arrhenius.transitions}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/bench")
    args = ap.parse_args()
    t = time.perf_counter()
    res = temperature_cv(load_dataset())
    res["cv_seconds"] = time.perf_counter() - t
    res["consistency"] = consistency()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    res["dataset"] = dataset_stamp()  # which data.csv these numbers come from
    (Path(args.out) / "temperature.json").write_text(json.dumps(res, indent=2, default=float))
    print(json.dumps({k: v for k, v in res.items() if k != "seed_elevated"}, indent=1, default=float))


if __name__ == "__main__":
    main()
