"""``medforget audit``: check, from the outside, that a checkpoint is what it claims to be.

``medforget unlearn`` judges its own run against retraining. An auditor (a data-protection
officer, a regulator, the hospital's own QA months later) has less: the deployed checkpoint
file, perhaps the deletion ledger, perhaps the request, perhaps the data. :func:`audit` answers,
with what it is given, four questions, as five :class:`AuditCheck` rows:

``integrity``
    Does the file parse as safetensors with no extra payload, does the metadata match its
    digest and the weights the hash the metadata records (:func:`medforget.checkpoint.load_checkpoint`)?
    With a key it must also carry an HMAC signature that verifies under it: without a
    signature the hashes prove only that nothing was corrupted *by accident*, since anyone
    can edit the file and recompute them, so an auditor who holds the key requires it.
``lineage`` (``ledger=``)
    Does the ledger verify (hash chain, and MACs with the key), and does it record an
    unbroken chain from this file back to a training run? See :func:`check_lineage`.
``request`` (``request=``)
    Are all the request's samples and patients in the checkpoint's forgotten set (keyed
    hashes compared under the record's own key or salt)? See :func:`check_request`.
``membership (population)`` and ``membership (LiRA)`` (``request=`` with the data, ``deep=``)
    Do the model's outputs still betray the requested samples as training members? See
    :func:`population_audit` and :func:`lira_audit`, whose docstrings give the exact rules.

Exit codes follow ``unlearn``: the verdict is ``fail`` (exit 3) if any check fails,
``inconclusive`` (exit 0, like ``unverified``) if none fails but a membership test saw a
difference too small a sample cannot confirm, else ``pass``. Bad input (exit 2,
:class:`MedforgetError`) is anything the auditor must fix before the audit means anything:
a checkpoint path that does not exist or names a file that is not a medforget checkpoint at all
(no medforget metadata anywhere in it), a missing ledger or request file, a request with
unknown IDs, a keyed forgotten record without (or with the wrong) key, missing data for the
membership tests. A file that *was* a medforget checkpoint but no longer verifies (a flipped
byte, a truncated or extended file, a stripped or foreign signature) is an integrity **failure**
(exit 3), reported as a check, because that is precisely what an audit exists to find; the other
checks are then skipped, since nothing read from an untrusted file can be relied on.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, Field
from rich.console import Group
from rich.table import Table
from rich.text import Text

from medforget import __version__
from medforget.checkpoint import META_KEY, SIGNATURE_KEY, LoadedCheckpoint, check_dataset, load_checkpoint
from medforget.data import Dataset, Split, load_from_spec
from medforget.engine import build_model, fit, predict, progress_bar, resolve_device, stderr
from medforget.errors import CheckpointError, MedforgetError, RequestError
from medforget.keys import key_id
from medforget.ledger import LedgerEntry, LedgerProblem, read_entries, verify
from medforget.metrics import population_mia
from medforget.models import list_models
from medforget.request import DeletionRequest, resolve

AUDIT_FORMAT = "medforget-audit/1"

CheckStatus = Literal["pass", "fail", "inconclusive", "skipped"]
VerdictStatus = Literal["pass", "fail", "inconclusive"]
VarianceMode = Literal["global", "pooled", "per-sample"]

LIRA_PER_SAMPLE_MIN = 16
"""Each target needs this many "in" and "out" shadows before per-sample variances are used (else pooled/global)."""
MIN_SD = 1e-2
"""Floor of a fitted standard deviation (logit units), so a degenerate fit cannot make a likelihood infinite."""
LOG_LR_CLIP = 50.0
"""Reported log likelihood ratios are clipped to +-50 (LR e^50 ~ 5e21), so the JSON never holds infinities."""
TARGET_FPRS = (0.01, 0.001)


# --------------------------------------------------------------------------- the report


class AuditCheck(BaseModel):
    """One question the audit answered, in one line."""

    name: str = Field(description="integrity, lineage, request, membership (population) or membership (LiRA)")
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


class LineageLink(BaseModel):
    """One ledger entry on the way from the audited checkpoint back to training."""

    seq: int
    entry_type: str
    created_at: str
    method: str | None
    request_id: str | None
    n_samples: int
    n_patients: int
    input_sha256: str | None
    output_sha256: str
    problems: list[str] = Field(default_factory=list)


class LineageResult(BaseModel):
    """The ledger's own verification and the chain walked through it."""

    ok: bool
    ledger: str
    ledger_ok: bool = Field(description="ledger.verify found no problem")
    macs_checked: bool = Field(description="MACs were checked (a key was given); else only hashes and chain")
    n_entries: int
    head_hash: str | None
    ledger_problems: list[LedgerProblem] = Field(default_factory=list)
    chain: list[LineageLink] = Field(
        default_factory=list, description="The audited checkpoint's entry first, the training run last"
    )
    complete: bool = Field(description="The walk reached a 'train' entry with no input")
    problems: list[str] = Field(default_factory=list, description="Problems not tied to one link")


class RequestCoverage(BaseModel):
    """Whether a request's IDs are in the checkpoint's forgotten set."""

    ok: bool
    request_id: str | None
    n_samples: int = Field(description="Samples checked: the request's, plus its patients' samples if data was given")
    n_patients: int
    n_missing_samples: int
    n_missing_patients: int
    missing_sample_ids: list[str] = Field(default_factory=list)
    missing_patient_ids: list[str] = Field(default_factory=list)
    record_key_id: str | None = Field(description="Key id of the forgotten record; None for a salted record")
    expanded_patients: bool = Field(description="Patients were expanded to their samples through the dataset")


class SampleScore(BaseModel):
    sample_id: str
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
    reference_non_member_rate: float
    gap: float = Field(description="reference - requested non-member rate (> 0: requested look like members)")
    p_value: float = Field(description="One-sided Fisher exact test that requested are called non-member less often")
    requested: list[SampleScore] = Field(default_factory=list)


