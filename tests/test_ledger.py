"""The deletion ledger: a round trip, every kind of tampering named at the right line, no clear IDs, locking.

Tampering is done the way an insider would do it: by editing the JSON Lines file directly,
sometimes recomputing hashes with the published formula (which is all one can do without
the key). The formula is re-implemented here rather than imported, so the tests also pin
the documented format.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
from pathlib import Path

import pytest

from medforget.errors import MedforgetError
from medforget.keys import IdHasher, key_id
from medforget.ledger import GENESIS, EntryContent, LedgerEntry, append, find, ledger_schema, read_entries, verify

KEY = b"k" * 32
OTHER_KEY = b"x" * 32


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def add(path: Path, i: int, key: bytes | None = KEY, **kw) -> LedgerEntry:
    """Append a train entry for i == 0, else an unlearning step from model i-1 to model i."""
    args = {
        "entry_type": "train" if i == 0 else "unlearn",
        "request_id": None if i == 0 else f"REQ-{i}",
        "sample_ids": [] if i == 0 else [f"train-{i:06d}"],
        "patient_ids": [] if i == 0 else [f"P{i}"],
        "method": None if i == 0 else "finetune",
        "params": {"epochs": 2, "lr": 1e-3} if i else {},
        "input_sha256": None if i == 0 else sha(f"model-{i - 1}"),
        "output_sha256": sha(f"model-{i}"),
        "report_sha256": None if i == 0 else sha(f"report-{i}"),
    }
    args.update(kw)
    return append(path, key=key, content=EntryContent(**args))


def make_ledger(tmp_path: Path, n: int = 5) -> Path:
    path = tmp_path / "ledger.jsonl"
    for i in range(n):
        add(path, i)
    return path


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def write_lines(path: Path, rows: list[str]) -> None:
    path.write_text("".join(r + "\n" for r in rows))


def reseal(d: dict) -> dict:
    """Recompute entry_hash the way someone without the key can (the MAC stays stale)."""
    body = {k: v for k, v in d.items() if k not in ("entry_hash", "mac")}
    d["entry_hash"] = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return d


def dumps(d: dict) -> str:
    return json.dumps(d, sort_keys=True, separators=(",", ":"))


def only_problem(path: Path, key: bytes | None = KEY):
    res = verify(path, key)
    assert not res.ok
    assert len(res.problems) == 1, res.problems
    return res.problems[0]


# --------------------------------------------------------------------------- round trip


def test_append_verify_round_trip(tmp_path: Path) -> None:
    path = make_ledger(tmp_path, 5)
    entries = read_entries(path)
    assert [e.seq for e in entries] == list(range(5))
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.entry_hash for a, b in itertools.pairwise(entries))
    assert {e.key_id for e in entries} == {key_id(KEY)}
    assert entries[0].entry_type == "train" and entries[3].entry_type == "unlearn"
    assert entries[3].sample_hashes == [IdHasher(KEY)("train-000003")]
    assert entries[3].params == {"epochs": 2, "lr": 1e-3}

    res = verify(path, KEY)
    assert res.ok and res.macs_checked and res.problems == []
    assert res.n_entries == 5 and res.head_hash == entries[-1].entry_hash

    unkeyed = verify(path, None)
    assert unkeyed.ok and not unkeyed.macs_checked


def test_find_walks_lineage_back_to_training(tmp_path: Path) -> None:
    path = make_ledger(tmp_path, 4)
    entry, chain = find(path, sha("model-3")), []
    while entry is not None:
        chain.append(entry.seq)
        entry = find(path, entry.input_sha256) if entry.input_sha256 else None
    assert chain == [3, 2, 1, 0]
    assert find(path, sha("never-made")) is None


def test_schema_describes_the_written_lines(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = ledger_schema()
    assert {"seq", "prev_hash", "entry_hash", "mac", "sample_hashes"} <= set(schema["properties"])
    for row in lines(make_ledger(tmp_path, 2)):
        jsonschema.validate(json.loads(row), schema)


def test_params_must_be_plain_json(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    with pytest.raises(MedforgetError, match="not plain JSON"):
        add(path, 0, params={"lr": float("nan")})
    assert not path.exists()


# --------------------------------------------------------------------------- privacy and keys


def test_no_clear_id_is_written(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    add(path, 0)
    entry = add(path, 1, sample_ids=["train-000123", "train-000124"], patient_ids=["PATIENT-42"])
    raw = path.read_bytes()
    for clear in (b"train-000123", b"train-000124", b"PATIENT-42"):
        assert clear not in raw
    h = IdHasher(KEY)
    assert entry.sample_hashes == sorted([h("train-000123"), h("train-000124")])
    assert entry.patient_hashes == [h("PATIENT-42")]


def test_missing_key_refuses_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    with pytest.raises(MedforgetError, match="MEDFORGET_KEY") as exc:
        add(path, 0, key=None)
    assert "clear" in str(exc.value)
    assert not path.exists()

    add(path, 0)
    before = path.read_bytes()
    with pytest.raises(MedforgetError, match="MEDFORGET_KEY"):
        add(path, 1, key=None)
    assert path.read_bytes() == before


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MedforgetError, match="does not exist"):
        add(tmp_path / "nope" / "ledger.jsonl", 0)


def test_append_with_another_key_refuses(tmp_path: Path) -> None:
    path = make_ledger(tmp_path, 2)
    before = path.read_bytes()
    with pytest.raises(MedforgetError, match="key id"):
        add(path, 2, key=OTHER_KEY)
    assert path.read_bytes() == before


def test_verify_with_wrong_key(tmp_path: Path) -> None:
    path = make_ledger(tmp_path, 3)
    p = only_problem(path, OTHER_KEY)
    assert p.kind == "wrong-key" and key_id(KEY) in p.message


# --------------------------------------------------------------------------- tampering


def test_edited_entry(tmp_path: Path) -> None:
    path = make_ledger(tmp_path)
    rows = lines(path)
    d = json.loads(rows[1])
    d["method"] = "salun"
    rows[1] = dumps(d)
    write_lines(path, rows)
    p = only_problem(path)
    assert (p.kind, p.line, p.seq) == ("edited", 2, 1)
    assert only_problem(path, None).kind == "edited"


def test_added_field_counts_as_edit(tmp_path: Path) -> None:
    path = make_ledger(tmp_path)
    rows = lines(path)
    d = json.loads(rows[2])
    d["note"] = "approved"
    rows[2] = dumps(d)
    write_lines(path, rows)
    p = only_problem(path)
    assert (p.kind, p.line, p.seq) == ("edited", 3, 2) and "note" in p.message


def test_deleted_entry(tmp_path: Path) -> None:
    path = make_ledger(tmp_path)
    rows = lines(path)
    del rows[1]
    write_lines(path, rows)
    p = only_problem(path)
    assert (p.kind, p.seq, p.line) == ("deleted", 1, 2)


def test_deleted_run_of_entries_is_one_problem(tmp_path: Path) -> None:
    path = make_ledger(tmp_path, 6)
    rows = lines(path)
    del rows[1:4]
    write_lines(path, rows)
    p = only_problem(path)
    assert (p.kind, p.seq) == ("deleted", 1) and "1-3" in p.message


def test_duplicated_line_is_inserted(tmp_path: Path) -> None:
    path = make_ledger(tmp_path)
    rows = lines(path)
    rows.insert(2, rows[1])
    write_lines(path, rows)
    p = only_problem(path)
    assert (p.kind, p.line, p.seq) == ("inserted", 3, 1)


@pytest.mark.parametrize("seq", [1, 2, 99])
def test_crafted_line_is_inserted(tmp_path: Path, seq: int) -> None:
    """A self-consistent entry (valid hash, chained onto seq 1) slipped in as line 3."""
    path = make_ledger(tmp_path)
    rows = lines(path)
    d = json.loads(rows[1])
    d.update(seq=seq, method="fake", output_sha256=sha("backdoored"), prev_hash=json.loads(rows[1])["entry_hash"])
    rows.insert(2, dumps(reseal(d)))
    write_lines(path, rows)
    for key in (KEY, None):
        res = verify(path, key)
        assert not res.ok
        named = {(p.line, p.kind) for p in res.problems}
        assert (3, "inserted") in named or (key and (3, "forged") in named), res.problems
        assert all(p.line == 3 for p in res.problems), res.problems  # no genuine entry is blamed


def test_swapped_lines_are_reordered(tmp_path: Path) -> None:
    path = make_ledger(tmp_path)
    rows = lines(path)
    rows[1], rows[2] = rows[2], rows[1]
    write_lines(path, rows)
    p = only_problem(path)
    assert p.kind == "reordered" and p.line in (2, 3) and p.seq in (1, 2)


def test_entry_moved_to_the_front_is_reordered(tmp_path: Path) -> None:
    path = make_ledger(tmp_path)
    rows = lines(path)
    rows.insert(0, rows.pop(3))
    write_lines(path, rows)
    p = only_problem(path)
    assert (p.kind, p.line, p.seq) == ("reordered", 1, 3)


def test_garbage_line_is_corrupt(tmp_path: Path) -> None:
    path = make_ledger(tmp_path)
    rows = lines(path)
    rows.insert(2, "this is not json {")
    write_lines(path, rows)
    p = only_problem(path)
    assert (p.kind, p.line) == ("corrupt", 3)


def test_garbled_entry_is_corrupt_not_deleted(tmp_path: Path) -> None:
    path = make_ledger(tmp_path)
    rows = lines(path)
    rows[1] = rows[1][:40]
    write_lines(path, rows)
    p = only_problem(path)
    assert (p.kind, p.line, p.seq) == ("corrupt", 2, 1)


def test_rewritten_entry_with_recomputed_hash_is_forged(tmp_path: Path) -> None:
    path = make_ledger(tmp_path)
    rows = lines(path)
    d = json.loads(rows[1])
    d["sample_hashes"] = []  # pretend request 1 never asked for anything
    rows[1] = dumps(reseal(d))
    write_lines(path, rows)
    p = only_problem(path, KEY)
    assert (p.kind, p.line, p.seq) == ("forged", 2, 1)
    # Without the key the hash chain still shows that line 2 no longer fits.
    p = only_problem(path, None)
    assert (p.kind, p.line, p.seq) == ("inserted", 2, 1)


def test_rewritten_chain_needs_the_key_to_detect(tmp_path: Path) -> None:
    """Rewriting line 2 and re-chaining everything after it fools a keyless check, never the MAC."""
    path = make_ledger(tmp_path)
    rows = [json.loads(r) for r in lines(path)]
    rows[1]["method"] = "other"
    for i in range(1, len(rows)):
        rows[i]["prev_hash"] = rows[i - 1]["entry_hash"]
        reseal(rows[i])
    write_lines(path, [dumps(d) for d in rows])

    unkeyed = verify(path, None)
    assert unkeyed.ok and not unkeyed.macs_checked
    res = verify(path, KEY)
    assert not res.ok
    assert [(p.kind, p.line) for p in res.problems] == [("forged", n) for n in range(2, 6)]


def test_append_refuses_onto_a_tampered_tail(tmp_path: Path) -> None:
    path = make_ledger(tmp_path, 3)
    rows = lines(path)
    d = json.loads(rows[-1])
    d["method"] = "none"
    rows[-1] = dumps(reseal(d))
    write_lines(path, rows)
    before = path.read_bytes()
    with pytest.raises(MedforgetError, match="tampered"):
        add(path, 3)
    assert path.read_bytes() == before


def test_append_refuses_after_an_incomplete_line(tmp_path: Path) -> None:
    path = make_ledger(tmp_path, 2)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(MedforgetError, match="incomplete line"):
        add(path, 2)
    assert any(p.kind == "corrupt" for p in verify(path, KEY).problems)


# --------------------------------------------------------------------------- concurrency


def _append_many(path: str, worker: int, n: int) -> None:
    for i in range(n):
        content = EntryContent(
            entry_type="unlearn",
            request_id=f"W{worker}-{i}",
            sample_ids=[f"train-{worker:02d}{i:04d}"],
            method="finetune",
            params={"worker": worker, "i": i},
            output_sha256=sha(f"{worker}-{i}"),
        )
        append(path, key=KEY, content=content)


def test_concurrent_appends_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(path), w, 25)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]

    entries = read_entries(path)
    assert len(entries) == 100
    assert [e.seq for e in entries] == list(range(100))
    refs = {IdHasher(KEY).request_ref(f"W{w}-{i}") for w in range(4) for i in range(25)}
    assert {e.request_ref for e in entries} == refs  # the references are stored only as keyed digests
    assert "W0-0" not in path.read_text()
    res = verify(path, KEY)
    assert res.ok and res.n_entries == 100, res.problems
