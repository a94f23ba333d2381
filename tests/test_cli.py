"""The command line through Typer's runner: results on stdout, one-line errors, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from medforget.cli import app

runner = CliRunner()


def test_train_writes_checkpoint_and_json(tmp_path: Path) -> None:
    out = tmp_path / "m.safetensors"
    res = runner.invoke(
        app,
        [
            "train",
            "--out",
            str(out),
            "--arch",
            "resnet10s",
            "--epochs",
            "1",
            "--batch-size",
            "64",
            "--device",
            "cpu",
            "--json",
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.stderr
    summary = json.loads(res.stdout)  # stdout is nothing but the JSON result
    assert summary["checkpoint"] == str(out) and out.is_file()
    assert summary["test"]["n"] == 156 and 0 <= summary["test"]["accuracy"] <= 1
    info = runner.invoke(app, ["info", str(out), "--json"])
    assert info.exit_code == 0
    meta = json.loads(info.stdout)["metadata"]
    assert meta["arch"] == "resnet10s" and meta["train_config"]["epochs"] == 1
    assert meta["parent_sha256"] is None and meta["forgotten"]["sample_hashes"] == []
    assert meta["recorded_outputs"] == ["test", "train", "val"]
    text = runner.invoke(app, ["info", str(out)])
    assert "parent (lineage)" in text.stdout and "none (original training run)" in text.stdout
    assert "logits on test, train, val" in text.stdout


def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "m.safetensors"
    cases = [
        ["train", "--out", str(out), "--dataset", "nosuchmnist"],
        ["train", "--out", str(out), "--positive", "tumour"],
        ["train", "--out", str(out), "--arch", "vgg"],
        ["train", "--out", str(out), "--data-root", str(tmp_path / "empty")],
        ["train", "--out", str(tmp_path / "no" / "dir" / "m.safetensors")],
        ["info", str(tmp_path / "missing.safetensors")],
    ]
    for args in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.stdout, res.stderr)
        lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
        assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
        assert res.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_not_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "m.safetensors"
    out.write_bytes(b"keep me")
    res = runner.invoke(app, ["train", "--out", str(out), "--epochs", "1"])
    assert res.exit_code == 2 and "--force" in res.stderr
    assert out.read_bytes() == b"keep me"


def test_tampered_checkpoint_fails_info(breast_ckpt: Path, tmp_path: Path) -> None:
    data = bytearray(breast_ckpt.read_bytes())
    data[-100] ^= 0x10
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(data))
    res = runner.invoke(app, ["info", str(bad)])
    assert res.exit_code == 3 and "weights hash mismatch" in res.stderr  # tampering, not bad input
