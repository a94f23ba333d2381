"""Deletion requests: the document a data-protection officer hands to medforget.

A request names samples and/or patients; :func:`resolve` turns it into rows of the
model's training split and refuses, with one clear line each, anything that cannot be
honoured as written: malformed JSON, unknown IDs, IDs the model never trained on,
an empty request, the removal of a whole class, a request for another dataset.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medforget.data import Dataset, Split
from medforget.errors import RequestError, first_problem
from medforget.keys import HashedIds


class DeletionRequest(BaseModel):
    """A request to erase the listed samples and patients from a model (GDPR Art. 17)."""

    model_config = ConfigDict(extra="forbid", title="medforget deletion request")

    request_id: str | None = Field(None, description="Your reference for this request (e.g. ticket number)")
    received_at: datetime | None = Field(None, description="When the request was received (ISO 8601)")
    reason: str | None = Field(None, description="Free text, e.g. 'consent withdrawn'")
    dataset: str | None = Field(None, description="Dataset the IDs refer to; checked against the model's if given")
    sample_ids: list[str] = Field(default_factory=list, description="Sample IDs such as train-000123")
    patient_ids: list[str] = Field(default_factory=list, description="Patient IDs from the dataset's manifest")


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
    if isinstance(data, list):
        data = {"sample_ids": data}
    if not isinstance(data, dict):
        raise RequestError(f"{source} must be a JSON object or a list of sample IDs")
    try:
        return DeletionRequest.model_validate(data)
    except ValidationError as exc:
        raise RequestError(f"{source}: field {first_problem(exc, 'request')}") from None


def read_request(path: str | Path) -> DeletionRequest:
    """Read a request file, or standard input when ``path`` is ``-``."""
    if str(path) == "-":
        return parse_request(sys.stdin.read(), "request on standard input")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RequestError(f"request file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RequestError(f"cannot read request file {path}: {exc}") from None
    return parse_request(text, str(path))


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


def _preview(ids: list[str], k: int = 5) -> str:
    head = ", ".join(ids[:k])
    return f"{head}, ... ({len(ids)} in all)" if len(ids) > k else f"{head} ({len(ids)} in all)"


def _dedupe(ids: list[str], what: str, warnings: list[str]) -> list[str]:
    seen = list(dict.fromkeys(ids))
    if len(seen) < len(ids):
        warnings.append(f"{len(ids) - len(seen)} duplicate {what} merged")
    return seen


def resolve(
    request: DeletionRequest,
    dataset: Dataset,
    forgotten: HashedIds | None = None,
    key: bytes | None = None,
    allow_class_removal: bool = False,
) -> ResolvedRequest:
    """Map a request onto ``dataset``'s training split, checking everything a human would.

    ``forgotten`` are the deletions already applied to the model (from its checkpoint); those
    samples are excluded from the retain set so they never come back through retraining.
    """
    warnings: list[str] = []
    if request.dataset and request.dataset.lower() != dataset.name.lower():
        raise RequestError(
            f"the request is for dataset {request.dataset!r} but the model was trained on {dataset.name}"
        )
    samples = _dedupe([s.strip() for s in request.sample_ids], "sample IDs", warnings)
    patients = _dedupe([p.strip() for p in request.patient_ids], "patient IDs", warnings)
    if not samples and not patients:
        raise RequestError("the request names no sample_ids and no patient_ids; nothing to forget")

    where = dataset.locate()
    unknown = [s for s in samples if s not in where]
    if unknown:
        raise RequestError(f"unknown sample IDs for {dataset.name}: {_preview(unknown)}")
    by_patient: dict[str, list[tuple[str, int]]] = {}
    for split in dataset.splits.values():
        for i, pid in enumerate(split.patient_ids):
            by_patient.setdefault(pid, []).append((split.name, i))
    unknown = [p for p in patients if p not in by_patient]
    if unknown:
        raise RequestError(f"unknown patient IDs for {dataset.name}: {_preview(unknown)}")

    located = {where[s] for s in samples} | {loc for p in patients for loc in by_patient[p]}
    outside = sorted(f"{dataset.splits[s].sample_ids[i]}" for s, i in located if s != "train")
    if outside:
        raise RequestError(
            "the model never trained on these samples (they are in the val/test splits; remove them from "
            f"your evaluation data instead): {_preview(outside)}"
        )
    train: Split = dataset.train
    rows = sorted(i for _, i in located)
    earlier: set[int] = set()
    if forgotten and forgotten.sample_hashes:
        flags = forgotten.contains_samples(train.sample_ids, key)
        earlier = {i for i, f in enumerate(flags) if f}
        again = [train.sample_ids[i] for i in rows if i in earlier]
        if again:
            warnings.append(f"{len(again)} samples were already forgotten by an earlier request")
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
