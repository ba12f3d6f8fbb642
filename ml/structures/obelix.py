"""OBELiX Li structures -> crystal graphs + room-temperature log10 sigma, the GNN's pretraining set.

OBELiX (Therrien et al., Digital Discovery 2026, arXiv:2502.14234; CC-BY 4.0) is read at run time from a local
copy (by default ``../shared/external/obelix`` relative to the repository root; nothing of it is committed here):
``all.csv`` (``ID``, ``Ionic conductivity (S cm-1)``, ``Cif ID`` = ``done`` where a CIF exists) and
``cifs/<ID>.cif`` (the repository's randomised CIFs, partial occupancies kept).

* A conductivity such as ``<1E-10`` is an upper bound: it is kept as a bound (``upper``), never as a value.
* A CIF that cannot be read or made into a graph (no Li, isolated site, ...) is skipped and reported by file
  name in ``skipped``; a missing directory or table raises :class:`ml.errors.DatasetError` naming it.
* Graphs are cached (``torch.save``) under ``cache_dir`` keyed by the sha256 of the table, the CIF listing and
  the graph settings, so the 321 CIFs are parsed once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ml.errors import DatasetError, NacondError

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = ROOT.parent / "shared" / "external" / "obelix"
DEFAULT_CACHE = ROOT / "build" / "cache"
SIGMA_COLUMN = "Ionic conductivity (S cm-1)"
_NUMBER = re.compile(r"^\s*([<>])?\s*([0-9.]+(?:[eE][-+]?\d+)?)\s*$")
CACHE_VERSION = 1


@dataclass
class PretrainSet:
    """Graphs with log10 sigma (``y``, NaN for a bound) or an upper bound (``upper``, NaN for a value)."""

    graphs: list
    y: np.ndarray
    upper: np.ndarray
    ids: list[str]
    formulas: list[str]
    skipped: dict[str, str] = field(default_factory=dict)  # file name (or row id) -> reason
    source: str = ""
    sha256: str = ""
    seconds: float = 0.0
    from_cache: bool = False

    def summary(self) -> dict:
        return {"source": self.source, "sha256": self.sha256, "structures": len(self.graphs),
                "values": int(np.isfinite(self.y).sum()), "upper_bounds": int(np.isfinite(self.upper).sum()),
                "nodes": int(sum(g.num_nodes for g in self.graphs)), "skipped": self.skipped,
                "seconds": round(self.seconds, 1), "from_cache": self.from_cache}


def _sigma(text: str) -> tuple[float, str]:
    m = _NUMBER.match(str(text))
    if not m or not float(m.group(2)) > 0:
        raise ValueError(f"conductivity {text!r} is not a positive number")
    return float(np.log10(float(m.group(2)))), m.group(1) or ""


def _table(root: Path):
    import pandas as pd

    if not root.is_dir():
        raise DatasetError(f"OBELiX directory {str(root)!r} does not exist or is not a directory")
    csv = root / "all.csv"
    if not csv.is_file():
        raise DatasetError(f"OBELiX table {str(csv)!r} does not exist")
    df = pd.read_csv(csv, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    missing = [c for c in ("ID", SIGMA_COLUMN, "Cif ID") if c not in df.columns]
    if missing:
        raise DatasetError(f"OBELiX table {str(csv)!r} lacks column(s) {missing}")
    return csv, df[df["Cif ID"].str.strip() == "done"]


def obelix_pretrain_set(root: str | Path = DEFAULT_DIR, *, config=None, mobile_ion: str = "Li",
                        cache_dir: str | Path | None = DEFAULT_CACHE) -> PretrainSet:
    """Every OBELiX entry with a CIF, as a graph of ``config``'s settings (:class:`ml.models.gnn.GNNConfig`,
    default with the mobile-ion channel on) marking ``mobile_ion`` as the mobile ion."""
    import torch

    from ml.models.gnn import GNNConfig, structure_to_graph
    from ml.structures.cif import read_cif
    from ml.utils import sha256_of

    config = config or GNNConfig(mobile_channel=True)
    root = Path(root)
    csv, rows = _table(root)
    cif_dir = root / "cifs"
    if not cif_dir.is_dir():
        raise DatasetError(f"OBELiX CIF directory {str(cif_dir)!r} does not exist")
    kw = {**config.graph_kwargs(), "mobile_ion": mobile_ion}
    h = hashlib.sha256(json.dumps({"v": CACHE_VERSION, "csv": sha256_of(csv), "graph": kw,
                                   "cifs": sorted((p.name, p.stat().st_size) for p in cif_dir.glob("*.cif"))},
                                  sort_keys=True).encode()).hexdigest()
    cache = Path(cache_dir) / f"obelix-graphs-{h[:16]}.pt" if cache_dir is not None else None
    if cache is not None and cache.is_file():
        try:
            blob = torch.load(cache, weights_only=False)  # our own cache file (PyG Data objects), keyed by sha
            return PretrainSet(**{**blob, "from_cache": True})
        except Exception as exc:  # a stale or broken cache is rebuilt, never trusted
            log.warning("OBELiX graph cache %s unreadable (%s): rebuilding", cache, exc)
    t0 = time.perf_counter()
    graphs, y, upper, ids, formulas, skipped = [], [], [], [], [], {}
    for _, r in rows.iterrows():
        rid = r["ID"].strip()
        name = f"{rid}.cif"
        try:
            value, censor = _sigma(r[SIGMA_COLUMN])
        except ValueError as exc:
            skipped[name] = str(exc)
            continue
        if censor == ">":
            skipped[name] = f"conductivity {r[SIGMA_COLUMN]!r} is a lower bound (not used)"
            continue
        try:
            s = read_cif(cif_dir / name)
            g = structure_to_graph(s, **kw)
        except NacondError as exc:
            skipped[name] = str(exc)
            continue
        graphs.append(g)
        y.append(np.nan if censor == "<" else value)
        upper.append(value if censor == "<" else np.nan)
        ids.append(rid)
        formulas.append(s.composition.reduced_formula)
    if not graphs:
        raise DatasetError(f"no usable OBELiX structure in {str(root)!r} ({len(skipped)} skipped)")
    out = PretrainSet(graphs=graphs, y=np.array(y), upper=np.array(upper), ids=ids, formulas=formulas,
                      skipped=skipped, source=f"OBELiX {csv.name} + cifs/ ({root.name})", sha256=h,
                      seconds=time.perf_counter() - t0)
    for name, why in skipped.items():
        log.warning("OBELiX %s skipped: %s", name, why)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save({k: v for k, v in out.__dict__.items() if k != "from_cache"}, cache)
    return out
