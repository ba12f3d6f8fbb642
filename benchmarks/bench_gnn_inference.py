"""GNN inference rate of a trained GNN directory (default build/gnn from `make gnn`): 500 structures (the
training structures repeated) -> graphs -> ensemble prediction, three repetitions; the best and the median; and
the same structures end to end through the directory's predictor (rows out; a residual directory adds its
composition model).

    .venv/bin/python benchmarks/bench_gnn_inference.py --model build/gnn --out docs/bench
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ml.data import dataset_stamp, load_dataset
from ml.models.gnn import GNNEnsemble, structure_to_graph
from ml.targets import training_frame
from serving.structure_predictor import GNNPredictor
from training.structure_train import structured_frame


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="build/gnn")
    ap.add_argument("--out", default="docs/bench")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    ens = GNNEnsemble.load(args.model)
    cfg = ens.config
    torch.set_num_threads(cfg.threads)
    _, mapped, _ = structured_frame(training_frame(load_dataset()))
    batch = ([m.structure for m in mapped] * 6)[:500]
    runs = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        graphs = [structure_to_graph(s, **cfg.graph_kwargs()) for s in batch]
        tg = time.perf_counter() - t
        t = time.perf_counter()
        ens.predict(graphs)
        tp = time.perf_counter() - t
        runs.append({"graph_seconds": tg, "predict_seconds": tp, "structures_per_s": len(batch) / (tg + tp)})
    rates = [r["structures_per_s"] for r in runs]
    res = {"n": len(batch), "mean_sites": float(np.mean([len(s) for s in batch])), "threads": cfg.threads,
           "runs": runs, "best_per_s": max(rates), "median_per_s": float(np.median(rates))}
    # end to end through the directory (GNNPredictor: structures in, rows out; a residual directory also runs its
    # composition model on every structure's formula)
    p = GNNPredictor.load(args.model)
    p.predict_many(batch[:5])  # loads the composition model once
    e2e = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        p.predict_many(batch, on_error="raise")
        e2e.append(len(batch) / (time.perf_counter() - t))
    res.update(residual=p.residual, directory_median_per_s=float(np.median(e2e)), directory_runs_per_s=e2e)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    res["dataset"] = dataset_stamp()  # which data.csv these numbers come from
    (Path(args.out) / "gnn_inference.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
