"""The datasets, recipes and forget designs the benchmarks share, and their cached original models."""

from __future__ import annotations

import torch

from medforget.cache import ModelStore, original_key
from medforget.checkpoint import LoadedCheckpoint
from medforget.config import TrainConfig
from medforget.data import Dataset
from medforget.request import design_request, resolve

RECIPES = {  # CPU-sized recipes (2 cores): BreastMNIST 20 epochs, PneumoniaMNIST 6 epochs
    "breastmnist": {"arch": "resnet18", "epochs": 20, "batch_size": 128, "lr": 1e-3, "seed": 0},
    "pneumoniamnist": {"arch": "resnet18", "epochs": 6, "batch_size": 128, "lr": 1e-3, "seed": 0},
}
DESIGNS = {
    "random20": {"design": "random", "fraction": 0.2},
    "disease-heavy20": {"design": "positive-heavy", "fraction": 0.2},
}


def original_model(dataset: Dataset, recipe: TrainConfig, device: torch.device) -> LoadedCheckpoint:
    """The cached original model of ``dataset`` with ``recipe`` (trained now if missing), as studies use it."""
    from medforget.study import ensure_original

    path, _, _ = ensure_original(dataset, recipe, str(device))
    store = ModelStore("originals")
    assert path == store.path(original_key(dataset.spec, recipe)), "studies and benchmarks must share originals"
    loaded = store.load(original_key(dataset.spec, recipe))
    assert loaded is not None
    return loaded


def request_rows(dataset: Dataset, design: str, seed: int) -> tuple[list[int], list[int]]:
    """Forget and retain rows of the training split for one benchmark design and request seed."""
    d = DESIGNS[design]
    req = design_request(dataset, d["design"], d["fraction"], seed)
    res = resolve(req, dataset, None, None, allow_class_removal=True)
    return res.forget_rows, res.retain_rows
