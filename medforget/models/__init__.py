"""Model registry, in the manner of ``timm``: one file per model family, one uniform constructor.

``create_model(arch, num_classes=..., in_channels=..., image_size=...)`` is the only way
models are built, so a checkpoint's recorded ``arch`` always rebuilds the same network.
"""

from __future__ import annotations

from medforget.models import resnet  # noqa: F401  (registers the ResNet family)
from medforget.models._registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
