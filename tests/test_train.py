"""Training on real BreastMNIST: learns, is deterministic, keeps the best validation epoch."""

from __future__ import annotations

import torch

from medforget.checkpoint import load_checkpoint
from medforget.config import TrainConfig
from medforget.engine import fit, predict, resolve_device, train_model
from medforget.evaluation import set_metrics


def test_short_training_beats_the_majority_class(breast, breast_ckpt) -> None:
    ck = load_checkpoint(breast_ckpt)
    model = ck.build_model("cpu")
    m = set_metrics(predict(model, breast.test, torch.device("cpu")), breast.test.labels, breast.classes, [0])
    majority = float(torch.bincount(breast.test.labels).max()) / len(breast.test)
    assert m.accuracy is not None and m.accuracy > majority + 0.03, (m.accuracy, majority)
    assert m.fnr is not None and m.fnr < 1.0  # it finds some malignant lesions
    assert abs(ck.meta.metrics["test_accuracy"] - m.accuracy) < 1e-6


def test_training_is_deterministic_for_a_seed(breast) -> None:
    small = breast.train.subset(range(96))
    cfg = TrainConfig(arch="resnet10s", epochs=1, batch_size=32, seed=7)
    dev = resolve_device("cpu")
    a, _ = train_model(breast, cfg, dev, train_split=small)
    b, _ = train_model(breast, cfg, dev, train_split=small)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    c, _ = train_model(breast, cfg.model_copy(update={"seed": 8}), dev, train_split=small)
    assert not torch.equal(a.state_dict()["fc.weight"], c.state_dict()["fc.weight"])


def test_fit_restores_the_best_validation_epoch(breast) -> None:
    """The returned weights must be the epoch with the best val accuracy, not the last one."""
    from medforget.engine import build_model

    cfg = TrainConfig(arch="resnet10s", epochs=3, batch_size=64, lr=3e-3, seed=1)
    dev = resolve_device("cpu")
    model = build_model(cfg, breast, dev)
    result = fit(model, breast.train.subset(range(128)), cfg, dev, val=breast.val)
    best = max(result.history, key=lambda h: (h.val_acc, -h.val_loss))
    assert result.best_epoch == best.epoch
    acc = float((predict(model, breast.val, dev).argmax(1) == breast.val.labels).float().mean())
    assert abs(acc - best.val_acc) < 1e-6
