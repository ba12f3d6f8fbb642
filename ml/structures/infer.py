"""Formula -> parent structure type: the nearest labelled composition by element-role pattern.

A new formula has no structure. Its parent (family + dataset ``structure_type``) is guessed from the labelled
compositions of the dataset by a nearest-neighbour rule on two composition fingerprints:

* **element fractions** (atomic fractions of each element), which reward exact chemistry, and
* **role fractions**, the same atoms grouped by crystal-chemical role: the mobile ion; each anion by itself
  (``X:O``, ``X:S``, ``X:Cl``, ...); the B/C/H/N skeleton of hydride cages as one ``cage`` role; every other cation
  by its rule oxidation state and Shannon-radius class (``M4m`` = 4+, 0.45-0.80 A, e.g. Zr, Hf, Sn, Ti), so an
  isovalent substitution of similar size (Sc/In on Zr, Sm on La) keeps the pattern.

``distance = L1(role fractions) + 0.5 * L1(element fractions)`` (0 = same composition, at most 3). The type of
the nearest reference is the guess. ``confidence`` is the leave-one-out probability that a guess at that
distance names the right framework, a logistic curve ``1 / (1 + exp((d - CONF_D50) / CONF_SCALE))`` fitted by
leave-one-out on the dataset (0.94 measured where it says >= 0.9, 0.17 where it says < 0.5; docs/structures.md).
The softmax margin over structure types was tried as the confidence and was not informative. A guess is *used*
only when its confidence is at least 0.5 (distance <= ``MAX_DISTANCE``), its type has a prototype, and the
formula maps onto that prototype within the mapping tolerance
(:data:`ml.structures.mapping.MAX_COMPOSITION_ERROR`); otherwise the reason is returned and callers fall back to
a composition model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ml.chemistry import anions_of, cation_state, has_hydride_cage, ionic_radius
from ml.errors import NacondError
from ml.formula import parse_formula
from ml.structures.prototypes import SHARED_FRAMEWORKS, resolve_key

MOBILE = "Na"
ELEMENT_WEIGHT = 0.5
# P(framework right | distance), logistic fit by leave-one-out on the 223 crystalline dataset compositions
CONF_D50, CONF_SCALE = 0.30, 0.095
MAX_DISTANCE = CONF_D50  # confidence >= 0.5
FORMAT_VERSION = 1
# where a GNN model directory keeps its reference compositions and its composition model
PARENTS_FILE = "parents.json"
COMPOSITION_DIR = "composition"

# dataset structure types that describe no single crystal structure
NON_CRYSTALLINE = frozenset({"unknown", "chloride_heterostructure", ""})
NON_CRYSTALLINE_PREFIXES = ("glass_", "amorphous")


class InferenceError(NacondError):
    """A reference set that cannot be built or read."""


def is_crystalline(structure_type: str) -> bool:
    """False for 'unknown', glasses, amorphous phases and composites: types that name no crystal structure."""
    st = str(structure_type)
    return st not in NON_CRYSTALLINE and not st.startswith(NON_CRYSTALLINE_PREFIXES)


def framework(structure_type: str) -> str:
    """The framework a structure type belongs to: its prototype key, else its SHARED_FRAMEWORKS group's first
    member, else itself (nasicon, nasicon_C2c and nasicon_R-3c are one framework)."""
    key = resolve_key(structure_type)
    if key is not None:
        return key
    for group in SHARED_FRAMEWORKS:
        if structure_type in group:
            return group[0]
    return structure_type


def confidence_of(distance):
    """Leave-one-out probability that the nearest-parent guess at ``distance`` names the right framework."""
    return 1.0 / (1.0 + np.exp((np.asarray(distance, dtype=float) - CONF_D50) / CONF_SCALE))


def _size_class(radius: float) -> str:
    return "s" if radius < 0.45 else ("m" if radius < 0.80 else "l")


def roles_of(amounts: dict[str, float], mobile_ion: str = MOBILE) -> dict[str, float]:
    """Atoms per crystal-chemical role (see the module docstring), as fractions summing to 1."""
    anions = anions_of(amounts)
    cage = has_hydride_cage(amounts)
    out: dict[str, float] = {}
    for el, amt in amounts.items():
        if amt <= 0:
            continue
        if el == mobile_ion:
            role = mobile_ion
        elif el in anions:
            role = f"X:{el}"
        elif cage and el in ("B", "C", "H", "N"):
            role = "cage"
        else:
            q = cation_state(el)
            role = f"M{q}{_size_class(ionic_radius(el, q) if q else 0.0)}"
        out[role] = out.get(role, 0.0) + amt
    total = sum(out.values())
    return {k: v / total for k, v in out.items()}


def _fractions(amounts: dict[str, float]) -> dict[str, float]:
    total = sum(v for v in amounts.values() if v > 0)
    return {k: v / total for k, v in amounts.items() if v > 0}


def _l1(a: dict[str, float], b: dict[str, float]) -> float:
    return float(sum(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in set(a) | set(b)))


@dataclass(frozen=True)
class ParentGuess:
    """The guessed parent of one formula and how sure the guess is."""

    structure_type: str
    prototype: str | None  # the prototype key that builds it (None: the type has no prototype yet)
    family: str
    distance: float  # fingerprint distance to the nearest labelled composition of this type
    confidence: float  # leave-one-out probability that a guess at this distance is the right framework
    neighbour: str  # that nearest labelled composition
    runner_up: str | None = None  # the next-nearest structure type
    runner_up_distance: float | None = None


@dataclass
class InferredStructure:
    """A formula's inferred parent and, when it fits, its structure on that parent."""

    formula: str
    guess: ParentGuess | None
    mapped: object | None = None  # ml.structures.mapping.MappedStructure
    reason: str = ""  # why no structure (empty when ``mapped`` is set)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.mapped is not None


