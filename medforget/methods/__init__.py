"""Unlearning methods: one file per method, registered by name, one common signature.

Every method is a function ``fn(task: UnlearnTask, params: P) -> nn.Module`` registered with
its pydantic parameter model ``P``. The defaults come from the literature (adapted to
the CPU budget: a few short epochs), and every field can be overridden by
``--param key=value`` or a config file; the validated parameters are recorded in the
output checkpoint and the report, so a run can be repeated exactly.

To add a method: create ``methods/<name>.py`` with a ``Params`` model and a function
decorated with ``@register("<name>", Params, summary=...)``, and import it below.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from torch import nn

from medforget.data import Dataset, Split
from medforget.engine import TrainConfig
from medforget.errors import MedforgetError, first_problem


class MethodParams(BaseModel):
    """Base of every method's parameters: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


P = TypeVar("P", bound=MethodParams)


@dataclass
class UnlearnTask:
    """What a method gets: the trained model, the forget and retain sets, and the context.

    ``model`` is a private copy; methods may change it in place and return it.
    ``original`` is a frozen copy of the model before unlearning (teachers, saliency).
    """

    model: nn.Module
    forget: Split
    retain: Split
    dataset: Dataset
    train_config: TrainConfig
    device: torch.device
    seed: int = 0
    show_progress: bool = True
    original: nn.Module = field(init=False)

    def __post_init__(self) -> None:
        self.original = copy.deepcopy(self.model).eval()
        for p in self.original.parameters():
            p.requires_grad_(False)

    @property
    def num_classes(self) -> int:
        return len(self.dataset.classes)

    @property
    def positive(self) -> list[int]:
        return self.dataset.positive


@dataclass(frozen=True)
class Method(Generic[P]):
    name: str
    fn: Callable[[UnlearnTask, P], nn.Module]
    params: type[P]
    summary: str

    def parse_params(self, overrides: dict[str, Any] | None = None) -> P:
        """Validate user overrides against this method's parameter model (bad values exit 2)."""
        try:
            return self.params(**(overrides or {}))
        except ValidationError as exc:
            raise MedforgetError(f"{self.name}: parameter {first_problem(exc, 'params')}") from None

    def __call__(self, task: UnlearnTask, params: P) -> nn.Module:
        return self.fn(task, params)


_REGISTRY: dict[str, Method[Any]] = {}


def register(name: str, params: type[P], summary: str) -> Callable[[Callable[[UnlearnTask, P], nn.Module]], Any]:
    def deco(fn: Callable[[UnlearnTask, P], nn.Module]) -> Callable[[UnlearnTask, P], nn.Module]:
        _REGISTRY[name] = Method(name=name, fn=fn, params=params, summary=summary)
        return fn

    return deco


def get_method(name: str) -> Method[Any]:
    if name not in _REGISTRY:
        raise MedforgetError(f"unknown method {name!r}; available: {', '.join(list_methods())}")
    return _REGISTRY[name]


def list_methods() -> list[str]:
    return list(_REGISTRY)


# Registration order is the order methods are listed and benchmarked.
from medforget.methods import (  # noqa: E402,F401
    finetune,
    l1_sparse,
    neggrad,
    random_label,
    retrain,
    salun,
    salun_cra,
    scrub,
    ssd,
)

__all__ = ["Method", "MethodParams", "UnlearnTask", "get_method", "list_methods", "register"]
