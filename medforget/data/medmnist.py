"""MedMNIST 2D datasets, read by the ``medmnist`` package's own classes and ``INFO`` (no copy of its loader).

Files are looked up in the data root (``--data-root``, ``$MEDFORGET_DATA_ROOT``, medmnist's default)
and their MD5 checked against ``medmnist.INFO`` once per file version.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from medforget.data.core import SPLITS, Dataset, DataSpec, Split, sample_id
from medforget.data.imagecache import current_reading, medmnist_rowfile, want_lazy
from medforget.data.labels import DEFAULT_POSITIVE, maybe_binarise, resolve_positive
from medforget.data.lazy import LazyImages
from medforget.data.manifest import apply_manifest
from medforget.errors import DataError
from medforget.fileio import cache_dir, md5_file, sha256_file

MEDMNIST_SIZES = (28, 64, 128, 224)
DATA_ROOT_ENV = "MEDFORGET_DATA_ROOT"


def resolve_data_root(data_root: str | os.PathLike[str] | None) -> Path:
    """``--data-root``, else ``$MEDFORGET_DATA_ROOT``, else medmnist's default (``~/.medmnist``)."""
    if data_root:
        return Path(data_root).expanduser()
    if os.environ.get(DATA_ROOT_ENV):
        return Path(os.environ[DATA_ROOT_ENV]).expanduser()
    from medmnist.info import DEFAULT_ROOT

    return Path(DEFAULT_ROOT)


def _medmnist_info(name: str) -> dict:
    from medmnist import INFO

    if name not in INFO:
        known = ", ".join(sorted(k for k, v in INFO.items() if "3d" not in k))
        raise DataError(f"unknown MedMNIST dataset {name!r}; known: {known}")
    info = INFO[name]
    if name.endswith("3d"):
        raise DataError(f"{name} is a 3D dataset; medforget supports 2D images")
    return info


def _is_multilabel(info: dict) -> bool:
    """ChestMNIST: several findings per image, so no single label to train; one finding becomes the disease."""
    return "multi-label" in info["task"]


def _finding_labels(name: str, info: dict, labels: dict[str, np.ndarray], positive: Sequence[str] | None):
    """A multi-label dataset as one disease: ``positive`` (one or more findings) present vs absent.

    Returns the class names, the positive index and each split's 0/1 labels. Refuses without ``positive``:
    there is no "the" disease among 14 findings, and training one class per finding is a different model.
    """
    findings = [info["label"][str(i)] for i in range(len(info["label"]))]
    if not positive:
        raise DataError(
            f"{name} is a {info['task']} task ({len(findings)} findings per image); medforget trains one disease: "
            f"name the finding with --positive (one of {', '.join(findings)})"
        )
    chosen = resolve_positive(name, findings, positive)
    names = "+".join(findings[i] for i in chosen)
    binary = {s: lab[:, chosen].max(axis=1).astype(np.int64) for s, lab in labels.items()}
    return [f"no {names}", names], [1], binary


def _verify_md5_once(path: Path, expected: str) -> None:
    """Check a MedMNIST file's MD5 against ``INFO`` and remember the fact.

    Hashing a large file on every run is wasteful, so a verified (path, inode, size, mtime, ctime) is
    cached in the user cache folder; the data folder itself may be read-only. ctime changes with any
    write to the file and cannot be set back by a user, so an edit that restores the mtime is still seen.
    """
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_ino}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ctime_ns}"
    cache_file = cache_dir() / "verified-md5.json"
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    if cache.get(key) == expected:
        return
    actual = md5_file(path)
    if actual != expected:
        raise DataError(f"{path} is corrupted: MD5 {actual} does not match MedMNIST's {expected}")
    cache[key] = expected
    tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(cache, indent=0))
    os.replace(tmp, cache_file)


def _medmnist_file(name: str, size: int, root: Path, download: bool) -> Path:
    import medmnist

    info = _medmnist_info(name)
    if size not in MEDMNIST_SIZES:
        raise DataError(f"MedMNIST size must be one of {MEDMNIST_SIZES}, got {size}")
    flag = "" if size == 28 else f"_{size}"
    path = root / f"{name}{flag}.npz"
    if not path.exists():
        if download and root.is_dir():  # never create folders as a side effect of a failed lookup
            try:
                cls = getattr(medmnist, info["python_class"])
                cls(split="train", root=str(root), download=True, size=size)
            except Exception:  # any network or filesystem failure: one clear message below
                pass
        if not path.exists():
            raise DataError(
                f"{path.name} not found in {root} and could not be downloaded; "
                f"put it there or set --data-root / {DATA_ROOT_ENV}"
            )
    _verify_md5_once(path, info[f"MD5{flag}"])
    return path


