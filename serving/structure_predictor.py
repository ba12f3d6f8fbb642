"""Predictions from crystal structures with a trained GNN ensemble (``nacond train --model gnn``).

The GNN reads the structure itself (partial occupancies included), so it answers for CIFs and pymatgen
structures; a bare formula has no structure and is refused with a hint (the composition model answers those).
Rows have the columns of ``nacond predict --output`` (``serving.predictor.flat_row``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ml.errors import NacondError
from ml.structures.cif import check_size, read_cif

log = logging.getLogger(__name__)


def is_gnn_model(path: str | Path | None) -> bool:
    """True when ``path`` is a directory holding a GNN ensemble."""
    if path is None:
        return False
    p = Path(path) / "model.json"
    try:
        return p.exists() and json.loads(p.read_text()).get("class") == "GNNEnsemble"
    except (OSError, json.JSONDecodeError):
        return False


class GNNPredictor:
    """A loaded GNN ensemble; ``predict_many`` takes CIF paths or pymatgen structures."""

    def __init__(self, ensemble, source: str):
        self.ensemble = ensemble
        self.source = source
        self.domain = ensemble.meta.get("training_domain", {})

    @classmethod
    def load(cls, path: str | Path) -> GNNPredictor:
        from ml.models.gnn import GNNEnsemble

        return cls(GNNEnsemble.load(path), str(path))

    def _structure(self, x: Any):
        if isinstance(x, Path) or (isinstance(x, str) and x.strip().lower().endswith(".cif")):
            return read_cif(Path(x))
        if hasattr(x, "sites") and hasattr(x, "lattice"):
            return check_size(x, f"structure {x.composition.reduced_formula}")
        raise NacondError(f"the GNN model predicts from crystal structures; {str(x)[:80]!r} is not a CIF path or "
                          "a pymatgen Structure (use the composition model for formulas)")

    def predict_many(self, items: list, on_error: str = "warn") -> list[dict]:
        from ml.models.gnn import structure_to_graph

        cfg = self.ensemble.config
        graphs, rows, ok = [], [], []
        for x in items:
            try:
                s = self._structure(x)
                graphs.append(structure_to_graph(s, cutoff=cfg.cutoff, max_neighbors=cfg.max_neighbors,
                                                 n_rbf=cfg.n_rbf))
                rows.append({"formula": s.composition.reduced_composition.formula.replace(" ", ""), "_s": s})
                ok.append(True)
            except NacondError as exc:
                if on_error == "raise":
                    raise
                rows.append({"error": str(exc)})
                ok.append(False)
        pred = self.ensemble.predict(graphs) if graphs else {}
        j = 0
        out = []
        for r, good in zip(rows, ok, strict=True):
            if not good:
                out.append(r)
                continue
            s = r.pop("_s")
            notes = self._domain_notes(s)
            ls = float(pred["log10_sigma_S_cm"][j])
            out.append({
                "formula": r["formula"], "temperature_K": 298.15, "log10_sigma_S_cm": ls,
                "sigma_S_cm": 10 ** ls, "log10_sigma_lo": float(pred["log10_sigma_S_cm_lo"][j]),
                "log10_sigma_hi": float(pred["log10_sigma_S_cm_hi"][j]), "ea_eV": float(pred["ea_eV"][j]),
                "ea_lo_eV": float(pred["ea_eV_lo"][j]), "ea_hi_eV": float(pred["ea_eV_hi"][j]),
                "ensemble_spread_log10_sigma": float(pred["log10_sigma_S_cm_spread"][j]),
                "in_domain": not notes, "domain_notes": "; ".join(notes), "neighbours": "", "error": "",
            })
            j += 1
        return out

    def _domain_notes(self, s) -> list[str]:
        notes = []
        known = set(self.domain.get("elements", []))
        new = sorted(set(s.composition.get_el_amt_dict()) - known) if known else []
        if new:
            notes.append(f"elements never seen in training: {', '.join(new)}")
        sgs = set(self.domain.get("spacegroups", []))
        if sgs:
            try:
                sg = s.get_space_group_info(symprec=0.1)[1]
            except Exception:  # noqa: BLE001 - symmetry is advisory here
                sg = None
            if sg is not None and sg not in sgs:
                notes.append(f"space group {sg} not among the training structures' {sorted(sgs)}")
        return notes

