"""Images that stay on disk: uint8 row files read a batch at a time, optionally ahead by worker threads.

A hospital archive does not fit in memory (CheXpert at 224 px is 11 GB of uint8 pixels), so a
lazily read split holds a :class:`LazyImages` instead of a tensor: which rows of which row files
(:mod:`medforget.data.imagecache` builds them once per dataset) make up the split. It behaves like
the ``[N, C, H, W]`` uint8 tensor it stands for where the training code touches it: ``len``,
``shape``, ``.to(device)`` (remembers the target, moves nothing), ``images[rows]`` and
``index_select`` (read those rows and return a tensor on the target device). Subsets and
concatenations stay lazy. :func:`lazy_batches` feeds a training or inference loop, with ``workers``
threads reading ahead for a GPU (pinned memory and non-blocking copies).

Reads use ``os.pread`` on runs of consecutive rows, so the process holds only the batches in
flight: the pages stay in the kernel's cache, not in this process's memory.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice

import numpy as np
import torch


@dataclass(frozen=True)
class RowFile:
    """A raw file of ``n`` uint8 images of shape ``(c, h, w)``, row after row."""

    path: str
    n: int
    c: int
    h: int
    w: int

    @property
    def row_bytes(self) -> int:
        return self.c * self.h * self.w

    def read_into(self, rows: np.ndarray, out: np.ndarray) -> None:
        """Read ``rows`` (any order, repeats allowed) into ``out[len(rows), row_bytes]``, one pread per run."""
        if not len(rows):
            return
        order = np.argsort(rows, kind="stable")
        srt = rows[order]
        breaks = np.flatnonzero(np.diff(srt) != 1) + 1
        rb = self.row_bytes
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for run in np.split(np.arange(len(srt)), breaks):
                first, count = int(srt[run[0]]), len(run)
                buf = os.pread(fd, count * rb, first * rb)
                if len(buf) != count * rb:
                    raise OSError(f"{self.path} is truncated (row {first + count - 1} of {self.n})")
                out[order[run]] = np.frombuffer(buf, np.uint8).reshape(count, rb)
        finally:
            os.close(fd)


class LazyImages:
    """uint8 images ``[N, C, H, W]`` kept on disk; rows are read when indexed.

    Args:
        files: the row files the images come from.
        which: per image, the index of its file in ``files``.
        rows: per image, its row in that file.
        device: where indexing returns tensors (set by :meth:`to`).
        workers: threads that read batches ahead in :func:`lazy_batches` (0: read when needed).
    """

    dtype = torch.uint8
    ndim = 4

    def __init__(
        self,
        files: Sequence[RowFile],
        which: np.ndarray,
        rows: np.ndarray,
        device: torch.device | str = "cpu",
        workers: int = 0,
    ) -> None:
        self.files = tuple(files)
        self.which = np.asarray(which, dtype=np.int32)
        self.rows = np.asarray(rows, dtype=np.int64)
        self.device = torch.device(device)
        self.workers = workers
        shapes = {(f.c, f.h, f.w) for f in self.files}
        if len(shapes) > 1:
            raise ValueError(f"row files of different image shapes cannot form one split: {sorted(shapes)}")
        self._chw = next(iter(shapes)) if shapes else (0, 0, 0)

    @classmethod
    def whole(cls, file: RowFile, workers: int = 0) -> LazyImages:
        """Every row of one file, in order."""
        return cls([file], np.zeros(file.n, np.int32), np.arange(file.n), workers=workers)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.rows), *self._chw))

    def __len__(self) -> int:
        return len(self.rows)

    def _with(self, which: np.ndarray, rows: np.ndarray) -> LazyImages:
        return LazyImages(self.files, which, rows, self.device, self.workers)

    def take(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> LazyImages:
        """The images at ``indices`` as a new lazy view (nothing is read)."""
        idx = np.asarray(torch.as_tensor(indices, dtype=torch.long).cpu(), dtype=np.int64).reshape(-1)
        return self._with(self.which[idx], self.rows[idx])

    def to(self, device: torch.device | str, *args: object, **kwargs: object) -> LazyImages:
        """The same images, returning tensors on ``device`` when indexed (nothing is moved now)."""
        view = self._with(self.which, self.rows)
        view.device = torch.device(device)
        return view

    def with_workers(self, workers: int) -> LazyImages:
        """The same images, read ahead by ``workers`` threads in :func:`lazy_batches`."""
        view = self._with(self.which, self.rows)
        view.workers = workers
        return view

    def read(self, indices: Sequence[int] | np.ndarray | torch.Tensor, pin: bool = False) -> torch.Tensor:
        """Rows ``indices`` as a CPU uint8 tensor ``[k, C, H, W]`` (in pinned memory if ``pin``)."""
        idx = np.asarray(torch.as_tensor(indices, dtype=torch.long).cpu(), dtype=np.int64).reshape(-1)
        out = torch.empty((len(idx), *self._chw), dtype=torch.uint8, pin_memory=pin)
        flat = out.numpy().reshape(len(idx), -1)
        which, rows = self.which[idx], self.rows[idx]
        for f in np.unique(which):
            sel = np.flatnonzero(which == f)
            part = np.empty((len(sel), flat.shape[1]), np.uint8)
            self.files[int(f)].read_into(rows[sel], part)
            flat[sel] = part
        return out

    def __getitem__(self, indices: int | Sequence[int] | np.ndarray | torch.Tensor) -> torch.Tensor:
        if isinstance(indices, int):
            return self.read([indices])[0].to(self.device)
        cuda = self.device.type == "cuda"
        return self.read(indices, pin=cuda).to(self.device, non_blocking=cuda)

    def index_select(self, dim: int, indices: torch.Tensor) -> torch.Tensor:
        """Tensor semantics for the first dimension: read ``indices`` onto the target device."""
        if dim != 0:
            raise ValueError("lazy images are indexed by row only")
        return self[indices]

    def contiguous(self) -> torch.Tensor:
        """Every image in memory (what a tensor's ``contiguous`` would give; avoid on large data)."""
        return self.read(np.arange(len(self)))

    def digest(self, sample_ids: Sequence[str], labels: torch.Tensor, chunk: int = 1024) -> str:
        """SHA-256 over the sorted sample IDs with each sample's label and image bytes (see ``Split.fingerprint``)."""
        h = hashlib.sha256()
        order = sorted(range(len(self)), key=sample_ids.__getitem__)
        lab = labels.numpy()
        for start in range(0, len(order), chunk):
            rows = order[start : start + chunk]
            images = self.read(rows).numpy()
            for j, i in enumerate(rows):
                h.update(sample_ids[i].encode())
                h.update(int(lab[i]).to_bytes(4, "little"))
                h.update(images[j].tobytes())
        return h.hexdigest()

    def identity(self) -> str:
        """What the images are, as a short string: the row files and which of their rows (for memo keys)."""
        h = hashlib.sha256()
        for f in self.files:
            h.update(f"{f.path}|{f.n}|{f.c}x{f.h}x{f.w}\0".encode())
        h.update(self.which.tobytes())
        h.update(self.rows.tobytes())
        return h.hexdigest()


def memo_digest(images: LazyImages, sample_ids: Sequence[str], labels: torch.Tensor) -> str:
    """:meth:`LazyImages.digest`, computed once per (images, IDs, labels) and remembered in the cache folder.

    Reading 11 GB to hash them on every load would cost more than the load; the memo is keyed by the
    row files (themselves named by the content they were built from), the rows, the IDs and the labels.
    """
    from medforget.fileio import cache_dir

    h = hashlib.sha256(images.identity().encode())
    h.update("\n".join(sample_ids).encode())
    h.update(labels.numpy().astype(np.int64).tobytes())
    memo = cache_dir() / "images" / "fingerprints" / h.hexdigest()
    try:
        return memo.read_text().strip()
    except OSError:
        pass
    digest = images.digest(sample_ids, labels)
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_name(f".{memo.name}.{os.getpid()}.tmp")
    tmp.write_text(digest)
    os.replace(tmp, memo)
    return digest


def concat_images(parts: Sequence[torch.Tensor | LazyImages]) -> torch.Tensor | LazyImages:
    """Images of several splits as one: a tensor if all parts are tensors, else a lazy view over their files."""
    if not any(isinstance(p, LazyImages) for p in parts):
        return torch.cat(list(parts))  # type: ignore[arg-type]
    if not all(isinstance(p, LazyImages) for p in parts):
        raise TypeError("cannot concatenate in-memory and lazily read images")
    files: list[RowFile] = []
    which, rows = [], []
    for p in parts:
        assert isinstance(p, LazyImages)
        remap = np.array([_index(files, f) for f in p.files], dtype=np.int32)
        which.append(remap[p.which] if len(p.which) else p.which)
        rows.append(p.rows)
    first = parts[0]
    assert isinstance(first, LazyImages)
    return LazyImages(files, np.concatenate(which), np.concatenate(rows), first.device, first.workers)


def _index(files: list[RowFile], f: RowFile) -> int:
    if f not in files:
        files.append(f)
    return files.index(f)


GPU_READERS = 4
"""Read-ahead threads for a GPU when no ``workers`` were asked for: a GPU step is shorter than a synchronous read."""


def lazy_batches(images: LazyImages, chunks: list[torch.Tensor], ahead: bool | None = None) -> Iterator[torch.Tensor]:
    """uint8 batches of ``chunks`` (row indices) on the images' target device, read ahead by their workers.

    The workers are threads: reads are ``pread`` calls and copies that release the GIL, and unlike worker
    processes forked from the trainer they share nothing copy-on-write (a fork of a training process makes
    every page it writes while the workers live a copy: 20% slower training here). Up to ``2 * workers``
    batches are read ahead, into pinned memory on CUDA, and copied to the device without blocking.

    ``ahead=None`` reads ahead only for a GPU: on a CPU the model needs the cores, and reading a batch from
    the cache takes well under 1% of a training step (``benchmarks/lazy_throughput.py``), so the batches are
    read in the training thread there (extra threads slowed training 15-30% on this 2-core machine).
    """
    cuda = images.device.type == "cuda"
    if ahead is None:
        ahead = cuda
    threads = images.workers or (GPU_READERS if cuda else 0)
    if not ahead or threads <= 0 or len(chunks) < 2:
        for rows in chunks:
            yield images[rows]
        return
    cpu_view = images.to("cpu")
    todo = iter([c.cpu() for c in chunks])
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="medforget-read") as pool:
        pending = deque(pool.submit(cpu_view.read, rows, cuda) for rows in islice(todo, 2 * threads))
        while pending:
            batch = pending.popleft().result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(pool.submit(cpu_view.read, nxt, cuda))
            yield batch.to(images.device, non_blocking=cuda)


__all__ = ["LazyImages", "RowFile", "concat_images", "lazy_batches", "memo_digest"]
