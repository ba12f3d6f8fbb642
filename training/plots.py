"""Parity plots, learning curves and dopant-screening plots as PNG (matplotlib, Agg backend).

Every plot colours a materials family the same way (``FAMILY_COLOURS``), puts units on its axes and keeps its
legend outside the data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

LABELS = {"log10_sigma_S_cm": "log10 σ (S/cm) at 25 °C", "ea_eV": "Ea (eV)"}
AXIS = {"log10_sigma_S_cm": ("measured log10 σ (S/cm)", "predicted log10 σ (S/cm)"),
        "ea_eV": ("measured Ea (eV)", "predicted Ea (eV)")}
# One fixed family -> colour map (Okabe-Ito and tab10 hues), so a family looks the same in every figure.
FAMILY_COLOURS = {
    "nasicon": "#0072B2", "sulfide": "#E69F00", "halide": "#009E73", "complex_hydride": "#CC79A7",
    "selenide": "#D55E00", "antiperovskite": "#56B4E9", "beta_alumina": "#8C564B", "layered_oxide": "#7F7F7F",
    "other": "#000000",
}
# Dopant series colours (screening): distinct from each other, in the order the dopants are given.
SERIES_COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#8C564B", "#7F7F7F"]
# The plotted range of predicted conductivity: no solid electrolyte reaches 1 S/cm at 25 degC (the best are
# ~0.05 S/cm), and below 1e-12 S/cm a material is an insulator for this purpose.
LOG10_SIGMA_RANGE = (-12.0, 0.0)


def family_colour(family: str) -> str:
    return FAMILY_COLOURS.get(family, FAMILY_COLOURS["other"])


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def parity(oof: pd.DataFrame, learner: str, path: Path, title: str = "") -> Path:
    """Out-of-fold prediction vs measurement, one square panel per target with equal axis ranges, the identity
    line, 90 % intervals as error bars and one colour per family (legend to the right, outside the data)."""
    plt = _plt()
    sub = oof[oof["learner"] == learner]
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 5.2))
    handles: dict[str, object] = {}
    for ax, t in zip(axes, ("log10_sigma_S_cm", "ea_eV"), strict=True):
        m = sub[t].notna() & sub[f"pred_{t}"].notna()
        y, p = sub.loc[m, t], sub.loc[m, f"pred_{t}"]
        lo, hi = sub.loc[m, f"pred_{t}_lo"], sub.loc[m, f"pred_{t}_hi"]
        for fam, g in sub[m].groupby("family"):
            yy, pp = g[t].to_numpy(float), g[f"pred_{t}"].to_numpy(float)
            err = [np.clip(pp - g[f"pred_{t}_lo"].to_numpy(float), 0, None),
                   np.clip(g[f"pred_{t}_hi"].to_numpy(float) - pp, 0, None)]
            h = ax.errorbar(yy, pp, yerr=err, fmt="o", ms=4, alpha=0.75, elinewidth=0.4, capsize=0,
                            color=family_colour(str(fam)), ecolor=family_colour(str(fam)), label=str(fam))
            handles.setdefault(str(fam), h)
        if len(y):
            a, b = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
            pad = 0.05 * (b - a or 1.0)
            a, b = a - pad, b + pad
            ax.plot([a, b], [a, b], "k--", lw=1, label="identity")
            ax.set_xlim(a, b)
            ax.set_ylim(a, b)
            mae = float(np.mean(np.abs(y - p)))
            cov = float(np.mean((y >= lo) & (y <= hi)))
            ax.set_title(f"{LABELS[t]}\nMAE {mae:.3f}, 90 % interval coverage {cov:.2f}, n = {len(y)}", fontsize=9)
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel(AXIS[t][0])
        ax.set_ylabel(AXIS[t][1] + ", out-of-fold")
        ax.grid(alpha=0.25)
    labels = sorted(handles, key=lambda f: list(FAMILY_COLOURS).index(f) if f in FAMILY_COLOURS else 99)
    fig.legend([handles[f] for f in labels], labels, loc="center left", bbox_to_anchor=(0.865, 0.5),
               fontsize=8, title="family (bars: 90 %)", title_fontsize=8, frameon=False)
    fig.suptitle(title or f"{learner}: out-of-fold parity", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def learning_curve(curve: pd.DataFrame, path: Path, title: str = "") -> Path:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4))
    units = {"log10_sigma_S_cm": "MAE of log10 σ (decades)", "ea_eV": "MAE of Ea (eV)"}
    for ax, t in zip(axes, ("log10_sigma_S_cm", "ea_eV"), strict=True):
        for learner, g in curve[curve["target"] == t].groupby("learner"):
            ax.plot(g["n_train"], g["mae"], "o-", label=learner)
        ax.set_xlabel("training compositions per fold")
        ax.set_ylabel(f"grouped-CV {units[t]}")
        ax.grid(alpha=0.25)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(0.86, 0.5), fontsize=8, frameon=False)
    fig.suptitle(title or "learning curve", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.85, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def screening(rows: list[dict], path: Path, title: str) -> Path:
    """Predicted sigma and Ea against the dopant share of the site: one column per dopant (sigma on top, Ea
    below), 90 % bands clipped to ``LOG10_SIGMA_RANGE``, out-of-domain candidates drawn as open markers."""
    plt = _plt()
    parent = next(r for r in rows if r["dopant"] == "(parent)")
    dopants = sorted({r["dopant"] for r in rows} - {"(parent)"})
    n = max(len(dopants), 1)
    fig, axes = plt.subplots(2, n, figsize=(2.2 + 3.0 * n, 6.2), sharex=True, sharey="row", squeeze=False,
                             gridspec_kw={"height_ratios": [3, 2]})
    lo_lim, hi_lim = LOG10_SIGMA_RANGE
    clipped = False
    t_c = parent["temperature_K"] - 273.15
    for j, d in enumerate(dopants):
        pts = sorted([parent] + [r for r in rows if r["dopant"] == d], key=lambda r: r["site_fraction"])
        x = np.array([r["site_fraction"] for r in pts])
        colour = SERIES_COLOURS[j % len(SERIES_COLOURS)]
        inside = np.array([bool(r["in_domain"]) for r in pts])
        for ax, key, lo_k, hi_k in ((axes[0, j], "log10_sigma_S_cm", "log10_sigma_lo", "log10_sigma_hi"),
                                    (axes[1, j], "ea_eV", "ea_lo_eV", "ea_hi_eV")):
            yv = np.array([r[key] for r in pts], dtype=float)
            lo = np.array([r[lo_k] for r in pts], dtype=float)
            hi = np.array([r[hi_k] for r in pts], dtype=float)
            if key == "log10_sigma_S_cm":
                clipped |= bool((lo < lo_lim).any() or (hi > hi_lim).any())
                lo, hi = np.clip(lo, lo_lim, hi_lim), np.clip(hi, lo_lim, hi_lim)
            else:
                lo = np.clip(lo, 0.0, None)
            ax.fill_between(x, lo, hi, color=colour, alpha=0.18, lw=0, label="90 % interval")
            ax.plot(x, yv, "-", color=colour, lw=1.2)
            ax.plot(x[inside], yv[inside], "o", color=colour, ms=4, label="in domain")
            if (~inside).any():
                ax.plot(x[~inside], yv[~inside], "o", mfc="white", mec=colour, ms=5, mew=1.2,
                        label="out of domain")
            ax.grid(alpha=0.25)
        axes[0, j].set_title(f"{d} on the site", fontsize=9, color=colour)
        axes[1, j].set_xlabel(f"{d} share of the site")
    axes[0, 0].set_ylabel(f"predicted log10 σ (S/cm) at {t_c:.0f} °C")
    axes[1, 0].set_ylabel("predicted Ea (eV)")
    seen: dict[str, object] = {}
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(lab, h)
    fig.legend(list(seen.values()), list(seen), loc="upper center", ncol=3, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.955))
    note = (f"bands clipped to log10 σ in [{lo_lim:.0f}, {hi_lim:.0f}] (S/cm)" if clipped else
            "90 % split-conformal intervals")
    fig.suptitle(title, fontsize=10, y=0.995)
    fig.text(0.5, 0.005, note + "; open markers: outside the model's applicability domain", ha="center",
             fontsize=7.5, color="0.3")
    fig.tight_layout(rect=(0, 0.025, 1, 0.93))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
