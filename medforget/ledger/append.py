"""Appending to the ledger: serialised across processes, all or nothing, never onto a forgery.

Appends take an exclusive ``flock`` on a sidecar ``<ledger>.lock`` and write the line with one
``os.write`` on an ``O_APPEND`` descriptor followed by ``fsync``, so concurrent runs neither
interleave nor lose entries, and an interrupted write is truncated away. POSIX only (``fcntl``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from pydantic_core import to_jsonable_python

from medforget import __version__
from medforget.errors import MedforgetError
from medforget.fileio import fault_point
from medforget.keys import IdHasher, key_id
from medforget.ledger.entry import (
    GENESIS,
    EntryType,
    LedgerEntry,
    LedgerProblem,
    canonical_bytes,
    missing_key_error,
    parse_line,
    seal,
)


def lock_path(path: Path) -> Path:
    """The sidecar file that serialises appends (never removed, never an output)."""
    return path.with_name(path.name + ".lock")


def check_appendable(path: str | os.PathLike[str], key: bytes | None) -> None:
    """Fail before any work if an entry could not be appended: no key, no folder, or an unreadable tail."""
    path = Path(path)
    if key is None:
        raise missing_key_error()
    if path.is_dir():
        raise MedforgetError(f"ledger {path} is a folder, not a file")
    if not path.parent.is_dir():
        raise MedforgetError(f"ledger folder {path.parent} does not exist")
    if path.exists():
        _checked_tail(path, key)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``<path>.lock`` (a sidecar: the ledger itself is only appended to).

    The lock file is never removed: removing it would let two processes lock different inodes.
    """
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _last_line(path: Path) -> bytes | None:
    """The final line (without its newline), read from the end so appends stay cheap on long ledgers."""
    if not path.exists():
        return None
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return None
        fh.seek(size - 1)
        if fh.read(1) != b"\n":
            raise MedforgetError(
                f"ledger {path} ends with an incomplete line (an interrupted write or an edit); "
                "verify it before appending"
            )
        buf, pos, chunk = b"", size - 1, 1 << 16
        while pos > 0:
            start = max(0, pos - chunk)
            fh.seek(start)
            buf = fh.read(pos - start) + buf
            pos = start
            if b"\n" in buf:
                break
        return buf.rsplit(b"\n", 1)[-1]


def _checked_tail(path: Path, key: bytes) -> LedgerEntry | None:
    """The last entry, after checking it is intact and sealed with this key, so we never chain onto a forgery."""
    text = _last_line(path)
    if text is None:
        return None
    parsed = parse_line(text, 0, key)
    if isinstance(parsed, LedgerProblem):
        raise MedforgetError(f"ledger {path}: the last line is not a ledger entry; refusing to append (verify it)")
    if parsed.problem is not None:
        if parsed.problem.kind == "wrong-key":
            raise MedforgetError(
                f"ledger {path} is sealed with key id {parsed.entry.key_id} but the given key has id {key_id(key)}; "
                "append with the same key (or start a new ledger)"
            )
        raise MedforgetError(
            f"ledger {path}: the last entry (seq {parsed.entry.seq}) is {parsed.problem.kind}; "
            "refusing to append onto a tampered ledger (verify it)"
        )
    return parsed.entry


class EntryContent(BaseModel):
    """What one entry records, in clear; :func:`append` hashes every identifier before anything is written."""

    entry_type: EntryType
    request_id: str | None = Field(None, description="The request's reference; stored only as a keyed digest")
    sample_ids: list[str] = Field(default_factory=list, description="Stored only as keyed digests")
    patient_ids: list[str] = Field(default_factory=list, description="Stored only as keyed digests")
    method: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    operating_point: dict[str, Any] | None = Field(None, description="The recalibrated decision threshold, if any")
    input_sha256: str | None = None
    output_sha256: str
    report_sha256: str | None = None


def _sealed_line(content: EntryContent, key: bytes, tail: LedgerEntry | None) -> tuple[LedgerEntry, bytes]:
    """The next entry after ``tail``: its fields, hash and MAC, and the exact line to write."""
    hasher = IdHasher(key)
    hashed = hasher.record(content.sample_ids, content.patient_ids)
    body: dict[str, Any] = {
        "seq": tail.seq + 1 if tail else 0,
        "entry_type": content.entry_type,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "request_ref": hasher.request_ref(content.request_id),
        "sample_hashes": hashed.sample_hashes,
        "patient_hashes": hashed.patient_hashes,
        "key_id": key_id(key),
        "method": content.method,
        "params": to_jsonable_python(content.params),  # paths, tuples, numpy scalars -> JSON
        "input_sha256": content.input_sha256,
        "output_sha256": content.output_sha256,
        "report_sha256": content.report_sha256,
        "medforget_version": __version__,
        "prev_hash": tail.entry_hash if tail else GENESIS,
    }
    if content.operating_point is not None:
        body["operating_point"] = to_jsonable_python(content.operating_point)
    # A JSON round trip first, so the canonical bytes are exactly what verify() will see.
    try:
        body = json.loads(json.dumps(body, allow_nan=False))
        canonical = canonical_bytes(body)
    except ValueError as exc:
        raise MedforgetError(f"ledger entry parameters are not plain JSON: {exc}") from None
    d = {**body, "entry_hash": hashlib.sha256(canonical).hexdigest(), "mac": seal(key, canonical)}
    entry = LedgerEntry.model_validate(d, strict=True)  # checks hash formats, entry type, etc.
    return entry, (json.dumps(d, sort_keys=True, separators=(",", ":")) + "\n").encode()


def _write_line(path: Path, data: bytes) -> None:
    """One ``os.write`` on an append-only descriptor, flushed; truncated back on any failure."""
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        size = os.fstat(fd).st_size
        try:
            if os.write(fd, data) != len(data):
                raise MedforgetError(f"could not append to ledger {path}: short write (disk full?)")
            os.fsync(fd)
        except BaseException:
            os.ftruncate(fd, size)  # never leave half a line behind; we still hold the lock
            raise
    finally:
        os.close(fd)
    if created:  # make the new directory entry durable too
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def append(path: str | os.PathLike[str], *, key: bytes | None, content: EntryContent) -> LedgerEntry:
    """Append one sealed entry and return it; safe against concurrent appends from other processes.

    Args:
        path: the ledger file (created by the first append; its folder must exist).
        key: the hospital's secret. Required: without it the ledger could neither hide the IDs nor resist
            a rewrite.
        content: what the entry records; every identifier in it is hashed here and never written in clear.

    Returns:
        The entry as written.
    """
    path = Path(path)
    if key is None:
        raise missing_key_error()
    if len(key) < 16:
        raise MedforgetError("the ledger key is shorter than 16 bytes; use a longer secret")
    if not path.parent.is_dir():
        raise MedforgetError(f"folder {path.parent} does not exist")
    with _locked(path):
        entry, line = _sealed_line(content, key, _checked_tail(path, key))
        fault_point("ledger-locked")
        _write_line(path, line)
    return entry
