"""Lineage: the chain of ledger entries from a checkpoint back to the training run that started it."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, Field

from medforget.checkpoint import LoadedCheckpoint
from medforget.errors import MedforgetError
from medforget.ledger.entry import LedgerEntry, LedgerProblem, read_entries
from medforget.ledger.verify import verify


class LineageLink(BaseModel):
    """One ledger entry on the way from the audited checkpoint back to training."""

    seq: int
    entry_type: str
    created_at: str
    method: str | None
    request_ref: str | None = Field(description="Keyed digest of the request's reference")
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
    if entry.key_id == meta.forgotten.key_id and entry.request_ref != u.request_ref:
        # Same key: the request references are comparable digests.
        problems.append("the entry's request reference is not the checkpoint's")
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


def _link(e: LedgerEntry) -> LineageLink:
    return LineageLink(
        seq=e.seq,
        entry_type=e.entry_type,
        created_at=e.created_at,
        method=e.method,
        request_ref=e.request_ref,
        n_samples=len(e.sample_hashes),
        n_patients=len(e.patient_hashes),
        input_sha256=e.input_sha256,
        output_sha256=e.output_sha256,
    )


def _walk(res: LineageResult, cur: LedgerEntry, by_output: dict[str, LedgerEntry], ck: LoadedCheckpoint) -> None:
    """Follow ``input_sha256`` from the checkpoint's entry to a training run, noting each link's problems."""
    seen: set[str] = set()
    link = _link(cur)
    link.problems.extend(_first_link_problems(cur, ck))
    while True:
        res.chain.append(link)
        seen.add(cur.output_sha256)
        if cur.input_sha256 is None:
            if cur.entry_type != "train":
                link.problems.append("the chain ends at an 'unlearn' entry with no input, not at a training run")
            else:
                res.complete = True
                differ = _train_params_differ(cur, ck)
                if differ:
                    link.problems.append(f"training recipe differs from the checkpoint's on {', '.join(differ)}")
            return
        if cur.entry_type == "train":
            link.problems.append("a 'train' entry must not have an input checkpoint")
        nxt = by_output.get(cur.input_sha256)
        if nxt is None:
            link.problems.append(f"no ledger entry produced its input {_short(cur.input_sha256)}: the chain is broken")
            return
        if nxt.output_sha256 in seen:
            link.problems.append(f"its input {_short(cur.input_sha256)} is already in the chain: a cycle")
            return
        if nxt.seq >= cur.seq:
            link.problems.append(f"its input was recorded after it (entry {nxt.seq} after entry {cur.seq})")
        cur, link = nxt, _link(nxt)


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
    _walk(res, cur, by_output, ck)
    res.ok = res.ledger_ok and res.complete and not res.problems and not any(lk.problems for lk in res.chain)
    return res
