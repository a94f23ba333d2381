"""The model registry, in the manner of ``timm``'s ``_registry.py``: one uniform constructor per name."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from medforget.errors import MedforgetError

ModelFn = Callable[..., nn.Module]
_REGISTRY: dict[str, ModelFn] = {}


def register_model(fn: ModelFn) -> ModelFn:
    """Register a constructor under its function name."""
    _REGISTRY[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def create_model(arch: str, *, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """Build ``arch`` for ``num_classes`` outputs and ``in_channels`` x ``image_size`` inputs."""
    if arch not in _REGISTRY:
        raise MedforgetError(f"unknown architecture {arch!r}; available: {', '.join(list_models())}")
    return _REGISTRY[arch](num_classes=num_classes, in_channels=in_channels, image_size=image_size)


__all__ = ["create_model", "list_models", "register_model"]
