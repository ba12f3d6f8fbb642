"""Domain errors raised at nacond's input boundary.

All are ``ValueError`` subclasses so callers that already catch ``ValueError`` keep working; every message
names the offending input and gives a hint.
"""

from __future__ import annotations


class NacondError(ValueError):
    """Base class of nacond's input errors."""


class InvalidFormulaError(NacondError):
    """A chemical formula that cannot be read as a composition."""


class UnsupportedElementError(NacondError):
    """A formula that parses but contains something that is not a real element (e.g. ``Xx``)."""


class StructureParseError(NacondError):
    """A CIF or structure that cannot be read."""


class DatasetError(NacondError):
    """A dataset file that cannot be used (missing file, missing columns, bad checksum)."""


class ModelLoadError(NacondError):
    """A model directory that is missing, corrupted, changed after training or of another format version."""


class OutputDirError(NacondError):
    """An output path nacond refuses to write (a folder holding something else, a directory given as a file)."""
