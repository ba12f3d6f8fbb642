"""Trust (issue 13): do the 90 % intervals cover, how wide are they, and does `in_domain` catch the large misses?
Grouped 5-fold CV (three fold assignments) and leave-one-family-out of the default learner; per family: coverage,
median width, in-domain share; overall: share of misses > 1.5 decades flagged out of domain, in-domain share and
MAE. Every fold model calibrates its own domain rules and interval quantiles on its inner folds.

    .venv/bin/python benchmarks/bench_trust.py --out docs/bench
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from ml.data import dataset_stamp

T = "log10_sigma_S_cm"


def summarise(o: pd.DataFrame) -> dict:
    o = o[o[T].notna()]
    err = (o[f"pred_{T}"] - o[T]).abs()
    cov = (o[T] >= o[f"pred_{T}_lo"]) & (o[T] <= o[f"pred_{T}_hi"])
    width = o[f"pred_{T}_hi"] - o[f"pred_{T}_lo"]
    ind = o["in_domain"].astype(bool)
    big = err > 1.5
    fam = {}
    for f, g in o.groupby("family"):
        i = g.index
        fam[f] = {"n": int(len(g)), "mae": float(err[i].mean()), "coverage90": float(cov[i].mean()),
                  "median_width": float(width[i].median()), "in_domain": float(ind[i].mean())}
    return {"n": int(len(o)), "mae": float(err.mean()), "coverage90": float(cov.mean()),
            "median_width": float(width.median()), "in_domain_share": float(ind.mean()),
            "in_domain_mae": float(err[ind].mean()) if ind.any() else None,
            "in_domain_coverage90": float(cov[ind].mean()) if ind.any() else None,
            "in_domain_median_width": float(width[ind].median()) if ind.any() else None,
            "out_of_domain_mae": float(err[~ind].mean()) if (~ind).any() else None,
            "large_misses": int(big.sum()), "large_misses_flagged": float((~ind[big]).mean()) if big.any() else None,
            "families": fam}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("docs/bench"))
    args = ap.parse_args()
    from ml.data import load_dataset
    from ml.models import NacondModel
    from ml.targets import training_frame
    from training.evaluate import cross_validate

    frame = training_frame(load_dataset())
    X = NacondModel().features(frame)
    t0 = time.perf_counter()
    res = {"grouped": {}, "family": None}
    for seed in (0, 1, 2):
        cv = cross_validate(frame, ["extra_trees"], "grouped", seed=seed, X=X)
        res["grouped"][str(seed)] = summarise(cv.oof[cv.oof["learner"] == "extra_trees"].reset_index(drop=True))
    cv = cross_validate(frame, ["extra_trees"], "family", X=X)
    res["family"] = summarise(cv.oof[cv.oof["learner"] == "extra_trees"].reset_index(drop=True))
    full = NacondModel().fit(frame, X=X)
    res["reference_rules"] = full.meta["domain"]["rules"]
    res["reference_quantiles"] = {t: {"q90": f.q90, "q90_in": f.q90_in, "q90_out": f.q90_out, "n_in": f.n_in,
                                      "n_out": f.n_out} for t, f in full.fits.items()}
    res["seconds"] = round(time.perf_counter() - t0, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    res["dataset"] = dataset_stamp()  # which data.csv these numbers come from
    (args.out / "trust.json").write_text(json.dumps(res, indent=1, default=float) + "\n")
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "families"} if isinstance(v, dict) and "n" in v
                      else v for k, v in res.items() if k != "grouped"}, indent=1, default=float))
    for s, v in res["grouped"].items():
        print("grouped seed", s, {k: round(x, 3) if isinstance(x, float) else x for k, x in v.items()
                                  if k != "families"})


if __name__ == "__main__":
    main()