class ParentIndex:
    """Labelled reference compositions (formula, structure type, family) and the nearest-parent rule."""

    def __init__(self, formulas: Sequence[str], structure_types: Sequence[str], families: Sequence[str],
                 *, mobile_ion: str = MOBILE):
        keep = [i for i, st in enumerate(structure_types) if is_crystalline(st)]
        if not keep:
            raise InferenceError("no reference composition has a crystalline structure type")
        self.mobile_ion = mobile_ion
        self.formulas = [str(formulas[i]) for i in keep]
        self.types = [str(structure_types[i]) for i in keep]
        self.families = [str(families[i]) for i in keep]
        amounts = [parse_formula(f).get_el_amt_dict() for f in self.formulas]
        self._el = [_fractions(a) for a in amounts]
        self._roles = [roles_of(a, mobile_ion) for a in amounts]

    # ------------------------------------------------------------------------------------------ build/io
    @classmethod
    def from_frame(cls, frame, mobile_ion: str = MOBILE) -> ParentIndex:
        """From a per-composition frame (``formula``, ``structure_type``, ``family`` columns)."""
        missing = [c for c in ("formula", "structure_type", "family") if c not in frame]
        if missing:
            raise InferenceError(f"reference frame lacks column(s) {', '.join(missing)}")
        return cls(frame["formula"].tolist(), frame["structure_type"].astype(str).tolist(),
                   frame["family"].astype(str).tolist(), mobile_ion=mobile_ion)

    def to_dict(self) -> dict:
        return {"format_version": FORMAT_VERSION, "mobile_ion": self.mobile_ion, "formulas": self.formulas,
                "structure_types": self.types, "families": self.families,
                "rule": {"element_weight": ELEMENT_WEIGHT, "conf_d50": CONF_D50, "conf_scale": CONF_SCALE,
                         "max_distance": MAX_DISTANCE}}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> ParentIndex:
        try:
            d = json.loads(Path(path).read_text())
            if d.get("format_version") != FORMAT_VERSION:
                raise InferenceError(f"parent index {str(path)!r} has format {d.get('format_version')}, "
                                     f"this nacond reads {FORMAT_VERSION}")
            return cls(d["formulas"], d["structure_types"], d["families"], mobile_ion=d.get("mobile_ion", MOBILE))
        except InferenceError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InferenceError(f"parent index {str(path)!r} cannot be read: {exc}") from None

    # ------------------------------------------------------------------------------------------- the rule
    def distances(self, formula: str) -> np.ndarray:
        """Fingerprint distance of ``formula`` to every reference composition."""
        amounts = parse_formula(formula).get_el_amt_dict()
        el, ro = _fractions(amounts), roles_of(amounts, self.mobile_ion)
        return np.array([_l1(ro, r) + ELEMENT_WEIGHT * _l1(el, e) for r, e in zip(self._roles, self._el,
                                                                                   strict=True)])

    def rank(self, formula: str, *, exclude: set[int] | None = None) -> list[ParentGuess]:
        """Every structure type with its nearest reference, nearest first (``exclude``: reference indices to
        ignore, for leave-one-out)."""
        d = self.distances(formula)
        best: dict[str, int] = {}
        for i, st in enumerate(self.types):
            if exclude and i in exclude:
                continue
            if st not in best or d[i] < d[best[st]]:
                best[st] = i
        if not best:
            return []
        order = sorted(best, key=lambda st: (d[best[st]], st))
        dist = np.array([d[best[st]] for st in order])
        conf = confidence_of(dist)
        out = []
        for k, st in enumerate(order):
            nxt = order[k + 1] if k + 1 < len(order) else (order[0] if k else None)
            out.append(ParentGuess(structure_type=st, prototype=resolve_key(st), family=self.families[best[st]],
                                   distance=float(dist[k]), confidence=float(conf[k]),
                                   neighbour=self.formulas[best[st]], runner_up=nxt,
                                   runner_up_distance=None if nxt is None else float(d[best[nxt]])))
        return out

    def guess(self, formula: str) -> ParentGuess | None:
        ranked = self.rank(formula)
        return ranked[0] if ranked else None

    def infer(self, formula: str, *, max_distance: float = MAX_DISTANCE, max_error: float | None = None
              ) -> InferredStructure:
        """The formula's parent and its structure on it, or the reason there is none (never raises for a
        formula that parses; a formula that does not parse raises InvalidFormulaError)."""
        from ml.structures.mapping import MAX_COMPOSITION_ERROR, MappingError, structure_for

        max_error = MAX_COMPOSITION_ERROR if max_error is None else max_error
        g = self.guess(formula)
        if g is None:
            return InferredStructure(formula, None, reason="no labelled reference composition")
        if g.distance > max_distance:
            return InferredStructure(formula, g, reason=f"nearest labelled composition {g.neighbour} "
                                     f"({g.structure_type}) is at distance {g.distance:.2f} > {max_distance}")
        if g.prototype is None:
            return InferredStructure(formula, g, reason=f"nearest parent type {g.structure_type} (via "
                                     f"{g.neighbour}) has no prototype yet")
        try:
            m = structure_for(formula, g.structure_type)
        except MappingError as exc:
            return InferredStructure(formula, g, reason=str(exc))
        if m.composition_error > max_error:
            return InferredStructure(formula, g, reason=f"{formula} does not fit {m.prototype} (composition "
                                     f"error {m.composition_error:.3f} > {max_error})")
        return InferredStructure(formula, g, mapped=m, notes=list(m.notes))


