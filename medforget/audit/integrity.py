"""Integrity: is the file exactly the checkpoint medforget wrote (and, with the key, signed by the hospital)?"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

from medforget.audit.report import IntegrityResult
from medforget.checkpoint import SIGNATURE_KEY, LoadedCheckpoint, header_metadata, load_checkpoint, parse_signature
from medforget.errors import CheckpointError, MedforgetError, TamperedError


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
    meta_table = header_metadata(raw) or {}
    signed: bool | None = SIGNATURE_KEY in meta_table if meta_table else None
    sig_key_id = None
    if signed:
        with contextlib.suppress(CheckpointError):  # a malformed signature fails below, in load_checkpoint
            sig = parse_signature(meta_table)
            sig_key_id = sig["key_id"] if sig else None
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
    except TamperedError as exc:
        result.error = str(exc)
        return result, None
    except CheckpointError:
        raise CheckpointError(f"{p} is not a medforget checkpoint (no medforget metadata in it)") from None
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
