"""Deletion requests: the document a data-protection officer hands to medforget.

A request names samples and/or patients; :func:`resolve` turns it into rows of the
model's training split and refuses, with one clear line each, anything that cannot be
honoured as written: malformed JSON, unknown IDs, IDs the model never trained on,
an empty request, the removal of a whole class, a request for another dataset.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from medforget.data import Dataset, Split
from medforget.errors import RequestError, first_problem
from medforget.keys import HashedIds

MAX_REQUEST_BYTES = 64 * 1024 * 1024
"""A request file larger than this is refused before it is parsed (a million IDs fit in a few dozen MB)."""
MAX_IDS = 1_000_000
"""Sample IDs (and, separately, patient IDs) one request may name."""
SHOW_IDS_HINT = "pass --show-ids to name them"


def _plain_text(value: str) -> str:
    """Text that is safe to store, print and hash: valid Unicode without control characters."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode (it holds a lone surrogate)") from None
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co") and c not in "\t" for c in value):
        raise ValueError("holds control or invisible formatting characters")
    return value


Identifier = Annotated[str, StringConstraints(min_length=1, max_length=256), AfterValidator(_plain_text)]
Reference = Annotated[str, StringConstraints(max_length=200), AfterValidator(_plain_text)]
FreeText = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_plain_text)]


class DeletionRequest(BaseModel):
    """A request to erase the listed samples and patients from a model (GDPR Art. 17).

    Every field is bounded (lengths and counts are in the schema) and must be plain Unicode text without
    control characters, so nothing a request says can bloat a checkpoint or the ledger, or be read as
    terminal markup or a forged log line.
    """

    model_config = ConfigDict(extra="forbid", title="medforget deletion request")

    request_id: Reference | None = Field(
        None,
        description="Your reference for this request (e.g. a ticket number). Kept in clear only in the local report; "
        "checkpoints and the ledger store it as a keyed digest, so never put a name in it",
    )
    received_at: datetime | None = Field(None, description="When the request was received (ISO 8601)")
    reason: FreeText | None = Field(None, description="Free text, e.g. 'consent withdrawn'")
    dataset: Reference | None = Field(
        None, description="Dataset the IDs refer to; checked against the model's if given"
    )
    sample_ids: list[Identifier] = Field(
        default_factory=list, max_length=MAX_IDS, description="Sample IDs such as train-000123"
    )
    patient_ids: list[Identifier] = Field(
        default_factory=list, max_length=MAX_IDS, description="Patient IDs from the dataset's manifest"
    )


def request_schema() -> dict[str, Any]:
    """The published JSON Schema of a deletion request."""
    return DeletionRequest.model_json_schema()


def parse_request(text: str, source: str = "request") -> DeletionRequest:
    """Parse a request document; a bare JSON list is a list of sample IDs."""
    if not text.strip():
        raise RequestError(f"{source} is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestError(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise RequestError(f"{source} is nested too deeply to be a deletion request") from None
    if isinstance(data, list):
        data = {"sample_ids": data}
    if not isinstance(data, dict):
        raise RequestError(f"{source} must be a JSON object or a list of sample IDs")
    try:
        return DeletionRequest.model_validate(data)
    except ValidationError as exc:
        raise RequestError(f"{source}: field {first_problem(exc, 'request')}") from None
    except RecursionError:
        raise RequestError(f"{source} is nested too deeply to be a deletion request") from None


def _decode(raw: bytes, source: str) -> str:
    if len(raw) > MAX_REQUEST_BYTES:
        raise RequestError(f"{source} is larger than {MAX_REQUEST_BYTES // 2**20} MiB; split it into several requests")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(f"{source} is not UTF-8 text (invalid byte at position {exc.start})") from None


def read_request(path: str | Path) -> DeletionRequest:
    """Read a request file, or standard input when ``path`` is ``-``."""
    if str(path) == "-":
        source = "request on standard input"
        return parse_request(_decode(sys.stdin.buffer.read(MAX_REQUEST_BYTES + 1), source), source)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_REQUEST_BYTES + 1)
    except FileNotFoundError:
        raise RequestError(f"request file {path} not found") from None
    except OSError as exc:
        raise RequestError(f"cannot read request file {path}: {exc.strerror}") from None
    return parse_request(_decode(raw, str(path)), str(path))


