"""Parent crystal structures, built with pymatgen from cited crystallographic facts.

Each prototype in ``prototypes.json`` carries its space group, lattice parameters, the asymmetric unit (element
or partial-occupancy dict, Wyckoff letter, fractional coordinates) and its source (DOI, COD id or Materials
Project id, and where the facts were read). :func:`get_prototype` builds the structure with
``Structure.from_spacegroup`` and caches it; it is reduced to its primitive cell when that is smaller.

``SHARED_FRAMEWORKS`` lets a dataset ``structure_type`` without its own prototype use one of the same framework
(Na3SbS4 on Na3PS4's sites); the mapping step substitutes the elements (see :mod:`ml.structures.mapping`).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from ml.errors import NacondError

# Dataset structure_type keys that share one parent framework (other elements on the same sites): a key
# without a prototype of its own uses the first key of its group that has one.
# nasicon_C2c is a small monoclinic distortion of the same NASICON framework; until a
# C2/c refinement is in the library its entries sit on the rhombohedral parent (docs/structures.md).
SHARED_FRAMEWORKS: tuple[tuple[str, ...], ...] = (
    ("nasicon_R-3c", "nasicon_C2c", "nasicon"),  # "nasicon": the framework, polymorph not stated
    ("Na3PS4_cubic", "Na3SbS4_cubic", "Na3AsS4_cubic", "Na3PSe4_cubic"),
    ("Na3PS4_tetragonal", "Na3SbS4_tetragonal"),
    ("Na11Sn2PS12", "Na11Sn2PSe12"),
    ("antiperovskite_Pm-3m", "Na3SO4F_antiperovskite"),
    ("beta2_alumina", "beta_alumina"),
    # carba-closo-borates (CB11H12-, CB9H10-) pack like the closo-borates: C takes a cage B site
    ("closo_borate", "carba_closo_borate"),
)


class PrototypeError(NacondError):
    """An unknown structure type, or a prototype whose facts do not build a sensible structure."""


@dataclass(frozen=True)
class Prototype:
    """Crystallographic facts of one parent structure and their source."""

    key: str
    formula: str
    space_group: str
    lattice: dict[str, float]
    sites: tuple[dict, ...]
    source: dict = field(default_factory=dict)

    def build(self):
        """The conventional cell as a (possibly disordered) pymatgen ``Structure``."""
        from pymatgen.core import Lattice, Structure

        lat = Lattice.from_parameters(*(float(self.lattice[k]) for k in ("a", "b", "c", "alpha", "beta", "gamma")))
        species = [s["species"] if isinstance(s["species"], str) else dict(s["species"]) for s in self.sites]
        coords = [[float(v) for v in s["xyz"]] for s in self.sites]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Structure.from_spacegroup(self.space_group, lat, species, coords, tol=1e-3)


@cache
def _table() -> dict[str, Prototype]:
    raw = json.loads(resources.files("ml.structures").joinpath("prototypes.json").read_text(encoding="utf-8"))
    out = {}
    for p in raw["prototypes"]:
        out[p["key"]] = Prototype(key=p["key"], formula=p["formula"], space_group=p["space_group"],
                                  lattice=dict(p["lattice"]), sites=tuple(p["sites"]), source=dict(p["source"]))
    return out


def prototype_keys() -> tuple[str, ...]:
    return tuple(sorted(_table()))



def resolve_key(structure_type: str) -> str | None:
    """The prototype key for a dataset ``structure_type`` (its own, or a shared framework's), or None."""
    table = _table()
    if structure_type in table:
        return structure_type
    for group in SHARED_FRAMEWORKS:
        if structure_type in group:
            return next((k for k in group if k in table), None)
    return None


def get_prototype(key: str) -> Prototype:
    k = resolve_key(key)
    if k is None:
        raise PrototypeError(f"no prototype for structure type {key!r}; known: {', '.join(prototype_keys())}")
    return _table()[k]


@cache
def parent_structure(key: str):
    """The parent structure of ``key`` (primitive cell when smaller), cached; callers must copy before editing."""
    s = get_prototype(key).build()
    try:
        prim = s.get_primitive_structure(tolerance=0.05)
        if len(prim) < len(s):
            s = prim
    except Exception:  # noqa: BLE001 - the conventional cell is always a valid fallback
        pass
    return s
