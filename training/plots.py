"""Parity plots and learning curves as PNG (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

LABELS = {"log10_sigma_S_cm": "log10 sigma (S/cm) at 25 C", "ea_eV": "Ea (eV)"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def parity(oof: pd.DataFrame, learner: str, path: Path, title: str = "") -> Path:
    plt = _plt()
    sub = oof[oof["learner"] == learner]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    for ax, t in zip(axes, ("log10_sigma_S_cm", "ea_eV"), strict=True):
        m = sub[t].notna() & sub[f"pred_{t}"].notna()
        y, p = sub.loc[m, t], sub.loc[m, f"pred_{t}"]
        lo, hi = sub.loc[m, f"pred_{t}_lo"], sub.loc[m, f"pred_{t}_hi"]
        for fam, g in sub[m].groupby("family"):
            yy, pp = g[t].to_numpy(float), g[f"pred_{t}"].to_numpy(float)
            ax.errorbar(yy, pp, yerr=[pp - g[f"pred_{t}_lo"].to_numpy(float),
                                      g[f"pred_{t}_hi"].to_numpy(float) - pp],
                        fmt="o", ms=4, alpha=0.7, elinewidth=0.5, label=fam)
        if len(y):
            a, b = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
            ax.plot([a, b], [a, b], "k--", lw=1)
            mae = float(np.mean(np.abs(y - p)))
            cov = float(np.mean((y >= lo) & (y <= hi)))
            ax.set_title(f"{LABELS[t]}: MAE {mae:.3f}, 90% cover {cov:.2f} (n={len(y)})", fontsize=9)
        ax.set_xlabel("measured")
        ax.set_ylabel("predicted (out-of-fold)")
    axes[0].legend(fontsize=7)
    fig.suptitle(title or f"{learner}: out-of-fold parity", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def learning_curve(curve: pd.DataFrame, path: Path, title: str = "") -> Path:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, t in zip(axes, ("log10_sigma_S_cm", "ea_eV"), strict=True):
        for learner, g in curve[curve["target"] == t].groupby("learner"):
            ax.plot(g["n_train"], g["mae"], "o-", label=learner)
        ax.set_xlabel("training compositions")
        ax.set_ylabel(f"grouped-CV MAE, {LABELS[t]}")
    axes[0].legend(fontsize=8)
    fig.suptitle(title or "learning curve", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