class ClassCount(BaseModel):
    split: str
    label: str
    n: int


class ResolvedRequest(BaseModel):
    """What a request means for one model: which training rows to forget, and what stays."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    request: DeletionRequest
    forget_rows: list[int] = Field(description="Rows of the training split to forget")
    retain_rows: list[int] = Field(description="Rows the model keeps (excludes earlier deletions too)")
    sample_ids: list[str]
    patient_ids: list[str]
    previously_forgotten: int = Field(0, description="Training samples removed by earlier requests")
    counts: list[ClassCount] = Field(default_factory=list, description="Forget samples by split and class")
    warnings: list[str] = Field(default_factory=list)


class RequestPreview(BaseModel):
    """What ``medforget request check --json`` prints: what a request would forget, without changing anything."""

    request_id: str | None
    dataset: str
    n_samples: int
    n_patients: int
    n_retained: int
    previously_forgotten: int
    counts: list[ClassCount]
    warnings: list[str]


def preview(res: ResolvedRequest, dataset: str) -> RequestPreview:
    """The preview of a resolved request."""
    return RequestPreview(
        request_id=res.request.request_id,
        dataset=dataset,
        n_samples=len(res.sample_ids),
        n_patients=len(res.patient_ids),
        n_retained=len(res.retain_rows),
        previously_forgotten=res.previously_forgotten,
        counts=res.counts,
        warnings=res.warnings,
    )


def _named(ids: list[str], positions: list[int], what: str, show_ids: bool, k: int = 5) -> str:
    """Offending IDs for an error message: by position in the request unless the user asked for the IDs."""
    more = f", ... ({len(ids)} in all)" if len(ids) > k else f" ({len(ids)} in all)"
    if show_ids:
        return ", ".join(ids[:k]) + more
    return ", ".join(f"{what}[{i}]" for i in positions[:k]) + more + f"; {SHOW_IDS_HINT}"


def _dedupe(ids: list[str], what: str, warnings: list[str]) -> list[str]:
    seen = list(dict.fromkeys(ids))
    if len(seen) < len(ids):
        warnings.append(f"{len(ids) - len(seen)} duplicate {what} merged")
    return seen


def _locate(request: DeletionRequest, dataset: Dataset, warnings: list[str], show_ids: bool) -> set[tuple[str, int]]:
    """Every (split, row) the request names, directly or through its patients; unknown IDs are refused."""
    raw_s = [s.strip() for s in request.sample_ids]
    raw_p = [p.strip() for p in request.patient_ids]
    samples = _dedupe(raw_s, "sample IDs", warnings)
    patients = _dedupe(raw_p, "patient IDs", warnings)
    if not samples and not patients:
        raise RequestError("the request names no sample_ids and no patient_ids; nothing to forget")
    where = dataset.locate()
    unknown = [s for s in samples if s not in where]
    if unknown:
        pos = [raw_s.index(s) for s in unknown]
        raise RequestError(f"unknown sample IDs for {dataset.name}: {_named(unknown, pos, 'sample_ids', show_ids)}")
    by_patient: dict[str, list[tuple[str, int]]] = {}
    for split in dataset.splits.values():
        for i, pid in enumerate(split.patient_ids):
            by_patient.setdefault(pid, []).append((split.name, i))
    unknown = [p for p in patients if p not in by_patient]
    if unknown:
        pos = [raw_p.index(p) for p in unknown]
        raise RequestError(f"unknown patient IDs for {dataset.name}: {_named(unknown, pos, 'patient_ids', show_ids)}")
    located = {where[s] for s in samples} | {loc for p in patients for loc in by_patient[p]}
    outside = sorted((dataset.splits[s].sample_ids[i], s, i) for s, i in located if s != "train")
    if outside:
        ids = [sid for sid, _, _ in outside]
        named = ", ".join(ids[:5]) if show_ids else f"{len(ids)} samples; {SHOW_IDS_HINT}"
        raise RequestError(
            "the model never trained on these samples (they are in the val/test splits; remove them from "
            f"your evaluation data instead): {named}"
        )
    return located


def resolve(
    request: DeletionRequest,
    dataset: Dataset,
    forgotten: HashedIds | None = None,
    key: bytes | None = None,
    allow_class_removal: bool = False,
    show_ids: bool = False,
) -> ResolvedRequest:
    """Map a request onto ``dataset``'s training split, checking everything a human would.

    Args:
        request: the deletion request.
        dataset: the data the model was trained on.
        forgotten: the deletions already applied to the model (from its checkpoint); those samples
            are excluded from the retain set so they never come back through retraining.
        key: the secret of a keyed forgotten record.
        allow_class_removal: allow removing every training sample of a class.
        show_ids: name offending IDs in errors (by default only their positions in the request).

    Returns:
        Which training rows to forget and which remain, with counts by class and warnings.
    """
    warnings: list[str] = []
    if request.dataset and request.dataset.lower() != dataset.name.lower():
        raise RequestError(
            f"the request is for dataset {request.dataset!r} but the model was trained on {dataset.name}"
        )
    located = _locate(request, dataset, warnings, show_ids)
    train: Split = dataset.train
    rows = sorted(i for _, i in located)
    earlier: set[int] = set()
    if forgotten and forgotten.sample_hashes:
        flags = forgotten.contains_samples(train.sample_ids, key)
        earlier = {i for i, f in enumerate(flags) if f}
        again = sum(i in earlier for i in rows)
        if again:
            warnings.append(f"{again} of the requested samples are already in the model's forgotten set")
    drop = set(rows) | earlier
    retain_rows = [i for i in range(len(train)) if i not in drop]
    labels = train.labels.tolist()
    kept = Counter(labels[i] for i in retain_rows)
    emptied = [dataset.classes[c] for c in sorted(set(labels)) if kept[c] == 0]
    if emptied and not allow_class_removal:
        raise RequestError(
            f"the request would remove every training sample of class {', '.join(emptied)}; "
            "pass --allow-class-removal if that is intended"
        )
    if not retain_rows:
        raise RequestError("the request would remove every training sample")
    counts = Counter(labels[i] for i in rows)
    return ResolvedRequest(
        request=request,
        forget_rows=rows,
        retain_rows=retain_rows,
        sample_ids=[train.sample_ids[i] for i in rows],
        patient_ids=sorted({train.patient_ids[i] for i in rows}),
        previously_forgotten=len(earlier),
        counts=[ClassCount(split="train", label=dataset.classes[c], n=n) for c, n in sorted(counts.items())],
        warnings=warnings,
    )


def design_request(
    dataset: Dataset,
    design: str = "random",
    fraction: float = 0.2,
    seed: int = 0,
    positive_share: float = 0.8,
) -> DeletionRequest:
    """A synthetic request for benchmarks and studies, drawn from the training split.

    ``random``: a uniform ``fraction`` of training samples (a random withdrawal).
    ``positive-heavy``: the same number, ``positive_share`` of them from the disease class.
    ``positive-only``: the same number, all from the disease class.
    """
    import torch

    if not 0 < fraction < 1:
        raise RequestError(f"forget fraction must be between 0 and 1, got {fraction}")
    train = dataset.train
    n = max(1, round(fraction * len(train)))
    gen = torch.Generator().manual_seed(seed)
    if design == "random":
        rows = torch.randperm(len(train), generator=gen)[:n].tolist()
    elif design in ("positive-heavy", "positive-only"):
        is_pos = torch.isin(train.labels, torch.tensor(dataset.positive))
        pos = torch.nonzero(is_pos).flatten()
        neg = torch.nonzero(~is_pos).flatten()
        share = 1.0 if design == "positive-only" else positive_share
        n_pos = min(round(share * n), len(pos))
        rows = (
            pos[torch.randperm(len(pos), generator=gen)[:n_pos]].tolist()
            + neg[torch.randperm(len(neg), generator=gen)[: n - n_pos]].tolist()
        )
    else:
        raise RequestError(f"unknown forget design {design!r}; use random, positive-heavy or positive-only")
    return DeletionRequest(
        request_id=f"{dataset.name}-{design}-{round(100 * fraction)}pct-seed{seed}",
        reason=f"synthetic {design} withdrawal of {100 * fraction:g}% of training samples",
        dataset=dataset.name,
        sample_ids=sorted(train.sample_ids[i] for i in rows),
    )
