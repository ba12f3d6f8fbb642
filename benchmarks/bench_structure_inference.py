"""Formula -> parent structure (issue 12): leave-one-out accuracy of the nearest-parent rule on the dataset's
crystalline structure types, and prototype coverage of the dataset's compositions (labelled structure types
only, and with inferred parents for compositions labelled 'unknown'). CPU only, a few seconds.

    .venv/bin/python benchmarks/bench_structure_inference.py --out docs/bench
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ml.data import dataset_stamp, load_dataset
from ml.structures.infer import ParentIndex, is_crystalline, leave_one_out
from ml.targets import training_frame
from training.structure_train import structured_frame


def coverage(frame, *, infer_unknown: bool) -> dict:
    sub, _, report = structured_frame(frame, infer_unknown=infer_unknown)
    has = frame["group"].isin(set(sub["group"]))
    crystalline = frame["structure_type"].map(is_crystalline)
    rt = frame["log10_sigma_S_cm"].notna()
    return {"compositions": int(len(frame)), "with_structure": int(has.sum()),
            "crystalline_type": int(crystalline.sum()), "crystalline_with_structure": int((has & crystalline).sum()),
            "crystalline_share": round(float((has & crystalline).sum() / crystalline.sum()), 4),
            "rt_sigma": int(rt.sum()), "rt_sigma_with_structure": int((has & rt).sum()),
            "by_prototype": report["by_prototype"],
            "inferred_for_unknown": len(report["inferred_for_unknown_structure_type"])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/bench")
    args = ap.parse_args()
    frame = training_frame(load_dataset())
    t0 = time.perf_counter()
    loo = leave_one_out(ParentIndex.from_frame(frame))
    res = {"leave_one_out": loo, "loo_seconds": round(time.perf_counter() - t0, 2),
           "coverage_labelled": coverage(frame, infer_unknown=False),
           "coverage_with_inference": coverage(frame, infer_unknown=True)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res["dataset"] = dataset_stamp()  # which data.csv these numbers come from
    (out / "structure_inference.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
