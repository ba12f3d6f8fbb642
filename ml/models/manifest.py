"""One checksum manifest per model directory: every file, written last, checked first.

``MANIFEST.json`` lists the sha256 of every file under the model directory (sub-models such as ``arrhenius/``
included). Loading requires it, refuses any file that is missing, changed or not listed, and so cannot be
switched off by editing ``model.json``. Model directories are written into a temporary sibling and renamed into
place (:func:`staged_dir`), so an interrupted write never leaves old and new files mixed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ml.errors import ModelLoadError, OutputDirError
from ml.utils import sha256_of

MANIFEST = "MANIFEST.json"
MARKERS = ("model.json", MANIFEST)


def _files(root: Path) -> list[str]:
    """Every file under ``root`` but its own manifest (a sub-model's manifest is an ordinary file here)."""
    own = root / MANIFEST
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p != own)


def write_manifest(root: str | Path) -> Path:
    root = Path(root)
    files = {f: sha256_of(root / f) for f in _files(root)}
    path = root / MANIFEST
    path.write_text(json.dumps({"algorithm": "sha256", "files": files}, indent=1) + "\n")
    return path


def find_root(directory: str | Path) -> Path:
    d = Path(directory)
    if not d.is_dir():
        raise ModelLoadError(f"model directory {str(d)!r} does not exist")
    if (d / MANIFEST).is_file():
        return d
    raise ModelLoadError(f"model directory {str(d)!r} has no {MANIFEST}: not a complete nacond model (written "
                         "by an older nacond or interrupted); retrain it")


def verify_manifest(directory: str | Path, require: str = "model.json") -> Path:
    """Check every file under ``directory`` against its manifest; return the directory. Raises ModelLoadError."""
    root = find_root(directory)
    try:
        info = json.loads((root / MANIFEST).read_text())
        listed = dict(info["files"])
        if set(info) != {"algorithm", "files"} or info["algorithm"] != "sha256":
            raise ValueError("unexpected keys or algorithm")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"model {str(root)!r}: {MANIFEST} is unreadable ({exc})") from None
    present = set(_files(root))
    missing = sorted(set(listed) - present)
    extra = sorted(present - set(listed))
    if missing:
        raise ModelLoadError(f"model {str(root)!r}: {missing[0]} is listed in {MANIFEST} but missing")
    if extra:
        raise ModelLoadError(f"model {str(root)!r}: {extra[0]} is not in {MANIFEST} (added after training?)")
    for name, digest in listed.items():
        if sha256_of(root / name) != digest:
            raise ModelLoadError(f"model {str(root)!r}: {name} does not match its checksum in {MANIFEST} "
                                 "(changed after training)")
    if not (root / require).is_file():
        raise ModelLoadError(f"model {str(root)!r} has no {require}")
    return root


def is_model_dir(path: Path) -> bool:
    return any((path / m).is_file() for m in MARKERS)


def check_output_dir(out: str | Path, force: bool = False) -> Path:
    """Refuse to replace a folder that is not a nacond model (unless ``force``)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"--out {str(out)!r} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not is_model_dir(out) and not force:
        raise OutputDirError(f"--out {str(out)!r} holds files that are not a nacond model; choose another folder "
                             "or pass --force to replace it")
    return out


@contextmanager
def staged_dir(out: str | Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``out`` to write a model into; on success write the manifest and rename it
    into place (the old model, if any, is replaced whole); on failure remove it and leave ``out`` untouched."""
    out = check_output_dir(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; a model directory is an ordinary folder
    try:
        yield tmp
        write_manifest(tmp)
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
