"""A tamper-evident deletion ledger: one JSON line per training or unlearning run.

GDPR makes the data controller *accountable* (Art. 5(2)): months after a patient withdrew
consent, the hospital must be able to show an auditor which deletion requests the model it
deploys today has honoured, and that nobody quietly rewrote that history since. A checkpoint
alone cannot show this (it can be replaced), and a plain log can be edited. The ledger is
an append-only JSON Lines file in which every entry

* names the checkpoint it produced (``output_sha256``) and the one it started from
  (``input_sha256``), so lineage can be walked from a deployed model back to training;
* lists the forgotten samples and patients only as HMAC-SHA256 digests under the
  hospital's secret key, so the ledger itself never holds a patient identifier in clear
  (a key is therefore required to write it);
* carries ``prev_hash``, the hash of the entry before it, and its own ``entry_hash``, so
  an edited, deleted, inserted or reordered line breaks the chain at a nameable place;
* carries ``mac``, an HMAC of the same bytes under the key, because a hash chain alone can
  be recomputed end to end by anyone who can edit the file; the MAC cannot be without the key.

Limits worth knowing: deleting entries at the *end* of the file leaves a valid shorter
chain. Compare :attr:`LedgerVerification.head_hash` with a value kept elsewhere, or check
that every checkpoint in service is :func:`find`-able, to catch that. And without the key a
consistent rewrite of the whole chain is undetectable, which is why :func:`verify` reports
whether MACs were checked.

Appends are serialised across processes with ``flock`` on a sidecar ``<ledger>.lock`` and
written with one ``os.write`` on an ``O_APPEND`` descriptor followed by ``fsync``, so
concurrent runs neither interleave nor lose entries. POSIX only (``fcntl``).
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import to_jsonable_python

from medforget import __version__
from medforget.errors import MedforgetError
from medforget.keys import KEY_ENV, KEY_FILE_ENV, IdHasher, key_id

GENESIS = "0" * 64
"""``prev_hash`` of the first entry: there is nothing before it."""

_SHA256 = r"^[0-9a-f]{64}$"
_SEALS = ("entry_hash", "mac")  # fields not covered by the canonical bytes

EntryType = Literal["train", "unlearn"]
ProblemKind = Literal["edited", "deleted", "inserted", "reordered", "corrupt", "forged", "wrong-key"]


class LedgerEntry(BaseModel):
    """One line of the ledger: what a run consumed and produced, sealed by hash and MAC."""

    model_config = ConfigDict(extra="forbid", title="medforget ledger entry")

    seq: int = Field(ge=0, description="0-based position in the ledger")
    entry_type: EntryType = Field(description="'train' for a model trained from data, 'unlearn' for a deletion")
    created_at: str = Field(description="When the entry was written (ISO 8601, UTC)")
    request_id: str | None = Field(None, description="The deletion request's own reference, if any")
    sample_hashes: list[str] = Field(
        default_factory=list, description="Sorted HMAC-SHA256 digests of the forgotten sample IDs (never clear IDs)"
    )
    patient_hashes: list[str] = Field(
        default_factory=list, description="Sorted HMAC-SHA256 digests of the forgotten patient IDs (never clear IDs)"
    )
    key_id: str = Field(description="Public identifier of the key used for the digests and the MAC")
    method: str | None = Field(None, description="Unlearning method (or None for training)")
    params: dict[str, Any] = Field(default_factory=dict, description="Method or training parameters")
    input_sha256: str | None = Field(None, pattern=_SHA256, description="SHA-256 of the input checkpoint file")
    output_sha256: str = Field(pattern=_SHA256, description="SHA-256 of the output checkpoint file")
    report_sha256: str | None = Field(None, pattern=_SHA256, description="SHA-256 of the run's report file")
    medforget_version: str = Field(description="medforget version that wrote the entry")
    prev_hash: str = Field(pattern=_SHA256, description="entry_hash of the previous entry; 64 zeros for the first")
    entry_hash: str = Field(
        pattern=_SHA256,
        description='SHA-256 of json.dumps(fields except entry_hash and mac, sort_keys=True, separators=(",", ":"))',
    )
    mac: str = Field(pattern=_SHA256, description="HMAC-SHA256 under the key of the same canonical bytes")


class LedgerProblem(BaseModel):
    """One way the ledger differs from what medforget wrote, pinned to a line."""

    line: int = Field(description="1-based line number in the ledger file")
    seq: int | None = Field(description="The entry's seq (for 'deleted', the first missing seq), if known")
    kind: ProblemKind
    message: str


class LedgerVerification(BaseModel):
    """The verdict of :func:`verify`."""

    ok: bool = Field(description="No problem found (with macs_checked False, only hashes and chain were checked)")
    n_entries: int = Field(description="Lines that parse as ledger entries")
    macs_checked: bool = Field(description="Whether MACs and key ids were checked (needs the key)")
    problems: list[LedgerProblem] = Field(default_factory=list)
    head_hash: str | None = Field(description="entry_hash of the highest-seq entry in the chain; keep it elsewhere")


def ledger_schema() -> dict[str, Any]:
    """The published JSON Schema of one ledger line."""
    return LedgerEntry.model_json_schema()


# --------------------------------------------------------------------------- sealing


def _canonical(d: dict[str, Any]) -> bytes:
    """The bytes that ``entry_hash`` and ``mac`` cover: every field except those two.

    Computed from the parsed line itself (not from the model), so a field added by hand is
    covered too. ``allow_nan=False`` keeps the line standard JSON; NaN raises ``ValueError``.
    """
    body = {k: v for k, v in d.items() if k not in _SEALS}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _mac(key: bytes, canonical: bytes) -> str:
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


def _missing_key_error() -> MedforgetError:
    return MedforgetError(
        "the deletion ledger needs a secret key: it refuses to store sample or patient IDs in clear and "
        f"seals every entry with it; set ${KEY_ENV} (at least 16 characters, e.g. from `medforget key new`) "
        f"or point ${KEY_FILE_ENV} / --key-file at a file holding it"
    )


# --------------------------------------------------------------------------- parsing


@dataclass
class _Line:
    """A line that parsed as an entry, with the per-entry checks already done."""

    line: int
    entry: LedgerEntry
    problem: LedgerProblem | None  # edited, forged or wrong-key


def _parse_line(text: bytes, line: int, key: bytes | None) -> _Line | LedgerProblem:
    """Parse and self-check one line: its hash, and with a key its key id and MAC."""
    try:
        d = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return LedgerProblem(line=line, seq=None, kind="corrupt", message=f"line {line} is not JSON")
    if not isinstance(d, dict):
        return LedgerProblem(line=line, seq=None, kind="corrupt", message=f"line {line} is not a JSON object")
    known = {k: v for k, v in d.items() if k in LedgerEntry.model_fields}
    try:
        entry = LedgerEntry.model_validate(known, strict=True)
        canonical = _canonical(d)
    except (ValidationError, ValueError) as exc:
        seq = d.get("seq") if isinstance(d.get("seq"), int) else None
        why = exc.errors()[0] if isinstance(exc, ValidationError) else {"loc": (), "msg": str(exc)}
        where = ".".join(str(p) for p in why["loc"])
        return LedgerProblem(
            line=line, seq=seq, kind="corrupt", message=f"line {line} is not a ledger entry: {where} {why['msg']}"
        )
    problem = None
    if not hmac.compare_digest(hashlib.sha256(canonical).hexdigest(), entry.entry_hash):
        extra = sorted(set(d) - set(LedgerEntry.model_fields))
        added = f" (unexpected field {', '.join(extra)})" if extra else ""
        problem = LedgerProblem(
            line=line,
            seq=entry.seq,
            kind="edited",
            message=f"entry seq {entry.seq} on line {line} was edited{added}: its content no longer matches its hash",
        )
    elif key is not None and entry.key_id != key_id(key):
        problem = LedgerProblem(
            line=line,
            seq=entry.seq,
            kind="wrong-key",
            message=f"entry seq {entry.seq} on line {line} was sealed with key id {entry.key_id}, "
            f"not the given key ({key_id(key)})",
        )
    elif key is not None and not hmac.compare_digest(_mac(key, canonical), entry.mac):
        problem = LedgerProblem(
            line=line,
            seq=entry.seq,
            kind="forged",
            message=f"entry seq {entry.seq} on line {line} has a valid hash but a wrong MAC: "
            "it was rewritten by someone without the key",
        )
    return _Line(line, entry, problem)


def _split_lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise MedforgetError(f"no ledger at {path}") from None
    except OSError as exc:
        raise MedforgetError(f"cannot read ledger {path}: {exc.strerror}") from None


def read_entries(path: str | os.PathLike[str]) -> list[LedgerEntry]:
    """All entries in file order, parsed but not verified (call :func:`verify` to trust them).

    Raises :class:`MedforgetError` naming the first unreadable line, since lineage built on a
    partly read ledger would be silently wrong.
    """
    path = Path(path)
    data = _read_bytes(path)
    entries = []
    for i, text in enumerate(_split_lines(data), start=1):
        parsed = _parse_line(text, i, None)
        if isinstance(parsed, LedgerProblem):
            raise MedforgetError(f"{path}: {parsed.message}")
        entries.append(parsed.entry)
    return entries


def find(path: str | os.PathLike[str], output_sha256: str) -> LedgerEntry | None:
    """The entry that produced the checkpoint with this file hash, or None.

    Following ``input_sha256`` with repeated calls walks a checkpoint's lineage back to the
    ``train`` entry. If the same output was recorded twice the first (creating) entry wins.
    """
    return next((e for e in read_entries(path) if e.output_sha256 == output_sha256), None)


# --------------------------------------------------------------------------- appending


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``<path>.lock`` (a sidecar: the ledger itself is only appended to).

    The lock file is never removed: removing it would let two processes lock different inodes.
    """
    fd = os.open(_lock_path(path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
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
    parsed = _parse_line(text, 0, key)
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


def append(
    path: str | os.PathLike[str],
    *,
    key: bytes | None,
    entry_type: EntryType,
    request_id: str | None = None,
    sample_ids: Iterable[str] = (),
    patient_ids: Iterable[str] = (),
    method: str | None = None,
    params: dict[str, Any] | None = None,
    input_sha256: str | None = None,
    output_sha256: str,
    report_sha256: str | None = None,
) -> LedgerEntry:
    """Append one sealed entry and return it; safe against concurrent appends from other processes.

    The clear IDs are hashed here and never written. ``key`` is required (``None`` raises
    :class:`MedforgetError`): without it the ledger could neither hide the IDs nor resist a
    rewrite. The first append creates the file; its folder must exist.
    """
    path = Path(path)
    if key is None:
        raise _missing_key_error()
    if len(key) < 16:
        raise MedforgetError("the ledger key is shorter than 16 bytes; use a longer secret")
    for name, ids in (("sample_ids", sample_ids), ("patient_ids", patient_ids)):
        if isinstance(ids, (str, bytes)):
            raise TypeError(f"{name} must be a collection of IDs, not a single string")
    if not path.parent.is_dir():
        raise MedforgetError(f"folder {path.parent} does not exist")
    hashed = IdHasher(key).record(sample_ids, patient_ids)

    with _locked(path):
        tail = _checked_tail(path, key)
        body: dict[str, Any] = {
            "seq": tail.seq + 1 if tail else 0,
            "entry_type": entry_type,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "request_id": request_id,
            "sample_hashes": hashed.sample_hashes,
            "patient_hashes": hashed.patient_hashes,
            "key_id": key_id(key),
            "method": method,
            "params": to_jsonable_python(params or {}),  # paths, tuples, numpy scalars -> JSON
            "input_sha256": input_sha256,
            "output_sha256": output_sha256,
            "report_sha256": report_sha256,
            "medforget_version": __version__,
            "prev_hash": tail.entry_hash if tail else GENESIS,
        }
        # A JSON round trip first, so the canonical bytes are exactly what verify() will see.
        try:
            body = json.loads(json.dumps(body, allow_nan=False))
            canonical = _canonical(body)
        except ValueError as exc:
            raise MedforgetError(f"ledger entry parameters are not plain JSON: {exc}") from None
        d = {**body, "entry_hash": hashlib.sha256(canonical).hexdigest(), "mac": _mac(key, canonical)}
        entry = LedgerEntry.model_validate(d, strict=True)  # checks hash formats, entry type, etc.
        data = (json.dumps(d, sort_keys=True, separators=(",", ":")) + "\n").encode()

        created = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
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
    return entry


# --------------------------------------------------------------------------- verifying


def _lis(values: list[int]) -> set[int]:
    """Indices of one longest strictly increasing subsequence (patience sorting, O(n log n))."""
    tails: list[int] = []  # tails[k]: smallest value ending an increasing run of length k+1
    tail_idx: list[int] = []
    parent = [-1] * len(values)
    for i, v in enumerate(values):
        k = bisect.bisect_left(tails, v)
        if k == len(tails):
            tails.append(v)
            tail_idx.append(i)
        else:
            tails[k], tail_idx[k] = v, i
        parent[i] = tail_idx[k - 1] if k else -1
    keep, i = set(), tail_idx[-1] if tail_idx else -1
    while i >= 0:
        keep.add(i)
        i = parent[i]
    return keep


def verify(path: str | os.PathLike[str], key: bytes | None = None) -> LedgerVerification:
    """Check every entry's hash, the chain, the order and (with ``key``) every MAC; name each broken entry.

    Each entry is first checked on its own ("edited", "forged", "wrong-key", "corrupt"). The
    chain is then read through ``seq`` and ``prev_hash``: a repeated seq or an entry that does
    not chain onto its predecessor is "inserted"; an entry that chains correctly but sits
    after a later one is "reordered"; a seq that never appears is "deleted" (unless an
    unreadable line stands exactly where it was, which is reported as "corrupt" with that seq).
    """
    path = Path(path)
    data = _read_bytes(path)

    problems: list[LedgerProblem] = []
    corrupt: dict[int, LedgerProblem] = {}
    parsed: list[_Line] = []
    lines = _split_lines(data)
    for i, text in enumerate(lines, start=1):
        if not text.strip():
            corrupt[i] = LedgerProblem(line=i, seq=None, kind="corrupt", message=f"line {i} is blank")
            continue
        p = _parse_line(text, i, key)
        if isinstance(p, LedgerProblem):
            corrupt[i] = p
        else:
            parsed.append(p)
    if lines and not data.endswith(b"\n") and len(lines) not in corrupt:
        n = len(lines)
        problems.append(
            LedgerProblem(line=n, seq=None, kind="corrupt", message=f"line {n} has no line end (interrupted write?)")
        )

    flagged: dict[int, LedgerProblem] = {p.line: p.problem for p in parsed if p.problem is not None}
    wrong = [p for p in flagged.values() if p.kind == "wrong-key"]
    if wrong and len(wrong) == len(parsed) and len({p.entry.key_id for p in parsed}) == 1:
        # The whole ledger was simply sealed with another key: one problem, not one per line.
        problems.append(
            LedgerProblem(
                line=wrong[0].line,
                seq=wrong[0].seq,
                kind="wrong-key",
                message=f"all {len(parsed)} entries were sealed with key id {parsed[0].entry.key_id}, "
                f"not the given key ({key_id(key or b'')}); MACs could not be checked",
            )
        )
    else:
        problems.extend(flagged.values())

    def report(p: _Line, kind: ProblemKind, message: str) -> None:
        problem = LedgerProblem(line=p.line, seq=p.entry.seq, kind=kind, message=message)
        flagged[p.line] = problem
        problems.append(problem)

    # 1. Repeated seqs: keep the candidate that best fits the chain, the others were inserted.
    by_seq: dict[int, list[_Line]] = {}
    for p in parsed:
        by_seq.setdefault(p.entry.seq, []).append(p)
    genuine: dict[int, _Line] = {}
    for seq, cands in by_seq.items():
        if len(cands) == 1:
            genuine[seq] = cands[0]
            continue

        def fit(c: _Line, seq: int = seq) -> tuple[bool, bool, bool, int]:
            back = (
                c.entry.prev_hash == GENESIS
                if seq == 0
                else any(x.entry.entry_hash == c.entry.prev_hash for x in by_seq.get(seq - 1, []))
            )
            forward = any(x.entry.prev_hash == c.entry.entry_hash for x in by_seq.get(seq + 1, []))
            return (c.line not in flagged, forward, back, -c.line)

        best = max(cands, key=fit)
        genuine[seq] = best
        for c in cands:
            if c is best:
                continue
            if c.entry.entry_hash == best.entry.entry_hash:
                why = f"line {c.line} is a copy of entry seq {seq} on line {best.line}: it was inserted"
            else:
                why = f"line {c.line} repeats seq {seq} of line {best.line} but is not in the chain: it was inserted"
            report(c, "inserted", why)

    # 2. File order: entries off the longest in-order run either moved (they still chain) or were inserted.
    in_order = sorted(genuine.values(), key=lambda p: p.line)
    keep = _lis([p.entry.seq for p in in_order])
    for i, p in enumerate(in_order):
        if i in keep:
            continue
        seq = p.entry.seq
        pred = genuine.get(seq - 1)
        if seq == 0 and p.entry.prev_hash == GENESIS:
            report(p, "reordered", f"entry seq 0 is on line {p.line} but belongs first: entries were reordered")
        elif pred is not None and pred.entry.entry_hash == p.entry.prev_hash:
            report(
                p,
                "reordered",
                f"entry seq {seq} is on line {p.line} but belongs after seq {seq - 1} (line {pred.line}): "
                "entries were reordered",
            )
        else:
            report(p, "inserted", f"line {p.line} (seq {seq}) is out of sequence and chains onto nothing: inserted")
            del genuine[seq]

    # 3. Missing seqs: deleted, unless unreadable lines stand exactly in their place.
    expected, assigned = 0, set()
    for seq in sorted(genuine):
        if seq > expected:
            after, before = genuine[seq], genuine.get(expected - 1)
            lo = before.line if before else 0
            between = [ln for ln in sorted(corrupt) if lo < ln < after.line and ln not in assigned]
            if lo < after.line and len(between) == seq - expected:
                assigned.update(between)
                for k, ln in enumerate(between):
                    corrupt[ln].seq = expected + k
                    corrupt[ln].message += f" (probably entry seq {expected + k})"
            else:
                which = f"entry seq {expected} is" if seq - expected == 1 else f"entries seq {expected}-{seq - 1} are"
                problems.append(
                    LedgerProblem(
                        line=after.line,
                        seq=expected,
                        kind="deleted",
                        message=f"{which} missing before line {after.line} (seq {seq}): deleted",
                    )
                )
        expected = seq + 1

    # 4. Links: an entry whose hash its successor does not carry was replaced or inserted.
    breaks = set()
    for seq, p in genuine.items():
        if seq == 0:
            if p.entry.prev_hash != GENESIS:
                breaks.add(0)
        elif seq - 1 in genuine and genuine[seq - 1].entry.entry_hash != p.entry.prev_hash:
            breaks.add(seq)
    last = max(genuine, default=-1)
    culprits = set()
    for seq in breaks:
        # One changed entry breaks the link after it; if its prev_hash changed too, also the link before it.
        culprits.add(seq if seq == 0 or seq + 1 in breaks or seq == last else seq - 1)
    for seq in sorted(culprits):
        p = genuine[seq]
        if p.line in flagged:
            continue  # already explained (edited, forged, ...)
        if seq + 1 in breaks:
            why = f"entry seq {seq + 1} (line {genuine[seq + 1].line}) does not chain onto it"
        elif seq == 0:
            why = "it does not start the chain"
        else:
            why = f"it does not chain onto entry seq {seq - 1} (line {genuine[seq - 1].line})"
        report(p, "inserted", f"entry seq {seq} on line {p.line} breaks the hash chain ({why}): replaced or inserted")

    problems.extend(corrupt.values())
    problems.sort(key=lambda q: (q.line, q.kind))
    return LedgerVerification(
        ok=not problems,
        n_entries=len(parsed),
        macs_checked=key is not None,
        problems=problems,
        head_hash=genuine[last].entry.entry_hash if genuine else None,
    )


__all__ = [
    "GENESIS",
    "LedgerEntry",
    "LedgerProblem",
    "LedgerVerification",
    "append",
    "find",
    "ledger_schema",
    "read_entries",
    "verify",
]
