"""Predictions from crystal structures with a trained GNN ensemble (``nacond train --model gnn``).

The GNN reads the structure itself (partial occupancies included). It answers for CIFs and pymatgen structures
directly, and for formulas through an *inferred* structure: the formula's parent structure type is guessed from
the labelled training compositions the model directory carries (``parents.json``, :mod:`ml.structures.infer`),
and the formula is placed on that parent's prototype. When no parent fits (too far from every labelled
composition, a parent type without a prototype, or a composition the prototype cannot hold), the composition
model the directory carries (``composition/``) answers instead; a GNN directory written before it carried one
falls back to the bundled default composition model. A valid formula never gets an error.

Every row says which model answered (``model_used`` = ``gnn`` or ``composition``), from which structure
(``structure_source`` = ``cif``, ``structure``, ``prototype:<key>`` or empty) and, for an inferred parent, how
likely the parent is right (``structure_confidence``). Rows have the columns of ``nacond predict --output``
(``serving.predictor.flat_row``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ml.errors import NacondError
from ml.structures.cif import check_size, read_cif
from ml.structures.infer import COMPOSITION_DIR, PARENTS_FILE

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


def _is_structure(x: Any) -> bool:
    return hasattr(x, "sites") and hasattr(x, "lattice")


def _is_cif_path(x: Any) -> bool:
    return isinstance(x, Path) or (isinstance(x, str) and x.strip().lower().endswith(".cif"))


class GNNPredictor:
    """A loaded GNN ensemble; ``predict_many`` takes CIF paths, pymatgen structures, formulas or compositions."""

    def __init__(self, ensemble, source: str, parents=None, composition=None):
        self.ensemble = ensemble
        self.source = source
        self.domain = ensemble.meta.get("training_domain", {})
        self.parents = parents  # ml.structures.infer.ParentIndex or None
        self._composition = composition  # serving.predictor.Predictor, loaded on first use
        self.composition_source = (str(Path(source) / COMPOSITION_DIR)
                                   if (Path(source) / COMPOSITION_DIR).is_dir() else None)

    @classmethod
    def load(cls, path: str | Path) -> GNNPredictor:
        from ml.models.gnn import GNNEnsemble
        from ml.structures.infer import ParentIndex

        ens = GNNEnsemble.load(path)  # verifies the manifest of the whole directory
        parents = ParentIndex.load(Path(path) / PARENTS_FILE) if (Path(path) / PARENTS_FILE).is_file() else None
        return cls(ens, str(path), parents=parents)

    @property
    def composition(self):
        """The composition model that answers formulas without a fitting parent (loaded on first use)."""
        if self._composition is None:
            from serving.predictor import Predictor

            if self.composition_source is not None:
                self._composition = Predictor.load(self.composition_source)
            else:
                log.warning("GNN model %s carries no composition model; the bundled default answers formulas "
                            "without a fitting parent structure", self.source)
                self._composition = Predictor.load(None)
        return self._composition

    def _structure(self, x: Any):
        if _is_cif_path(x):
            return read_cif(Path(x)), "cif"
        if _is_structure(x):
            return check_size(x, f"structure {x.composition.reduced_formula}"), "structure"
        raise NacondError(f"cannot predict for {str(x)[:80]!r} of type {type(x).__name__}: give a formula, a CIF "
                          "path or a pymatgen Structure/Composition")

    def infer(self, formula: str):
        """The inferred parent of ``formula`` (:class:`ml.structures.infer.InferredStructure`), or None when this
        model carries no reference compositions."""
        return None if self.parents is None else self.parents.infer(formula)

    def predict_many(self, items: list, on_error: str = "warn") -> list[dict]:
        """One flat row per item. Formulas go through an inferred structure when one fits, else through the
        composition model; a bad item gives a row with ``error`` (or raises with ``on_error="raise"``)."""
        from ml.models.gnn import GraphError, structure_to_graph
        from serving.predictor import to_formula

        if on_error not in ("raise", "warn", "skip"):
            raise ValueError(f"on_error must be 'raise', 'warn' or 'skip', not {on_error!r}")
        cfg = self.ensemble.config
        out: list[dict | None] = [None] * len(items)
        graphs, gnn_rows = [], []  # rows answered by the GNN, with their graph
        comp_idx, comp_formulas, comp_notes = [], [], []
        for i, x in enumerate(items):
            try:
                if _is_cif_path(x) or _is_structure(x):
                    s, source = self._structure(x)
                    g = structure_to_graph(s, **cfg.graph_kwargs())
                    graphs.append(g)
                    gnn_rows.append((i, {"formula": s.composition.reduced_composition.formula.replace(" ", ""),
                                         "structure_source": source, "structure_confidence": None,
                                         "_s": s, "_notes": []}))
                    continue
                formula = to_formula(x, allow_paths=False)
            except NacondError as exc:
                if on_error == "raise":
                    raise
                if on_error == "warn":
                    log.warning("item %d: %s", i, exc)
                out[i] = {"error": str(exc)}
                continue
            inferred = self.infer(formula)
            why = "this model carries no reference compositions" if inferred is None else inferred.reason
            if inferred is not None and inferred.ok:
                try:
                    g = structure_to_graph(inferred.mapped.structure, **cfg.graph_kwargs())
                except GraphError as exc:
                    why = f"inferred structure unusable: {exc}"
                else:
                    guess = inferred.guess
                    graphs.append(g)
                    gnn_rows.append((i, {
                        "formula": formula, "structure_source": f"prototype:{inferred.mapped.prototype}",
                        "structure_confidence": round(guess.confidence, 4), "_s": inferred.mapped.structure,
                        "_notes": [f"structure inferred: parent {guess.structure_type} ({guess.family}) via "
                                   f"{guess.neighbour}, distance {guess.distance:.3f}, confidence "
                                   f"{guess.confidence:.2f}"]}))
                    continue
            comp_idx.append(i)
            comp_formulas.append(formula)
            comp_notes.append(f"no structure: {why}; composition model answered")
        if graphs:
            pred = self.ensemble.predict(graphs)
            base = self._base_rows([r["formula"] for _, r in gnn_rows]) if self.residual else None
            for j, (i, r) in enumerate(gnn_rows):
                out[i] = self._gnn_row(r, pred, j) if base is None else self._residual_row(r, pred, j, base[j])
        if comp_formulas:
            results = self.composition.predict_many(comp_formulas, on_error="raise")
            for i, res, note in zip(comp_idx, results, comp_notes, strict=True):
                row = res.to_row()
                row["domain_notes"] = "; ".join(n for n in (row["domain_notes"], note) if n)
                row.update(model_used="composition", structure_source="", structure_confidence=None)
                out[i] = row
        return out  # type: ignore[return-value]

    @property
    def residual(self) -> bool:
        """True when the GNN learned corrections to the composition model (``GNNConfig.residual``)."""
        return bool(getattr(self.ensemble.config, "residual", False))

    @property
    def _weights_note(self) -> str:
        w = self.ensemble.shrink
        note = f"residual GNN: composition model + GNN correction weighted {w[0]:.2f} (sigma) / {w[1]:.2f} (Ea)"
        if not w.any():
            note += " (its corrections were not supported out of bag: the values are the composition model's)"
        return note

    def _base_rows(self, formulas: list[str]) -> list[dict]:
        """The composition model's rows for the formulas a residual GNN corrects (a formula it cannot featurize
        gives a row with ``error``)."""
        return [r.to_row() for r in self.composition.predict_many(formulas, on_error="warn")]

    def _residual_row(self, r: dict, pred: dict, j: int, base: dict) -> dict:
        """Composition model's row + the GNN's correction (point and bounds), with both models' domain notes."""
        if base.get("error"):
            r.pop("_s")
            return {"error": f"{r['formula']}: the composition model this residual GNN corrects failed: "
                             f"{base['error']}"}
        row = self._gnn_row(r, pred, j)
        corr = {"log10_sigma_S_cm": row["log10_sigma_S_cm"], "ea_eV": row["ea_eV"]}
        out = dict(base)
        ls = base["log10_sigma_S_cm"] + corr["log10_sigma_S_cm"]
        out.update(
            log10_sigma_S_cm=ls, sigma_S_cm=10 ** ls,
            # the composition model's interval (calibrated on its own errors, per composition) moved by the
            # correction, as in ml.models.gnn.add_base
            log10_sigma_lo=base["log10_sigma_lo"] + corr["log10_sigma_S_cm"],
            log10_sigma_hi=base["log10_sigma_hi"] + corr["log10_sigma_S_cm"],
            ea_eV=base["ea_eV"] + corr["ea_eV"], ea_lo_eV=base["ea_lo_eV"] + corr["ea_eV"],
            ea_hi_eV=base["ea_hi_eV"] + corr["ea_eV"],
            ensemble_spread_log10_sigma=row["ensemble_spread_log10_sigma"],
            gnn_correction_log10_sigma=corr["log10_sigma_S_cm"], gnn_correction_ea_eV=corr["ea_eV"],
            in_domain=bool(base["in_domain"]) and row["in_domain"],
            domain_notes="; ".join(n for n in (base["domain_notes"], row["domain_notes"], self._weights_note) if n),
            model_used="gnn", structure_source=row["structure_source"],
            structure_confidence=row["structure_confidence"])
        return out

    def _gnn_row(self, r: dict, pred: dict, j: int) -> dict:
        s = r.pop("_s")
        notes = self._domain_notes(s)
        ls = float(pred["log10_sigma_S_cm"][j])
        return {
            "formula": r["formula"], "temperature_K": 298.15, "log10_sigma_S_cm": ls,
            "sigma_S_cm": 10 ** ls, "log10_sigma_lo": float(pred["log10_sigma_S_cm_lo"][j]),
            "log10_sigma_hi": float(pred["log10_sigma_S_cm_hi"][j]), "ea_eV": float(pred["ea_eV"][j]),
            "ea_lo_eV": float(pred["ea_eV_lo"][j]), "ea_hi_eV": float(pred["ea_eV_hi"][j]),
            "ensemble_spread_log10_sigma": float(pred["log10_sigma_S_cm_spread"][j]),
            "in_domain": not notes, "domain_notes": "; ".join(notes + r["_notes"]), "neighbours": "",
            "model_used": "gnn", "structure_source": r["structure_source"],
            "structure_confidence": r["structure_confidence"], "error": "",
        }

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
