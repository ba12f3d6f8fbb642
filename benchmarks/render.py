# ruff: noqa: E501  (a document template: its lines are the page's lines)
"""Write docs/benchmarks.md from the JSON that the benchmark scripts wrote (docs/bench/*.json), so every number in
the document is the one a script measured.

    .venv/bin/python benchmarks/render.py
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NAMES = {"global_median": "global median (baseline)", "family_median": "family median (baseline)",
         "extra_trees": "**extra trees (default)**", "random_forest": "random forest",
         "hist_gbm": "hist gradient boosting", "structure_features_et": "structure features + composition (extra trees)",
         "gnn_composition_blend": "GNN + composition mean",
         "gnn": "GNN ensemble (crystal graph)",
         "gnn_residual": "residual GNN (composition model + out-of-bag-weighted GNN correction)"}
ORDER = list(NAMES)


def _f(r: dict, key: str) -> str:
    v = r.get(key)
    return "-" if v is None or v != v else f"{v:.3f}"


def table(rows: list[dict], target: str) -> str:
    rows = sorted((r for r in rows if r["target"] == target), key=lambda r: ORDER.index(r["learner"]))
    if target == "log10_sigma_S_cm":
        head = "| model | MAE | RMSE | R2 | Spearman | 90 % coverage | acc at 1e-4 S/cm |\n|---|---|---|---|---|---|---|"
        body = [f"| {NAMES[r['learner']]} | {r['mae']:.3f} | {r['rmse']:.3f} | {r['r2']:.3f} | {r['spearman']:.3f} | "
                f"{_f(r, 'coverage90')} | {_f(r, 'acc_1e-4')} |" for r in rows]
    else:
        head = "| model | MAE | RMSE | R2 | 90 % coverage |\n|---|---|---|---|---|"
        body = [f"| {NAMES[r['learner']]} | {r['mae']:.3f} | {r['rmse']:.3f} | {r['r2']:.3f} | {_f(r, 'coverage90')} |"
                for r in rows]
    return f"n = {rows[0]['n']} compositions\n\n" + head + "\n" + "\n".join(body)


def get(rows, learner, target, key="mae"):
    return next(r[key] for r in rows if r["learner"] == learner and r["target"] == target)


def seed_spread(cv: dict) -> str:
    sp = cv.get("grouped_seed_spread")
    if not sp:
        return ""
    rows = "\n".join(f"| {NAMES[k.split('/')[0]]} | {k.split('/')[1]} | {v['mean']:.3f} +- {v['sd']:.3f} | "
                     f"{', '.join(f'{m:.3f}' for m in v['maes'])} |" for k, v in sp.items())
    return f"""
How much of that is the split? The same grouped CV under five fold assignments (seeds 0-4):

| model | target | MAE mean +- sd | per seed |
|---|---|---|---|
{rows}
"""


def _bench(name: str):
    """The parsed ``docs/bench/<name>.json``, or None when that benchmark has not been run."""
    path = ROOT / f"docs/bench/{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def temperature_section() -> str:
    t = _bench("temperature")
    if t is None or "bands" not in t:
        return ""
    c = t["consistency"]
    seed = t["seed_elevated"]
    inside = sum(r["within_90pct_interval"] for r in seed)
    bands = "\n".join(f"| {k} | {v['n']} | {v['mae']:.2f} | {v['coverage90']:.3f} | {v['median_width']:.2f} |"
                      for k, v in t["bands"].items())
    lines = "\n".join(f"| {r['entry_id']} | {r['formula']} | {r['temperature_K']:.0f} | {r['log10_sigma']:.2f} | "
                      f"{r['pred_log10_sigma']:.2f} | {r['abs_err']:.2f} | {'yes' if r['within_90pct_interval'] else 'no'} |"
                      for r in seed)
    trans = ", ".join(f"{g} ({v['range_K'][0]:.0f}-{v['range_K'][1]:.0f} K)" for g, v in c["transitions"].items())
    return f"""
## Conductivity at any temperature (one curve, issue #13)
Script: `benchmarks/bench_temperature.py` ({t['cv_seconds']:.0f} s). sigma(T) is the Arrhenius curve through the
25 degC prediction with the model's own Ea: `log10 sigma(T) = log10 sigma(25 C) - Ea x - log10(T/298.15)`,
`x = (1/T - 1/298.15)/(k ln10)`. Its 90 % half-width is the 25 degC half-width plus `q_T` x the Ea half-width x
|x|; `q_T` = {c['q_t']:.3f} is split-conformal on grouped out-of-fold predictions of every measured row outside
20-30 degC.

