"""The owner's own images: a CSV listing ``sample_id, path, label, split, patient_id`` (+ attributes)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from medforget.config import CsvLayout
from medforget.data.chexpert import chexpert_rows, manifest_digest
from medforget.data.core import SPLITS, Dataset, DataSpec, Split
from medforget.data.imagecache import current_reading, decode_image, folder_rowfile, want_lazy
from medforget.data.labels import maybe_binarise, resolve_positive
from medforget.data.lazy import LazyImages
from medforget.data.manifest import attribute_columns, check_patient_splits, check_unique_ids, read_csv, require_columns
from medforget.errors import DataError
from medforget.fileio import sha256_file


def load_csv_dataset(
    manifest: str | os.PathLike[str],
    size: int = 28,
    positive: Sequence[str] | None = None,
    classes: Sequence[str] | None = None,
    binary: bool = False,
    layout: CsvLayout | None = None,
) -> Dataset:
    """The owner's own images, listed in a CSV: ``sample_id,path,label,split[,patient_id]`` (+ attributes).

    Paths are relative to the CSV's folder. Classes are ``classes`` if given, else the sorted
    labels of the training split; a val/test label outside them is an error, as are missing
    files, duplicate IDs and a patient in two splits. Without a ``patient_id`` column (or where it
    is empty) each image is its own patient, as in MedMNIST. Images are converted to the mode of
    the first image (grayscale stays one channel) and resized to ``size``; above 2 GiB of pixels
    (or as :func:`~medforget.data.imagecache.reading` says) they are decoded once into the image
    cache and read lazily. ``layout`` reads a published dataset's own files instead
    (:mod:`medforget.data.chexpert`).
    """
    path = Path(manifest)
    layout = layout or CsvLayout()
    if classes:
        layout = layout.model_copy(update={"classes": list(classes)})
    if layout.format == "chexpert":
        given, names = chexpert_rows(path, list(positive) if positive else None, layout)
        positive = [names[1]]
        rows, class_names = _checked_rows(path, names, given)
    else:
        rows, class_names = _checked_rows(path, layout.classes)
    if not positive:
        raise DataError("a CSV dataset needs --positive to name its disease class(es)")
    pos = resolve_positive(f"csv:{path.name}", class_names, positive)
    splits = _read_splits(path, rows, class_names, size)
    spec = DataSpec(
        name=f"csv:{path.name}",
        source="csv",
        size=size,
        binary=binary,
        positive=[str(p) for p in (positive or [])],
        manifest_sha256=manifest_sha256(path, layout),
        layout=layout if layout != CsvLayout() else None,
    )
    return maybe_binarise(Dataset(spec=spec, classes=class_names, positive=pos, splits=splits))


def manifest_sha256(path: Path, layout: CsvLayout | None = None) -> str:
    """The digest a checkpoint records of its manifest: the CSV, or for CheXpert both of its CSVs."""
    if layout is not None and layout.format == "chexpert":
        return manifest_digest(path)
    return sha256_file(path)


CORE = ["sample_id", "path", "label", "split"]
"""Required columns; ``patient_id`` is optional (without it, or where it is empty, each image is its own patient)."""


def _checked_rows(
    path: Path, classes: Sequence[str] | None, rows: list[dict[str, str]] | None = None
) -> tuple[list[dict[str, str]], list[str]]:
    """The manifest's rows (read from ``path`` unless given) after every check a human would make, and the class
    names in label order."""
    if rows is None:
        rows = read_csv(path)
    require_columns(path, rows, CORE)
    check_unique_ids(path, rows)
    for r in rows:
        r["patient_id"] = r.get("patient_id") or r["sample_id"]
        if r["split"] not in SPLITS:
            raise DataError(f"{path}:{r['__line__']}: split {r['split']!r} is not one of {', '.join(SPLITS)}")
        if not r["label"]:
            raise DataError(f"{path}:{r['__line__']}: empty label for {r['sample_id']}")
    check_patient_splits(path, ((r["patient_id"], r["split"], r["sample_id"]) for r in rows))
    class_names = list(classes) if classes else sorted({r["label"] for r in rows if r["split"] == "train"})
    for r in rows:
        if r["label"] not in class_names:
            raise DataError(
                f"{path}:{r['__line__']}: unknown label {r['label']!r} for {r['sample_id']}; "
                f"known labels: {class_names}"
            )
    missing_splits = [s for s in SPLITS if not any(r["split"] == s for r in rows)]
    if missing_splits:
        raise DataError(f"{path}: no samples in split(s) {', '.join(missing_splits)}")
    for r in rows:
        if not (path.parent / r["path"]).is_file():
            raise DataError(f"{path}:{r['__line__']}: image {path.parent / r['path']} not found")
    return rows, class_names


def _read_splits(path: Path, rows: list[dict[str, str]], class_names: list[str], size: int) -> dict[str, Split]:
    """Every image, converted to the first image's mode (grayscale stays one channel) and resized to ``size``."""
    from PIL import Image

    base = path.parent
    with Image.open(base / rows[0]["path"]) as first:
        mode = "L" if first.mode in ("L", "LA", "I", "I;16", "1") else "RGB"
    attrs = attribute_columns(rows, [*CORE, "patient_id"])
    reading = current_reading()
    lazy = want_lazy(reading.lazy, len(rows) * (1 if mode == "L" else 3) * size * size)
    splits: dict[str, Split] = {}
    for s in SPLITS:
        srows = [r for r in rows if r["split"] == s]
        files = [base / r["path"] for r in srows]
        if lazy:
            images: torch.Tensor | LazyImages = LazyImages.whole(
                folder_rowfile(files, mode, size, reading.workers), reading.workers
            )
        else:
            images = torch.from_numpy(np.stack([decode_image(f, mode, size) for f in files]))
        splits[s] = Split(
            name=s,
            images=images,
            labels=torch.tensor([class_names.index(r["label"]) for r in srows], dtype=torch.long),
            sample_ids=[r["sample_id"] for r in srows],
            patient_ids=[r["patient_id"] for r in srows],
            attributes={a: [r[a] for r in srows] for a in attrs},
        )
    return splits
