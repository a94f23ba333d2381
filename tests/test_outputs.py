"""Recorded outputs: a checkpoint carries its model's logits, under its digest, and never those of forgotten rows."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save as st_save

from medforget.checkpoint import header_metadata, load_checkpoint, save_checkpoint
from medforget.config import UnlearnSettings
from medforget.engine import predict
from medforget.errors import TamperedError
from medforget.outputs import PREFIX, lookup, only_rows
from medforget.request import design_request
from medforget.session import open_task
from medforget.unlearn import run_unlearning

CPU = torch.device("cpu")


def test_train_records_the_models_logits_on_every_split(breast, breast_ckpt: Path) -> None:
    ck = load_checkpoint(breast_ckpt)
    assert ck.meta.recorded_outputs == ["test", "train", "val"]
    assert not any(k.startswith(PREFIX) for k in ck.state)  # the weights alone build the model
    model = ck.build_model(CPU)
    for name, split in (("train", breast.train), ("val", breast.val), ("test", breast.test)):
        assert ck.outputs[name].shape == (len(split), 2)
        assert torch.allclose(ck.outputs[name], predict(model, split, CPU), atol=1e-4)


def test_edited_outputs_do_not_load(breast_ckpt: Path, tmp_path: Path) -> None:
    raw = breast_ckpt.read_bytes()
    ck = load_checkpoint(breast_ckpt)
    edited = ck.outputs | {"val": ck.outputs["val"].flip(1)}  # every validation prediction reversed
    state = ck.state | {PREFIX + k: v.contiguous() for k, v in edited.items()}
    target = tmp_path / "edited.safetensors"
    target.write_bytes(st_save(state, metadata=header_metadata(raw)))  # the original header, unchanged
    with pytest.raises(TamperedError, match="weights hash mismatch"):
        load_checkpoint(target)


@pytest.fixture(scope="module")
def runs(breast, breast_ckpt: Path, tmp_path_factory: pytest.TempPathFactory):
    """The same SalUn-CRA request on the checkpoint as trained and on a copy without recorded outputs."""
    ck = load_checkpoint(breast_ckpt)
    bare = tmp_path_factory.mktemp("outputs") / "bare.safetensors"
    save_checkpoint(bare, ck.state, ck.meta)
    req = design_request(breast, "positive-heavy", 0.2, 0)
    settings = UnlearnSettings(method="salun-cra", seed=0, device="cpu", baseline="none")
    out = {}
    for name, path in (("recorded", breast_ckpt), ("bare", bare)):
        task = open_task(path, req, device="cpu")
        out[name] = (task, run_unlearning(task, settings))
    return out


def test_recorded_outputs_replace_the_originals_forward_passes_without_changing_the_result(runs) -> None:
    (task, rec), (bare_task, bare) = runs["recorded"], runs["bare"]
    assert sorted(task.method_task(0).original_logits) == ["forget", "val"]
    assert bare_task.method_task(0).original_logits == {} and bare_task.recorded_eval_logits() is None
    # the same passes, batched differently: equal here, and within float noise on any CPU
    checks, bare_checks = rec.report.stopping.checks, bare.report.stopping.checks
    assert [c.step for c in checks] == [c.step for c in bare_checks] and rec.report.stopping.steps > 0
    assert [c.value for c in checks] == pytest.approx([c.value for c in bare_checks], abs=1e-3)
    for a, b in ((rec.report.original, bare.report.original), (rec.report.unlearned, bare.report.unlearned)):
        assert a.test.accuracy == pytest.approx(b.test.accuracy, abs=1e-6)
        assert a.test_auroc == pytest.approx(b.test_auroc, abs=1e-6)
        assert a.forget.accuracy == pytest.approx(b.forget.accuracy, abs=1e-6)


def test_the_unlearned_checkpoint_records_no_output_of_a_forgotten_sample(runs) -> None:
    task, result = runs["recorded"]
    train = result.outputs["train"]
    forgotten = torch.as_tensor(task.resolved.forget_rows)
    kept = torch.as_tensor(task.resolved.retain_rows)
    assert bool(torch.isnan(train[forgotten]).all())
    assert torch.allclose(train[kept], predict(result.model, task.retain, CPU), atol=1e-4)
    assert torch.allclose(result.outputs["test"], predict(result.model, task.dataset.test, CPU), atol=1e-4)


def test_only_recorded_rows_are_used(breast) -> None:
    outputs = {"train": only_rows(4, [0, 2], torch.tensor([[1.0, 2.0], [3.0, 4.0]]))}
    two = breast.train.subset([0, 1])
    assert torch.equal(lookup(outputs, "train", [2, 0], two, 2), torch.tensor([[3.0, 4.0], [1.0, 2.0]]))
    assert lookup(outputs, "train", [0, 1], two, 2) is None  # row 1 was forgotten: NaN
    assert lookup(outputs, "train", [0, 7], two, 2) is None  # no such row
    assert lookup(outputs, "train", [0, 2], two, 3) is None  # another number of classes
    assert lookup({"train": outputs["train"].long()}, "train", [0, 2], two, 2) is None  # not logits
    assert lookup(outputs, "val", None, breast.val, 2) is None  # not recorded
