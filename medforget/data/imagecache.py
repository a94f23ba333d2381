"""The uint8 image cache behind lazily read datasets: decoded once per dataset version, then only read.

Decoding a hospital archive (224,316 CheXpert JPEGs) or decompressing a MedMNIST+ file at 224 px
takes minutes; every training run, retrain and audit after the first reads the decoded pixels
instead. Each split becomes one raw row file (:class:`~medforget.data.lazy.RowFile`) under
``<cache>/images/``, named by a key of everything that determines its bytes:

* a MedMNIST file: its MD5 (verified against ``medmnist.INFO``) and the split;
* an image folder: every image's path, size and modification time, the colour mode and the side.

A changed image changes the key, so a stale cache is never read; a file is written under a
temporary name and renamed into place, so concurrent builders (two ranks, two retrain workers)
cannot leave a half-written file behind. ``workers`` processes decode in parallel.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from medforget.config import ReadOptions
from medforget.data.lazy import RowFile
from medforget.errors import DataError
from medforget.fileio import cache_dir

log = logging.getLogger(__name__)

LAZY_AUTO_BYTES = 2 << 30
"""``lazy=None`` reads a dataset lazily when its decoded images would take more than this (2 GiB) in memory."""


_READING: ContextVar[ReadOptions | None] = ContextVar("medforget_reading", default=None)


@contextmanager
def reading(options: ReadOptions) -> Iterator[ReadOptions]:
    """Read datasets loaded in this block as ``options`` say (lazily or not, with how many worker processes).

    How images are read never changes them, their IDs or fingerprint, so it is a setting of the
    machine, not of the dataset: ``with reading(ReadOptions(workers=8)): load_dataset(...)``.
    """
    token = _READING.set(options)
    try:
        yield options
    finally:
        _READING.reset(token)


def current_reading() -> ReadOptions:
    """The reading options in force (lazy by size, no worker processes, unless :func:`reading` says otherwise)."""
    return _READING.get() or ReadOptions()


def want_lazy(lazy: bool | None, n_bytes: int) -> bool:
    """Whether to read lazily: as asked, or (``None``) when the images would not sit comfortably in memory."""
    return n_bytes > LAZY_AUTO_BYTES if lazy is None else lazy


def _key(*parts: str) -> str:
    """SHA-256 over a version tag and the parts, each NUL-terminated (as :func:`medforget.cache.content_key`)."""
    h = hashlib.sha256()
    for part in ("images/1", *parts):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def _build(key: str, n: int, chw: tuple[int, int, int], fill: Callable[[BinaryIO], None]) -> RowFile:
    """The row file ``key``: reused if complete, else written by ``fill`` (rows in order) and renamed into place."""
    folder = cache_dir() / "images"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.u8"
    rf = RowFile(str(path), n, *chw)
    if path.exists() and path.stat().st_size == n * rf.row_bytes:
        return rf
    tmp = folder / f".{key}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as fh:
            fill(fh)
        if tmp.stat().st_size != n * rf.row_bytes:
            raise DataError(f"image cache {path.name}: wrote {tmp.stat().st_size} bytes, expected {n * rf.row_bytes}")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return rf


# ----------------------------------------------------------------------------- MedMNIST+ files


def npz_member_shape(npz: Path, member: str) -> tuple[int, ...]:
    """The shape of one array in a MedMNIST ``.npz`` without decompressing it."""
    with zipfile.ZipFile(npz) as zf, zf.open(member) as f:
        return _npy_header(f)[0]


def _npy_header(f: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(f)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return reader(f)


def medmnist_rowfile(npz: Path, md5: str, split: str, chunk_rows: int = 2048) -> RowFile:
    """Split ``split`` of a MedMNIST file as a row file, streamed out of the zip a chunk at a time.

    Only ``chunk_rows`` images are in memory at once, so ChestMNIST at 224 px (5.6 GB) is cached
    with a few hundred MB. Images are stored ``[C, H, W]`` as the in-memory path holds them.
    """
    member = f"{split}_images.npy"
    try:
        shape = npz_member_shape(npz, member)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{npz} is damaged and cannot be read ({type(exc).__name__}); download it again") from None
    n, h, w = shape[:3]
    c = shape[3] if len(shape) == 4 else 1

    def fill(out: BinaryIO) -> None:
        with zipfile.ZipFile(npz) as zf, zf.open(member) as f:
            _, fortran, dtype = _npy_header(f)
            if fortran or dtype != np.uint8:
                raise DataError(f"{npz}: {member} is not a C-ordered uint8 array")
            for start in range(0, n, chunk_rows):
                k = min(chunk_rows, n - start)
                block = np.frombuffer(f.read(k * h * w * c), np.uint8).reshape(k, h, w, c)
                out.write(np.ascontiguousarray(block.transpose(0, 3, 1, 2)).tobytes())

    log.debug("image cache: %s %s (%d images)", npz.name, split, n)
    return _build(_key("medmnist", md5, split), n, (c, h, w), fill)


# ----------------------------------------------------------------------------- image folders


def decode_image(path: Path, mode: str, size: int) -> np.ndarray:
    """One image file as uint8 ``[C, size, size]`` in ``mode`` (``L`` or ``RGB``), resized bicubically."""
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


class _Decode(torch.utils.data.Dataset):
    """Image ``i`` of a list of files, decoded (in a worker process when ``workers`` > 0)."""

    def __init__(self, paths: Sequence[Path], mode: str, size: int) -> None:
        self.paths, self.mode, self.size = list(paths), mode, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:
        return decode_image(self.paths[i], self.mode, self.size)


def _stack(items: list[np.ndarray]) -> np.ndarray:
    return np.stack(items)


def decode_all(paths: Sequence[Path], mode: str, size: int, workers: int = 0, batch: int = 64):
    """Decoded images of ``paths`` in order, ``batch`` at a time, by ``workers`` processes (0: this one)."""
    loader = torch.utils.data.DataLoader(
        _Decode(paths, mode, size), batch_size=batch, num_workers=workers, collate_fn=_stack
    )
    yield from loader


def folder_rowfile(paths: Sequence[Path], mode: str, size: int, workers: int = 0) -> RowFile:
    """The images of ``paths`` (one split, in order) as a row file, decoded once by ``workers`` processes.

    The key covers each file's path, size and modification time, so an edited image is decoded again.
    """
    stamp = []
    for p in paths:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise DataError(f"image {p} not found") from None
        stamp.append(f"{os.path.abspath(p)}|{st.st_size}|{st.st_mtime_ns}")
    c = 1 if mode == "L" else 3

    def fill(out: BinaryIO) -> None:
        log.info("image cache: decoding %d images at %d px with %d worker(s) (once per dataset version)",
                 len(paths), size, workers)  # fmt: skip
        for block in decode_all(paths, mode, size, workers):
            out.write(np.ascontiguousarray(block).tobytes())

    return _build(_key("folder", mode, str(size), "\n".join(stamp)), len(paths), (c, size, size), fill)


__all__ = [
    "LAZY_AUTO_BYTES",
    "current_reading",
    "decode_all",
    "decode_image",
    "folder_rowfile",
    "medmnist_rowfile",
    "npz_member_shape",
    "reading",
    "want_lazy",
]
