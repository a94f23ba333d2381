"""How a training run uses its device: precision, memory format, compilation, determinism, processes.

On CUDA, training runs in mixed precision (bf16 where the GPU supports it, else fp16 with a
gradient scaler), channels_last, with pinned memory and non-blocking copies for lazily read data,
optionally ``torch.compile``-d; ``deterministic`` turns on cuDNN determinism and
``torch.use_deterministic_algorithms``. On CPU the same code runs with autocast and the scaler
disabled (bf16 autocast is 10-50x slower on CPUs without native support), so the CPU test suite
exercises the path a GPU takes. Every checkpoint records what was used (:class:`RuntimeRecord`).

The options are a setting of the run, not of the recipe (the same recipe on another machine is the
same experiment), so they are set for a block of code, as :func:`medforget.data.reading` is:
``with runtime.use(RuntimeOptions(compile=True)): train(...)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import BaseModel, Field
from torch import nn

from medforget.config import RuntimeOptions
from medforget.errors import MedforgetError

_OPTIONS: ContextVar[RuntimeOptions | None] = ContextVar("medforget_runtime", default=None)


class RuntimeRecord(BaseModel):
    """How a model was trained, recorded in its checkpoint next to the recipe."""

    device: str = Field(description="cpu, or cuda with the GPU's name")
    precision: Literal["fp32", "bf16", "fp16"] = Field(description="Autocast dtype of forward passes (fp32: none)")
    grad_scaler: bool = Field(description="Loss scaling (fp16)")
    channels_last: bool = Field(description="Model and inputs in channels_last memory format")
    compiled: bool = Field(description="The training forward/backward ran through torch.compile")
    deterministic: bool = Field(description="cuDNN determinism and torch.use_deterministic_algorithms were on")
    world_size: int = Field(1, ge=1, description="Processes that trained it together (torchrun/DDP)")
    torch_version: str = Field(default_factory=lambda: str(torch.__version__))


@contextmanager
def use(options: RuntimeOptions) -> Iterator[RuntimeOptions]:
    """Train with ``options`` inside this block (the default: automatic precision, no compile, not deterministic)."""
    token = _OPTIONS.set(options)
    try:
        yield options
    finally:
        _OPTIONS.reset(token)


def current() -> RuntimeOptions:
    """The runtime options in force."""
    return _OPTIONS.get() or RuntimeOptions()


def _precision(options: RuntimeOptions, device: torch.device) -> Literal["fp32", "bf16", "fp16"]:
    if device.type != "cuda":
        if options.precision not in ("auto", "fp32"):
            raise MedforgetError(f"--precision {options.precision} needs CUDA: on CPU medforget trains in fp32")
        return "fp32"
    if options.precision == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return options.precision


@dataclass
class Runtime:
    """The resolved options for one device: what autocast, the scaler and the wrappers do."""

    device: torch.device
    options: RuntimeOptions
    precision: Literal["fp32", "bf16", "fp16"]
    world_size: int = 1

    @classmethod
    def for_device(cls, device: torch.device, world_size: int = 1) -> Runtime:
        """The options in force, resolved for ``device``."""
        options = current()
        return cls(device, options, _precision(options, device), world_size)

    @property
    def dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)

    def autocast(self) -> torch.autocast:
        """Mixed precision for forward passes (disabled in fp32: the same code path on CPU)."""
        return torch.autocast(self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None)

    @property
    def needs_scaler(self) -> bool:
        """fp16 gradients underflow without loss scaling; bf16 and fp32 need none."""
        return self.precision == "fp16"

    def scaler(self) -> torch.amp.GradScaler:
        """A gradient scaler, enabled for fp16 only (a pass-through otherwise)."""
        return torch.amp.GradScaler("cuda", enabled=self.needs_scaler)

    def compiled(self, model: nn.Module) -> nn.Module:
        """``model`` through ``torch.compile`` if asked (the weights stay ``model``'s)."""
        return torch.compile(model) if self.options.compile else model

    @contextmanager
    def determinism(self) -> Iterator[None]:
        """cuDNN and PyTorch determinism as asked for this block (restored after); cuDNN autotuning otherwise."""
        before = (
            torch.are_deterministic_algorithms_enabled(),
            torch.backends.cudnn.deterministic,
            torch.backends.cudnn.benchmark,
        )
        if self.options.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it for repeatable sums
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(before[0])
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[1], before[2]

    def record(self) -> RuntimeRecord:
        """What a checkpoint records of this run."""
        name = "cpu"
        if self.device.type == "cuda":
            name = f"cuda ({torch.cuda.get_device_name(self.device)})"
        return RuntimeRecord(
            device=name,
            precision=self.precision,
            grad_scaler=self.needs_scaler,
            channels_last=True,
            compiled=self.options.compile,
            deterministic=self.options.deterministic,
            world_size=self.world_size,
        )


__all__ = ["Runtime", "RuntimeRecord", "current", "use"]
