"""Recording a checkpoint after the fact: the repair for an output whose run died before its ledger entry.

``unlearn`` and ``train`` append their entry only once the outputs are complete and in place, so a run
killed in between leaves a finished checkpoint that the ledger does not mention (``audit`` reports it).
:func:`record_checkpoint` adds that entry later, from what the checkpoint itself records, after checking
that the file is signed with the ledger's key and that the request really is what it forgot.
"""

from __future__ import annotations

import logging
from pathlib import Path

from medforget.checkpoint import LoadedCheckpoint, check_dataset, load_checkpoint
from medforget.data import DataPaths, load_from_spec
from medforget.errors import CheckpointError, MedforgetError, RequestError
from medforget.fileio import sha256_file
from medforget.ledger.append import EntryContent, append
from medforget.ledger.entry import LedgerEntry, read_entries
from medforget.request import DeletionRequest, resolve

log = logging.getLogger(__name__)


def _unlearn_content(ck: LoadedCheckpoint, request: DeletionRequest, key: bytes, data: DataPaths) -> EntryContent:
    """The entry ``unlearn`` would have written, rebuilt from the request and checked against the record."""
    meta, u = ck.meta, ck.meta.unlearning
    if u is None:
        raise CheckpointError(f"{ck.path} has a parent but no unlearning record; it was not written by medforget")
    dataset = load_from_spec(meta.dataset.spec, data.data_root, data.manifest)
    check_dataset(ck, dataset)
    resolved = resolve(request, dataset, None, None, allow_class_removal=True)
    hasher = meta.forgotten.hasher(key)
    forgotten = set(meta.forgotten.sample_hashes)
    if not all(hasher(s) in forgotten for s in resolved.sample_ids) or (
        len(resolved.sample_ids),
        len(resolved.patient_ids),
    ) != (u.n_forgotten_samples, u.n_forgotten_patients):
        raise RequestError(f"this request is not the one {ck.path} forgot (its samples or counts differ)")
    if u.request_ref is not None and hasher.request_ref(request.request_id) != u.request_ref:
        raise RequestError(f"this request's reference is not the one {ck.path} records")
    return EntryContent(
        entry_type="unlearn",
        request_id=request.request_id,
        sample_ids=resolved.sample_ids,
        patient_ids=resolved.patient_ids,
        method=u.method,
        params=u.params,
        input_sha256=meta.parent_sha256,
        output_sha256=ck.sha256,
        operating_point=meta.operating_point.model_dump() if meta.operating_point else None,
    )


def record_checkpoint(
    checkpoint: str | Path,
    ledger: str | Path,
    key: bytes | None,
    request: DeletionRequest | None = None,
    report: Path | None = None,
    data: DataPaths | None = None,
) -> LedgerEntry:
    """Append the ledger entry a finished checkpoint is missing.

    Args:
        checkpoint: the output of a ``train`` or ``unlearn`` run that the ledger does not record.
        ledger: the ledger to append to.
        key: the ledger's key; the checkpoint must carry a signature that verifies under it.
        request: for an unlearned checkpoint, the deletion request it applied (checked against its record).
        report: the run's JSON report, whose hash the entry records.
        data: where the data is (needed to resolve the request's patients to samples).

    Returns:
        The appended entry.
    """
    ledger = Path(ledger)
    if key is None:
        raise MedforgetError("recording in the ledger needs its key ($MEDFORGET_KEY or --key-file)")
    ck = load_checkpoint(checkpoint, key=key)
    if not ck.signature_verified:
        raise CheckpointError(f"{ck.path} is not signed with this key; only the hospital's own outputs are recorded")
    if ledger.exists() and (known := next((e for e in read_entries(ledger) if e.output_sha256 == ck.sha256), None)):
        raise MedforgetError(f"the ledger already records {ck.path} (entry {known.seq})")
    if ck.meta.parent_sha256 is None:
        content = EntryContent(entry_type="train", params=ck.meta.train_config.model_dump(), output_sha256=ck.sha256)
    elif request is None:
        raise MedforgetError("recording an unlearned checkpoint needs --request: the entry lists what it forgot")
    else:
        content = _unlearn_content(ck, request, key, data or DataPaths())
    if report is not None:
        content.report_sha256 = sha256_file(report)
    entry = append(ledger, key=key, content=content)
    log.info("ledger: recorded %s as entry %d of %s", ck.path, entry.seq, ledger)
    return entry


__all__ = ["record_checkpoint"]
