"""Minibatches from whole-split uint8 images, normalised per batch on the device."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from medforget.data.lazy import LazyImages, lazy_batches


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[0, 255]`` to float ``[-1, 1]``, MedMNIST's reference normalisation (mean = std = 0.5)."""
    return images.float().div_(127.5).sub_(1.0)


def batches(
    images: torch.Tensor | LazyImages,
    labels: torch.Tensor,
    batch_size: int,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    channels_last: bool = False,
    shard: tuple[int, int] | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y, rows)`` minibatches from images already on (or, lazily read, bound for) the target device.

    Indexing whole tensors and normalising per batch keeps the loop free of Python per
    sample; ``rows`` lets callers map a batch back to sample IDs. Lazily read images are read
    a batch at a time, ahead of the loop by their worker processes; the batch order is the same.

    ``shard=(rank, world)`` is a distributed sampler: every rank draws the same order, pads it to a
    multiple of ``world`` with its first rows, and takes every ``world``-th row of each batch from
    ``rank`` on (``batch_size`` must be a multiple of ``world``), so the ranks' batches together are
    the one-process batch.
    """
    n = len(labels)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    if shard is not None:
        order = torch.cat([order, order[: (-n) % shard[1]]])
    order = order.to(images.device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    chunks = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    if shard is not None:
        chunks = [c[shard[0] :: shard[1]] for c in chunks]
    if isinstance(images, LazyImages):
        raw = lazy_batches(images, chunks)
    else:
        raw = (images.index_select(0, r) for r in chunks)
    for rows, x in zip(chunks, raw, strict=True):
        yield to_float(x).contiguous(memory_format=fmt), labels.index_select(0, rows), rows
