"""Structures and the GNN: the GNN ensemble and the residual GNN (composition model + shrunk GNN correction) vs
the structure-featurizer model vs the composition model vs both baselines, on identical grouped and
leave-one-family-out splits of the compositions that have a parent structure; training time of the GNN
ensemble with CV on this machine's cores; inference throughput.

    .venv/bin/python benchmarks/bench_structure.py --out docs/bench
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from ml.data import dataset_stamp, load_dataset
from ml.models.composition import BASELINES
from ml.models.gnn import TARGETS, GNNConfig, GNNEnsemble, GNNRegressor, structure_to_graph
from ml.targets import training_frame
from training.evaluate import cross_validate
from training.structure_train import comparison_models, structure_features, structured_frame


def blend(oof) -> list[dict]:
    """Candidate: the mean of the GNN's and the composition model's out-of-fold predictions (same splits, equal
    weights, nothing fitted), point metrics only (the blend has no calibrated interval here)."""
    from training.evaluate import metrics

    et = oof[oof["learner"] == "extra_trees"].reset_index(drop=True)
    gnn = oof[oof["learner"] == "gnn"].reset_index(drop=True)
    rows = []
    for t in TARGETS:
        p = 0.5 * (et[f"pred_{t}"].to_numpy() + gnn[f"pred_{t}"].to_numpy())
        m = metrics(t, et[t].to_numpy(), p)
        rows.append({"learner": "gnn_composition_blend", "target": t,
                     **{k: v for k, v in m.items() if k not in ("coverage90",)}})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/bench")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the GNN")
    args = ap.parse_args()
    rows = load_dataset()
    frame = training_frame(rows)
    t = time.perf_counter()
    sub, mapped, report = structured_frame(frame)
    map_s = time.perf_counter() - t
    structures = [m.structure for m in mapped]
    cfg = GNNConfig(threads=args.threads)
    res: dict = {"structures": {k: v for k, v in report.items() if k != "fallback_reasons"},
                 "mapping_seconds": map_s, "gnn_config": vars(cfg), "cpu_count": os.cpu_count(),
                 "torch_threads": cfg.threads,
                 "n_with_sigma": int(sub["log10_sigma_S_cm"].notna().sum()),
                 "n_with_ea": int(sub["ea_eV"].notna().sum())}
    t = time.perf_counter()
    Xc, extra, graphs = comparison_models(sub, structures, cfg)
    # candidate: the residual GNN (composition model + GNN correction weighted by its out-of-bag support)
    res_cfg = GNNConfig(threads=args.threads, residual=True)
    extra["gnn_residual"] = (lambda: GNNRegressor(res_cfg), graphs)
    res["prepare_seconds"] = time.perf_counter() - t
    for cv in ("grouped", "family"):
        t = time.perf_counter()
        out = cross_validate(sub, [*BASELINES, "extra_trees"], cv, X=Xc, extra=extra)
        res[f"{cv}_seconds"] = time.perf_counter() - t
        res[cv] = out.table.to_dict("records")
        per = out.per_fold
        res[f"{cv}_per_fold"] = per.to_dict("records") if per is not None else []
        res[f"{cv}_seconds_by_model"] = out.seconds
        res[f"{cv}_blend"] = blend(out.oof)
    # GNN: grouped CV (5 folds x ensemble) + the final fit, the number the issue bounds (<= 10 min)
    res["gnn_grouped_cv_seconds"] = res["grouped_seconds_by_model"]["gnn"]
    t = time.perf_counter()
    ens = GNNEnsemble(cfg).fit(list(graphs), sub[list(TARGETS)].to_numpy(dtype=float))
    res["gnn_fit_seconds"] = time.perf_counter() - t
    res["gnn_cv_plus_fit_seconds"] = res["gnn_grouped_cv_seconds"] + res["gnn_fit_seconds"]
    # inference: structure -> graph -> ensemble prediction, batches of the training structures repeated
    torch.set_num_threads(cfg.threads)
    batch = (structures * 6)[:500]
    t = time.perf_counter()
    g = [structure_to_graph(s, **cfg.graph_kwargs()) for s in batch]
    t_graph = time.perf_counter() - t
    t = time.perf_counter()
    ens.predict(g)
    t_pred = time.perf_counter() - t
    res["inference"] = {"n": len(batch), "graph_seconds": t_graph, "predict_seconds": t_pred,
                        "structures_per_s": len(batch) / (t_graph + t_pred),
                        "mean_sites": float(np.mean([len(s) for s in batch]))}
    t = time.perf_counter()
    structure_features(batch[:200])
    res["structure_features_per_s"] = 200 / (time.perf_counter() - t)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    res["dataset"] = dataset_stamp()  # which data.csv these numbers come from
    (Path(args.out) / "structure.json").write_text(json.dumps(res, indent=2, default=float))
    print(json.dumps({k: v for k, v in res.items() if not k.endswith("per_fold")}, indent=1, default=float))


if __name__ == "__main__":
    main()
