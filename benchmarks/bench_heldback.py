"""Issue 12 acceptance, measured: a GNN model directory trained on the bundled dataset minus a held-back set of
literature materials, asked for the held-back formulas only (no structure type, no CIF).

For each of ``--draws`` held-back sets (a random ``--fraction`` of the compositions with a 20-30 degC sigma,
whole compositions, every row of a held-back composition removed with the rows that quote it):
  * ``nacond train --model gnn --cv none`` on the rest (GNN ensemble + parents.json + composition model);
  * every held-back formula through :class:`serving.structure_predictor.GNNPredictor` (inferred structure when a
    parent fits, else the directory's composition model), the same formulas through the composition model alone,
    and the global-median and family-median baselines of the training rows;
  * reported: share answered, share answered through an inferred structure, MAE of the GNN vs the composition
    model on those, overall MAE vs both baselines.

Physics check (issue 12): rock-salt NaCl (Fm-3m, a = 5.6402 A) and cubic Na3SbS4 (the Na3SbS4_cubic
prototype) given as structures to models trained without either composition (NaCl is not in the dataset;
Na3SbS4 is removed): the GNN directory, the structure-feature extra trees (three seeds) and, from the formula
alone, the composition model.

    .venv/bin/python benchmarks/bench_heldback.py --out docs/bench
    .venv/bin/python benchmarks/bench_heldback.py --residual --gnn-seeds 0 1 2 --out docs/bench
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ml.data import dataset_stamp, load_dataset, write_metadata
from ml.targets import training_frame

NACL_A = 5.6402  # Angstrom, rock salt; ilpi.com "The Sodium Chloride Structure" (R. Toreki), read 2026-12-07


def nacl_structure():
    from pymatgen.core import Lattice, Structure

    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(NACL_A), ["Na", "Cl"], [[0.5, 0.5, 0.5], [0, 0, 0]])


def rows_without(rows: pd.DataFrame, frame: pd.DataFrame, groups: set[str]) -> pd.DataFrame:
    """Dataset rows minus every row of the compositions ``groups`` and the rows that quote them (same_as)."""
    ids = {e for g, ids in zip(frame["group"], frame["entry_ids"], strict=True) if g in groups
           for e in ids.split(",")}
    drop = rows["entry_id"].isin(ids) | rows["same_as"].fillna("").isin(ids)
    return rows[~drop]


def write_dataset(rows: pd.DataFrame, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows.to_csv(folder / "data.csv", index=False)
    write_metadata(folder)
    return folder


THREADS = {"threads": 2}  # GNN overrides of every directory trained here (--threads, --residual)


def train_dir(data: Path, out: Path, seed: int = 0) -> dict:
    from training.config import TrainConfig
    from training.structure_train import train_gnn

    cfg = TrainConfig(data=str(data), model="gnn", cv="none", out=str(out), seed=seed, force=True)
    return train_gnn(cfg, log_to_mlflow=False, gnn_overrides=THREADS)


def mae(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.mean(np.abs(a - b))) if len(a) else float("nan")


def one_draw(rows, frame, seed: int, fraction: float, work: Path) -> dict:
    from serving.structure_predictor import GNNPredictor

    rng = np.random.default_rng(seed)
    rt = frame[frame["log10_sigma_S_cm"].notna()]
    held = set(rng.choice(rt["group"].to_numpy(), size=int(round(fraction * len(rt))), replace=False))
    train_rows = rows_without(rows, frame, held)
    data = write_dataset(train_rows, work / f"data_{seed}")
    t = time.perf_counter()
    info = train_dir(data, work / f"gnn_{seed}", seed=seed)
    fit_s = time.perf_counter() - t
    test = frame[frame["group"].isin(held)].reset_index(drop=True)
    p = GNNPredictor.load(work / f"gnn_{seed}")
    t = time.perf_counter()
    out = p.predict_many(test["formula"].tolist(), on_error="raise")
    shrink = dict(zip(("log10_sigma_S_cm", "ea_eV"), p.ensemble.shrink.tolist(), strict=True))
    slope = dict(zip(("log10_sigma_S_cm", "ea_eV"), p.ensemble.oob_slope.tolist(), strict=True))
    pred_s = time.perf_counter() - t
    comp = [r.log10_sigma_S_cm for r in p.composition.predict_many(test["formula"].tolist(), on_error="raise")]
    tr = training_frame(load_dataset(data))
    tr_rt = tr[tr["log10_sigma_S_cm"].notna()]
    g_med = float(tr_rt["log10_sigma_S_cm"].median())
    fam_med = tr_rt.groupby("family")["log10_sigma_S_cm"].median()
    y = test["log10_sigma_S_cm"].to_numpy()
    gnn = np.array([r["log10_sigma_S_cm"] for r in out])
    used = np.array([r["model_used"] for r in out])
    via = used == "gnn"
    fam = test["family"].map(fam_med).fillna(g_med).to_numpy()
    res = {
        "seed": seed, "held_back": int(len(test)), "train_compositions": int(len(tr)),
        "residual": p.residual, "residual_shrink": shrink if p.residual else None,
        "residual_oob_slope": slope if p.residual else None,
        "answered": int(np.isfinite(gnn).sum()), "through_structure": int(via.sum()),
        "through_structure_share": float(via.mean()),
        "by_prototype": pd.Series([r["structure_source"] for r in out])[via].value_counts().to_dict(),
        "mae_gnn_on_structure": mae(gnn[via], y[via]), "mae_composition_on_structure": mae(np.array(comp)[via], y[via]),
        "mae_blend_on_structure": mae(0.5 * (gnn[via] + np.array(comp)[via]), y[via]),
        "mae_directory": mae(gnn, y), "mae_composition": mae(comp, y),
        "mae_global_median": mae(np.full(len(y), g_med), y), "mae_family_median": mae(fam, y),
        "fit_seconds": round(fit_s, 1), "predict_seconds": round(pred_s, 2),
        "structures_mapped_in_training": info["structures"]["with_structure"],
    }
    res["gain_vs_global_median"] = 1 - res["mae_directory"] / res["mae_global_median"]
    res["gain_vs_family_median"] = 1 - res["mae_directory"] / res["mae_family_median"]
    res["rows"] = [{"formula": f, "family": fa, "measured": float(m), "directory": float(g), "model_used": u,
                    "structure_source": r["structure_source"], "composition_model": float(c)}
                   for f, fa, m, g, u, r, c in zip(test["formula"], test["family"], y, gnn, used, out, comp,
                                                   strict=True)]
    return res


def physics_check(rows, frame, work: Path, gnn_seeds=(0,)) -> dict:
    from ml.models import NacondModel
    from ml.structures.prototypes import parent_structure
    from serving.structure_predictor import GNNPredictor
    from training.structure_train import structure_features, structured_frame

    nacl, nss = nacl_structure(), parent_structure("Na3SbS4_cubic").copy()
    out_groups = {g for g in frame["group"] if g in ("Na3SbS4", "NaCl")}
    data = write_dataset(rows_without(rows, frame, out_groups), work / "data_physics")
    res: dict = {"left_out": sorted(out_groups), "nacl_a": NACL_A}
    res["gnn_by_seed"] = []
    for seed in gnn_seeds:  # the ensemble's seed: bootstrap draws and initial weights of its members
        train_dir(data, work / f"gnn_physics_{seed}", seed=seed)
        p = GNNPredictor.load(work / f"gnn_physics_{seed}")
        g = p.predict_many([nacl, nss], on_error="raise")
        res["gnn_by_seed"].append({"seed": seed, "NaCl": g[0]["log10_sigma_S_cm"], "Na3SbS4": g[1]["log10_sigma_S_cm"],
                                   "gap": g[1]["log10_sigma_S_cm"] - g[0]["log10_sigma_S_cm"],
                                   "residual_shrink": p.ensemble.shrink.tolist() if p.residual else None})
    res["gnn"] = dict(res["gnn_by_seed"][0])
    c = p.composition.predict_many(["NaCl", "Na3SbS4"], on_error="raise")
    res["composition_model"] = {"NaCl": c[0].log10_sigma_S_cm, "Na3SbS4": c[1].log10_sigma_S_cm}
    frame2 = training_frame(load_dataset(data))
    sub, mapped, _ = structured_frame(frame2)
    q = pd.DataFrame({"group": ["NaCl", "Na3SbS4"], "formula": ["NaCl", "Na3SbS4"]})
    Xs = structure_features([m.structure for m in mapped])
    Xq = structure_features([nacl, nss])
    res["structure_features_et"] = []
    for seed in (0, 1, 2):
        m = NacondModel(learner="extra_trees", seed=seed)
        Xc, Xqc = m.features(sub), m.features(q)
        m.fit(sub, X=np.hstack([Xc, Xs]))
        pr = m.predict(q, X=np.hstack([Xqc, Xq]))["log10_sigma_S_cm"].to_numpy()
        res["structure_features_et"].append({"seed": seed, "NaCl": float(pr[0]), "Na3SbS4": float(pr[1])})
    res["composition_model"]["gap"] = res["composition_model"]["Na3SbS4"] - res["composition_model"]["NaCl"]
    for r in res["structure_features_et"]:
        r["gap"] = r["Na3SbS4"] - r["NaCl"]
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/bench")
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--fraction", type=float, default=0.25)
    ap.add_argument("--skip-physics", action="store_true")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the GNN")
    ap.add_argument("--gnn-seeds", type=int, nargs="+", default=[0, 1, 2], help="GNN seeds of the physics check")
    ap.add_argument("--keep-draws", action="store_true", help="with --draws 0: keep the draws of the last run")
    ap.add_argument("--residual", action="store_true", help="residual GNN directories (--gnn-residual); results "
                                                            "go to heldback_residual.json")
    args = ap.parse_args()
    THREADS["threads"] = args.threads
    if args.residual:
        THREADS["residual"] = True
    name = "heldback_residual.json" if args.residual else "heldback.json"
    rows = load_dataset()
    frame = training_frame(rows)
    res: dict = {"fraction": args.fraction, "draws": []}
    old = Path(args.out) / name
    if args.keep_draws and old.is_file():
        res = {**json.loads(old.read_text()), "physics": None}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for seed in range(args.draws):
            d = one_draw(rows, frame, seed, args.fraction, work)
            res["draws"].append(d)
            print(json.dumps({k: v for k, v in d.items() if k != "rows"}, indent=1, default=float), flush=True)
        if not args.skip_physics:
            res["physics"] = physics_check(rows, frame, work, gnn_seeds=args.gnn_seeds)
            print(json.dumps(res["physics"], indent=1, default=float))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    res["dataset"] = dataset_stamp()  # which data.csv these numbers come from
    (Path(args.out) / name).write_text(json.dumps(res, indent=1, default=float))


if __name__ == "__main__":
    main()
