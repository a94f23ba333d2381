"""The in-memory form every source is read into: splits of uint8 images with stable sample and patient IDs.

Everything downstream (training, deletion requests, checkpoints, audits) speaks in *sample IDs*
``<split>-<index>`` (``train-000123``, index = row in the official file) and *patient IDs*. A
deletion request names patients; the data layer resolves them to rows. Without a manifest every
sample is its own patient. Whole splits are held as uint8 tensors and normalised per batch on the
device (:mod:`medforget.data.batches`), so the training loop runs no per-sample Python; a split too
large for memory holds :class:`~medforget.data.lazy.LazyImages` instead, read a batch at a time, with
the same IDs and fingerprint.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from pydantic import BaseModel, Field

from medforget.config import CsvLayout
from medforget.data.lazy import LazyImages, concat_images, memo_digest
from medforget.errors import DataError

SPLITS = ("train", "val", "test")
SAMPLE_ID_RE = re.compile(r"^(train|val|test)-(\d{6})$")


def sample_id(split: str, index: int) -> str:
    """The stable ID of row ``index`` of ``split`` in the official file."""
    return f"{split}-{index:06d}"


def parse_sample_id(sid: str) -> tuple[str, int]:
    """Inverse of :func:`sample_id`; raises :class:`DataError` on a malformed ID."""
    m = SAMPLE_ID_RE.match(sid)
    if not m:
        raise DataError(f"malformed sample ID {sid!r}: expected <split>-<6 digits>, e.g. train-000123")
    return m.group(1), int(m.group(2))


class DataSpec(BaseModel):
    """How to rebuild a dataset: recorded in every checkpoint, independent of where the files live."""

    name: str = Field(description="MedMNIST flag (e.g. breastmnist) or 'csv:<manifest file name>'")
    source: str = Field(description="'medmnist' or 'csv'")
    size: int = Field(description="Image side in pixels")
    binary: bool = Field(False, description="Multi-class labels collapsed to negative (0) / positive (1)")
    positive: list[str] = Field(default_factory=list, description="Positive (disease) classes as given")
    manifest_sha256: str | None = Field(None, description="SHA-256 of the manifest CSV(s), if one was used")
    layout: CsvLayout | None = Field(
        None, description="A published dataset's own CSV layout and its label policy (absent: medforget's plain CSV)"
    )


@dataclass
class Split:
    """One split: uint8 images ``[N, C, H, W]`` (in memory, or read lazily from disk) and int64 labels ``[N]``."""

    name: str
    images: torch.Tensor | LazyImages
    labels: torch.Tensor
    sample_ids: list[str]
    patient_ids: list[str]
    attributes: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sample_ids)

    def subset(self, indices: Sequence[int] | torch.Tensor) -> Split:
        """The rows ``indices`` as a new split (tensors are indexed, not copied per sample)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        rows = idx.tolist()
        return Split(
            name=self.name,
            images=self.images.take(idx) if isinstance(self.images, LazyImages) else self.images[idx],
            labels=self.labels[idx],
            sample_ids=[self.sample_ids[i] for i in rows],
            patient_ids=[self.patient_ids[i] for i in rows],
            attributes={k: [v[i] for i in rows] for k, v in self.attributes.items()},
        )

    def fingerprint(self) -> str:
        """SHA-256 over the sorted sample IDs with each sample's label and image bytes.

        Independent of the data root and of row order, so the same data found in another
        folder (or another hospital's copy) gives the same fingerprint, while any changed
        pixel, label or ID changes it. Lazily read images give the same digest (computed once, then remembered).
        """
        if isinstance(self.images, LazyImages):
            return memo_digest(self.images, self.sample_ids, self.labels)
        h = hashlib.sha256()
        images = self.images.contiguous().numpy()
        labels = self.labels.numpy()
        for i in sorted(range(len(self)), key=self.sample_ids.__getitem__):
            h.update(self.sample_ids[i].encode())
            h.update(int(labels[i]).to_bytes(4, "little"))
            h.update(images[i].tobytes())
        return h.hexdigest()


class DataSource(BaseModel):
    """Where this machine found a dataset's files (never recorded): what another process needs to load it too."""

    data_root: str | None = None
    manifest: str | None = None


@dataclass
class Dataset:
    """A dataset in memory: its splits, class names and which classes mean disease."""

    spec: DataSpec
    classes: list[str]
    positive: list[int]
    splits: dict[str, Split]
    source: DataSource | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def n_channels(self) -> int:
        return int(self.splits["train"].images.shape[1])

    @property
    def train(self) -> Split:
        return self.splits["train"]

    @property
    def val(self) -> Split:
        return self.splits["val"]

    @property
    def test(self) -> Split:
        return self.splits["test"]

    def fingerprint(self) -> str:
        """Fingerprint of the training split: what a checkpoint was trained on."""
        return self.train.fingerprint()

    def locate(self) -> dict[str, tuple[str, int]]:
        """Map every sample ID to ``(split, row)``."""
        return {sid: (s.name, i) for s in self.splits.values() for i, sid in enumerate(s.sample_ids)}


def concat_splits(name: str, parts: Sequence[Split]) -> Split:
    """The rows of several splits as one (shadow training sets, scoring targets, retain + forget)."""
    parts = [p for p in parts if len(p)]
    keys = set.intersection(*(set(p.attributes) for p in parts)) if parts else set()
    return Split(
        name=name,
        images=concat_images([p.images for p in parts]),
        labels=torch.cat([p.labels for p in parts]),
        sample_ids=[s for p in parts for s in p.sample_ids],
        patient_ids=[s for p in parts for s in p.patient_ids],
        attributes={k: [v for p in parts for v in p.attributes[k]] for k in sorted(keys)},
    )
