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

# Registration order is the order methods are listed and benchmarked.
from medforget.methods import (  # noqa: F401
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
from medforget.methods._registry import Method, MethodParams, UnlearnTask, get_method, list_methods, register
from medforget.methods._stop import StopCheck, Stopping

__all__ = ["Method", "MethodParams", "StopCheck", "Stopping", "UnlearnTask", "get_method", "list_methods", "register"]
