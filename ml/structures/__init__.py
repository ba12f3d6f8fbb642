"""Crystal structures: cited parent prototypes, composition -> disordered structure, user CIFs.

* :mod:`ml.structures.prototypes`: the parent structure of each dataset ``structure_type``, built with pymatgen
  from crystallographic facts (space group, lattice, Wyckoff sites, occupancies) whose sources sit beside them in
  ``prototypes.json``.
* :mod:`ml.structures.mapping`: a composition placed on its parent with partial occupancies that reproduce it.
* :mod:`ml.structures.cif`: user CIFs (partial occupancies and vacancies allowed) into the same representation.
* :mod:`ml.structures.infer`: a new formula's parent structure type, guessed from labelled compositions, with a
  confidence (formula -> structure for GNN models).
"""

from ml.structures.cif import read_cif
from ml.structures.mapping import MappedStructure, structure_for
from ml.structures.prototypes import Prototype, get_prototype, prototype_keys

__all__ = ["MappedStructure", "Prototype", "get_prototype", "prototype_keys", "read_cif", "structure_for"]
