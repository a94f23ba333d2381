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

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medforget.errors import MedforgetError
from medforget.keys import KEY_ENV, KEY_FILE_ENV, key_id

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
    request_ref: str | None = Field(
        None,
        pattern=_SHA256,
        description="HMAC-SHA256 under the key of the request's own reference (never the reference itself: people "
        "write names into it, and this file can never be edited)",
    )
    request_id: str | None = Field(
        None, description="Legacy: entries written before request references were keyed held them in clear"
    )
    sample_hashes: list[str] = Field(
        default_factory=list, description="Sorted HMAC-SHA256 digests of the forgotten sample IDs (never clear IDs)"
    )
    patient_hashes: list[str] = Field(
        default_factory=list, description="Sorted HMAC-SHA256 digests of the forgotten patient IDs (never clear IDs)"
    )
    key_id: str = Field(description="Public identifier of the key used for the digests and the MAC")
    method: str | None = Field(None, description="Unlearning method (or None for training)")
    params: dict[str, Any] = Field(default_factory=dict, description="Method or training parameters")
    operating_point: dict[str, Any] | None = Field(
        None, description="The decision threshold reset after unlearning (offset on the disease logits, target)"
    )
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


def canonical_bytes(d: dict[str, Any]) -> bytes:
    """The bytes that ``entry_hash`` and ``mac`` cover: every field except those two.

    Computed from the parsed line itself (not from the model), so a field added by hand is
    covered too. ``allow_nan=False`` keeps the line standard JSON; NaN raises ``ValueError``.
    """
    body = {k: v for k, v in d.items() if k not in _SEALS}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def seal(key: bytes, canonical: bytes) -> str:
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


def missing_key_error() -> MedforgetError:
    return MedforgetError(
        "the deletion ledger needs a secret key: it refuses to store sample or patient IDs in clear and "
        f"seals every entry with it; set ${KEY_ENV} (at least 16 characters, e.g. from `medforget key new`) "
        f"or point ${KEY_FILE_ENV} / --key-file at a file holding it"
    )


# --------------------------------------------------------------------------- parsing


@dataclass
class ParsedLine:
    """A line that parsed as an entry, with the per-entry checks already done."""

    line: int
    entry: LedgerEntry
    problem: LedgerProblem | None  # edited, forged or wrong-key


def parse_line(text: bytes, line: int, key: bytes | None) -> ParsedLine | LedgerProblem:
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
        canonical = canonical_bytes(d)
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
    elif key is not None and not hmac.compare_digest(seal(key, canonical), entry.mac):
        problem = LedgerProblem(
            line=line,
            seq=entry.seq,
            kind="forged",
            message=f"entry seq {entry.seq} on line {line} has a valid hash but a wrong MAC: "
            "it was rewritten by someone without the key",
        )
    return ParsedLine(line, entry, problem)


def split_lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def read_bytes(path: Path) -> bytes:
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
    data = read_bytes(path)
    entries = []
    for i, text in enumerate(split_lines(data), start=1):
        parsed = parse_line(text, i, None)
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
