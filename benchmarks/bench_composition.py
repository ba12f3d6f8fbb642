"""Composition-model benchmarks: featurization speed vs plain matminer, grouped and leave-one-family-out CV of
every learner beside both baselines, training time. Writes JSON + markdown under the given folder.

    .venv/bin/python benchmarks/bench_composition.py --out docs/bench
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ml.data import dataset_stamp


def candidate_formulas(n: int, seed: int = 0) -> list[str]:
    """n distinct doped variants of the dataset's compositions (amounts jittered by up to +-10 %)."""
    from ml.data import load_dataset
    from ml.formula import parse_formula

    base = [parse_formula(f).get_el_amt_dict() for f in load_dataset()["formula"].unique()]
    rng = np.random.default_rng(seed)
    out = set()
    while len(out) < n:
        amounts = base[rng.integers(len(base))]
        out.add("".join(f"{el}{a * rng.uniform(0.9, 1.1):.4f}" for el, a in amounts.items()))
    return sorted(out)


def featurization(n: int) -> dict:
    from matminer.featurizers.base import MultipleFeaturizer
    from matminer.featurizers.composition import ElementProperty, Stoichiometry, ValenceOrbital
    from matminer.featurizers.conversions import StrToComposition

    from ml.featurizers import CompositionFeaturizer

    formulas = candidate_formulas(n)
    res = {"n": n}
    t = time.perf_counter()
    fast = CompositionFeaturizer("magpie-2026-11-26").transform_formulas(formulas)
    res["nacond_magpie_s"] = time.perf_counter() - t
    full = CompositionFeaturizer("na-chem-2026-11-26")
    t = time.perf_counter()
    full.transform_formulas(formulas)
    res["nacond_full_preset_cold_s"] = time.perf_counter() - t
    t = time.perf_counter()
    full.transform_formulas(formulas)
    res["nacond_full_preset_warm_s"] = time.perf_counter() - t

    df = pd.DataFrame({"formula": formulas})
    t = time.perf_counter()
    df = StrToComposition(target_col_id="composition").featurize_dataframe(df, "formula", pbar=False)
    mf = MultipleFeaturizer([ElementProperty.from_preset("magpie"), Stoichiometry(), ValenceOrbital()])
    mf.set_n_jobs(1)
    ref = mf.featurize_dataframe(df, "composition", pbar=False)
    res["matminer_featurize_dataframe_s"] = time.perf_counter() - t
    labels = mf.feature_labels()
    res["max_abs_diff_vs_matminer"] = float(np.nanmax(np.abs(ref[labels].to_numpy(float) - fast)))
    res["speedup_magpie"] = res["matminer_featurize_dataframe_s"] / res["nacond_magpie_s"]
    return res


def cv_tables(seed: int = 0) -> dict:
    from ml.data import load_dataset
    from ml.models import LEARNERS, NacondModel
    from ml.targets import training_frame
    from training.evaluate import cross_validate, format_table

    frame = training_frame(load_dataset())
    X = NacondModel().features(frame)
    out = {"compositions": len(frame), "n_sigma_rt": int(frame["log10_sigma_S_cm"].notna().sum()),
           "n_ea": int(frame["ea_eV"].notna().sum())}
    for cv in ("grouped", "family"):
        t = time.perf_counter()
        r = cross_validate(frame, list(LEARNERS), cv, seed=seed, X=X)
        out[cv] = {"seconds": time.perf_counter() - t, "table": r.table.to_dict("records"),
                   "markdown": format_table(r.table)}
        if cv == "family":
            pf = r.per_fold
            out[cv]["per_family_mae"] = (pf.pivot_table(index=["target", "fold"], columns="learner", values="mae")
                                         .round(3).reset_index().to_dict("records"))
    # split-to-split spread: the same grouped CV under other fold assignments (seeds 0-4)
    seeds = {}
    for sd in range(5):
        r = cross_validate(frame, ["global_median", "family_median", "extra_trees"], "grouped", seed=sd, X=X)
        for rec in r.table.to_dict("records"):
            seeds.setdefault(f"{rec['learner']}/{rec['target']}", []).append(rec["mae"])
    out["grouped_seed_spread"] = {k: {"maes": v, "mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1))}
                                  for k, v in seeds.items()}
    fits = {}
    for learner in LEARNERS:
        t = time.perf_counter()
        NacondModel(learner=learner, seed=seed).fit(frame, X=X)
        fits[learner] = time.perf_counter() - t
    out["fit_seconds_all_data"] = fits
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/bench")
    ap.add_argument("--n", type=int, default=10_000)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = {"machine": f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores",
           "featurization": featurization(args.n), "cv": cv_tables()}
    res["dataset"] = dataset_stamp()  # which data.csv these numbers come from
    (out / "composition.json").write_text(json.dumps(res, indent=2, default=float))
    f = res["featurization"]
    print(json.dumps(f, indent=1))
    for cv in ("grouped", "family"):
        print(f"\n## {cv} CV ({res['cv'][cv]['seconds']:.0f} s)")
        print(res["cv"][cv]["markdown"])
    print("\nfit seconds (all data):", json.dumps(res["cv"]["fit_seconds_all_data"], indent=1))


if __name__ == "__main__":
    main()
