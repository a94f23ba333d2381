"""A study's config file: datasets, forget designs, methods and seeds, validated before any work."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from medforget.config import TrainConfig
from medforget.errors import MedforgetError, first_problem
from medforget.fileio import read_document
from medforget.methods import get_method, list_methods


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetConfig(_Strict):
    """One dataset and the recipe its original model (and every retrain) is trained with."""

    name: str = Field(description="MedMNIST flag (breastmnist, pneumoniamnist, dermamnist, pathmnist...)")
    size: int = Field(28, description="Image side in pixels")
    positive: list[str] = Field(default_factory=list, description="Disease class(es); default per dataset")
    binary: bool = Field(False, description="Collapse a multi-class dataset to positive vs negative")
    manifest: str | None = Field(None, description="Patient/attribute manifest CSV (needed for patient designs)")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Recipe of the original and retrain models")
    calibrations: dict[str, str] = Field(
        default_factory=dict,
        description="Forget design name -> calibration file (medforget calibrate): each run's report then also "
        "carries the verdict without retraining, for comparison",
    )


class ForgetDesign(_Strict):
    """How a synthetic deletion request is drawn from the training split (a new draw per seed)."""

    name: str = Field(description="Label used in tables, plots and the run folder (e.g. random20)")
    design: Literal["random", "positive-heavy", "positive-only", "patients"] = Field(
        description="random samples; mostly/only the disease class; or whole patients (needs a manifest for "
        "multi-image patients)"
    )
    fraction: float = Field(gt=0, lt=1, description="Share of the training samples (of patients for 'patients')")
    positive_share: float = Field(0.8, ge=0, le=1, description="Disease share of a positive-heavy request")


class MethodRun(_Strict):
    """A method and its parameters; ``label`` tells two settings of one method apart."""

    method: str
    label: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    preset: str = Field("fast", description="The method's named parameter set (fast, published, v1...)")
    config: str | None = Field(None, description="Parameters from a file (e.g. written by medforget tune)")

    @property
    def name(self) -> str:
        return self.label or self.method


class StudyConfig(_Strict):
    """A study: the grid, and what to measure. Validated before any work starts."""

    name: str = Field(description="Names the output folder")
    description: str = ""
    datasets: list[DatasetConfig] = Field(min_length=1)
    forget: list[ForgetDesign] = Field(min_length=1)
    methods: list[MethodRun] = Field(min_length=1, description="Method names or {method, label, params} tables")
    seeds: list[int] = Field(
        default=[0],
        min_length=1,
        description="Each seed draws new forget sets and seeds the methods; the original model uses the "
        "recipe's own seed, the K retrains seeds recipe+1 ... recipe+K (never the original's)",
    )
    retrains: int = Field(3, ge=1, description="K: retrains each run's verdict compares with (shared by its methods)")
    fn_cost: float = Field(5.0, ge=0)
    fp_cost: float = Field(1.0, ge=0)
    device: str = "auto"

    @field_validator("methods", mode="before")
    @classmethod
    def _names_to_runs(cls, v: Any) -> Any:
        return [{"method": m} if isinstance(m, str) else m for m in v] if isinstance(v, list) else v

    @model_validator(mode="after")
    def _check(self) -> StudyConfig:
        known = set(list_methods())
        for m in self.methods:
            if m.method not in known:
                raise ValueError(f"unknown method {m.method!r}; known: {', '.join(sorted(known))}")
        for what, names in (
            ("method label", [m.name for m in self.methods]),
            ("forget design name", [f.name for f in self.forget]),
            ("dataset", [d.name for d in self.datasets]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"duplicate {what}: {', '.join(dupes)} (give each a distinct label)")
        return self


def load_study_config(path: str | Path) -> StudyConfig:
    """Read a TOML or YAML study config; any problem becomes one clear line."""
    path = Path(path)
    try:
        cfg = StudyConfig.model_validate(read_document(path, "study config"))
    except ValidationError as exc:
        raise MedforgetError(f"study config {path}: {first_problem(exc, '(top level)')}") from None
    for m in cfg.methods:
        if m.config is not None:
            cfg_path = (path.parent / m.config) if not Path(m.config).is_absolute() else Path(m.config)
            m.config = str(cfg_path)
            if not cfg_path.exists():
                raise MedforgetError(f"study config {path}: method {m.name}: config file {cfg_path} not found")
    return cfg


def method_params(run: MethodRun) -> dict[str, Any]:
    """A run's parameters: its config file (if any), then its inline ``params`` on top, validated."""
    from medforget.tune import read_method_config

    params: dict[str, Any] = {}
    if run.config:
        params.update(read_method_config(run.config, run.method).params)
    params.update(run.params)
    return get_method(run.method).parse_params(params, run.preset).model_dump()


def study_config_schema() -> dict[str, Any]:
    return StudyConfig.model_json_schema()
