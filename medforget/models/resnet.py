"""torchvision ResNets adapted to small medical images.

ImageNet ResNets shrink the input 4x before the first block (7x7 stride-2 conv, then
max-pool), which leaves a 28 px image 7 px wide. MedMNIST's reference models for 28 and
64 px use a 3x3 stride-1 stem and no max-pool instead; so do we, for inputs up to 64 px.
"""

from __future__ import annotations

from torch import nn
from torchvision.models import resnet18 as tv_resnet18
from torchvision.models import resnet50 as tv_resnet50
from torchvision.models.resnet import BasicBlock, ResNet

from medforget.models._registry import register_model

SMALL_INPUT_MAX = 64


def _adapt(model: nn.Module, in_channels: int, image_size: int) -> nn.Module:
    if image_size <= SMALL_INPUT_MAX:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    elif in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    return model


@register_model
def resnet10(*, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """ResNet-10 (one BasicBlock per stage, 4.9M parameters): for tests and shadow models, where
    many models must be trained and depth matters less than turnaround."""
    return _adapt(ResNet(BasicBlock, [1, 1, 1, 1], num_classes=num_classes), in_channels, image_size)


@register_model
def resnet10s(*, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """ResNet-10 whose 3x3 stem has stride 2 for small inputs (a 28 px image is 14 px wide in the first stage):
    a quarter of ResNet-10's multiply-adds, for tests, shadow models and quick runs on a CPU
    (``benchmarks/arch_speed.py`` compares their training time and accuracy)."""
    model = resnet10(num_classes=num_classes, in_channels=in_channels, image_size=image_size)
    if image_size <= SMALL_INPUT_MAX:
        model.conv1.stride = (2, 2)
    return model


@register_model
def resnet18(*, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """ResNet-18 (11M parameters), the reference model of MedMNIST and of both unlearning studies."""
    return _adapt(tv_resnet18(weights=None, num_classes=num_classes), in_channels, image_size)


@register_model
def resnet50(*, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """ResNet-50 (23M parameters)."""
    return _adapt(tv_resnet50(weights=None, num_classes=num_classes), in_channels, image_size)