class SampleLikelihood(BaseModel):
    """LiRA on one sample: the audited model's confidence against the shadow models' in/out Gaussians."""

    sample_id: str
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
    """The shadow-model attack (LiRA, Carlini et al. 2022) on the requested samples."""

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
    p_value: float = Field(description="One-sided Fisher exact test that requested have LR > 1 more often")
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


def audit_schema() -> dict[str, Any]:
    """The published JSON Schema of ``medforget audit --json``."""
    return AuditReport.model_json_schema()


# --------------------------------------------------------------------------- integrity


def _header_metadata(raw: bytes) -> dict[str, Any] | None:
    """The safetensors ``__metadata__`` table, or None if the header does not parse."""
    if len(raw) < 8:
        return None
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        return None
    try:
        header = json.loads(raw[8 : 8 + n])
    except (UnicodeDecodeError, ValueError):
        return None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return meta if isinstance(meta, dict) else None


def _meant_as_checkpoint(raw: bytes) -> bool:
    """Whether the bytes were written as a medforget checkpoint, even if damaged since.

    A readable header decides by its metadata keys (``medforget``, ``medforget_digest``, ...);
    an unreadable one by whether "medforget" appears in the file at all (the metadata names
    it many times), so a flipped byte in the header is tampering, while a JPEG or an unrelated
    ``.safetensors`` file passed by mistake is bad input.
    """
    meta = _header_metadata(raw)
    if meta is not None:
        return any(str(k).startswith(META_KEY) for k in meta)
    return META_KEY.encode() in raw


def check_integrity(path: str | Path, key: bytes | None) -> tuple[IntegrityResult, LoadedCheckpoint | None]:
    """Verify the file; a damaged checkpoint is a failed check, a missing file or a non-checkpoint bad input.

    With ``key``, an unsigned checkpoint fails: the hashes inside a checkpoint can be recomputed
    by anyone who edits it, so only the signature shows the hospital wrote it.
    """
    p = Path(path)
    if not p.exists():
        raise MedforgetError(f"checkpoint {p} not found")
    if not p.is_file():
        raise MedforgetError(f"checkpoint {p} is not a file")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise MedforgetError(f"cannot read checkpoint {p}: {exc.strerror}") from None
    meta_table = _header_metadata(raw) or {}
    signed: bool | None = SIGNATURE_KEY in meta_table if meta_table else None
    sig_key_id = None
    if signed:
        try:
            sig_key_id = json.loads(meta_table[SIGNATURE_KEY]).get("key_id")
        except (ValueError, AttributeError):
            sig_key_id = None
    result = IntegrityResult(
        ok=False,
        path=str(p),
        size_bytes=len(raw),
        sha256=hashlib.sha256(raw).hexdigest(),
        signed=signed,
        signature_key_id=sig_key_id,
    )
    try:
        ck = load_checkpoint(p, key=key)
    except CheckpointError as exc:
        if not _meant_as_checkpoint(raw):
            raise CheckpointError(f"{p} is not a medforget checkpoint (no medforget metadata in it)") from None
        result.error = str(exc)
        return result, None
    result.sha256 = ck.sha256  # the bytes actually verified (the file could have changed between reads)
    result.weights_sha256 = ck.meta.weights_sha256
    result.signed = ck.signed
    result.signature_verified = ck.signature_verified
    if key is not None and not ck.signed:
        result.error = (
            "the checkpoint carries no signature, so its hashes prove nothing against deliberate edits; "
            "with a key the audit requires one (checkpoints written with a key are signed)"
        )
        return result, ck
    if not ck.signed:
        result.notes.append("unsigned: hashes verified, which detects corruption but not a deliberate rewrite")
    elif not ck.signature_verified:
        result.notes.append(f"signed with key id {sig_key_id}, not verified: no key given ($MEDFORGET_KEY/--key-file)")
    result.ok = True
    return result, ck


def _integrity_check(res: IntegrityResult) -> AuditCheck:
    if not res.ok:
        return AuditCheck(name="integrity", status="fail", summary=f"does not verify: {res.error}")
    how = "weights and metadata hashes verified, safetensors with no extra payload"
    if res.signature_verified:
        how += f", signature verified (key id {res.signature_key_id})"
    elif res.notes:
        how += f"; {res.notes[0]}"
    return AuditCheck(name="integrity", status="pass", summary=how)


# --------------------------------------------------------------------------- lineage


def _short(h: str | None) -> str:
    return "none" if h is None else h[:12]


def _train_params_differ(entry: LedgerEntry, ck: LoadedCheckpoint) -> list[str]:
    """Recipe fields the training entry records differently from the checkpoint (fields both know)."""
    recorded = json.loads(ck.meta.train_config.model_dump_json())
    return sorted(k for k, v in entry.params.items() if k in recorded and recorded[k] != v)


