"""Issue #12, candidate 3(b): pretrain the GNN on the OBELiX Li structures, fine-tune on Na.

On exactly the structured Na compositions and splits of ``bench_structure.py`` (grouped 5-fold CV and
leave-one-family-out, log10 sigma and Ea), beside the baselines and the composition model:

* ``gnn``: the current GNN (element-occupancy nodes, random init);
* ``gnn_mobile``: the same plus the mobile-ion node channel (no pretraining);
* ``gnn_pretrained``: the mobile-channel GNN whose members all start from one network pretrained on OBELiX
  (Li marked as the mobile ion; ``<1E-10`` entries as upper bounds), then fine-tuned with the usual recipe.

The pretraining uses no Na data, so one pretrained network serves every fold. ``--physics`` adds the issue's check:
rock-salt NaCl (Fm-3m, a = 5.6402 A, Na 4a, Cl 4b; ilpi.com Structure World, "The Sodium Chloride Structure")
vs cubic Na3SbS4 (prototype Na3SbS4_cubic), each variant trained on all structured compositions except reduced
formula Na3SbS4 (and NaCl, were it present). Results are merged into ``--out``/gnn_pretrain.json section by
section, so a later run with ``--split-seeds 1`` adds the second split seed.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_gnn_pretrain.py --out docs/bench
    PYTHONPATH=. .venv/bin/python benchmarks/bench_gnn_pretrain.py --parts cv --split-seeds 1 \\
        --variants gnn gnn_pretrained --cv grouped
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from ml.data import dataset_stamp

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("gnn", "gnn_mobile", "gnn_pretrained")


def _merge(path: Path, key: str, value) -> None:
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[key] = value
    data["dataset"] = dataset_stamp()  # which data.csv these numbers come from
    path.write_text(json.dumps(data, indent=1, default=float))


def pretrained_network(obelix: Path, cfg, *, epochs: int, cache_dir: Path):
    """The OBELiX pretraining set and one pretrained network (cached by data sha + settings)."""
    from ml.models.gnn import PretrainedGNN, pretrain_gnn
    from ml.structures.obelix import obelix_pretrain_set

    ps = obelix_pretrain_set(obelix, config=cfg, cache_dir=cache_dir)
    path = cache_dir / f"pretrained-{ps.sha256[:16]}-e{epochs}-s{cfg.seed}.pt"
    if path.is_file():
        return ps, PretrainedGNN.load(path)
    pt = pretrain_gnn(ps.graphs, ps.y, cfg, upper=ps.upper, epochs=epochs, seed=cfg.seed,
                      source=f"{ps.source}, sha {ps.sha256[:16]}")
    pt.save(path)
    return ps, pt


def nacl_rocksalt():
    """Rock-salt NaCl: Fm-3m (225), a = 5.6402 A, Na 4a (0,0,0), Cl 4b (1/2,1/2,1/2) (ilpi.com Structure World,
    'The Sodium Chloride Structure': a = 5.6402 A, Z = 4; the two sites can be interchanged)."""
    from pymatgen.core import Lattice, Structure

    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.6402), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def main() -> None:
    import torch

    from ml.data import load_dataset
    from ml.models import NacondModel
    from ml.models.composition import BASELINES
    from ml.models.gnn import TARGETS, GNNConfig, GNNEnsemble, GNNRegressor, structure_to_graph
    from ml.structures.prototypes import parent_structure
    from ml.targets import training_frame
    from training.evaluate import cross_validate
    from training.structure_train import graphs_for, structured_frame

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "bench")
    ap.add_argument("--obelix", type=Path, default=ROOT.parent / "shared" / "external" / "obelix")
    ap.add_argument("--cache", type=Path, default=ROOT / "build" / "cache")
    ap.add_argument("--parts", nargs="+", default=["pretrain", "cv", "physics"])
    ap.add_argument("--split-seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--cv", nargs="+", default=["grouped", "family"])
    ap.add_argument("--pretrain-epochs", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (1 when the cores are shared: two "
                    "threads on one free core ran 7x slower here)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    out_json = args.out / "gnn_pretrain.json"
    if args.parts == ["render"]:
        print(render(json.loads(out_json.read_text())))
        return
    torch.set_num_threads(args.threads)

    frame = training_frame(load_dataset())
    sub, mapped, report = structured_frame(frame)
    structures = [m.structure for m in mapped]
    base, mobile = GNNConfig(threads=args.threads), GNNConfig(mobile_channel=True, threads=args.threads)
    _merge(out_json, "setup", {"structured_compositions": len(sub), "n_with_sigma": int(sub[TARGETS[0]].notna().sum()),
                               "n_with_ea": int(sub[TARGETS[1]].notna().sum()), "gnn_config": vars(base),
                               "pretrain_epochs": args.pretrain_epochs, "cpu_count": os.cpu_count(),
                               "torch_threads": base.threads})

    t = time.perf_counter()
    ps, pt = pretrained_network(args.obelix, mobile, epochs=args.pretrain_epochs, cache_dir=args.cache)
    if "pretrain" in args.parts:
        _merge(out_json, "pretrain", {"data": ps.summary(), "network": pt.meta,
                                      "wall_seconds_this_run": round(time.perf_counter() - t, 1)})
        print(json.dumps({"data": {k: v for k, v in ps.summary().items() if k != "skipped"},
                          "skipped": ps.skipped, "network": pt.meta}, indent=1))

    if "cv" in args.parts:
        Xc = NacondModel().features(sub)
        g_base, g_mob = graphs_for(structures, base), graphs_for(structures, mobile)
        for seed in args.split_seeds:
            cb, cm = GNNConfig(seed=seed, threads=args.threads), GNNConfig(seed=seed, mobile_channel=True,
                                                                           threads=args.threads)
            factories = {"gnn": (lambda cb=cb: GNNRegressor(cb), g_base),
                         "gnn_mobile": (lambda cm=cm: GNNRegressor(cm), g_mob),
                         "gnn_pretrained": (lambda cm=cm: GNNRegressor(cm, pretrained=pt), g_mob)}
            extra = {k: factories[k] for k in args.variants}
            for cv in args.cv:
                t = time.perf_counter()
                res = cross_validate(sub, [*BASELINES, "extra_trees"], cv, seed=seed, X=Xc, extra=extra)
                entry = {"split_seed": seed, "seconds": round(time.perf_counter() - t, 1),
                         "seconds_by_model": {k: round(v, 1) for k, v in res.seconds.items()},
                         "table": res.table.to_dict("records"),
                         "per_fold": res.per_fold.to_dict("records") if res.per_fold is not None else []}
                _merge(out_json, f"{cv}_seed{seed}", entry)
                print(f"\n== {cv} CV, split seed {seed} ({entry['seconds']} s) ==")
                print(res.table[["learner", "target", "mae", "rmse"]].to_string(index=False))

    if "physics" in args.parts:
        drop = sub["formula"].map(lambda f: _reduced(f) in ("Na3SbS4", "NaCl"))
        keep = ~drop.to_numpy()
        Y = sub.loc[keep, list(TARGETS)].to_numpy(dtype=float)
        checks = {"NaCl_rocksalt": nacl_rocksalt(), "Na3SbS4_cubic": parent_structure("Na3SbS4_cubic").copy()}
        old = json.loads(out_json.read_text()).get("physics_nacl_vs_na3sbs4", {}) if out_json.is_file() else {}
        phys = {"dropped": sorted(sub.loc[~keep, "formula"]), "n_train": int(keep.sum()),
                "predictions": old.get("predictions", {})}
        for name, cfg, pre in (("gnn", base, None), ("gnn_mobile", mobile, None), ("gnn_pretrained", mobile, pt)):
            if name not in args.variants:
                continue
            graphs = list(graphs_for([s for s, k in zip(structures, keep, strict=True) if k], cfg))
            t = time.perf_counter()
            ens = GNNEnsemble(cfg, pretrained=pre).fit(graphs, Y)
            p = ens.predict([structure_to_graph(s, **cfg.graph_kwargs()) for s in checks.values()])
            row = {k: {"log10_sigma": float(p[TARGETS[0]][i]), "log10_sigma_lo": float(p[f"{TARGETS[0]}_lo"][i]),
                       "log10_sigma_hi": float(p[f"{TARGETS[0]}_hi"][i]), "ea_eV": float(p[TARGETS[1]][i])}
                   for i, k in enumerate(checks)}
            row["decades_NaCl_below_Na3SbS4"] = (row["Na3SbS4_cubic"]["log10_sigma"]
                                                 - row["NaCl_rocksalt"]["log10_sigma"])
            row["fit_seconds"] = round(time.perf_counter() - t, 1)
            phys["predictions"][name] = row
            row["torch_threads"] = cfg.threads
            print(name, json.dumps(row))
            _merge(out_json, "physics_nacl_vs_na3sbs4", phys)


NAMES = {"global_median": "global median (baseline)", "family_median": "family median (baseline)",
         "extra_trees": "extra trees (composition, default)", "gnn": "(i) GNN, current",
         "gnn_mobile": "(ii) GNN + mobile-ion channel", "gnn_pretrained": "(iii) + pretrained on OBELiX, fine-tuned"}


def render(res: dict) -> str:
    """Markdown tables of every CV section (MAE, RMSE, R2; the split-to-split sd of the MAE over folds) and the
    NaCl / Na3SbS4 check."""
    import pandas as pd

    lines = []
    for key in sorted(k for k in res if k.startswith(("grouped_", "family_"))):
        e = res[key]
        tab, per = pd.DataFrame(e["table"]), pd.DataFrame(e["per_fold"])
        lines.append(f"\n**{key.split('_')[0]} CV, split seed {e['split_seed']}** ({e['seconds']:.0f} s; per model: "
                     + ", ".join(f"{NAMES.get(k, k).split(',')[0]} {v:.0f} s" for k, v in e["seconds_by_model"].items()
                                 if k.startswith("gnn")) + ")\n")
        lines.append("| model | sigma MAE | sigma RMSE | sigma R2 | fold sd of sigma MAE | Ea MAE | Ea RMSE | Ea R2 |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for learner in tab["learner"].unique():
            r = {t: tab[(tab.learner == learner) & (tab.target == t)].iloc[0] for t in ("log10_sigma_S_cm", "ea_eV")}
            f = per[(per.learner == learner) & (per.target == "log10_sigma_S_cm")]["mae"] if len(per) else []
            sd = f"{np.nanstd(f):.3f}" if len(f) else "-"
            s, a = r["log10_sigma_S_cm"], r["ea_eV"]
            lines.append(f"| {NAMES.get(learner, learner)} | {s['mae']:.3f} | {s['rmse']:.3f} | {s['r2']:.3f} | {sd} "
                         f"| {a['mae']:.4f} | {a['rmse']:.4f} | {a['r2']:.3f} |")
        if key.startswith("family_") and len(per):
            models = [m for m in ("extra_trees", *VARIANTS) if m in set(per.learner)]
            lines.append("\nPer held-out family (MAE; n = compositions with that target):\n")
            lines.append("| family | n sigma | " + " | ".join(f"sigma {NAMES[m].split(',')[0]}" for m in models)
                         + " | n Ea | " + " | ".join(f"Ea {NAMES[m].split(',')[0]}" for m in models) + " |")
            lines.append("|---|" + "---|" * (2 * len(models) + 2))
            for fam in sorted(set(per.fold)):
                cells = []
                for t, nd in (("log10_sigma_S_cm", 3), ("ea_eV", 4)):
                    f = per[(per.fold == fam) & (per.target == t)].set_index("learner")
                    n = int(f["n"].iloc[0]) if len(f) and "n" in f else 0
                    cells.append(str(n))
                    cells += [f"{f.loc[m, 'mae']:.{nd}f}" if n and m in f.index else "-" for m in models]
                lines.append(f"| {fam} | " + " | ".join(cells) + " |")
    phys = res.get("physics_nacl_vs_na3sbs4")
    if phys:
        lines.append(f"\n**NaCl vs Na3SbS4** (trained on {phys['n_train']} structured compositions; left out: "
                     f"{', '.join(phys['dropped'])})\n")
        lines.append("| model | NaCl log10 sigma (90 % interval) | Na3SbS4 cubic log10 sigma (90 % interval) | "
                     "NaCl below Na3SbS4 (decades; goal >= 3) | fit s |")
        lines.append("|---|---|---|---|---|")
        for name, r in phys["predictions"].items():
            a, b = r["NaCl_rocksalt"], r["Na3SbS4_cubic"]
            lines.append(f"| {NAMES.get(name, name)} | {a['log10_sigma']:.2f} ({a['log10_sigma_lo']:.2f} to "
                         f"{a['log10_sigma_hi']:.2f}) | {b['log10_sigma']:.2f} ({b['log10_sigma_lo']:.2f} to "
                         f"{b['log10_sigma_hi']:.2f}) | {r['decades_NaCl_below_Na3SbS4']:.2f} "
                         f"| {r['fit_seconds']:.0f} |")
    return "\n".join(lines)


def _reduced(formula: str) -> str:
    from pymatgen.core import Composition

    try:
        return Composition(formula).reduced_formula
    except Exception:  # noqa: BLE001 - an odd formula is simply not one of the two
        return ""


if __name__ == "__main__":
    main()