def leave_one_out(index: ParentIndex, *, max_distance: float = MAX_DISTANCE) -> dict:
    """Leave-one-out accuracy of the nearest-parent rule on the index's own compositions.

    Each reference composition is predicted from all others (its own row left out; references are one per
    reduced composition). Reports top-1 accuracy on the dataset ``structure_type`` and on the framework
    (:func:`framework`), the share guessed within ``max_distance`` and the accuracy there, and the accuracy per
    confidence band.
    """
    from collections import Counter

    members = Counter(index.types)
    rows = []
    for i, f in enumerate(index.formulas):
        ranked = index.rank(f, exclude={i})
        if not ranked:
            continue
        g = ranked[0]
        rows.append((index.types[i], g.structure_type, g.distance, g.confidence))
    n = len(rows)
    exact = np.array([t == p for t, p, _, _ in rows])
    frame = np.array([framework(t) == framework(p) for t, p, _, _ in rows])
    near = np.array([d <= max_distance for _, _, d, _ in rows])
    conf = np.array([c for *_, c in rows])
    multi = np.array([members[t] > 1 for t, *_ in rows])
    bands = {}
    for lo, hi in ((0.0, 0.5), (0.5, 0.8), (0.8, 0.9), (0.9, 1.01)):
        m = (conf >= lo) & (conf < hi)
        bands[f"{lo:.1f}-{min(hi, 1.0):.1f}"] = {"n": int(m.sum()),
                                                 "framework_accuracy": float(frame[m].mean()) if m.any() else None}
    return {"n": n, "types": len(set(index.types)), "accuracy_structure_type": float(exact.mean()),
            "accuracy_framework": float(frame.mean()),
            "n_in_types_with_2_or_more": int(multi.sum()),
            "accuracy_framework_types_with_2_or_more": float(frame[multi].mean()) if multi.any() else None,
            "max_distance": max_distance,
            "within_max_distance": float(near.mean()),
            "accuracy_framework_within": float(frame[near].mean()) if near.any() else None,
            "accuracy_structure_type_within": float(exact[near].mean()) if near.any() else None,
            "by_confidence": bands}


def guess_to_dict(g: ParentGuess | None) -> dict | None:
    return None if g is None else asdict(g)
