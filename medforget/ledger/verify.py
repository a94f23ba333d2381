"""Verifying the ledger: name every edited, deleted, inserted, reordered or forged entry."""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, field
from pathlib import Path

from medforget.keys import key_id
from medforget.ledger.entry import (
    GENESIS,
    LedgerProblem,
    LedgerVerification,
    ParsedLine,
    ProblemKind,
    parse_line,
    read_bytes,
    split_lines,
)


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


@dataclass
class _Check:
    """The state of one verification: parsed lines, unreadable lines, problems found so far."""

    key: bytes | None
    parsed: list[ParsedLine] = field(default_factory=list)
    corrupt: dict[int, LedgerProblem] = field(default_factory=dict)
    problems: list[LedgerProblem] = field(default_factory=list)
    flagged: dict[int, LedgerProblem] = field(default_factory=dict)
    genuine: dict[int, ParsedLine] = field(default_factory=dict)

    def report(self, p: ParsedLine, kind: ProblemKind, message: str) -> None:
        problem = LedgerProblem(line=p.line, seq=p.entry.seq, kind=kind, message=message)
        self.flagged[p.line] = problem
        self.problems.append(problem)

    def read(self, data: bytes) -> None:
        """0. Parse every line and check it on its own."""
        lines = split_lines(data)
        for i, text in enumerate(lines, start=1):
            if not text.strip():
                self.corrupt[i] = LedgerProblem(line=i, seq=None, kind="corrupt", message=f"line {i} is blank")
                continue
            p = parse_line(text, i, self.key)
            if isinstance(p, LedgerProblem):
                self.corrupt[i] = p
            else:
                self.parsed.append(p)
        if lines and not data.endswith(b"\n") and len(lines) not in self.corrupt:
            n = len(lines)
            msg = f"line {n} has no line end (interrupted write?)"
            self.problems.append(LedgerProblem(line=n, seq=None, kind="corrupt", message=msg))
        self.flagged = {p.line: p.problem for p in self.parsed if p.problem is not None}
        wrong = [p for p in self.flagged.values() if p.kind == "wrong-key"]
        if wrong and len(wrong) == len(self.parsed) and len({p.entry.key_id for p in self.parsed}) == 1:
            # The whole ledger was simply sealed with another key: one problem, not one per line.
            self.problems.append(
                LedgerProblem(
                    line=wrong[0].line,
                    seq=wrong[0].seq,
                    kind="wrong-key",
                    message=f"all {len(self.parsed)} entries were sealed with key id {self.parsed[0].entry.key_id}, "
                    f"not the given key ({key_id(self.key or b'')}); MACs could not be checked",
                )
            )
        else:
            self.problems.extend(self.flagged.values())

    def repeated(self) -> None:
        """1. Repeated seqs: keep the candidate that best fits the chain, the others were inserted."""
        by_seq: dict[int, list[ParsedLine]] = {}
        for p in self.parsed:
            by_seq.setdefault(p.entry.seq, []).append(p)
        for seq, cands in by_seq.items():
            if len(cands) == 1:
                self.genuine[seq] = cands[0]
                continue

            def fit(c: ParsedLine, seq: int = seq) -> tuple[bool, bool, bool, int]:
                back = (
                    c.entry.prev_hash == GENESIS
                    if seq == 0
                    else any(x.entry.entry_hash == c.entry.prev_hash for x in by_seq.get(seq - 1, []))
                )
                forward = any(x.entry.prev_hash == c.entry.entry_hash for x in by_seq.get(seq + 1, []))
                return (c.line not in self.flagged, forward, back, -c.line)

            best = max(cands, key=fit)
            self.genuine[seq] = best
            for c in cands:
                if c is best:
                    continue
                if c.entry.entry_hash == best.entry.entry_hash:
                    why = f"line {c.line} is a copy of entry seq {seq} on line {best.line}: it was inserted"
                else:
                    why = (
                        f"line {c.line} repeats seq {seq} of line {best.line} but is not in the chain: it was inserted"
                    )
                self.report(c, "inserted", why)

    def order(self) -> None:
        """2. File order: entries off the longest in-order run either moved (they still chain) or were inserted."""
        genuine = self.genuine
        in_order = sorted(genuine.values(), key=lambda p: p.line)
        keep = _lis([p.entry.seq for p in in_order])
        for i, p in enumerate(in_order):
            if i in keep:
                continue
            seq = p.entry.seq
            pred = genuine.get(seq - 1)
            if seq == 0 and p.entry.prev_hash == GENESIS:
                self.report(
                    p, "reordered", f"entry seq 0 is on line {p.line} but belongs first: entries were reordered"
                )
            elif pred is not None and pred.entry.entry_hash == p.entry.prev_hash:
                where = f"entry seq {seq} is on line {p.line} but belongs after seq {seq - 1} (line {pred.line})"
                self.report(p, "reordered", f"{where}: entries were reordered")
            else:
                why = f"line {p.line} (seq {seq}) is out of sequence and chains onto nothing: inserted"
                self.report(p, "inserted", why)
                del genuine[seq]

    def missing(self) -> None:
        """3. Missing seqs: deleted, unless unreadable lines stand exactly in their place."""
        genuine, corrupt = self.genuine, self.corrupt
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
                    which = (
                        f"entry seq {expected} is" if seq - expected == 1 else f"entries seq {expected}-{seq - 1} are"
                    )
                    msg = f"{which} missing before line {after.line} (seq {seq}): deleted"
                    self.problems.append(LedgerProblem(line=after.line, seq=expected, kind="deleted", message=msg))
            expected = seq + 1

    def links(self) -> None:
        """4. Links: an entry whose hash its successor does not carry was replaced or inserted."""
        genuine = self.genuine
        breaks = set()
        for seq, p in genuine.items():
            if seq == 0:
                if p.entry.prev_hash != GENESIS:
                    breaks.add(0)
            elif seq - 1 in genuine and genuine[seq - 1].entry.entry_hash != p.entry.prev_hash:
                breaks.add(seq)
        last = max(genuine, default=-1)
        # One changed entry breaks the link after it; if its prev_hash changed too, also the link before it.
        culprits = {seq if seq == 0 or seq + 1 in breaks or seq == last else seq - 1 for seq in breaks}
        for seq in sorted(culprits):
            p = genuine[seq]
            if p.line in self.flagged:
                continue  # already explained (edited, forged, ...)
            if seq + 1 in breaks:
                why = f"entry seq {seq + 1} (line {genuine[seq + 1].line}) does not chain onto it"
            elif seq == 0:
                why = "it does not start the chain"
            else:
                why = f"it does not chain onto entry seq {seq - 1} (line {genuine[seq - 1].line})"
            msg = f"entry seq {seq} on line {p.line} breaks the hash chain ({why}): replaced or inserted"
            self.report(p, "inserted", msg)