def load_medmnist(
    name: str,
    size: int = 28,
    data_root: str | os.PathLike[str] | None = None,
    positive: Sequence[str] | None = None,
    binary: bool = False,
    manifest: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> Dataset:
    """A MedMNIST 2D dataset through the ``medmnist`` package, with stable IDs.

    The file's MD5 is checked against ``medmnist.INFO`` (once per file version). A
    manifest may attach patient IDs and attributes; without one each sample is its own patient.
    RetinaMNIST's grades (ordinal regression in MedMNIST) are trained as classes, as the MedMNIST
    benchmark does (``--binary --positive 2,3,4``: referable diabetic retinopathy vs not); ChestMNIST's
    14 findings per image become one disease, the finding(s) ``positive`` names, present vs absent.
    Above 2 GiB of pixels (or as :func:`~medforget.data.imagecache.reading` says) the images are
    streamed once into the image cache and read lazily.
    """
    name = name.lower()
    info = _medmnist_info(name)
    if _is_multilabel(info) and not positive:
        _finding_labels(name, info, {}, positive)  # refuses, naming the findings, before any file is read
    root = resolve_data_root(data_root)
    path = _medmnist_file(name, size, root, download)
    labels = {s: _labels(path, s) for s in SPLITS}
    classes = [info["label"][str(i)] for i in range(len(info["label"]))]
    if _is_multilabel(info):
        classes, pos, labels = _finding_labels(name, info, labels, positive)
        binary = True
    else:
        labels = {s: lab.reshape(-1).astype(np.int64) for s, lab in labels.items()}
        pos = resolve_positive(name, classes, positive)
    reading = current_reading()
    n_bytes = sum(info["n_samples"].values()) * info["n_channels"] * size * size
    lazy = want_lazy(reading.lazy, n_bytes)
    splits: dict[str, Split] = {}
    for s in SPLITS:
        if lazy:
            flag = "" if size == 28 else f"_{size}"
            images: torch.Tensor | LazyImages = LazyImages.whole(
                medmnist_rowfile(path, info[f"MD5{flag}"], s), reading.workers
            )
        else:
            images = _read_images(path, info, root, s, size)
        ids = [sample_id(s, i) for i in range(len(images))]
        splits[s] = Split(name=s, images=images, labels=torch.from_numpy(labels[s]), sample_ids=ids,
                          patient_ids=list(ids))  # fmt: skip
    spec = DataSpec(
        name=name,
        source="medmnist",
        size=size,
        binary=binary,
        positive=[str(p) for p in (positive or DEFAULT_POSITIVE.get(name, []))],
        manifest_sha256=sha256_file(Path(manifest)) if manifest else None,
    )
    ds = Dataset(spec=spec, classes=classes, positive=pos, splits=splits)
    if manifest:
        apply_manifest(ds, Path(manifest))
    return maybe_binarise(ds)


def _labels(path: Path, split: str) -> np.ndarray:
    """A split's label array as stored (``[N, 1]``, or ``[N, findings]`` for a multi-label dataset)."""
    try:
        with np.load(path) as npz:
            return np.asarray(npz[f"{split}_labels"])
    except Exception as exc:  # a damaged .npz raises zipfile, zlib, OS or value errors alike
        raise DataError(f"{path} is damaged and cannot be read ({type(exc).__name__}); download it again") from None


def _read_images(path: Path, info: dict, root: Path, split: str, size: int) -> torch.Tensor:
    """A split's images in memory, ``[N, C, H, W]``, read by the ``medmnist`` package's own class."""
    import medmnist

    cls = getattr(medmnist, info["python_class"])
    try:
        imgs = np.asarray(cls(split=split, root=str(root), download=False, size=size).imgs)
    except Exception as exc:  # a damaged .npz raises zipfile, zlib, OS or value errors alike
        raise DataError(f"{path} is damaged and cannot be read ({type(exc).__name__}); download it again") from None
    imgs = imgs[:, None] if imgs.ndim == 3 else imgs.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(imgs))
