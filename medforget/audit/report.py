"""The audit report: the document ``medforget audit --json`` prints (schema: ``medforget schema audit``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field

from medforget import __version__
from medforget.keys import IdHasher
from medforget.ledger.lineage import LineageResult

AUDIT_FORMAT = "medforget-audit/1"

CheckStatus = Literal["pass", "fail", "inconclusive", "skipped"]
VerdictStatus = Literal["pass", "fail", "inconclusive"]
VarianceMode = Literal["global", "pooled", "per-sample"]

LOG_LR_CLIP = 50.0
"""Reported log likelihood ratios are clipped to +-50 (LR e^50 ~ 5e21), so the JSON never holds infinities."""


class AuditCheck(BaseModel):
    """One question the audit answered, in one line."""

    name: str = Field(
        description="integrity, lineage, request, membership (population), membership (LiRA) or membership (U-LiRA)"
    )
    status: CheckStatus = Field(description="skipped: not asked for (no ledger, no request, no --deep)")
    summary: str


class AuditVerdict(BaseModel):
    status: VerdictStatus = Field(
        description="fail if any check failed; inconclusive if none failed but a membership test could not "
        "confirm a difference it saw (too few samples); pass otherwise"
    )
    summary: str


class IntegrityResult(BaseModel):
    """What the file itself says, and whether it can be trusted."""

    ok: bool
    path: str
    size_bytes: int
    sha256: str = Field(description="SHA-256 of the file as audited")
    weights_sha256: str | None = Field(None, description="Hash of the tensors recorded in the metadata (verified)")
    signed: bool | None = Field(None, description="Whether the header carries an HMAC signature (None if unreadable)")
    signature_key_id: str | None = Field(None, description="Key id the signature claims, if any")
    signature_verified: bool = Field(False, description="Verified under the auditor's key")
    error: str | None = Field(None, description="Why the file does not verify")
    notes: list[str] = Field(default_factory=list)


class RequestCoverage(BaseModel):
    """Whether a request's IDs are in the checkpoint's forgotten set."""

    ok: bool
    request: str | None = Field(description="The request's reference: in clear with --show-ids, else its keyed digest")
    n_samples: int = Field(description="Samples checked: the request's, plus its patients' samples if data was given")
    n_patients: int
    n_missing_samples: int
    n_missing_patients: int
    missing_samples: list[str] = Field(
        default_factory=list, description="Missing samples: IDs with --show-ids, else keyed digests (or positions)"
    )
    missing_patients: list[str] = Field(
        default_factory=list, description="Missing patients: IDs with --show-ids, else keyed digests (or positions)"
    )
    record_key_id: str | None = Field(description="Key id of the forgotten record; None for a salted record")
    expanded_patients: bool = Field(description="Patients were expanded to their samples through the dataset")


class SampleScore(BaseModel):
    sample: str = Field(description="The sample: its ID with --show-ids, else a keyed digest (or its position)")
    label: int
    member_score: float = Field(description="Attack's membership probability (>= 0.5 means 'member')")


class PopulationAudit(BaseModel):
    """The population attack on the requested samples, against held-out test samples."""

    n_requested: int
    n_reference: int = Field(description="Held-out test samples (never used to fit the attack)")
    n_attack_members: int
    n_attack_non_members: int
    attack_auc: float = Field(description="Attack AUC on its own held-out half (0.5 = the attack sees nothing)")
    requested_non_member_rate: float
    reference_non_member_rate: float = Field(
        description="Non-member rate of the held-out references, weighted to the requested samples' class mix"
    )
    gap: float = Field(
        description="reference - requested non-member rate: > 0, requested look like members (under-forgetting); "
        "< 0, requested look unseen more often than unseen data (over-forgetting, which singles them out)"
    )
    p_value: float = Field(
        description="Two-sided Cochran-Mantel-Haenszel test, stratified by class, that the two rates differ"
    )
    requested: list[SampleScore] = Field(default_factory=list)


class SampleLikelihood(BaseModel):
    """LiRA on one sample: the audited model's confidence against the shadow models' in/out Gaussians."""

    sample: str = Field(description="The sample: its ID with --show-ids, else a keyed digest (or its position)")
    label: int
    phi: float = Field(description="Audited model's log(p/(1-p)) of the true class")
    mu_in: float
    sd_in: float
    mu_out: float
    sd_out: float
    n_in: int = Field(description="Shadows trained with this sample")
    n_out: int = Field(description="Shadows trained without it")
    log_lr: float = Field(description=f"log N(phi; in) - log N(phi; out), clipped to +-{LOG_LR_CLIP:g}")
    lr: float = Field(description="exp(log_lr): > 1 means the sample looks like a training member")


class TprAtFpr(BaseModel):
    target_fpr: float
    achieved_fpr: float = Field(description="Fraction of reference samples above the threshold (<= target)")
    threshold_log_lr: float | None = Field(description="Requested samples with log LR above this count as found")
    tpr: float = Field(description="Fraction of requested samples above the threshold")


class LiraAudit(BaseModel):
    """The shadow-model attack on the requested samples: LiRA (Carlini et al. 2022), or U-LiRA (Hayes et al.
    2024) when the checkpoint was made by an approximate unlearning method."""

    attack: Literal["LiRA", "U-LiRA"] = Field(
        "LiRA", description="U-LiRA: the 'in' shadows were trained with the targets and then unlearned"
    )
    n_shadows: int
    shadow_arch: str
    shadow_epochs: int
    shadow_train_size: float = Field(description="Mean number of training samples per shadow")
    shadow_val_accuracy: list[float | None] = Field(
        default_factory=list, description="Each shadow's validation accuracy at its kept epoch (None without val)"
    )
    variance: VarianceMode = Field(description="How the Gaussians' spread was estimated (see lira_likelihoods)")
    requested: list[SampleLikelihood]
    references: list[SampleLikelihood] = Field(description="Test samples (non-members), scored the same way")
    fraction_lr_above_1_requested: float
    fraction_lr_above_1_reference: float
    gap: float = Field(description="requested - reference fraction with LR > 1 (> 0: requested look like members)")
    p_value: float = Field(description="Two-sided Fisher exact test that requested and references differ")
    auc_requested_vs_reference: float = Field(
        description="P(LR of a requested sample > LR of a reference), ties half (0.5 = indistinguishable); not judged"
    )
    median_lr_requested: float
    median_lr_reference: float
    mean_log_lr_requested: float
    tpr_at_fpr: list[TprAtFpr]
    notes: list[str] = Field(default_factory=list, description="Caveats, e.g. a shadow recipe unlike the audited one")
    seconds: float


class AuditSettings(BaseModel):
    mia_tolerance: float
    alpha: float
    seed: int
    deep: int
    shadow_arch: str | None
    shadow_epochs: int | None
    device: str | None
    key_id: str | None = Field(description="Id of the auditor's key, if one was given (never the key)")
    show_ids: bool = Field(False, description="Sample and patient IDs were shown in clear")


class AuditReport(BaseModel):
    """Everything ``medforget audit`` checked about one checkpoint, and its verdict."""

    format: str = AUDIT_FORMAT
    medforget_version: str = __version__
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    checkpoint: str
    sha256: str
    dataset: str | None = Field(description="Dataset the checkpoint records (None if it could not be read)")
    verdict: AuditVerdict
    checks: list[AuditCheck]
    integrity: IntegrityResult
    lineage: LineageResult | None = None
    request: RequestCoverage | None = None
    population_mia: PopulationAudit | None = None
    lira: LiraAudit | None = None
    settings: AuditSettings
    seconds: float


def sample_namer(key: bytes | None, show_ids: bool) -> Callable[[str, int], str]:
    """How an audit names a requested sample: its ID if asked (``--show-ids``), else a keyed digest, else its position.

    An audit report is meant to travel (to a regulator, into a ticket): by default it must not carry the
    identifiers of the very patients who asked to be forgotten.
    """
    if show_ids:
        return lambda sid, i: sid
    if key is not None:
        hasher = IdHasher(key)
        return lambda sid, i: f"hmac:{hasher(sid)[:16]}"
    return lambda sid, i: f"requested #{i}"


def audit_schema() -> dict[str, Any]:
    """The published JSON Schema of ``medforget audit --json``."""
    return AuditReport.model_json_schema()
