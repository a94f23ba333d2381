"""Model registry and the small-input ResNet stem."""

from __future__ import annotations

import pytest
import torch

from medforget.errors import MedforgetError
from medforget.models import create_model, list_models


@pytest.mark.parametrize("arch", ["resnet10", "resnet18", "resnet50"])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [28, 64])
def test_output_shape_for_channels_and_sizes(arch: str, channels: int, size: int) -> None:
    model = create_model(arch, num_classes=3, in_channels=channels, image_size=size).eval()
    with torch.no_grad():
        out = model(torch.randn(2, channels, size, size))
    assert out.shape == (2, 3)
    # small inputs keep their resolution into the first stage: 3x3 stride-1 stem, no max-pool
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)


@pytest.mark.parametrize("size", [28, 64])
def test_resnet10s_is_resnet10_with_a_stride_2_stem_for_small_inputs(size: int) -> None:
    """resnet10s is resnet10 with a stride-2 stem: the first stage sees a 28 px image at 14 px."""
    fast = create_model("resnet10s", num_classes=2, in_channels=1, image_size=size)
    full = create_model("resnet10", num_classes=2, in_channels=1, image_size=size)
    assert fast.conv1.stride == (2, 2) and fast.conv1.kernel_size == (3, 3)
    assert {k: v.shape for k, v in fast.state_dict().items()} == {k: v.shape for k, v in full.state_dict().items()}
    seen = []
    fast.layer1.register_forward_hook(lambda m, i, o: seen.append(o.shape[-1]))
    with torch.no_grad():
        assert fast.eval()(torch.randn(2, 1, size, size)).shape == (2, 2)
    assert seen == [size // 2]


def test_large_inputs_keep_the_imagenet_stem() -> None:
    model = create_model("resnet18", num_classes=2, in_channels=1, image_size=128)
    assert model.conv1.kernel_size == (7, 7) and model.conv1.in_channels == 1
    assert not isinstance(model.maxpool, torch.nn.Identity)


def test_unknown_arch_is_a_clear_error() -> None:
    assert {"resnet18", "resnet50"} <= set(list_models())
    with pytest.raises(MedforgetError, match="unknown architecture 'vit'"):
        create_model("vit", num_classes=2, in_channels=1, image_size=28)


def test_predict_gives_the_same_logits_in_row_order_whatever_the_batch_size(breast) -> None:
    """Evaluation batches (engine.PREDICT_BATCH) change speed, never results: same rows, same logits."""
    from medforget.engine import PREDICT_BATCH, predict

    torch.manual_seed(0)
    model = create_model("resnet10", num_classes=2, in_channels=1, image_size=28)
    cpu = torch.device("cpu")
    whole = predict(model, breast.test, cpu, len(breast.test))
    assert PREDICT_BATCH["cpu"] < len(breast.test)  # the default splits BreastMNIST's test set into batches
    for logits in (predict(model, breast.test, cpu), predict(model, breast.test, cpu, 7)):
        assert logits.shape == whole.shape and torch.allclose(logits, whole, atol=1e-5)
