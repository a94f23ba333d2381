"""The settings documents of medforget: pure pydantic models, no computation.

Every option a user can set lives in one model here, with its default and its description;
the command line reads its defaults from these models rather than keeping a second copy.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from medforget import __version__

CONFIG_FORMAT = "medforget.method-config/1"


class TrainConfig(BaseModel):
    """Everything that determines a training run; recorded in every checkpoint so it can be repeated."""

    arch: str = Field("resnet18", description="Registered architecture (see medforget.models)")
    epochs: int = Field(20, ge=1, description="Passes over the training split")
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0, description="Peak learning rate")
    optimizer: Literal["adam", "sgd"] = Field("adam", description="MedMNIST's reference recipe uses Adam")
    momentum: float = Field(0.9, ge=0, description="SGD momentum")
    weight_decay: float = Field(0.0, ge=0)
    schedule: Literal["cosine", "multistep", "constant"] = Field(
        "cosine", description="cosine annealing; multistep = x0.1 at 50% and 75% of epochs (MedMNIST)"
    )
    seed: int = Field(0, description="Seeds model initialisation and batch order")


class ReadOptions(BaseModel):
    """How this machine reads a dataset's images: never recorded, since the data and results are the same either way."""

    lazy: bool | None = Field(
        None,
        description="Read images from an on-disk uint8 cache a batch at a time (True), hold them in memory (False), "
        "or decide by size (None: lazily above 2 GiB of decoded images)",
    )
    workers: int = Field(
        0, ge=0, description="Processes decoding images into the cache, threads reading batches ahead (0: none)"
    )


class RuntimeOptions(BaseModel):
    """How training uses the device (recorded in the checkpoint as it was resolved; not part of the recipe)."""

    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: on CUDA bf16 where supported, else fp16 with a gradient scaler; fp32 on CPU"
    )
    compile: bool = Field(False, description="Run training through torch.compile")
    deterministic: bool = Field(
        False, description="cuDNN determinism and torch.use_deterministic_algorithms (slower on GPUs)"
    )


class RayOptions(BaseModel):
    """Where ``study``/``tune --executor ray`` run: a Ray cluster (or a local instance) and each run's share of it."""

    address: str | None = Field(
        None, description="Ray cluster address (ray://host:10001, or auto); default: start a local Ray instance"
    )
    cpus_per_run: float = Field(1.0, gt=0, description="CPUs each run (a grid cell, a trial) reserves")
    gpus_per_run: float = Field(0.0, ge=0, description="GPUs each run reserves (0 on CPU clusters)")
    num_cpus: int | None = Field(None, ge=1, description="CPUs of a local Ray instance (default: every core)")


class CsvLayout(BaseModel):
    """How an image CSV is laid out: medforget's own columns, or a published dataset's files as they come."""

    format: Literal["plain", "chexpert"] = Field(
        "plain", description="plain: sample_id,path,label,split[,patient_id,...]; chexpert: CheXpert's train.csv"
    )
    uncertain: Literal["positive", "negative", "drop"] = Field(
        "positive",
        description="chexpert: an uncertain (-1) finding counts as present (U-Ones: an uncertain finding is followed "
        "up), absent (U-Zeros), or the image is left out; a blank finding is absent (not mentioned in the report)",
    )
    views: Literal["frontal", "all"] = Field("frontal", description="chexpert: frontal views only, or lateral too")
    classes: list[str] | None = Field(None, description="plain: class names in label order (default: sorted labels)")


class Thresholds(BaseModel):
    """Clinical tolerances of the verdict (fractions: 0.05 = 5 percentage points), against the retrains' mean.

    A difference within the tolerance is agreed to be irrelevant; whether the data can *show* it is within
    is decided against the retrains' spread (see :mod:`medforget.verify.verdict`).
    """

    forget_accuracy_tolerance: float = Field(
        0.05,
        ge=0,
        description="|forget accuracy minus class-matched test accuracy (bias refit) - retrains'| at most this",
    )
    evidence_tolerance: float = Field(
        0.5, ge=0, description="|per-sample z difference, forget - matched test| at most this (retrain SDs)"
    )
    forget_auc_tolerance: float = Field(
        0.05, ge=0, description="Calibrated verdict: |forget-vs-unseen confidence AUC - retrains'| at most this"
    )
    mia_tolerance: float = Field(0.10, ge=0, description="|MIA efficacy - retrains'| at most this")
    max_test_accuracy_drop: float = Field(0.03, ge=0, description="retrains' test accuracy - unlearned at most this")
    max_auroc_drop: float = Field(0.03, ge=0, description="retrains' test AUROC - unlearned at most this")
    max_fnr_increase: float = Field(
        0.05, ge=0, description="unlearned test FNR - retrains', both at the operating point, at most this"
    )
    alpha: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="Largest chance that the verdict fails an exact retrain: shared among the checks, it sets how "
        "far beyond the retrains' spread a difference must lie to fail",
    )