def _first_link_problems(entry: LedgerEntry, ck: LoadedCheckpoint) -> list[str]:
    """Compare the entry that produced the audited file with what the file itself records."""
    meta, problems = ck.meta, []
    if meta.parent_sha256 is None:
        if entry.entry_type != "train" or entry.input_sha256 is not None:
            problems.append(
                "the checkpoint records no parent (an original training run) but its ledger entry is "
                f"a{'n' if entry.entry_type == 'unlearn' else ''} {entry.entry_type} from {_short(entry.input_sha256)}"
            )
        if meta.forgotten.sample_hashes or meta.forgotten.patient_hashes:
            problems.append("the checkpoint records forgotten samples but claims no parent")
        return problems
    u = meta.unlearning
    if entry.entry_type != "unlearn":
        problems.append(f"the checkpoint derives from parent {_short(meta.parent_sha256)} but its entry is 'train'")
    if entry.input_sha256 != meta.parent_sha256:
        problems.append(
            f"entry input {_short(entry.input_sha256)} is not the parent the checkpoint records "
            f"({_short(meta.parent_sha256)})"
        )
    if u is None:
        problems.append("the checkpoint has a parent but no unlearning record")
        return problems
    if entry.method != u.method:
        problems.append(f"entry method {entry.method!r} is not the checkpoint's ({u.method!r})")
    if entry.request_id != u.request_id:
        problems.append(f"entry request id {entry.request_id!r} is not the checkpoint's ({u.request_id!r})")
    if len(entry.sample_hashes) != u.n_forgotten_samples or len(entry.patient_hashes) != u.n_forgotten_patients:
        problems.append(
            f"entry forgets {len(entry.sample_hashes)} samples / {len(entry.patient_hashes)} patients, the checkpoint "
            f"records {u.n_forgotten_samples} / {u.n_forgotten_patients}"
        )
    if entry.key_id == meta.forgotten.key_id:
        # Same key: the digests are comparable without the key itself.
        absent = set(entry.sample_hashes) - set(meta.forgotten.sample_hashes)
        absent_p = set(entry.patient_hashes) - set(meta.forgotten.patient_hashes)
        if absent or absent_p:
            problems.append(
                f"{len(absent)} samples and {len(absent_p)} patients the entry forgot are not in the checkpoint's "
                "forgotten set"
            )
    return problems


def check_lineage(ledger: str | Path, ck: LoadedCheckpoint, key: bytes | None) -> LineageResult:
    """Verify the ledger, then walk from the checkpoint's entry back to the training run, link by link.

    Each step: the entry whose ``output_sha256`` is the current hash (the first such entry, as
    :func:`medforget.ledger.find`); then its ``input_sha256`` is the next hash. The first entry
    is compared with the checkpoint's own record (type, parent hash, method, request id, counts
    and, when both use the same key, the forgotten digests themselves); every later one must
    have been written before its child and be an ``unlearn`` entry while it has an input. The
    walk must end at a ``train`` entry with no input whose recorded recipe matches the
    checkpoint's ``train_config``. Any ``ledger.verify`` problem fails the lineage too, since a
    chain read from a tampered ledger proves nothing.
    """
    path = Path(ledger)
    ver = verify(path, key)
    res = LineageResult(
        ok=False,
        ledger=str(path),
        ledger_ok=ver.ok,
        macs_checked=ver.macs_checked,
        n_entries=ver.n_entries,
        head_hash=ver.head_hash,
        ledger_problems=ver.problems,
        complete=False,
    )
    try:
        entries = read_entries(path)
    except MedforgetError as exc:
        res.problems.append(f"the chain cannot be walked: {exc}")
        return res
    by_output: dict[str, LedgerEntry] = {}
    for e in entries:
        by_output.setdefault(e.output_sha256, e)
    cur = by_output.get(ck.sha256)
    if cur is None:
        res.problems.append(f"no ledger entry produced this checkpoint (sha256 {_short(ck.sha256)})")
        return res
    seen: set[str] = set()
    first = True
    while cur is not None:
        link = LineageLink(
            seq=cur.seq,
            entry_type=cur.entry_type,
            created_at=cur.created_at,
            method=cur.method,
            request_id=cur.request_id,
            n_samples=len(cur.sample_hashes),
            n_patients=len(cur.patient_hashes),
            input_sha256=cur.input_sha256,
            output_sha256=cur.output_sha256,
        )
        res.chain.append(link)
        seen.add(cur.output_sha256)
        if first:
            link.problems.extend(_first_link_problems(cur, ck))
            first = False
        if cur.input_sha256 is None:
            if cur.entry_type != "train":
                link.problems.append("the chain ends at an 'unlearn' entry with no input, not at a training run")
            else:
                res.complete = True
                differ = _train_params_differ(cur, ck)
                if differ:
                    link.problems.append(f"training recipe differs from the checkpoint's on {', '.join(differ)}")
            break
        if cur.entry_type == "train":
            link.problems.append("a 'train' entry must not have an input checkpoint")
        nxt = by_output.get(cur.input_sha256)
        if nxt is None:
            link.problems.append(f"no ledger entry produced its input {_short(cur.input_sha256)}: the chain is broken")
            break
        if nxt.output_sha256 in seen:
            link.problems.append(f"its input {_short(cur.input_sha256)} is already in the chain: a cycle")
            break
        if nxt.seq >= cur.seq:
            link.problems.append(f"its input was recorded after it (entry {nxt.seq} after entry {cur.seq})")
        cur = nxt
    res.ok = res.ledger_ok and res.complete and not res.problems and not any(lk.problems for lk in res.chain)
    return res


def _lineage_check(res: LineageResult) -> AuditCheck:
    chain = " <- ".join(f"#{lk.seq} {lk.method or lk.entry_type}" for lk in res.chain) or "no chain"
    if res.ok:
        macs = "" if res.macs_checked else " (MACs not checked: no key)"
        return AuditCheck(
            name="lineage",
            status="pass",
            summary=f"{len(res.chain)} ledger entries from this checkpoint back to its training run, every link "
            f"consistent, ledger intact{macs}: {chain}",
        )
    reasons = [p.message for p in res.ledger_problems][:2]
    reasons += res.problems
    reasons += [f"entry {lk.seq}: {p}" for lk in res.chain for p in lk.problems]
    if not res.complete and not res.problems and res.chain:
        reasons.append("the chain does not reach a training run")
    more = f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else ""
    return AuditCheck(name="lineage", status="fail", summary="; ".join(reasons[:3]) + more)


# --------------------------------------------------------------------------- request coverage