def verify(path: str | os.PathLike[str], key: bytes | None = None) -> LedgerVerification:
    """Check every entry's hash, the chain, the order and (with ``key``) every MAC; name each broken entry.

    Each entry is first checked on its own ("edited", "forged", "wrong-key", "corrupt"). The
    chain is then read through ``seq`` and ``prev_hash``: a repeated seq or an entry that does
    not chain onto its predecessor is "inserted"; an entry that chains correctly but sits
    after a later one is "reordered"; a seq that never appears is "deleted" (unless an
    unreadable line stands exactly where it was, which is reported as "corrupt" with that seq).

    Args:
        path: the ledger file.
        key: the hospital's secret; without it MACs are not checked (and the result says so).

    Returns:
        Whether the ledger is intact, every problem pinned to a line, and the head hash to keep elsewhere.
    """
    check = _Check(key)
    check.read(read_bytes(Path(path)))
    check.repeated()
    check.order()
    check.missing()
    check.links()
    problems = sorted([*check.problems, *check.corrupt.values()], key=lambda q: (q.line, q.kind))
    last = max(check.genuine, default=-1)
    return LedgerVerification(
        ok=not problems,
        n_entries=len(check.parsed),
        macs_checked=key is not None,
        problems=problems,
        head_hash=check.genuine[last].entry.entry_hash if check.genuine else None,
    )
