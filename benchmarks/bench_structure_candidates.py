"""Issue 12 part 3, candidates (a) and (c) on the structure-feature model: do composition-specific cells (the
parent's cell scaled for the substituted ions' radii) and the Na bond-valence sums add anything to the
composition features? Extra trees on identical splits of the structured compositions (grouped 5-fold CV with
three fold assignments, and leave-one-family-out), beside the composition model and both baselines:

* ``struct_parent_21``: the parent's cell, the 21 descriptors of 2026-11-26 (before this change);
* ``struct_parent_23``: the parent's cell, + Na bond-valence sums (mean, min);
* ``struct_radii_21`` / ``struct_radii_23``: the same on radii-scaled cells (the default since 2026-12-07).

Each composition sits on the same prototype in all four (the one ``structured_frame`` chose, inferred parents
included). CPU only, ~3 min on 2 cores.

    .venv/bin/python benchmarks/bench_structure_candidates.py --out docs/bench
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ml.data import dataset_stamp, load_dataset
from ml.formula import parse_formula
from ml.models.composition import BASELINES, NacondModel
from ml.structures.mapping import decorate
from ml.structures.prototypes import parent_structure
from ml.targets import training_frame
from training.evaluate import cross_validate
from training.structure_train import structure_features, structured_frame

N_OLD = 21  # descriptors before the bond-valence sums were added


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/bench")
    args = ap.parse_args()
    frame = training_frame(load_dataset())
    sub, mapped, _ = structured_frame(frame)
    Xc = NacondModel().features(sub)
    t0 = time.perf_counter()
    extra = {}
    for lattice in ("parent", "radii"):
        structures = [decorate(parent_structure(m.prototype), parse_formula(f).get_el_amt_dict(), m.prototype,
                               lattice=lattice).structure for m, f in zip(mapped, sub["formula"], strict=True)]
        F = structure_features(structures)
        extra[f"struct_{lattice}_21"] = (lambda: NacondModel(learner="extra_trees"), np.hstack([Xc, F[:, :N_OLD]]))
        extra[f"struct_{lattice}_23"] = (lambda: NacondModel(learner="extra_trees"), np.hstack([Xc, F]))
    res: dict = {"n": len(sub), "n_sigma": int(sub["log10_sigma_S_cm"].notna().sum()),
                 "n_ea": int(sub["ea_eV"].notna().sum()), "featurize_seconds": time.perf_counter() - t0, "runs": []}
    for cv, seeds in (("grouped", (0, 1, 2)), ("family", (0,))):
        for seed in seeds:
            out = cross_validate(sub, [*BASELINES, "extra_trees"], cv, seed=seed, X=Xc, extra=extra)
            for r in out.table.to_dict("records"):
                res["runs"].append({"cv": cv, "seed": seed, **r})
    Path(args.out).mkdir(parents=True, exist_ok=True)
    res["dataset"] = dataset_stamp()  # which data.csv these numbers come from
    (Path(args.out) / "structure_candidates.json").write_text(json.dumps(res, indent=1, default=float))
    for cv in ("grouped", "family"):
        for target in ("log10_sigma_S_cm", "ea_eV"):
            rows = [r for r in res["runs"] if r["cv"] == cv and r["target"] == target]
            learners = dict.fromkeys(r["learner"] for r in rows)
            line = ", ".join(f"{lr} " + "/".join(f"{r['mae']:.3f}" for r in rows if r["learner"] == lr)
                             for lr in learners)
            print(f"{cv} {target}: {line}")


if __name__ == "__main__":
    main()