def check_request(
    request: DeletionRequest, ck: LoadedCheckpoint, key: bytes | None, sample_ids: list[str] | None = None
) -> RequestCoverage:
    """Whether every requested sample and patient is in the checkpoint's forgotten set.

    IDs are compared as digests under the record's own key (or public salt), so the record
    never has to be decrypted; a keyed record needs that key (bad input without it).
    ``sample_ids`` (from resolving the request on the data) adds the samples of requested
    patients, which catches a model that forgot the patient's name but kept some of its images.
    """
    if not request.sample_ids and not request.patient_ids:
        raise RequestError("the request names no sample_ids and no patient_ids; there is nothing to audit")
    trained_on = ck.meta.dataset.spec.name
    if request.dataset and request.dataset.lower() != trained_on.lower():
        raise RequestError(f"the request is for dataset {request.dataset!r} but the model was trained on {trained_on}")
    rec = ck.meta.forgotten
    hasher = rec.hasher(key)  # raises MedforgetError for a keyed record without the right key
    samples = list(dict.fromkeys([s.strip() for s in request.sample_ids] + (sample_ids or [])))
    patients = list(dict.fromkeys(p.strip() for p in request.patient_ids))
    known_s, known_p = set(rec.sample_hashes), set(rec.patient_hashes)
    missing_s = [s for s in samples if hasher(s) not in known_s]
    missing_p = [p for p in patients if hasher(p) not in known_p]
    return RequestCoverage(
        ok=not missing_s and not missing_p,
        request_id=request.request_id,
        n_samples=len(samples),
        n_patients=len(patients),
        n_missing_samples=len(missing_s),
        n_missing_patients=len(missing_p),
        missing_sample_ids=missing_s,
        missing_patient_ids=missing_p,
        record_key_id=rec.key_id,
        expanded_patients=sample_ids is not None,
    )


def _request_check(res: RequestCoverage) -> AuditCheck:
    what = f"request {res.request_id or '(no id)'}"
    if res.ok:
        return AuditCheck(
            name="request",
            status="pass",
            summary=f"all {res.n_samples} samples and {res.n_patients} patients of {what} are in the forgotten set",
        )
    parts = []
    if res.n_missing_samples:
        parts.append(f"{res.n_missing_samples} of {res.n_samples} samples")
    if res.n_missing_patients:
        parts.append(f"{res.n_missing_patients} of {res.n_patients} patients")
    example = (res.missing_sample_ids or res.missing_patient_ids)[0]
    return AuditCheck(
        name="request",
        status="fail",
        summary=f"{' and '.join(parts)} of {what} are not in the checkpoint's forgotten set (e.g. {example})",
    )


# --------------------------------------------------------------------------- membership inference


def _fisher_p(a_hit: int, a_n: int, b_hit: int, b_n: int) -> float:
    """One-sided Fisher exact p-value that group a has a higher hit rate than group b."""
    from scipy.stats import fisher_exact

    table = [[a_hit, a_n - a_hit], [b_hit, b_n - b_hit]]
    return float(fisher_exact(table, alternative="greater")[1])


def _judge_gap(gap: float, p_value: float, tolerance: float, alpha: float) -> CheckStatus:
    """pass within tolerance; fail beyond it only if significant at ``alpha``; inconclusive otherwise."""
    if gap <= tolerance:
        return "pass"
    return "fail" if p_value < alpha else "inconclusive"


