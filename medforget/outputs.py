"""A model's own outputs, recorded in its checkpoint: its logits on the training, validation and test splits.

Every deletion request needs the model's outputs before unlearning: SalUn-CRA's targets come from its
logits on the forget set and on validation, the operating point from validation, and the report compares
with the original on every set. Computed once, when the checkpoint is written (``medforget train`` has
already evaluated validation and test; the training split adds one forward pass), they save those passes
on every later request: on PneumoniaMNIST about a seventh of SalUn-CRA's time (9.2% of a retrain against
10.6%) and a third of the whole ``unlearn`` (``benchmarks/unlearn_timing.py --compare``).

The logits are stored next to the weights as tensors named ``outputs.<split>`` (rows in the split's order,
which the dataset fingerprint fixes), so the weights digest and the signature cover them: they cannot be
changed apart from the weights. A checkpoint keeps no output of a sample it has forgotten: those rows are
NaN, and a request that would need them computes them instead (as it does for a checkpoint without any).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from medforget.data import Dataset, Split
from medforget.engine import predict

PREFIX = "outputs."


def pack(outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors to store next to the weights."""
    return {PREFIX + name: t.detach().float().cpu().contiguous() for name, t in outputs.items()}


def unpack(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Split a checkpoint's tensors into the weights and the recorded outputs (by split name)."""
    weights = {k: v for k, v in state.items() if not k.startswith(PREFIX)}
    outputs = {k[len(PREFIX) :]: v for k, v in state.items() if k.startswith(PREFIX)}
    return weights, outputs


def record(model: nn.Module, dataset: Dataset, device: torch.device) -> dict[str, torch.Tensor]:
    """The model's logits on the training, validation and test splits."""
    splits = {"train": dataset.train, "val": dataset.val, "test": dataset.test}
    return {name: predict(model, split, device) for name, split in splits.items()}


def only_rows(n_rows: int, kept: Sequence[int], logits: torch.Tensor) -> torch.Tensor:
    """Logits for a split of ``n_rows`` with only the ``kept`` rows filled in (from ``logits``, in that order) and
    NaN elsewhere: what a checkpoint records of a training split whose other rows it has forgotten."""
    out = torch.full((n_rows, logits.shape[1]), float("nan"))
    out[torch.as_tensor(list(kept), dtype=torch.long)] = logits.float().cpu()
    return out


def of_unlearned(n_train: int, retain_rows: Sequence[int], logits: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What an unlearned checkpoint records, from its model's ``logits`` on the evaluation sets: the retained
    training rows, validation and test; nothing of a forgotten sample (this request's or an earlier one's)."""
    train = only_rows(n_train, retain_rows, logits["retain"])
    return {"train": train, "val": logits["val"], "test": logits["test"]}


def lookup(
    outputs: dict[str, torch.Tensor], split: str, rows: Sequence[int] | None, expect: Split, k: int
) -> torch.Tensor | None:
    """Recorded logits of ``rows`` of ``split`` (all rows if None), if recorded for every one of them; else None.

    ``expect`` is the set they must describe (its length) and ``k`` the number of classes: a recording that
    does not fit is not used.
    """
    full = outputs.get(split)
    if full is None or not full.is_floating_point() or full.ndim != 2 or full.shape[1] != k:
        return None
    if rows is not None:
        index = torch.as_tensor(list(rows), dtype=torch.long)
        if len(index) and int(index.max()) >= len(full):
            return None
        full = full[index]
    if len(full) != len(expect) or bool(torch.isnan(full).any()):
        return None
    return full


__all__ = ["PREFIX", "lookup", "of_unlearned", "only_rows", "pack", "record", "unpack"]
