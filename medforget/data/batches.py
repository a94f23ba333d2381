"""Minibatches from whole-split uint8 tensors, normalised per batch on the device."""

from __future__ import annotations

from collections.abc import Iterator

import torch


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[0, 255]`` to float ``[-1, 1]``, MedMNIST's reference normalisation (mean = std = 0.5)."""
    return images.float().div_(127.5).sub_(1.0)


def batches(
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    channels_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y, rows)`` minibatches from tensors already on the target device.

    Indexing whole tensors and normalising per batch keeps the loop free of Python per
    sample; ``rows`` lets callers map a batch back to sample IDs.
    """
    n = len(labels)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    order = order.to(images.device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for start in range(0, n, batch_size):
        rows = order[start : start + batch_size]
        x = to_float(images.index_select(0, rows)).contiguous(memory_format=fmt)
        yield x, labels.index_select(0, rows), rows
