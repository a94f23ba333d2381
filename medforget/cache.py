"""One content-addressed cache for the models medforget would otherwise train twice.

Training is the expensive step of everything medforget does, and the same training run is
asked for again and again: every method judged on one request needs the same retrains, every
study and benchmark on one dataset needs the same original model. Each such model is stored
under a key computed from *everything that determines it* and nothing else:

* ``originals/<key>``: the data specification and the training recipe;
* ``baselines/<key>``: the recipe with the retrain's own seed, the training data's fingerprint
  and exactly which training samples remain.

A key never depends on file paths, dates or the model that asked for it, so a second
verification of the same request, or another method on it, costs nothing. A damaged entry is
deleted and recomputed, never trusted. The folder is ``$MEDFORGET_CACHE_DIR``, else
``$XDG_CACHE_HOME/medforget``, else ``~/.cache/medforget``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from medforget.fileio import cache_dir

if TYPE_CHECKING:
    from torch import nn

    from medforget.checkpoint import CheckpointMeta, LoadedCheckpoint
    from medforget.config import TrainConfig
    from medforget.data import DataSpec

log = logging.getLogger(__name__)


def canonical(model: BaseModel) -> str:
    """A model as canonical JSON: sorted keys, no whitespace, unset optional fields left out.

    Leaving ``None`` fields out keeps existing keys valid when a later version adds an optional
    field; a field that changes what is trained must therefore never default to ``None``.
    """
    return json.dumps(model.model_dump(mode="json", exclude_none=True), sort_keys=True, separators=(",", ":"))


def content_key(kind: str, *parts: str) -> str:
    """SHA-256 over a kind tag and the parts, each terminated by a NUL byte (so parts cannot run together)."""
    h = hashlib.sha256()
    for part in (kind, *parts):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def original_key(spec: DataSpec, recipe: TrainConfig) -> str:
    """Key of an original model: the data it is built from and the recipe."""
    return content_key("original/1", canonical(spec), canonical(recipe))


def retrain_key(recipe: TrainConfig, fingerprint: str, retain_ids: Iterable[str], seed: int) -> str:
    """Key of one retrain: the recipe with this retrain's seed, the data, and exactly which samples remain."""
    seeded = recipe.model_copy(update={"seed": seed})
    return content_key("retrain/1", canonical(seeded), fingerprint, "\n".join(sorted(retain_ids)))


class ModelStore:
    """Checkpoints of one kind (``originals``, ``baselines``) stored by key."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def path(self, key: str) -> Path:
        """Where the model with ``key`` lives (it may not exist yet)."""
        return cache_dir() / self.kind / f"{key}.safetensors"

    def load(self, key: str) -> LoadedCheckpoint | None:
        """The cached checkpoint, or None if absent; a damaged entry is removed and reported absent."""
        from medforget.checkpoint import load_checkpoint
        from medforget.errors import CheckpointError

        path = self.path(key)
        if not path.exists():
            return None
        try:
            return load_checkpoint(path)
        except CheckpointError as exc:
            log.warning("cache entry %s is damaged (%s); it will be recomputed", path, exc)
            path.unlink(missing_ok=True)
            return None

    def save(self, key: str, model: nn.Module, meta: CheckpointMeta) -> str:
        """Store ``model`` under ``key`` atomically (replacing a concurrent writer's copy); returns its SHA-256."""
        from medforget.checkpoint import save_checkpoint

        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return save_checkpoint(path, model, meta, force=True)


__all__ = ["ModelStore", "canonical", "content_key", "original_key", "retrain_key"]
