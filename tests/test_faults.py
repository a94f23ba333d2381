"""Fault injection: real processes killed at every step of the write path, clumsy paths, hostile input.

Whatever happens, four things must hold afterwards:

* the input checkpoint is byte for byte what it was;
* the ledger verifies, keeps every earlier entry, and gains at most one entry, only for an output that
  exists and is exactly what the entry names (never a false claim of erasure);
* ``audit`` agrees with what is on disk: a recorded output passes lineage, an unrecorded one is reported;
* no temporary file outlives the next write into the same folder.

Runs are real ``python -m medforget`` processes; ``$MEDFORGET_FAULT_AT=<point>:<signal>`` makes a process
signal itself at a named point of the write path (:func:`medforget.fileio.fault_point`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import write_png_dataset
from typer.testing import CliRunner, Result

from medforget.cli import app
from medforget.fileio import commit
from medforget.ledger import read_entries, verify

KEY = "fault-injection-secret-0123456789abcdef"
runner = CliRunner()
POINTS = ["before-outputs", "temps-written", "between-moves", "outputs-in-place", "ledger-locked", "ledger-written"]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def medforget(*args: str, fault: str) -> subprocess.CompletedProcess:
    """A real process, which signals itself at the fault point."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MEDFORGET_KEY": KEY, "MEDFORGET_FAULT_AT": fault}
    # A suite started in the background by a non-interactive shell inherits SIGINT ignored, and Python then
    # keeps ignoring it: give the run the default disposition a user's terminal gives it.
    return subprocess.run(
        [sys.executable, "-m", "medforget", *args],
        env=env,
        capture_output=True,
        timeout=600,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def cli(*args: str, stdin: bytes | None = None) -> Result:
    """In-process, for everything refused before work (no fault needed)."""
    return runner.invoke(app, list(args), input=stdin, env={"MEDFORGET_KEY": KEY})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A signed checkpoint with its training entry in a ledger, and an unsigned one, on a small generated dataset.

    The write path does not depend on the images, so the runs here unlearn a 40-image dataset and cost little
    beyond starting Python; real MedMNIST data goes through the same code in test_unlearn.py.
    """
    from medforget.config import TrainConfig
    from medforget.data import load_dataset
    from medforget.train import train

    folder = tmp_path_factory.mktemp("world")
    manifest = write_png_dataset(folder / "data", {"train": 40, "val": 12, "test": 12}, size=16)
    ds = load_dataset("csv", size=16, manifest=manifest, positive=["malignant"])
    cfg = TrainConfig(arch="resnet10s", epochs=1, batch_size=16, seed=0)
    train(ds, cfg, folder / "model.safetensors", device="cpu", key=KEY.encode(), ledger=folder / "ledger.jsonl")
    train(ds, cfg, folder / "unsigned.safetensors", device="cpu")
    (folder / "request.json").write_text(json.dumps({"request_id": "DPO-1", "patient_ids": ["P-train-3"]}))
    return folder


def populate(site: Path, world: Path) -> Path:
    """A folder holding copies of the world's checkpoint and ledger, its request, and a link to its images."""
    site.mkdir(exist_ok=True)
    for name in ("model.safetensors", "ledger.jsonl", "request.json"):
        shutil.copy2(world / name, site / name)
    (site / "data").symlink_to(world / "data")
    return site


@pytest.fixture()
def site(world: Path, tmp_path: Path) -> Path:
    return populate(tmp_path, world)


def unlearn_args(site: Path, *extra: str) -> list[str]:
    return [
        "unlearn", "-c", str(site / "model.safetensors"), "-r", str(site / "request.json"), "-m", "finetune",
        "-p", "epochs=1", "--manifest", str(site / "data" / "manifest.csv"), "--baseline", "none",
        "--out", str(site / "out.safetensors"), "--report", str(site / "out.json"),
        "--ledger", str(site / "ledger.jsonl"), "--device", "cpu", "--quiet", *extra,
    ]  # fmt: skip


def assert_consistent(site: Path, input_sha: str, entries_before: int) -> str:
    """The four invariants of the module docstring; returns what the run left ('nothing' or 'recorded')."""
    assert sha(site / "model.safetensors") == input_sha
    verified = verify(site / "ledger.jsonl", KEY.encode())
    assert verified.ok, verified.problems
    entries = read_entries(site / "ledger.jsonl")
    assert len(entries) in (entries_before, entries_before + 1)
    out = site / "out.safetensors"
    new = entries[entries_before:]
    if new:  # an entry is only ever appended for an output that is complete and in place
        assert out.is_file() and sha(out) == new[0].output_sha256
        assert (site / "out.json").is_file()
    audit = cli("audit", str(out), "--ledger", str(site / "ledger.jsonl"), "--json", "--quiet")
    if out.exists():
        lineage = next(c for c in json.loads(audit.stdout)["checks"] if c["name"] == "lineage")
        assert (lineage["status"] == "pass") == bool(new), lineage
        if not new:
            assert "no ledger entry produced this checkpoint" in lineage["summary"]
    else:
        assert audit.exit_code == 2 and not new
    commit({site / "later.txt": b"a later write into the same folder"}, force=True)
    assert not [p.name for p in site.iterdir() if p.name.endswith(".tmp")], "a temporary file survived"
    return "recorded" if new else "nothing" if not out.exists() else "unrecorded"


EXPECTED = {  # what a run killed at each point leaves behind
    "SIGKILL": {"before-outputs": "nothing", "temps-written": "nothing", "between-moves": "unrecorded",
                "outputs-in-place": "unrecorded", "ledger-locked": "unrecorded", "ledger-written": "recorded"},
    # Ctrl-C is held while the outputs move into place and are recorded: never an unrecorded output
    "SIGINT": {"before-outputs": "nothing", "temps-written": "nothing", "between-moves": "recorded",
               "outputs-in-place": "recorded", "ledger-locked": "recorded", "ledger-written": "recorded"},
}  # fmt: skip


def test_kill_9_and_ctrl_c_at_every_write_phase(world: Path, tmp_path: Path) -> None:
    """12 real runs (2 signals x 6 points), two at a time; each must leave a consistent world."""
    cases = [(sig, point) for sig in EXPECTED for point in POINTS]
    sites = {(sig, point): populate(tmp_path / f"{sig}-{point}", world) for sig, point in cases}
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(lambda c: medforget(*unlearn_args(sites[c]), fault=f"{c[1]}:{c[0]}"), cases)
        runs = dict(zip(cases, results, strict=True))
    before = sha(world / "model.safetensors")
    for (sig, point), res in runs.items():
        assert res.returncode == (-9 if sig == "SIGKILL" else 130), (sig, point, res.stderr.decode()[-500:])
        left = assert_consistent(sites[sig, point], before, 1)
        assert left == EXPECTED[sig][point], (sig, point)


def test_an_unrecorded_output_can_be_recorded_afterwards(site: Path) -> None:
    n = len(read_entries(site / "ledger.jsonl"))
    assert medforget(*unlearn_args(site), fault="outputs-in-place:SIGKILL").returncode == -9
    record = ["ledger", "record", str(site / "out.safetensors"), "--ledger", str(site / "ledger.jsonl"),
              "--manifest", str(site / "data" / "manifest.csv")]  # fmt: skip
    missing = cli(*record)
    assert missing.exit_code == 2 and "--request" in missing.stderr  # which patients it forgot needs the request
    rec = cli(*record, "-r", str(site / "request.json"), "--report", str(site / "out.json"))
    assert rec.exit_code == 0, rec.stderr
    assert assert_consistent(site, sha(site / "model.safetensors"), n) == "recorded"
    again = cli(*record, "-r", str(site / "request.json"))
    assert again.exit_code == 2 and "already records" in again.stderr


def test_train_killed_after_the_move_leaves_an_unrecorded_model(site: Path) -> None:
    ledger = site / "ledger.jsonl"
    n = len(read_entries(ledger))
    args = ["train", "--dataset", "csv", "--manifest", str(site / "data" / "manifest.csv"), "--size", "16",
            "--positive", "malignant", "--arch", "resnet10s", "--epochs", "1", "--out", str(site / "t.safetensors"),
            "--ledger", str(ledger), "--device", "cpu", "-q"]  # fmt: skip
    assert medforget(*args, fault="outputs-in-place:SIGKILL").returncode == -9
    assert (site / "t.safetensors").is_file() and len(read_entries(ledger)) == n
    audit = cli("audit", str(site / "t.safetensors"), "--ledger", str(ledger), "--json", "-q")
    assert audit.exit_code == 3 and "no ledger entry" in audit.stdout


# --------------------------------------------------------------------------- clumsy paths


@pytest.mark.parametrize(
    ("option", "target"),
    [
        ("--out", "model.safetensors"),
        ("--report", "model.safetensors"),
        ("--report", "ledger.jsonl"),
        ("--html", "ledger.jsonl"),
        ("--out", "ledger.jsonl.lock"),
        ("--html", "model.safetensors"),
    ],
)
@pytest.mark.parametrize("force", [False, True])
def test_no_output_may_be_an_input_or_the_ledger(site: Path, option: str, target: str, force: bool) -> None:
    before = {p.name: sha(p) for p in site.iterdir() if p.is_file()}
    args = unlearn_args(site, option, str(site / target), *(["--force"] if force else []))
    res = cli(*args)
    assert res.exit_code == 2, res.stderr
    assert "never overwritten" in res.stderr or "same file" in res.stderr
    assert {p.name: sha(p) for p in site.iterdir() if p.is_file()} == before


def test_an_unwritable_folder_is_refused_before_any_work(site: Path) -> None:
    if os.geteuid() == 0:
        folder = Path("/sys")  # root ignores permission bits; /sys refuses writes even to root
    else:
        folder = site / "readonly"
        folder.mkdir(mode=0o555)
    for option in ("--out", "--report", "--html"):
        res = cli(*unlearn_args(site, option, str(folder / "x.out")))
        assert res.exit_code == 2 and "cannot write to folder" in res.stderr, res.stderr
    assert not (site / "out.safetensors").exists() and len(read_entries(site / "ledger.jsonl")) == 1


# --------------------------------------------------------------------------- hostile requests


@pytest.mark.parametrize(
    ("request_text", "message"),
    [
        (b'{"request_id": "\\ud800", "sample_ids": ["train-000001"]}', "lone surrogate"),
        (b'{"sample_ids": ["train-000001"], "reason": "x\xff\xfe"}', "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (json.dumps({"sample_ids": ["train-000001"], "reason": "x" * 5_000_000}).encode(), "at most 2000"),
        (json.dumps({"request_id": "r" * 10_000, "sample_ids": ["train-000001"]}).encode(), "at most 200"),
        (json.dumps({"sample_ids": ["train-000001\u202e"]}).encode(), "control or invisible"),
        (json.dumps({"sample_ids": ["train-000001\x1b[31m"]}).encode(), "control or invisible"),
    ],
)
def test_hostile_request_fields_are_refused_in_one_line(site: Path, request_text: bytes, message: str) -> None:
    args = unlearn_args(site)
    args[args.index("-r") + 1] = "-"
    res = cli(*args, stdin=request_text)
    err = res.stderr
    assert res.exit_code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (site / "out.safetensors").exists()


def test_terminal_markup_in_a_request_is_printed_literally(site: Path) -> None:
    request = site / "markup.json"
    request.write_text(json.dumps({"request_id": "[/bold][red]DPO-1", "sample_ids": ["train-000001"]}))
    args = unlearn_args(site)
    args[args.index("-r") + 1] = str(request)
    args.remove("--quiet")
    res = cli(*args)
    assert res.exit_code == 0, res.stderr
    assert "[/bold][red]DPO-1" in res.stdout
    assert "DPO-1" not in (site / "ledger.jsonl").read_text()  # stored only as a keyed digest


def test_a_bad_method_name_is_one_line(site: Path) -> None:
    res = cli("unlearn", "-c", str(site / "model.safetensors"), "-r", str(site / "request.json"), "--method", "../x")
    assert res.exit_code == 2 and "unknown method" in res.stderr


# --------------------------------------------------------------------------- signatures


def rewrite_signature(path: Path, value: object) -> None:
    """Replace (or, with ``None``, remove) the signature field of a checkpoint's header."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    if value is None:
        header["__metadata__"].pop("medforget_signature")
    else:
        header["__metadata__"]["medforget_signature"] = value if isinstance(value, str) else json.dumps(value)
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + raw[8 + n :])


@pytest.mark.parametrize("value", [[1, 2], 7, "garbage", {"key_id": "x", "hmac": 5}, {"key_id": "x"}, None])
def test_malformed_or_stripped_signatures_are_tampering(site: Path, value: object) -> None:
    rewrite_signature(site / "model.safetensors", value)
    for args in (["info", str(site / "model.safetensors")], unlearn_args(site)):
        res = cli(*args)
        assert res.exit_code == 3, (args[0], res.stderr)
        assert "Traceback" not in res.stderr
    audit = cli("audit", str(site / "model.safetensors"), "--json", "-q")
    assert audit.exit_code == 3 and json.loads(audit.stdout)["integrity"]["ok"] is False


def test_with_a_key_an_unsigned_input_needs_an_explicit_recorded_choice(site: Path, world: Path) -> None:
    shutil.copy2(world / "unsigned.safetensors", site / "model.safetensors")  # trained without a key
    res = cli(*unlearn_args(site, "--ledger", str(site / "fresh.jsonl")))
    assert res.exit_code == 2 and "not signed" in res.stderr
    assert not (site / "out.safetensors").exists()
    args = [a for a in unlearn_args(site) if a not in ("--ledger", str(site / "ledger.jsonl"))]
    res = cli(*args, "--accept-unsigned")
    assert res.exit_code == 0, res.stderr
    info = json.loads(cli("info", str(site / "out.safetensors"), "--json").stdout)
    assert info["signature_verified"] and info["metadata"]["unlearning"]["input_signature"] == "unsigned, accepted"