def _halves(n: int, seed: int) -> tuple[list[int], list[int]]:
    perm = np.random.default_rng(seed).permutation(n).tolist()
    return sorted(perm[: n // 2]), sorted(perm[n // 2 :])


def _concat(name: str, parts: list[Split]) -> Split:
    """Rows of several splits as one split (for shadow training sets and scoring targets)."""
    parts = [p for p in parts if len(p)]
    return Split(
        name=name,
        images=torch.cat([p.images for p in parts]),
        labels=torch.cat([p.labels for p in parts]),
        sample_ids=[s for p in parts for s in p.sample_ids],
        patient_ids=[s for p in parts for s in p.patient_ids],
    )


def population_audit(
    model: torch.nn.Module,
    retain: Split,
    requested: Split,
    test: Split,
    device: torch.device,
    seed: int = 0,
) -> PopulationAudit:
    """The population attack (:func:`medforget.metrics.population_mia`) on the requested samples.

    Members are the retained training samples (never the requested ones, nor earlier
    deletions); non-members are one random half of the test split. The other half is never
    shown to the attack and is scored together with the requested samples by the same fitted
    attack, so ``reference_non_member_rate`` is an honest held-out rate for true non-members
    (the attack's in-sample rate on its own non-members would flatter it).

    The check (see :func:`audit`) compares the two rates: a forgotten sample should be called
    "non-member" about as often as a sample the model never saw.
    """
    attack_test, ref_rows = _halves(len(test), seed)
    reference = test.subset(ref_rows)
    fit_nm = test.subset(attack_test)
    scored = _concat("scored", [requested, reference])
    logits = {k: predict(model, s, device) for k, s in (("retain", retain), ("nm", fit_nm), ("scored", scored))}
    mia = population_mia(
        (logits["retain"], retain.labels), (logits["nm"], fit_nm.labels), (logits["scored"], scored.labels), seed=seed
    )
    scores = np.asarray(mia.forget_scores)
    k = len(requested)
    req, ref = scores[:k], scores[k:]
    req_nm, ref_nm = int((req < 0.5).sum()), int((ref < 0.5).sum())
    r_req, r_ref = req_nm / k, ref_nm / len(ref)
    # H1: requested are called non-member less often = called member more often.
    p = _fisher_p(k - req_nm, k, len(ref) - ref_nm, len(ref))
    return PopulationAudit(
        n_requested=k,
        n_reference=len(ref),
        n_attack_members=mia.n_members,
        n_attack_non_members=mia.n_non_members,
        attack_auc=mia.attack_auc,
        requested_non_member_rate=r_req,
        reference_non_member_rate=r_ref,
        gap=r_ref - r_req,
        p_value=p,
        requested=[
            SampleScore(sample_id=s, label=int(y), member_score=float(v))
            for s, y, v in zip(requested.sample_ids, requested.labels.tolist(), req, strict=True)
        ],
    )


def _population_check(res: PopulationAudit, tolerance: float, alpha: float) -> AuditCheck:
    status = _judge_gap(res.gap, res.p_value, tolerance, alpha)
    head = (
        f"requested samples called non-member {100 * res.requested_non_member_rate:.0f}% "
        f"(n={res.n_requested}) vs held-out test samples {100 * res.reference_non_member_rate:.0f}% "
        f"(n={res.n_reference}); gap {100 * res.gap:+.0f} pts, tolerance {100 * tolerance:.0f}, p={res.p_value:.3g}, "
        f"attack AUC {res.attack_auc:.2f}"
    )
    tail = {
        "pass": "",
        "fail": ": the requested samples still look like training members",
        "inconclusive": f": beyond tolerance but not significant at alpha={alpha:g} with this few samples",
        "skipped": "",
    }[status]
    return AuditCheck(name="membership (population)", status=status, summary=head + tail)


def logit_confidence(logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """phi = log(p_y / (1 - p_y)) of the true class, computed stably as z_y - logsumexp(z_{k != y}).

    LiRA's logit scaling: softmax confidences pile up near 1 for members, where a Gaussian
    fits badly; their log-odds are close to normal.
    """
    z = logits.double()
    true = z.gather(1, labels[:, None]).squeeze(1)
    others = z.scatter(1, labels[:, None], float("-inf"))
    return (true - torch.logsumexp(others, 1)).numpy()


def _gauss_logpdf(x: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    return -0.5 * ((x - mu) / sd) ** 2 - np.log(sd) - 0.5 * math.log(2 * math.pi)


def lira_likelihoods(
    phi_shadow: np.ndarray, in_mask: np.ndarray, phi_target: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray], VarianceMode]:
    """Per-target log likelihood ratios from shadow confidences ``[n_shadows, n_targets]``.

    Means are per target (the mean phi of its in-shadows and of its out-shadows). The variance
    is estimated as reliably as the shadow count allows:

    * ``per-sample`` when every target has at least :data:`LIRA_PER_SAMPLE_MIN` in and out
      shadows (LiRA proper: each sample its own spread);
    * ``pooled`` when every target has at least 2 of each: one within-target variance for "in"
      and one for "out", pooled over all targets (sum of squared deviations from each target's own
      mean over the sum of n - 1). A per-target variance from 2-15 points is mostly noise, while
      the pooled one has hundreds of degrees of freedom and, unlike the global estimate below,
      does not mix in how much targets differ from each other (which would flatten every LR);
    * ``global`` otherwise (2 or 3 shadows): the "fixed variance" of Carlini et al., the spread of
      all in-phi values and of all out-phi values across targets and shadows.

    Standard deviations are floored at :data:`MIN_SD`.
    """
    inm = in_mask.astype(bool)
    n_in, n_out = inm.sum(0), (~inm).sum(0)
    if n_in.min() < 1 or n_out.min() < 1:
        raise ValueError("every target needs at least one in and one out shadow")
    mu_in = np.where(inm, phi_shadow, 0).sum(0) / n_in
    mu_out = np.where(~inm, phi_shadow, 0).sum(0) / n_out
    ss_in = np.where(inm, (phi_shadow - mu_in) ** 2, 0).sum(0)
    ss_out = np.where(~inm, (phi_shadow - mu_out) ** 2, 0).sum(0)
    fewest = min(n_in.min(), n_out.min())
    mode: VarianceMode
    if fewest >= LIRA_PER_SAMPLE_MIN:
        mode = "per-sample"
        sd_in, sd_out = np.sqrt(ss_in / (n_in - 1)), np.sqrt(ss_out / (n_out - 1))
    elif fewest >= 2:
        mode = "pooled"
        sd_in = np.full(phi_target.shape, math.sqrt(ss_in.sum() / (n_in - 1).sum()))
        sd_out = np.full(phi_target.shape, math.sqrt(ss_out.sum() / (n_out - 1).sum()))
    else:
        mode = "global"
        sd_in = np.full(phi_target.shape, np.std(phi_shadow[inm]))
        sd_out = np.full(phi_target.shape, np.std(phi_shadow[~inm]))
    sd_in, sd_out = np.maximum(sd_in, MIN_SD), np.maximum(sd_out, MIN_SD)
    log_lr = _gauss_logpdf(phi_target, mu_in, sd_in) - _gauss_logpdf(phi_target, mu_out, sd_out)
    fits = {"mu_in": mu_in, "sd_in": sd_in, "mu_out": mu_out, "sd_out": sd_out, "n_in": n_in, "n_out": n_out}
    return log_lr, fits, mode


def tpr_at_fpr(positive: np.ndarray, negative: np.ndarray, target_fpr: float) -> TprAtFpr:
    """TPR at the largest empirical FPR not above ``target_fpr``, thresholding scores from the negatives.

    The threshold is the (m+1)-th highest negative score with m = floor(target_fpr * n_negative):
    with fewer than 1/target_fpr negatives m is 0 and a positive counts only if it beats every
    negative, which is the conservative reading of a rate the sample cannot resolve.
    """
    neg = np.sort(negative)[::-1]
    m = math.floor(target_fpr * len(neg))
    thr = float(neg[m]) if m < len(neg) else -math.inf
    return TprAtFpr(
        target_fpr=target_fpr,
        achieved_fpr=float((negative > thr).mean()) if len(negative) else 0.0,
        threshold_log_lr=None if math.isinf(thr) else thr,
        tpr=float((positive > thr).mean()) if len(positive) else 0.0,
    )


def _auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Mann-Whitney AUC: how often a positive outscores a negative (ties count half)."""
    diff = positive[:, None] - negative[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def _likelihoods(
    split: Split, phi: np.ndarray, log_lr: np.ndarray, fits: dict[str, np.ndarray], cols: range
) -> list[SampleLikelihood]:
    out = []
    for j, col in enumerate(cols):
        clipped = float(np.clip(log_lr[col], -LOG_LR_CLIP, LOG_LR_CLIP))
        out.append(
            SampleLikelihood(
                sample_id=split.sample_ids[j],
                label=int(split.labels[j]),
                phi=float(phi[col]),
                mu_in=float(fits["mu_in"][col]),
                sd_in=float(fits["sd_in"][col]),
                mu_out=float(fits["mu_out"][col]),
                sd_out=float(fits["sd_out"][col]),
                n_in=int(fits["n_in"][col]),
                n_out=int(fits["n_out"][col]),
                log_lr=clipped,
                lr=math.exp(clipped),
            )
        )
    return out


def lira_audit(
    model: torch.nn.Module,
    dataset: Dataset,
    retain: Split,
    requested: Split,
    ck: LoadedCheckpoint,
    device: torch.device,
    n_shadows: int,
    shadow_arch: str | None = None,
    shadow_epochs: int | None = None,
    seed: int = 0,
    show_progress: bool = True,
) -> LiraAudit:
    """A shadow-model likelihood-ratio attack on the request (LiRA, Carlini et al. 2022, as U-LiRA, Hayes et al. 2024).

    Shadows are trained with or without each target from scratch, so the "out" distribution is
    what exact unlearning (retraining without the sample) produces: the standard an unlearned
    model is held to.

    Targets are the k requested samples plus min(k, n_test) random test samples as reference
    negatives (the audited model never saw them). Each of ``n_shadows`` shadow models trains with
    the checkpoint's recorded recipe (``shadow_arch``/``shadow_epochs`` override arch and epochs
    to bound the cost; seeds differ per shadow; the best epoch is kept on val as in training) on
    a fresh random half of the retained training data plus the targets assigned "in" to it: every
    target is "in" for a random floor(N/2) or ceil(N/2) of the shadows and "out" for the rest.

    For every target, phi = log(p/(1-p)) of its true class under each shadow gives an "in" and
    an "out" Gaussian (:func:`lira_likelihoods`); its likelihood ratio is
    LR = N(phi_audited; in) / N(phi_audited; out). LR > 1: the audited model treats it like a
    training member; a well-forgotten sample looks "out".

    TPR at 1% and 0.1% FPR (:func:`tpr_at_fpr`): the threshold on log LR is set on the reference
    negatives so that at most that fraction of them exceed it, and TPR is the fraction of
    requested samples above it. After good unlearning TPR should be close to the achieved FPR;
    before, it measures how exposed the requested samples are. With k references the smallest
    resolvable FPR is 1/k, so for k < 100 both rates are read at FPR 0 (beat every reference).

    The reference negatives matter beyond TPR: shadows trained briefly or with another arch are
    calibrated unlike the audited model, which shifts every LR; comparing requested with
    references scored through the same shadows cancels that shift (at the price of power).
    """
    n_req = len(requested)
    cfg = ck.meta.train_config.model_copy(
        update={k: v for k, v in {"arch": shadow_arch, "epochs": shadow_epochs}.items() if v is not None}
    )
    rng = np.random.default_rng(seed)
    n_ref = min(n_req, len(dataset.test))
    references = dataset.test.subset(sorted(rng.choice(len(dataset.test), n_ref, replace=False).tolist()))
    targets = _concat("targets", [requested, references])
    m = len(targets)
    in_mask = np.zeros((n_shadows, m), dtype=bool)
    for j in range(m):
        n_in = n_shadows // 2 + (int(rng.integers(2)) if n_shadows % 2 else 0)
        in_mask[rng.choice(n_shadows, n_in, replace=False), j] = True
    phi_shadow = np.zeros((n_shadows, m))
    sizes: list[int] = []
    val_acc: list[float | None] = []
    start = time.perf_counter()
    with progress_bar(show_progress) as bar:
        task = bar.add_task("shadow models", total=n_shadows, info=f"{cfg.arch}, {cfg.epochs} epochs")
        for i in range(n_shadows):
            half = rng.choice(len(retain), len(retain) // 2, replace=False)
            train = _concat(
                f"shadow{i}",
                [retain.subset(sorted(half.tolist())), targets.subset(np.flatnonzero(in_mask[i]).tolist())],
            )
            sizes.append(len(train))
            shadow_cfg = cfg.model_copy(update={"seed": cfg.seed + 1 + i + 1000 * seed})
            shadow = build_model(shadow_cfg, dataset, device)
            result = fit(
                shadow, train, shadow_cfg, device, val=dataset.val, description=f"shadow {i + 1}", show_progress=False
            )
            best = next((h for h in result.history if h.epoch == result.best_epoch), None)
            acc = round(best.val_acc, 4) if best and best.val_acc is not None else None
            val_acc.append(acc)
            phi_shadow[i] = logit_confidence(predict(shadow, targets, device), targets.labels)
            shown = "" if acc is None else f", last val acc {acc:.3f}"
            bar.update(task, advance=1, info=f"{cfg.arch}, {cfg.epochs} epochs{shown}")
    notes = []
    recorded = ck.meta.train_config
    if (cfg.arch, cfg.epochs) != (recorded.arch, recorded.epochs):
        notes.append(
            f"shadows use {cfg.arch} for {cfg.epochs} epochs, the checkpoint {recorded.arch} for {recorded.epochs}: "
            "differently calibrated shadows weaken the attack (comparing with references keeps it fair, not sensitive)"
        )
    phi = logit_confidence(predict(model, targets, device), targets.labels)
    log_lr, fits, mode = lira_likelihoods(phi_shadow, in_mask, phi)
    req_llr, ref_llr = log_lr[:n_req], log_lr[n_req:]
    req_hit, ref_hit = int((req_llr > 0).sum()), int((ref_llr > 0).sum())
    return LiraAudit(
        n_shadows=n_shadows,
        shadow_arch=cfg.arch,
        shadow_epochs=cfg.epochs,
        shadow_train_size=float(np.mean(sizes)),
        shadow_val_accuracy=val_acc,
        variance=mode,
        requested=_likelihoods(requested, phi, log_lr, fits, range(n_req)),
        references=_likelihoods(references, phi, log_lr, fits, range(n_req, m)),
        fraction_lr_above_1_requested=req_hit / n_req,
        fraction_lr_above_1_reference=ref_hit / n_ref,
        gap=req_hit / n_req - ref_hit / n_ref,
        p_value=_fisher_p(req_hit, n_req, ref_hit, n_ref),
        auc_requested_vs_reference=_auc(req_llr, ref_llr),
        median_lr_requested=math.exp(float(np.clip(np.median(req_llr), -LOG_LR_CLIP, LOG_LR_CLIP))),
        median_lr_reference=math.exp(float(np.clip(np.median(ref_llr), -LOG_LR_CLIP, LOG_LR_CLIP))),
        mean_log_lr_requested=float(np.clip(req_llr, -LOG_LR_CLIP, LOG_LR_CLIP).mean()),
        tpr_at_fpr=[tpr_at_fpr(req_llr, ref_llr, f) for f in TARGET_FPRS],
        notes=notes,
        seconds=round(time.perf_counter() - start, 2),
    )


def _lira_check(res: LiraAudit, tolerance: float, alpha: float) -> AuditCheck:
    status = _judge_gap(res.gap, res.p_value, tolerance, alpha)
    t1 = res.tpr_at_fpr[0]
    head = (
        f"LR > 1 for {100 * res.fraction_lr_above_1_requested:.0f}% of requested (n={len(res.requested)}) vs "
        f"{100 * res.fraction_lr_above_1_reference:.0f}% of test references (n={len(res.references)}); "
        f"gap {100 * res.gap:+.0f} pts, p={res.p_value:.3g}; median LR {res.median_lr_requested:.3g}; "
        f"TPR {100 * t1.tpr:.0f}% at FPR {100 * t1.achieved_fpr:.1f}% ({res.n_shadows} shadows"
        + (", recipe unlike the checkpoint's: weaker attack)" if res.notes else ")")
    )
    tail = {
        "pass": "",
        "fail": ": the shadow attack still finds the requested samples",
        "inconclusive": f": beyond tolerance but not significant at alpha={alpha:g} with this few samples",
        "skipped": "",
    }[status]
    return AuditCheck(name="membership (LiRA)", status=status, summary=head + tail)


# --------------------------------------------------------------------------- the audit


def _verdict(checks: list[AuditCheck]) -> AuditVerdict:
    ran = [c for c in checks if c.status != "skipped"]
    failed = [c.name for c in ran if c.status == "fail"]
    unsure = [c.name for c in ran if c.status == "inconclusive"]
    names = ", ".join(c.name for c in ran)
    if failed:
        return AuditVerdict(status="fail", summary=f"Fail: {', '.join(failed)} failed (checked: {names}).")
    if unsure:
        return AuditVerdict(
            status="inconclusive",
            summary=f"Inconclusive: nothing failed, but {', '.join(unsure)} saw a difference too few samples cannot "
            f"confirm (checked: {names}).",
        )
    return AuditVerdict(status="pass", summary=f"Pass: every check passed ({names}).")


def audit(
    checkpoint: str | Path,
    *,
    key: bytes | None = None,
    ledger: str | Path | None = None,
    request: DeletionRequest | None = None,
    data_root: str | Path | None = None,
    manifest: str | Path | None = None,
    mia: bool = True,
    deep: int = 0,
    shadow_arch: str | None = None,
    shadow_epochs: int | None = None,
    mia_tolerance: float = 0.10,
    alpha: float = 0.05,
    seed: int = 0,
    device: str = "auto",
    show_progress: bool = True,
) -> AuditReport:
    """Audit ``checkpoint``: integrity always; lineage with ``ledger``; the request with ``request``.

    With ``request`` and ``mia`` (the default) the data is loaded (``data_root``/``manifest``,
    fingerprint checked) and the population attack runs on the requested samples; ``deep`` N >= 2
    adds a LiRA attack with N shadow models. Writes nothing. The caller decides the exit code from
    ``report.verdict.status``; bad input raises :class:`MedforgetError` before any slow work.

    Membership verdicts (the same rule for both attacks, because both reduce to a rate):

    * population: gap = (held-out test non-member rate) - (requested non-member rate);
    * LiRA: gap = (fraction of requested with LR > 1) - (fraction of test references with LR > 1).

    Each passes when gap <= ``mia_tolerance`` (0.10: requested samples may look like members at
    most 10 points more often than true non-members). Beyond it, the check fails only if a
    one-sided Fisher exact test on the 2x2 counts gives p < ``alpha`` (0.05), and is
    "inconclusive" otherwise. Why both: with k requested samples a rate moves in steps of 1/k
    and has a standard error near 0.5/sqrt(k) (0.5 for a single patient, 0.07 for 50 samples),
    so a tolerance alone would fail small requests on noise; a test alone would fail large
    requests on differences too small to matter. A single requested sample fails only if the
    attack calls it a member while calling almost no true non-member one (p = (m+1)/(n+1) for m
    of n references called members: with 78 references, m <= 2); otherwise one attack decision
    is at most inconclusive, which is all it can honestly show. A pass means the attack found no
    evidence of membership, not proof of absence: read it with the attack's AUC (near 0.5, the
    attack could not see members anyway). Mean LRs and the LiRA AUC of requested vs references are
    reported but not judged: one extreme sample dominates a mean, and the AUC has no tolerance a
    user could reason about in the same units as the population check.
    """
    start = time.perf_counter()
    if deep < 0 or deep == 1:
        raise MedforgetError(f"--deep needs at least 2 shadow models (some with, some without each sample), got {deep}")
    if deep and (request is None or not mia):
        raise MedforgetError("--deep runs a membership attack on the requested samples: it needs --request and data")
    if shadow_arch is not None and shadow_arch not in list_models():
        raise MedforgetError(f"unknown --shadow-arch {shadow_arch!r}; available: {', '.join(list_models())}")
    if shadow_epochs is not None and shadow_epochs < 1:
        raise MedforgetError(f"--shadow-epochs must be at least 1, got {shadow_epochs}")
    if mia_tolerance < 0 or not 0 < alpha < 1:
        raise MedforgetError("--mia-tolerance must be >= 0 and --alpha between 0 and 1")
    if ledger is not None and not Path(ledger).is_file():
        raise MedforgetError(f"ledger {ledger} not found")
    settings = AuditSettings(
        mia_tolerance=mia_tolerance,
        alpha=alpha,
        seed=seed,
        deep=deep,
        shadow_arch=shadow_arch,
        shadow_epochs=shadow_epochs,
        device=None,
        key_id=key_id(key) if key else None,
    )
    integrity, ck = check_integrity(checkpoint, key)
    checks = [_integrity_check(integrity)]
    lineage = coverage = population = lira = None
    later = ["lineage", "request", "membership (population)", "membership (LiRA)"]
    if not integrity.ok or ck is None:
        why = "the file does not verify, so nothing read from it can be trusted"
        checks += [AuditCheck(name=n, status="skipped", summary=why) for n in later]
    else:
        # Everything that can reject the input runs before the slow parts.
        dataset = resolved = None
        if request is not None and mia:
            dataset = load_from_spec(ck.meta.dataset.spec, data_root, manifest)
            check_dataset(ck, dataset)
            resolved = resolve(request, dataset, ck.meta.forgotten, key, allow_class_removal=True)
        if request is not None:
            coverage = check_request(request, ck, key, resolved.sample_ids if resolved else None)

        if ledger is not None:
            lineage = check_lineage(ledger, ck, key)
            checks.append(_lineage_check(lineage))
        else:
            checks.append(AuditCheck(name="lineage", status="skipped", summary="no --ledger given"))
        if coverage is not None:
            checks.append(_request_check(coverage))
        else:
            checks.append(AuditCheck(name="request", status="skipped", summary="no --request given"))

        if dataset is not None and resolved is not None:
            dev = resolve_device(device)
            settings.device = str(dev)
            model = ck.build_model(dev)
            requested = dataset.train.subset(resolved.forget_rows)
            retain = dataset.train.subset(resolved.retain_rows)
            if len(dataset.test) < 4:
                checks.append(
                    AuditCheck(name=later[2], status="skipped", summary="fewer than 4 test samples to compare with")
                )
            else:
                stderr.print(f"membership inference on {len(requested)} requested samples ({dev})")
                population = population_audit(model, retain, requested, dataset.test, dev, seed)
                checks.append(_population_check(population, mia_tolerance, alpha))
            if deep:
                lira = lira_audit(
                    model, dataset, retain, requested, ck, dev, deep, shadow_arch, shadow_epochs, seed, show_progress
                )
                checks.append(_lira_check(lira, mia_tolerance, alpha))
            else:
                checks.append(AuditCheck(name=later[3], status="skipped", summary="no --deep given"))
        else:
            why = "no --request given" if request is None else "--no-mia"
            checks += [AuditCheck(name=n, status="skipped", summary=why) for n in later[2:]]
    return AuditReport(
        checkpoint=str(checkpoint),
        sha256=integrity.sha256,
        dataset=ck.meta.dataset.spec.name if ck else None,
        verdict=_verdict(checks),
        checks=checks,
        integrity=integrity,
        lineage=lineage,
        request=coverage,
        population_mia=population,
        lira=lira,
        settings=settings,
        seconds=round(time.perf_counter() - start, 2),
    )


# --------------------------------------------------------------------------- terminal rendering

_COLOUR = {"pass": "green", "fail": "red", "inconclusive": "yellow", "skipped": "dim"}


def render(report: AuditReport) -> Group:
    """A Rich renderable: the verdict, one row per check, the lineage chain and the most exposed samples."""
    parts: list[Any] = [
        Text(f"audit of {report.checkpoint} (sha256 {report.sha256})"),
        Text(report.verdict.summary, style=f"bold {_COLOUR[report.verdict.status]}"),
    ]
    t = Table("check", "result", "details")
    for c in report.checks:
        t.add_row(c.name, Text(c.status, style=_COLOUR[c.status]), c.summary)
    parts.append(t)
    if report.lineage and report.lineage.chain:
        chain = Table("#", "type", "method", "request", "input", "output", "ok", title="lineage (newest first)")
        for lk in report.lineage.chain:
            chain.add_row(
                str(lk.seq),
                lk.entry_type,
                lk.method or "—",
                lk.request_id or "—",
                _short(lk.input_sha256),
                _short(lk.output_sha256),
                Text("yes", style="green") if not lk.problems else Text("; ".join(lk.problems), style="red"),
            )
        parts.append(chain)
    if report.lira:
        top = sorted(report.lira.requested, key=lambda s: -s.log_lr)[:10]
        lr = Table("sample", "label", "phi", "in mean", "out mean", "LR", title="LiRA: most member-like requested")
        for s in top:
            lr.add_row(s.sample_id, str(s.label), f"{s.phi:.2f}", f"{s.mu_in:.2f}", f"{s.mu_out:.2f}", f"{s.lr:.3g}")
        parts.append(lr)
        parts.append(
            Text(
                "TPR at FPR: "
                + ", ".join(
                    f"{100 * x.tpr:.0f}% at {100 * x.target_fpr:g}% (achieved {100 * x.achieved_fpr:.1f}%)"
                    for x in report.lira.tpr_at_fpr
                )
                + f"; {report.lira.variance} variance; {report.lira.seconds:.0f} s"
            )
        )
    return Group(*parts)


__all__ = [
    "AuditCheck",
    "AuditReport",
    "AuditVerdict",
    "audit",
    "audit_schema",
    "check_integrity",
    "check_lineage",
    "check_request",
    "lira_audit",
    "lira_likelihoods",
    "logit_confidence",
    "population_audit",
    "render",
    "tpr_at_fpr",
]
