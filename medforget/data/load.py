"""One entry point for every source: a MedMNIST flag, or ``csv`` for the owner's own images."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from medforget.config import CsvLayout
from medforget.data.core import Dataset, DataSource, DataSpec
from medforget.data.images import load_csv_dataset, manifest_sha256
from medforget.data.medmnist import load_medmnist
from medforget.errors import DataError


class DataPaths(BaseModel):
    """Where a dataset's files are on this machine (never recorded: checkpoints record what, not where)."""

    data_root: Path | None = None
    manifest: Path | None = None


def load_dataset(
    dataset: str,
    size: int = 28,
    data_root: str | os.PathLike[str] | None = None,
    positive: Sequence[str] | None = None,
    binary: bool = False,
    manifest: str | os.PathLike[str] | None = None,
    classes: Sequence[str] | CsvLayout | None = None,
) -> Dataset:
    """One entry point: ``dataset`` is a MedMNIST flag, or ``csv`` to read the owner's own ``manifest``.

    Args:
        dataset: a MedMNIST flag (``breastmnist``...) or ``csv``.
        size: image side in pixels.
        data_root: the MedMNIST folder.
        positive: the disease class(es); a multi-label dataset's or CheXpert's one finding.
        binary: collapse a multi-class dataset to disease vs not.
        manifest: MedMNIST: patients and attributes; ``csv``: the image list (or CheXpert's ``train.csv``).
        classes: a CSV's class names in label order, or its whole layout (:class:`~medforget.config.CsvLayout`).

    Returns:
        The dataset; its images are in memory or, above 2 GiB or as
        :func:`~medforget.data.imagecache.reading` says, read lazily from the image cache.
    """
    layout = classes if isinstance(classes, CsvLayout) else CsvLayout(classes=list(classes) if classes else None)
    if dataset.lower() in ("csv", "custom") or dataset.lower().startswith("csv:"):
        if not manifest:
            raise DataError("a CSV dataset needs --manifest pointing to its sample_id,path,label,split CSV")
        ds = load_csv_dataset(manifest, size=size, positive=positive, binary=binary, layout=layout)
    elif layout != CsvLayout():
        raise DataError(f"--manifest-format and --classes apply to CSV datasets, not to {dataset}")
    else:
        ds = load_medmnist(dataset, size, data_root, positive, binary, manifest)
    ds.source = DataSource(
        data_root=os.fspath(data_root) if data_root else None,
        manifest=os.path.abspath(manifest) if manifest else None,
    )
    return ds


def load_from_spec(
    spec: DataSpec,
    data_root: str | os.PathLike[str] | None = None,
    manifest: str | os.PathLike[str] | None = None,
    classes: Sequence[str] | None = None,
) -> Dataset:
    """Rebuild the dataset a checkpoint records, checking the manifest is the one it used."""
    if spec.manifest_sha256 and not manifest:
        raise DataError(f"this model was trained with a manifest ({spec.name}); pass it with --manifest")
    if manifest and spec.manifest_sha256 and manifest_sha256(Path(manifest), spec.layout) != spec.manifest_sha256:
        raise DataError(f"manifest {manifest} differs from the one this model was trained with")
    name = "csv" if spec.source == "csv" else spec.name
    layout = spec.layout or CsvLayout()
    if classes:
        layout = layout.model_copy(update={"classes": list(classes)})
    return load_dataset(name, spec.size, data_root, spec.positive or None, spec.binary, manifest, layout)