class UnlearnSettings(BaseModel):
    """How ``medforget unlearn`` honours a request and verifies the result (the command line's defaults)."""

    method: str = Field("salun-cra", description="Unlearning method (see 'medforget methods')")
    params: dict[str, Any] = Field(default_factory=dict, description="Method parameters (validated by the method)")
    preset: str = Field("fast", description="The method's named parameter set under params: fast, published, ...")
    seed: int = Field(0, description="Seed of the unlearning method")
    recalibrate: bool = Field(
        True,
        description="Reset the decision threshold on validation so sensitivity is at least the original's (the "
        "unlearned model and the retrains alike)",
    )
    baseline: str = Field(
        "retrain", description="retrain (K cached retrains), calibrated, none, or a retrained checkpoint path"
    )
    retrains: int = Field(3, ge=1, description="K: retrains the verdict compares with (3 at least for a full verdict)")
    workers: int = Field(
        0, ge=0, description="Processes training the retrains in parallel on CPU (0: one per core, up to K)"
    )
    calibration: Path | None = Field(
        None, description="With baseline 'calibrated': the calibration file written by 'medforget calibrate'"
    )
    fn_cost: float = Field(5.0, ge=0, description="Clinical cost of a missed disease (false negative)")
    fp_cost: float = Field(1.0, ge=0, description="Clinical cost of a false alarm (false positive)")
    thresholds: Thresholds = Field(default_factory=Thresholds)
    allow_class_removal: bool = Field(False, description="Allow removing every training sample of a class")
    device: str = Field("auto", description="auto (CUDA if present), cpu or cuda")
    show_ids: bool = Field(False, description="Name offending IDs in refusals (default: their positions only)")
    accept_unsigned: bool = Field(
        False, description="With a key, use an input checkpoint that is not signed (recorded in the output)"
    )


class AuditOptions(BaseModel):
    """What ``medforget audit`` checks and how strictly (the command line's defaults)."""

    mia: bool = Field(True, description="Membership inference on the requested samples (needs the data)")
    deep: int = Field(0, ge=0, description="Also run LiRA with N shadow models (N >= 2; trains N models)")
    shadow_arch: str | None = Field(None, description="Shadow model architecture (default: the checkpoint's)")
    shadow_epochs: int | None = Field(None, ge=1, description="Shadow training epochs (default: the recipe's)")
    mia_tolerance: float = Field(
        0.10, ge=0, description="Verdict: max excess of requested samples judged members over test samples"
    )
    alpha: float = Field(0.05, gt=0, lt=1, description="Verdict: significance level a membership failure must reach")
    seed: int = Field(0, description="Seed of the attacks' splits and of the shadow models")
    device: str = Field("auto", description="auto (CUDA if present), cpu or cuda")
    show_ids: bool = Field(False, description="Name requested samples in the report (default: counts and digests)")


class TuneSettings(BaseModel):
    """What ``medforget tune`` searches and under which constraint (the command line's defaults)."""

    method: str = Field("salun-cra", description="Method to tune")
    trials: int = Field(20, ge=1, description="Optuna trials (each one unlearning run)")
    fraction: float = Field(0.2, gt=0, lt=1, description="Proxy forget set: share of training samples")
    design: str = Field("random", description="Proxy forget set: random, positive-heavy or positive-only")
    fnr_slack: float = Field(0.01, ge=0, description="Constraint: validation FNR at most this far above the retrain's")
    search: list[str] | None = Field(None, description="Parameters to search (default: all tunable)")
    fixed: dict[str, Any] = Field(default_factory=dict, description="Parameters held fixed")
    seed: int = Field(0, description="Seed of the proxy draw, the sampler and the method")
    device: str = "auto"


class CalibrateSettings(BaseModel):
    """What ``medforget calibrate`` measures: proxy requests like the expected ones, each retrained K times."""

    design: str = Field("random", description="Proxy requests: random, positive-heavy or positive-only")
    fraction: float = Field(0.2, gt=0, lt=1, description="Proxy size: share of the training samples")
    proxies: int = Field(2, ge=1, description="Proxy requests to draw")
    retrains: int = Field(3, ge=2, description="Retrains of each proxy (their spread is the noise floor)")
    seed: int = Field(1000, description="Seed of the first proxy draw (the next ones use seed + 1, ...)")
    workers: int = Field(0, ge=0, description="Processes training retrains in parallel on CPU (0: one per core)")
    device: str = Field("auto", description="auto (CUDA if present), cpu or cuda")


def default(model: type[BaseModel], name: str) -> Any:
    """The default of one field, for the command line (so its defaults are never a second copy)."""
    field = model.model_fields[name]
    return field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]


class TuningRecord(BaseModel):
    """How a configuration was found, and what finding it cost."""

    created_at: datetime
    medforget_version: str = __version__
    checkpoint_sha256: str
    dataset: str
    proxy: str = Field(description="How the proxy forget set was drawn")
    n_proxy_forget: int
    objective: str = "average |gap| to the proxy retrain over retain, forget and validation accuracy and MIA efficacy"
    constraint: str
    fnr_slack: float
    trials: int
    feasible_trials: int
    best_trial: int
    best_average_gap: float
    best_fnr_increase: float | None
    search_space: dict[str, list[Any]]
    tuning_seconds: float = Field(
        description="Wall time of the whole search, including the proxy retrain (its recorded time when the "
        "retrain was reused from the cache)"
    )
    retrain_seconds: float = Field(description="Wall time of the proxy retrain (the cost each request avoids)")
    method_seconds: float = Field(description="Wall time of the best trial's unlearning run")
    break_even_requests: float | None = Field(
        description="Requests after which tuning once + unlearning each is cheaper than retraining each: "
        "tuning_seconds / (retrain_seconds - method_seconds)"
    )


class MethodConfig(BaseModel):
    """A method and its parameters, as ``medforget tune`` writes and ``unlearn --config`` reads it."""

    model_config = ConfigDict(extra="forbid")
    format: str = CONFIG_FORMAT
    method: str
    params: dict[str, Any]
    tuning: TuningRecord | None = None


__all__ = [
    "AuditOptions",
    "CalibrateSettings",
    "CsvLayout",
    "MethodConfig",
    "RayOptions",
    "ReadOptions",
    "RuntimeOptions",
    "Thresholds",
    "TrainConfig",
    "TuneSettings",
    "TuningRecord",
    "UnlearnSettings",
    "default",
]