Reference model, every training composition ({c['n']}): `--temperature 25C` minus the default prediction, largest
difference {c['max_abs_diff_log10_sigma_25C']:.2g} decades in log10 sigma and {c['max_abs_diff_ea_eV_25C']:.2g} eV in Ea
(goal <= 0.05 / 0.02). NZSP at 60 degC: 90 % interval {c['nzsp_60C_interval_width']:.2f} decades wide (goal <= 3).
Phase-transition flags come from the data (compositions with Ea fitted in a room-temperature and a high-temperature
regime): {trans or 'none'}; a prediction is flagged only at or above the range (its own, else its family's).

Grouped 5-fold CV over compositions; every (T, sigma) row of a held-out composition ({t['n_rows']} rows,
{t['n_compositions']} compositions) predicted by the curve of models trained without it:

| temperature band | rows | MAE (decades) | 90 % coverage | median interval width |
|---|---|---|---|---|
{bands}
| all | {t['n_rows']} | {t['all']['mae']:.2f} | {t['all']['coverage90']:.3f} | {t['all']['median_width']:.2f} |

The seed review's elevated-temperature points, out of fold: {inside} of {len(seed)} inside the 90 % interval.

| entry | formula | T (K) | measured log10 sigma | predicted (out of fold) | abs error | inside 90 % |
|---|---|---|---|---|---|---|
{lines}
"""


def screening_section() -> str:
    rows = _bench("screening")
    if rows is None:
        return ""
    rows = rows["series"] if isinstance(rows, dict) else rows  # {"series", "dataset"} since the dataset stamp
    body = []
    for r in rows:
        rep = r["reported_best_rt"]
        rep_s = (f"{rep['formula']} ({rep['dopant_per_formula']:.3g}; {rep['sigma_S_cm']:.2g} S/cm)" if rep
                 else "none in dataset")
        dm, ho = r["default_model"], r["series_held_out"]
        body.append(f"| {r['parent']} : {r['dopant']} on {r['site']} | {rep_s} | {dm['best_dopant_per_formula']:.3g} "
                    f"(+{dm['gain_decades']:.2f}) | {ho['best_dopant_per_formula']:.3g} (+{ho['gain_decades']:.2f}) |")
    return """
## Dopant screening on the seed review's examples
Script: `benchmarks/bench_screening.py`; the CSVs and plots of `nacond screen-dopants` for these series are in
`docs/screening/`. Columns: the best 20-30 degC composition of the series in the dataset (dopant per parent formula,
rescaled to the parent's anion count; sigma); the predicted optimum (dopant per formula, and predicted gain over
the parent in decades) of the shipped model, which has seen those compositions, and of a model retrained **without
any composition of that chemical system** — the honest test.

| series | reported best (dataset) | default model optimum (gain) | series held out: optimum (gain) |
|---|---|---|---|
""" + "\n".join(body) + """

Reading (2026-11-26 run): with the series held out, the model still lands near the reported doping level for the
NASICON, Na3SbS4:W and Na3YCl6:Zr series, but sees almost no gain for Cl in Na3PS4 and puts the Ca optimum too low:
those effects are not learnable from other chemistries in this dataset. The default model's agreement is partly
memory (it has seen the reported compositions). Ray-parallel screening of large candidate lists is not built yet.
"""


def default_rule(t: dict) -> str:
    """Which model is the default, by the rule: a structure model replaces the composition model only if it beats
    it on grouped CV by more than the composition model's split-to-split sd (seeds 0-4, composition section)."""
    comp = ROOT / "docs/bench/composition.json"
    spread = json.loads(comp.read_text()).get("cv", {}).get("grouped_seed_spread", {}) if comp.exists() else {}
    parts, wins = [], False
    for target in ("log10_sigma_S_cm", "ea_eV"):
        et = get(t["grouped"], "extra_trees", target)
        cands = [m for m in ("structure_features_et", "gnn", "gnn_residual")
                 if any(r["learner"] == m for r in t["grouped"])]
        best = min(cands, key=lambda m: get(t["grouped"], m, target))
        gain = et - get(t["grouped"], best, target)
        sd = spread.get(f"extra_trees/{target}", {}).get("sd", float("nan"))
        wins |= gain > sd
        parts.append(f"{target}: best structure model {NAMES[best]} gains {gain:+.3f} vs a split sd of {sd:.3f}")
    verdict = ("a structure model wins beyond split noise" if wins else
               "no structure model wins beyond split noise, and the structure models answer only for compositions "
               "with a prototype, so **the composition extra-trees model stays the default**")
    return f"Default-model rule (grouped CV gain must exceed the split-to-split sd): {'; '.join(parts)}: {verdict}."


NODE_TEXT = {"onehot": "site occupancy vectors over the elements (one learned vector per element)",
             "descriptors": "occupancy-weighted physical element descriptors (electronegativity, atomic and Shannon "
                            "radius, rule oxidation state, row, group, Mendeleev number, mass, anion / mobile-ion / "
                            "vacancy flags; `ml.models.gnn.element_descriptors`)"}


def structure_section() -> str:
    t = _bench("structure")
    if t is None:
        return ""
    s, inf, cfg = t["structures"], t["inference"], t["gnn_config"]
    fb = ", ".join(f"{k} {v}" for k, v in list(s["fallback_by_structure_type"].items())[:12])
    protos = ", ".join(f"{k} {v}" for k, v in s["by_prototype"].items())
    verdict = []
    for cv in ("grouped", "family"):
        for target in ("log10_sigma_S_cm", "ea_eV"):
            best = min((r for r in t[cv] if r["target"] == target), key=lambda r: r["mae"])
            verdict.append(f"{cv} CV, {target}: lowest MAE {best['mae']:.3f} by {NAMES[best['learner']]}")
    return f"""
## Structures, structure features and the GNN
Script: `benchmarks/bench_structure.py` (writes `docs/bench/structure.json`). Each composition is placed on the
parent structure of its `structure_type` (`ml/structures/`, prototypes with their sources in
`ml/structures/prototypes.json`, see `docs/structures.md`), with partial occupancies that reproduce it
(composition error <= 0.02). **{s['with_structure']} of {s['compositions']} compositions** have a structure
({protos}); **{s['fallback_composition_only']} fall back to the composition model** (largest groups: {fb}).
Mapping all of them: {t['mapping_seconds']:.1f} s.

All models below are evaluated on the **same {s['with_structure']} structured compositions and identical splits**
({t['n_with_sigma']} with sigma at 25 degC, {t['n_with_ea']} with Ea). "structure features" = the composition
features plus 23 occupancy-aware descriptors (`ml/featurizers/structure.py`: volume per atom/Na, packing, Na-Na
and Na-anion distances, Na coordination, free radius and hop bottleneck, Ewald energy with rule oxidation states,
symmetry, Na bond-valence sums), on cells scaled for the substituted ions' radii. GNN = {cfg['n_models']}
crystal-graph networks ({cfg['n_layers']} gated convolutions, {cfg['hidden']} channels, {cfg['max_neighbors']}
nearest periodic neighbours within {cfg['cutoff']} A, {cfg['epochs']} full-batch epochs, bootstrap per member),
node features = {NODE_TEXT.get(cfg.get('node_features', 'onehot'), cfg.get('node_features'))}; intervals from
out-of-bag conformal scores. "GNN + composition mean" = the mean of the two models' out-of-fold predictions
(nothing fitted; point metrics only). "residual GNN" = the composition model (fitted on the fold's training
compositions) + the same GNN trained on its grouped out-of-fold errors, the correction weighted per target by its
out-of-bag slope in [0, 1] (docs/structures.md, "Residual GNN directories").

### Grouped 5-fold CV ({t['grouped_seconds']:.0f} s for all of them)
log10 sigma (S/cm) at 25 degC, {table(t['grouped'] + t.get('grouped_blend', []), 'log10_sigma_S_cm')}

Ea (eV), {table(t['grouped'] + t.get('grouped_blend', []), 'ea_eV')}

### Leave-one-family-out ({t['family_seconds']:.0f} s)
log10 sigma (S/cm) at 25 degC, {table(t['family'] + t.get('family_blend', []), 'log10_sigma_S_cm')}

Ea (eV), {table(t['family'] + t.get('family_blend', []), 'ea_eV')}

Verdict: {'; '.join(verdict)}. {default_rule(t)}

### Cost (this machine: {t['cpu_count']} cores, torch on {t['torch_threads']} threads)
| what | value |
|---|---|
| GNN ensemble: grouped 5-fold CV | {t['gnn_grouped_cv_seconds']:.0f} s |
| GNN ensemble: final fit on all structured compositions | {t['gnn_fit_seconds']:.0f} s |
| GNN ensemble: CV + final fit (issue bound: <= 600 s) | **{t['gnn_cv_plus_fit_seconds']:.0f} s** |
| GNN inference (structure -> graph -> {cfg['n_models']}-member prediction), {inf['n']} structures of {inf['mean_sites']:.0f} sites on average | **{inf['structures_per_s']:.0f} structures/s** (graphs {inf['graph_seconds']:.2f} s, networks {inf['predict_seconds']:.2f} s) |
| occupancy-aware structure features (incl. Ewald) | {t['structure_features_per_s']:.0f} structures/s |
{gnn_inference_row()}
"""


def gnn_inference_row() -> str:
    g = _bench("gnn_inference")
    if g is None:
        return ""
    return (f"| GNN inference of `build/gnn` (`make gnn`), batch collated once for all members "
            f"(`benchmarks/bench_gnn_inference.py --repeats 5`), {g['n']} structures of {g['mean_sites']:.0f} sites | "
            f"**{g['median_per_s']:.0f} structures/s** median of {len(g['runs'])} (best {g['best_per_s']:.0f}; "
            "issue goal >= 300) |"
            + (f"\n| the same structures end to end through the directory (`GNNPredictor.predict_many`: graphs, "
               f"ensemble{', composition model of the residual GNN' if g.get('residual') else ''}, rows) | "
               f"{g['directory_median_per_s']:.0f} structures/s median of {len(g['directory_runs_per_s'])} |"
               if "directory_median_per_s" in g else ""))


def structure_candidates_section() -> str:
    c = _bench("structure_candidates")
    if c is None:
        return ""
    names = {"global_median": "global median (baseline)", "family_median": "family median (baseline)",
             "extra_trees": "composition extra trees (default)",
             "struct_parent_21": "(before) parent cell, 21 structure descriptors",
             "struct_parent_23": "(c) parent cell, + Na bond-valence sums",
             "struct_radii_21": "(a) radii-scaled cell, 21 descriptors",
             "struct_radii_23": "(a)+(c) radii-scaled cell, + Na bond-valence sums"}
    lines = []
    for target, label in (("log10_sigma_S_cm", f"log10 sigma, n = {c['n_sigma']}"),
                          ("ea_eV", f"Ea (eV), n = {c['n_ea']}")):
        lines.append(f"\n{label}\n\n| model | grouped CV MAE, fold assignments 0 / 1 / 2 | mean | "
                     "leave-one-family-out MAE |\n|---|---|---|---|")
        for learner, name in names.items():
            g = [r["mae"] for r in c["runs"] if r["cv"] == "grouped" and r["learner"] == learner
                 and r["target"] == target]
            f = [r["mae"] for r in c["runs"] if r["cv"] == "family" and r["learner"] == learner
                 and r["target"] == target]
            if g:
                lines.append(f"| {name} | {' / '.join(f'{v:.3f}' for v in g)} | {np.mean(g):.3f} | "
                             f"{f[0]:.3f} |")
    return f"""
### Candidates (a) and (c): composition-specific cells and Na-site physics, on the structure-feature model
Script: `benchmarks/bench_structure_candidates.py` (`docs/bench/structure_candidates.json`, extra trees only,
{c['featurize_seconds']:.0f} s to build and featurize both cell variants). Same {c['n']} structured compositions and
splits for every row; each composition on the same prototype in every variant.
{chr(10).join(lines)}
"""


def heldback_section(name: str = "heldback") -> str:
    h = _bench(name)
    if h is None:
        return ""
    residual = name == "heldback_residual"
    title = ("### Held-back literature materials, residual GNN directories (`--gnn-residual`)" if residual else
             "### Held-back literature materials (issue 12 acceptance)")
    residual_text = ("\nHere the GNN learns the composition model's out-of-fold errors and answers composition "
                     "model + its correction, weighted per target by the out-of-bag slope (0 = the structure adds "
                     "nothing held-out compositions confirm); the weights are in the last column." if residual else "")
    rows = []
    for d in h["draws"]:
        rows.append(f"| {d['seed']} | {d['held_back']} | {d['answered']} | {d['through_structure']} "
                    f"({d['through_structure_share']:.0%}) | {d['mae_gnn_on_structure']:.3f} | "
                    f"{d['mae_composition_on_structure']:.3f} | {d.get('mae_blend_on_structure', float('nan')):.3f} | "
                    f"{d['mae_directory']:.3f} | {d['mae_composition']:.3f} | {d['mae_global_median']:.3f} | "
                    f"{d['mae_family_median']:.3f} | {d['fit_seconds']:.0f} |"
                    + (f" {d['residual_shrink']['log10_sigma_S_cm']:.2f} / {d['residual_shrink']['ea_eV']:.2f}"
                       + (f" (slope {d['residual_oob_slope']['log10_sigma_S_cm']:+.2f} / "
                          f"{d['residual_oob_slope']['ea_eV']:+.2f})" if d.get("residual_oob_slope") else "") + " |"
                       if residual else ""))
    p = h.get("physics")
    phys = ""
    if p:
        et = p["structure_features_et"]
        phys = f"""
**Physics check** (models trained without {', '.join(p['left_out']) or 'either'}; NaCl is not in the dataset):
rock-salt NaCl (Fm-3m, a = {p['nacl_a']} A) and cubic Na3SbS4 (the prototype) given as structures.

| model | log10 sigma NaCl | log10 sigma Na3SbS4 | NaCl below Na3SbS4 (decades; goal >= 3) |
|---|---|---|---|
""" + "".join(f"| {'residual ' if residual else ''}GNN directory (structures), seed {r['seed']} | {r['NaCl']:.2f} | "
              f"{r['Na3SbS4']:.2f} | {r['gap']:.2f} |\n" for r in p.get('gnn_by_seed', [dict(p['gnn'], seed=0)])) + "".join(f"| structure features + composition (extra trees), seed {r['seed']} | {r['NaCl']:.2f} | "
              f"{r['Na3SbS4']:.2f} | {r['gap']:.2f} |\n" for r in et) + f"""| composition model (formula only) | {p['composition_model']['NaCl']:.2f} | {p['composition_model']['Na3SbS4']:.2f} | {p['composition_model']['gap']:.2f} |
"""
    return f"""
{title}
Script: `benchmarks/bench_heldback.py{' --residual' if residual else ''}` (`docs/bench/{name}.json`). Per draw, {h['fraction']:.0%} of the
compositions with a 20-30 degC sigma are held back (all their rows removed), `nacond train --model gnn{' --gnn-residual' if residual else ''} --cv none`
runs on the rest, and the held-back **formulas** (no structure type, no CIF) go to the GNN directory
(`GNNPredictor`: an inferred structure when a parent fits, else its composition model). Beside it: the directory's
composition model alone on all held-back formulas, and the baselines of the training rows. MAE in log10 sigma.{residual_text}

| draw | held back | answered | through a structure | GNN MAE there | composition model there | GNN + composition mean there | directory MAE, all | composition model, all | global median | family median | fit (s) |{' correction weight sigma / Ea (out-of-bag slope before clipping) |' if residual else ''}
|---|---|---|---|---|---|---|---|---|---|---|---|{'---|' if residual else ''}
{chr(10).join(rows)}
{phys}"""


def pretrain_section() -> str:
    """Issue #12 candidate 3(b): the GNN pretrained on OBELiX Li structures and fine-tuned on Na
    (``benchmarks/bench_gnn_pretrain.py``, ``docs/bench/gnn_pretrain.json``)."""
    r = _bench("gnn_pretrain")
    if r is None or "pretrain" not in r:
        return ""
    import sys

    sys.path.insert(0, str(ROOT))
    from benchmarks.bench_gnn_pretrain import render as tables

    d, n = r["pretrain"]["data"], r["pretrain"]["network"]
    skipped = ", ".join(f"{k} ({v})" for k, v in d["skipped"].items()) or "none"
    comp = ROOT / "docs/bench/composition.json"
    spread = json.loads(comp.read_text()).get("cv", {}).get("grouped_seed_spread", {}) if comp.exists() else {}
    verdict, wins = [], []
    for key in sorted(k for k in r if k.startswith(("grouped_", "family_"))):
        rows = r[key]["table"]
        for target in ("log10_sigma_S_cm", "ea_eV"):
            m = {row["learner"]: row["mae"] for row in rows if row["target"] == target}
            if "gnn_pretrained" not in m:
                continue
            sd = spread.get(f"extra_trees/{target}", {}).get("sd", float("nan"))
            nd = 3 if target == "log10_sigma_S_cm" else 4
            label = {"gnn": "current GNN", "gnn_mobile": "GNN + mobile channel", "extra_trees": "extra trees"}
            vs = "; ".join(f"vs {label[b]} {m['gnn_pretrained'] - m[b]:+.{nd}f}"
                           for b in ("gnn", "gnn_mobile", "extra_trees") if b in m)
            verdict.append(f"{key.replace('_seed', ' CV, split seed ')}, {target}: pretrained MAE "
                           f"{m['gnn_pretrained']:.{nd}f} ({vs}; split sd of the composition model {sd:.{nd}f})")
            if key.startswith("grouped_") and "gnn" in m:
                wins.append(m["gnn"] - m["gnn_pretrained"] > sd)
    return f"""
### Candidate (b): pretraining on OBELiX Li structures
Script: `PYTHONPATH=. .venv/bin/python benchmarks/bench_gnn_pretrain.py --threads 1 --out docs/bench` (writes
`docs/bench/gnn_pretrain.json`; `--parts render` prints the tables below). Same {r['setup']['structured_compositions']}
structured Na compositions (measured 2026-12-07 before the Na3YCl6, anti-perovskite, nido-borate and
beta''-alumina prototypes were added, so on the 170-composition set of that morning, not the set above; not rerun:
~50 min), the grouped/family splits of bench_structure.py on that set, the same GNN recipe; three GNN variants: (i) the current GNN;
(ii) plus a mobile-ion node channel (`GNNConfig(mobile_channel=True)`: channel 95 = occupancy of the mobile ion, Na
here, Li in OBELiX); (iii) (ii) with every ensemble member starting from one network pretrained on OBELiX
(`ml/models/gnn.py: pretrain_gnn`, `GNNEnsemble(config, pretrained=...)`), then fine-tuned with the usual
{r['setup']['gnn_config']['epochs']} epochs. OBELiX (Therrien et al., Digital Discovery 2026, CC-BY 4.0) is read at run
time from `../shared/external/obelix` (`ml/structures/obelix.py`; graphs cached under `build/cache/`): {d['structures']}
of 321 CIFs used ({d['values']} with a value, {d['upper_bounds']} with only an upper bound such as `<1E-10`, which enter
as a one-sided hinge term, never as values; {d['nodes']:,} nodes); skipped: {skipped}. Pretraining uses no Na label,
so one pretrained network serves every fold. Pretraining: {n['epochs']} epochs, mini-batches of {n['batch_size']},
lr {n['lr']}, final training loss {n['final_loss']} (standardised log10 sigma), **{n['seconds']:.0f} s** (torch on 2
threads on this shared 2-core machine while another job held one core); parsing the CIFs into graphs
{d['seconds']:.0f} s once, then cached. CV below ran with torch on 1 thread (two threads on the one free core ran ~7x
slower), so its seconds are not comparable with the table above.
{tables(r)}

"fold sd" = standard deviation of the sigma MAE over the folds of that one split (how uneven the folds are), not
the split-to-split sd of the default-model rule. NaCl: rock salt Fm-3m, a = 5.6402 A, Na 4a, Cl 4b (Structure World,
ilpi.com, "The Sodium Chloride Structure"); Na3SbS4: prototype `Na3SbS4_cubic`; each variant trained on every
structured composition but reduced formula Na3SbS4 (NaCl is not in the data); (i)'s fit ran on 2 threads while the
cores were shared, the others on 1.

Verdict: {'; '.join(verdict) if verdict else 'CV not run yet'}. {_pretrain_conclusion(wins, r) if verdict else ''}
"""


def _pretrain_conclusion(wins: list[bool], r: dict) -> str:
    if wins and all(wins):
        return "**Pretraining beats the current GNN beyond split noise on grouped CV.**"
    pred = r.get("physics_nacl_vs_na3sbs4", {}).get("predictions", {})
    gap = {k: v["decades_NaCl_below_Na3SbS4"] for k, v in pred.items()}
    nacl = ""
    if "gnn" in gap and "gnn_pretrained" in gap:
        nacl = (f", and it {'narrows' if gap['gnn_pretrained'] < gap['gnn'] else 'widens'} the NaCl / Na3SbS4 gap "
                f"({gap['gnn']:.2f} -> {gap['gnn_pretrained']:.2f} decades; goal >= 3)")
    fam = ""
    if "family_seed0" in r:
        m = {(x["learner"], x["target"]): x["mae"] for x in r["family_seed0"]["table"]}
        fam = (" Leave-one-family-out it does help: sigma MAE {:.3f} -> {:.3f}, Ea MAE {:.4f} -> {:.4f} (current GNN "
               "-> pretrained); the gain comes from the held-out NASICON family (OBELiX holds 34 Li NASICON CIFs, a "
               "plausible reason), while "
               "held-out halides and complex hydrides get worse for sigma (per-family table); leave-one-family-out "
               "is one deterministic split, so it has no split-to-split sd to compare with, and it is not the rule "
               "for the default.").format(m[("gnn", "log10_sigma_S_cm")], m[("gnn_pretrained", "log10_sigma_S_cm")],
                                          m[("gnn", "ea_eV")], m[("gnn_pretrained", "ea_eV")])
    return ("**Pretraining on OBELiX does not beat the current GNN beyond split noise on grouped CV** (nor does the "
            f"mobile-ion channel alone){nacl}.{fam} It stays an option "
            "(`GNNConfig(mobile_channel=True)` + `GNNEnsemble(config, pretrained=PretrainedGNN.load(...))`), not the "
            "default, and `nacond train --model gnn` is unchanged.")


def ray_section() -> str:
    r = _bench("ray")
    if r is None:
        return ""
    return f"""
## Screening past one machine (Ray)
Script: `benchmarks/bench_ray.py`; CLI: `nacond predict --input CANDIDATES.csv --output OUT.csv --ray [--workers N]
[--ray-address ADDR]`. {r['n']:,} candidate compositions on this 2-core machine:

| path | seconds | compositions/s |
|---|---|---|
| serial `Predictor.predict_many` (tree traversal on 2 threads) | {r['serial_s']:.1f} | {r['serial_per_s']:,.0f} |
| Ray, 1 actor (local Ray start + model load included) | {r['ray_1_workers_s']:.1f} | {r['ray_1_workers_per_s']:,.0f} |
| Ray, 2 actors | {r['ray_2_workers_s']:.1f} | {r['ray_2_workers_per_s']:,.0f} |

On 2 cores Ray gains little ({r['serial_s'] / r['ray_2_workers_s']:.2f}x the serial path with 2 actors): the serial
path already uses both cores for the trees, and Ray adds its start (~6 s), one model load per actor and the
transfer of result dicts. How it scales on a cluster: the work is embarrassingly parallel
(chunks of 5,000, no shared state), so throughput grows with actors until the driver, which receives ~1 kB of
result per composition and writes the CSV, becomes the limit; the 1 -> 2 actor ratio above
({r['ray_2_workers_per_s'] / r['ray_1_workers_per_s']:.2f}x on 2 cores that also host the driver) is the only
scaling measured here — no cluster was available. With `--ray-address`, every worker must be able to read the
model (a shared path or an MLflow `models:/` URI) and have nacond installed.
"""


def robustness_section() -> str:
    r = _bench("robustness")
    if r is None:
        return ""
    rows = []
    for key, label in (("formulas", "random formulas (element symbols, junk characters, huge/zero/inf amounts, "
                                    "elements 104-118, hydrates)"),
                       ("cifs", "CIFs: FIFO, link to /dev/zero, directory, missing, 20k symmetry operations, 80k "
                                "atom sites, 6 MB, empty, binary, 40 random mutations of a good CIF"),
                       ("model_bit_flips", "one bit flipped in a random file of a copy of `models/default`, then "
                                           "`Predictor.load`"),
                       ("training_files", "broken training files through `train`'s data checks (Ea = 50, "
                                          "negative/zero/inf/NaN sigma, T = 25 K, header only, ...)")):
        t = r[key]
        rows.append(f"| {label} | {t['tried']:,} | {t['results']:,} | {t['clear_errors']:,} | **{t['crashes']}** | "
                    f"**{t['hangs']}** | {t['slowest_s']:.2f} s |")
    rest = r["rest"]
    codes = ", ".join(f"{v:,} x {k}" for k, v in rest["status_codes"].items())
    return f"""
## Robustness (issue #14)
Script: `benchmarks/bench_robustness.py` (seeded; {r['seconds']:.0f} s). An input passes when it gives a result
with finite numbers or a `ValueError` subclass naming it within {r['hang_threshold_s']:.0f} s; any other exception
is a crash, anything slower a hang. A flipped model file must fail to load (`ModelLoadError`), a broken training
file must be refused before training.

| inputs | tried | results | clear errors | crashes | hangs | slowest |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Random formulas as one `predict_many(..., on_error="skip")` batch: every item a result or a failure naming it
({'consistent' if r['formulas']['batch_consistent'] else '**inconsistent**'}). REST (`uvicorn` on loopback,
{rest['clients']} parallel clients, {rest['requests']:,} requests: random formulas, batches, `.cif` paths, odd
temperatures): {codes}; **{rest['server_errors_5xx']} server errors**, {rest['hangs']} hangs. A 300 MB chunked body
without Content-Length: status {rest['chunked_300MB_status']} after {rest['chunked_300MB_seconds']:.2f} s; process
RSS grew {rest['rss_growth_MB']:.0f} MB over the whole REST run.
"""


def trust_section() -> str:
    t = _bench("trust")
    if t is None:
        return ""

    def row(name, v):
        ind = "-" if v["in_domain_mae"] is None else f"{v['in_domain_mae']:.2f}"
        flagged = "-" if v["large_misses_flagged"] is None else f"{100 * v['large_misses_flagged']:.0f} %"
        return (f"| {name} | {v['n']} | {v['mae']:.2f} | {v['coverage90']:.3f} | {v['median_width']:.2f} | "
                f"{100 * v['in_domain_share']:.0f} % | {ind} | {v['large_misses']} | {flagged} |")

    rows = [row(f"grouped 5-fold, seed {s}", v) for s, v in t["grouped"].items()] + [row("leave one family out",
                                                                                        t["family"])]
    g0 = t["grouped"]["0"]
    fams = "\n".join(f"| {f} | {v['n']} | {v['mae']:.2f} | {v['coverage90']:.2f} | {v['median_width']:.2f} | "
                     f"{100 * v['in_domain']:.0f} % | {t['family']['families'].get(f, {}).get('coverage90', float('nan')):.2f} | "
                     f"{t['family']['families'].get(f, {}).get('median_width', float('nan')):.2f} |"
                     for f, v in sorted(g0["families"].items(), key=lambda kv: -kv[1]["n"]))
    r = t["reference_rules"]
    q = t["reference_quantiles"]["log10_sigma_S_cm"]
    return f"""
## Trust: intervals and the applicability domain (issue #13)
Script: `benchmarks/bench_trust.py` ({t['seconds']:.0f} s). Extra trees, log10 sigma at 25 degC, out of fold. Each
fold's model calibrates its own domain rules and interval quantiles on its inner grouped folds (nothing is set by
hand or on these splits). Intervals are split-conformal, normalised by the square root of the trees' spread, with separate
quantiles for in-domain and out-of-domain compositions (Mondrian by the domain flag).

| split | n | MAE | 90 % coverage | median width (decades) | in domain | in-domain MAE | misses > 1.5 | flagged |
|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Per family (grouped, seed 0; last two columns leave-one-family-out):

| family | n | MAE | coverage | median width | in domain | LOFO coverage | LOFO width |
|---|---|---|---|---|---|---|---|
{fams}

Reference model's calibrated rules: out of domain when the inferred family has fewer than {r['min_family_support']}
training compositions, the nearest training composition is farther than {r['nn_threshold']:.1f} (standardised
feature distance), or the trees disagree by more than {r['max_tree_spread']:.2f} decades (sd); always when an element
is unseen, the Na fraction is outside the training range, or the formula is not charge-balanced with common
oxidation states. On its own inner folds these rules flag {100 * r.get('large_flagged', 0):.0f} % of the misses > 1.5
decades and keep {100 * r.get('in_domain', 1):.0f} % in domain (Youden's J {r['j']:.2f}). Interval quantiles (in units
of the square root of the tree spread): pooled {q['q90']:.2f}, in domain {q['q90_in']:.2f} ({q['n_in']} compositions), out of domain
{q['q90_out']:.2f} ({q['n_out']}).
"""


def obelix_section() -> str:
    o = _bench("obelix")
    if o is None:
        return ""
    rows = "\n".join(f"| {NAMES.get(k, k)} | {v['mae']:.3f} | {v['rmse']:.3f} | {v['coverage90']:.3f} | "
                     f"{v['median_interval_width']:.2f} |" for k, v in o["models"].items())
    return f"""
## OBELiX official split (Li; issue #14)
Script: `benchmarks/bench_obelix.py --obelix ../shared/external/obelix` ({o['seconds']:.0f} s). The OBELiX tables
(Therrien et al., Digital Discovery 2026, CC-BY 4.0) go through `nacond data import --format obelix` and the same
composition model as the Na model, trained for Li on the official train split ({o['train_compositions']}
compositions) and scored on the official test split ({o['test_compositions']} compositions with a value;
{o['censored_test_rows']} censored test rows left out; rows outside nacond's 1e-14-1 S/cm range skipped: train
{o['skipped_rows']['train']}, test {o['skipped_rows']['test']}). log10 sigma at room temperature:

| model | MAE | RMSE | 90 % coverage | median interval width (decades) |
|---|---|---|---|---|
{rows}

The published OBELiX baselines (its paper's table of seven models) could not be read with this workplace's tools
(only the paper's opening is reachable), so they are not quoted here; compare with the paper directly. The intervals
under-cover on this split (it is built to avoid leakage): the conformal calibration assumes exchangeable data.
"""


def dataset_versions(current: str) -> str:
    """Which dataset version each results file was measured on (its ``dataset`` stamp), so a page rendered after
    the data changed does not present older numbers as if they came from the current rows."""
    by: dict[tuple[str, int | None], list[str]] = {}
    for path in sorted((ROOT / "docs/bench").glob("*.json")):
        if path.stem == "obelix":  # Li data from OBELiX, not this dataset
            continue
        data = json.loads(path.read_text())
        stamp = data.get("dataset") if isinstance(data, dict) else None
        key = (stamp["sha256"], stamp.get("rows")) if stamp else ("unknown", None)
        by.setdefault(key, []).append(path.name)
    if all(sha == current for sha, _ in by):
        return "Every results file below was measured on this dataset version."
    lines = ["Not every section is measured on this version: each results file records the dataset it ran on "
             "(`dataset` in its JSON; what changed between versions: `datasets/na_sse/README.md`, \"Changes\").", "",
             "| dataset sha256 | rows | results files |", "|---|---|---|"]
    for (sha, rows), files in sorted(by.items(), key=lambda kv: kv[0][0] != current):
        label = f"`{sha[:16]}...`" + (" (current)" if sha == current else "")
        lines.append(f"| {label} | {rows if rows is not None else '?'} | {', '.join(files)} |")
    return "\n".join(lines)


def main() -> None:
    comp = json.loads((ROOT / "docs/bench/composition.json").read_text())
    serv = json.loads((ROOT / "docs/bench/serving.json").read_text())
    meta = json.loads((ROOT / "datasets/na_sse/metadata.json").read_text())
    f, cv = comp["featurization"], comp["cv"]
    g, fam = cv["grouped"]["table"], cv["family"]["table"]
    s_model, s_fm, s_gm = (get(g, m, "log10_sigma_S_cm") for m in ("extra_trees", "family_median", "global_median"))
    e_model, e_fm, e_gm = (get(g, m, "ea_eV") for m in ("extra_trees", "family_median", "global_median"))
    fits = cv["fit_seconds_all_data"]
    lat, thr, st, lt, cs = serv["latency"], serv["throughput"], serv["structures"], serv["load_test"], serv["cold_start"]
    out = f"""# Benchmarks

Every number below was measured by a script in `benchmarks/` on this project's CI-class machine ({comp['machine']},
24 GiB, no GPU), written to `docs/bench/*.json`, and rendered into this page by `benchmarks/render.py`.
Command for all of it: `make bench`. Dataset `datasets/na_sse`, sha256 `{meta['sha256'][:16]}...`
({meta['counts']['rows']} rows). Rendered {date.today().isoformat()}.

{dataset_versions(meta['sha256'])}

## Dataset (`nacond data stats datasets/na_sse`)
{meta['counts']['rows']} rows, {meta['counts']['with_ea']} with Ea; rows per family:
{', '.join(f'{k} {v}' for k, v in meta['counts']['families'].items())}. Full counts, provenance shares and temperature
bands: `nacond data stats` and `datasets/na_sse/README.md`.

## Composition models: cross-validation
Script: `benchmarks/bench_composition.py`. Seed 0. {cv['compositions']} compositions; {cv['n_sigma_rt']} with log10 sigma
at 20-30 degC (uncensored rows, median per reduced composition), {cv['n_ea']} with Ea. Grouped 5-fold CV by reduced
composition; leave-one-family-out holds out each family in turn (its family median is then unknown, so that baseline
equals the global median). Intervals are 90 % split-conformal, calibrated on grouped inner folds of each training fold.
`acc at 1e-4 S/cm` = share of compositions put on the right side of 1e-4 S/cm.

### Grouped 5-fold CV ({cv['grouped']['seconds']:.0f} s for all five models)
log10 sigma at 25 degC (S/cm), {table(g, 'log10_sigma_S_cm')}

Ea (eV), {table(g, 'ea_eV')}

Against issue #3's goals: log10 sigma MAE {s_model:.3f} is {100 * (1 - s_model / s_fm):.0f} % below the family median
({s_fm:.3f}) and {100 * (1 - s_model / s_gm):.0f} % below the global median ({s_gm:.3f}). Ea MAE {e_model:.3f} eV is
{100 * (1 - e_model / e_gm):.0f} % below the global-median baseline ({e_gm:.3f} eV) and
{100 * (1 - e_model / e_fm):.0f} % below the family median ({e_fm:.3f} eV); the goal was >= 30 % below the
mean-type baseline (the median is used: it is the stronger constant predictor for an MAE).
{seed_spread(cv)}

### Leave-one-family-out ({cv['family']['seconds']:.0f} s)
log10 sigma at 25 degC, {table(fam, 'log10_sigma_S_cm')}

Ea, {table(fam, 'ea_eV')}

Reading: within known families the models rank compositions well; extrapolating to a family never seen is much
weaker, and for Ea no better than the median, mostly because the Ea data are dominated by NASICON, so holding NASICON
out leaves little to learn from. Per-family MAEs: `docs/bench/composition.json` (`cv.family.per_family_mae`).

## Featurization speed
Same script. {f['n']:,} distinct doped compositions (dataset compositions with amounts jittered +-10 %), one process.

| featurizer (same 145 Magpie + Stoichiometry + ValenceOrbital features) | seconds |
|---|---|
| matminer `StrToComposition` + `MultipleFeaturizer.featurize_dataframe` (n_jobs=1) | {f['matminer_featurize_dataframe_s']:.1f} |
| nacond vectorised (`CompositionFeaturizer("magpie-2026-11-26")`) | {f['nacond_magpie_s']:.2f} ({f['speedup_magpie']:.0f}x faster) |
| nacond full preset `na-chem-2026-11-26` (+56 Na-chemistry features), first call | {f['nacond_full_preset_cold_s']:.2f} |
| same, second call | {f['nacond_full_preset_warm_s']:.2f} |

Largest absolute difference between nacond's and matminer's values: {f['max_abs_diff_vs_matminer']:.1e} (a test pins
equality on fixtures: `tests/test_featurizers.py::test_vectorised_magpie_equals_matminer`).

## Training time
| what | seconds |
|---|---|
| fit on all data, extra trees (both targets + conformal calibration) | {fits['extra_trees']:.1f} |
| fit on all data, random forest / hist GBM | {fits['random_forest']:.1f} / {fits['hist_gbm']:.1f} |
| grouped CV of all five models | {cv['grouped']['seconds']:.0f} |
| leave-one-family-out of all five models | {cv['family']['seconds']:.0f} |

Measured by hand with `time` on 2026-12-07 (604-row dataset): `make model` (default model with grouped CV beside
both baselines, plus the sigma(T) calibration, no MLflow) 44 s wall; `make run` in a fresh clone (venv install,
validate, stats, train with grouped CV, learning curve, sigma(T), MLflow logging and registration, predict) 2 min
56 s wall, of which `nacond train` 56 s; `bash .ci/run` on a fresh clone (venv install + 271 tests) 3 min 38 s - 3 min
58 s (tests 129-146 s).

## Serving (`serving.Predictor`, `nacond serve`)
Script: `benchmarks/bench_serving.py`. Reference model `models/default` (extra trees, 200 trees per target; JSON +
numpy arrays, 3.5 MB).

| measure | result | goal (#5) |
|---|---|---|
| cold start: new process, `import serving; serving.predict(...)`, wall, median of 5 | {cs['process_wall_s_median']:.2f} s (import + load + first prediction in-process: {cs['import_load_first_prediction_s']:.2f} s) | <= 2 s |
| warm single prediction, {lat['n']:,} distinct formulas, median of {lat['repeats']} runs | p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms | <= 5 ms |
| batch `predict_many`, {thr['n']:,} distinct compositions, median of 3 runs | {thr['compositions_per_s']:,.0f} compositions/s (runs {', '.join(f'{r:,.0f}' for r in thr['runs'])}) | >= 5,000/s: {'met in this run' if thr['compositions_per_s'] >= 5000 else '**not met**'} |
| batch of {st['n']} pymatgen `Structure` objects (8-64 sites, partial occupancy) | {st['structure_objects_per_s']:,.0f} structures/s | |
| batch of {st['n']} CIF files (pymatgen `CifParser`) | {st['cif_files_per_s']:,.0f} CIFs/s | |
| loopback load test of `nacond serve`: {lt['requests']:,} sequential requests, 10 % malformed (bad formula, bad JSON, wrong type, empty body, 1,001-item batch), 10 % 20-formula batches | {', '.join(f'{v} x {k}' for k, v in sorted(lt['status_codes'].items()))}; **{lt['server_errors_5xx']} server errors**; RSS {lt['rss_mb_start']:.1f} -> {lt['rss_mb_end']:.1f} MB; p50 {lt['p50_ms']:.1f} ms, p99 {lt['p99_ms']:.1f} ms | 0 errors, bounded memory |

Where batch time goes (cProfile, 10,000 compositions): formula validation with pymatgen ~1.0 s, tree traversal of
2 x 200 trees ~0.6-1.2 s (two threads), domain check + neighbours ~0.5 s, result objects ~0.5 s, features ~0.4 s.
A forked two-process split was tried and gave no gain on this 2-core machine (the tree traversal already uses both
cores), so it was not kept. Timings on this shared machine vary by about +-20 % between runs.
"""
    out += (structure_section() + structure_candidates_section() + pretrain_section() + heldback_section()
            + heldback_section("heldback_residual")
            + temperature_section() + screening_section() + ray_section()
            + trust_section() + robustness_section() + obelix_section())
    (ROOT / "docs/benchmarks.md").write_text(out)
    print("wrote docs/benchmarks.md")


if __name__ == "__main__":
    main()
