"""The owner's own images: a CSV listing ``sample_id, path, label, split, patient_id`` (+ attributes)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from medforget.data.core import SPLITS, Dataset, DataSpec, Split
from medforget.data.labels import maybe_binarise, resolve_positive
from medforget.data.manifest import attribute_columns, check_patient_splits, check_unique_ids, read_csv, require_columns
from medforget.errors import DataError
from medforget.fileio import sha256_file


def _load_image(path: Path, mode: str, size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert(mode)
            if im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.BICUBIC)
            arr = np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"image {path} not found") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def load_csv_dataset(
    manifest: str | os.PathLike[str],
    size: int = 28,
    positive: Sequence[str] | None = None,
    classes: Sequence[str] | None = None,
    binary: bool = False,
) -> Dataset:
    """The owner's own images, listed in a CSV: ``sample_id,path,label,split,patient_id`` (+ attributes).

    Paths are relative to the CSV's folder. Classes are ``classes`` if given, else the sorted
    labels of the training split; a val/test label outside them is an error, as are missing
    files, duplicate IDs and a patient in two splits. Images are converted to the mode of
    the first image (grayscale stays one channel) and resized to ``size``.
    """
    path = Path(manifest)
    rows, class_names = _checked_rows(path, classes)
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
        manifest_sha256=sha256_file(path),
    )
    return maybe_binarise(Dataset(spec=spec, classes=class_names, positive=pos, splits=splits))


CORE = ["sample_id", "path", "label", "split"]
"""Required columns; ``patient_id`` is optional (without it, or where it is empty, each image is its own patient)."""


def _checked_rows(path: Path, classes: Sequence[str] | None) -> tuple[list[dict[str, str]], list[str]]:
    """The manifest's rows after every check a human would make, and the class names in label order."""
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
    splits: dict[str, Split] = {}
    for s in SPLITS:
        srows = [r for r in rows if r["split"] == s]
        images = np.stack([_load_image(base / r["path"], mode, size) for r in srows])
        splits[s] = Split(
            name=s,
            images=torch.from_numpy(images),
            labels=torch.tensor([class_names.index(r["label"]) for r in srows], dtype=torch.long),
            sample_ids=[r["sample_id"] for r in srows],
            patient_ids=[r["patient_id"] for r in srows],
            attributes={a: [r[a] for r in srows] for a in attrs},
        )
    return splits
