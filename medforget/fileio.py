"""Atomic, no-clobber file writing, and reading the config documents users hand in.

A hospital must never lose a model or find a half-written one: every output is
written to a temporary file in the destination folder, flushed to disk, then
moved into place in one step. Without ``force`` the move refuses to replace an
existing file, and the check is made atomically by the filesystem (``os.link``)
rather than by a racy ``exists()`` test.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medforget.errors import MedforgetError


def check_writable(path: Path, force: bool) -> None:
    """Fail early, before any expensive work, if ``path`` exists and may not be replaced."""
    if path.exists() and not force:
        raise MedforgetError(f"{path} already exists; pass --force to replace it")
    if not path.parent.exists():
        raise MedforgetError(f"folder {path.parent} does not exist")


@contextlib.contextmanager
def atomic_path(path: Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path; on success move it to ``path`` atomically, else remove it."""
    path = Path(path)
    check_writable(path, force)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if path appeared meanwhile: never clobber
            except FileExistsError:
                raise MedforgetError(f"{path} already exists; pass --force to replace it") from None
            except OSError:  # filesystems without hard links
                if path.exists():
                    raise MedforgetError(f"{path} already exists; pass --force to replace it") from None
                os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def md5_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def cache_dir() -> Path:
    """Where medforget keeps verified-file facts and retrain baselines (``MEDFORGET_CACHE_DIR``)."""
    root = os.environ.get("MEDFORGET_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "medforget"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_document(path: Path, what: str) -> Any:
    """Parse a JSON, TOML or YAML file (chosen by suffix; JSON otherwise).

    Any problem (unreadable file, syntax error) becomes one line naming ``what`` and the file.
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise MedforgetError(f"cannot read {what} {path}: {exc.strerror}") from None
    kind = {".toml": "TOML", ".yaml": "YAML", ".yml": "YAML"}.get(path.suffix.lower(), "JSON")
    try:
        if kind == "TOML":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            return tomllib.loads(text)
        if kind == "YAML":
            import yaml

            try:
                return yaml.safe_load(text)
            except yaml.YAMLError as exc:  # not a ValueError: normalise it
                raise ValueError(str(exc)) from None
        return json.loads(text)
    except ValueError as exc:
        raise MedforgetError(f"{what} {path} is not valid {kind}: {exc}".replace("\n", " ")) from None
