"""The method registry, in the manner of ``timm``'s ``_registry.py``: a name, a function, a parameter model.

Every method is a function ``fn(task: UnlearnTask, params: P) -> nn.Module`` registered with its
pydantic parameter model ``P`` next to its code. The registry validates user overrides against
that model, so a misspelt or out-of-range parameter is one clear line, never a silent default.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from torch import nn

from medforget.config import TrainConfig
from medforget.data import Dataset, Split
from medforget.engine import predict
from medforget.errors import MedforgetError, first_problem

if TYPE_CHECKING:
    from medforget.methods._stop import Stopping  # it imports this module


class MethodParams(BaseModel):
    """Base of every method's parameters: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


P = TypeVar("P", bound=MethodParams)


@dataclass
class UnlearnTask:
    """What a method gets: the trained model, the forget and retain sets, and the context.

    ``model`` is a private copy; methods may change it in place and return it.
    ``original`` is a frozen copy of the model before unlearning (teachers, saliency).
    ``stopping`` is left by an iterative method's stopping rule (:class:`medforget.methods._stop.Stopping`):
    when it checked, what it measured, and why it stopped; None for a method without steps.
    ``original_logits`` holds the original's logits on the ``forget`` and ``val`` sets (rows in their order) when
    its checkpoint recorded them (:mod:`medforget.outputs`); a method uses them instead of running the original.
    ``calibrated_auc`` is where retrains put the forget samples' AUC against validation (from a calibration given
    to unlearn), for a stopping rule with ``stop_target="calibrated"``; None without one.
    """

    model: nn.Module
    forget: Split
    retain: Split
    dataset: Dataset
    train_config: TrainConfig
    device: torch.device
    seed: int = 0
    original_logits: dict[str, torch.Tensor] = field(default_factory=dict)
    calibrated_auc: float | None = None
    original: nn.Module = field(init=False)
    stopping: Stopping | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.original = copy.deepcopy(self.model).eval()
        for p in self.original.parameters():
            p.requires_grad_(False)

    def original_on(self, name: str) -> torch.Tensor:
        """The original's logits on the ``forget`` or ``val`` set: recorded, or computed now."""
        recorded = self.original_logits.get(name)
        split = self.forget if name == "forget" else self.dataset.val
        return predict(self.original, split, self.device) if recorded is None else recorded

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

    @property
    def presets(self) -> dict[str, dict[str, Any]]:
        """Named parameter sets: ``fast`` (the defaults, sized for a CPU) and, where there is one, ``published``."""
        return {"fast": {}, **getattr(self.params, "PRESETS", {})}

    @property
    def search_space(self) -> dict[str, tuple[str, float, float]]:
        """The tunable parameters and their ranges, declared next to the method (``Params.SEARCH``)."""
        return dict(getattr(self.params, "SEARCH", {}))

    def parse_params(self, overrides: dict[str, Any] | None = None, preset: str = "fast") -> P:
        """Validate a preset with user overrides on top against this method's parameter model (bad values exit 2).

        An unknown parameter is refused: a method never silently ignores a setting it does not use.
        """
        if preset not in self.presets:
            raise MedforgetError(f"{self.name} has no preset {preset!r}; presets: {', '.join(self.presets)}")
        try:
            return self.params(**{**self.presets[preset], **(overrides or {})})
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


__all__ = ["Method", "MethodParams", "UnlearnTask", "get_method", "list_methods", "register"]
