"""The paths to hospital scale that run here: the GPU code path on CPU (and on CUDA when present), torchrun DDP.

The CUDA smoke test runs train -> unlearn -> audit on a GPU and is skipped without one; the same
commands run on CPU in this suite, through the same autocast / gradient-scaler / channels_last code
(disabled, as it is in fp32). DDP runs two CPU processes on the gloo backend under ``torchrun``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from medforget import runtime
from medforget.checkpoint import check_dataset, load_checkpoint
from medforget.cli import app
from medforget.config import RuntimeOptions, TrainConfig
from medforget.engine import resolve_device, train_model
from medforget.errors import MedforgetError

REPO = Path(__file__).resolve().parents[1]
REQUEST = REPO / "sample_requests" / "breastmnist-single-patient.json"
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU"))]


@pytest.mark.parametrize("device", DEVICES)
def test_train_unlearn_audit_on_the_device(device: str, tmp_path: Path) -> None:
    """The GPU path end to end: mixed precision on CUDA (fp32 on CPU), deterministic mode recorded."""
    cli = CliRunner()
    model = tmp_path / "m.safetensors"
    args = ["train", "--arch", "resnet10s", "--epochs", "1", "--batch-size", "64", "--device", device]
    res = cli.invoke(app, [*args, "--deterministic", "--out", str(model), "--json", "--quiet"])
    assert res.exit_code == 0, res.stderr
    meta = json.loads(cli.invoke(app, ["info", str(model), "--json"]).stdout)["metadata"]
    rt = meta["runtime"]
    assert rt["deterministic"] and rt["channels_last"] and rt["world_size"] == 1 and not rt["compiled"]
    if device == "cuda":
        assert rt["device"].startswith("cuda (") and rt["precision"] in ("bf16", "fp16")
        assert rt["grad_scaler"] == (rt["precision"] == "fp16")
    else:
        assert rt == {**rt, "device": "cpu", "precision": "fp32", "grad_scaler": False}
    assert not torch.are_deterministic_algorithms_enabled()  # switched on for training only
    out = tmp_path / "u.safetensors"
    args = ["unlearn", "-c", str(model), "-r", str(REQUEST), "-m", "finetune", "-p", "epochs=1", "--baseline", "none"]
    args += ["--device", device]
    res = cli.invoke(app, [*args, "--out", str(out), "--json", "--quiet"])
    assert res.exit_code == 0, res.stderr
    audit = cli.invoke(app, ["audit", str(out), "-r", str(REQUEST), "--device", device, "--json"])
    assert audit.exit_code in (0, 4), audit.stderr
    assert json.loads(audit.stdout)["checks"]


def test_mixed_precision_is_refused_on_cpu_and_resolved_on_cuda(breast) -> None:
    cfg = TrainConfig(arch="resnet10s", epochs=1, batch_size=32)
    with runtime.use(RuntimeOptions(precision="bf16")), pytest.raises(MedforgetError, match="needs CUDA"):
        train_model(breast, cfg, resolve_device("cpu"), train_split=breast.train.subset(range(32)))
    cpu = runtime.Runtime.for_device(torch.device("cpu"))
    assert cpu.precision == "fp32" and cpu.dtype is None and not cpu.scaler().is_enabled()
    with cpu.autocast():
        assert not torch.is_autocast_enabled("cpu")
    for asked, supported, want in [("auto", True, "bf16"), ("auto", False, "fp16"), ("fp32", True, "fp32")]:
        with runtime.use(RuntimeOptions(precision=asked)):
            real = torch.cuda.is_bf16_supported
            torch.cuda.is_bf16_supported = lambda supported=supported: supported  # what the GPU would answer
            try:
                gpu = runtime.Runtime.for_device(torch.device("cuda"))
            finally:
                torch.cuda.is_bf16_supported = real
        assert gpu.precision == want and gpu.needs_scaler == (want == "fp16")


def _torchrun(args: list[str], cwd: Path, **env_vars: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), **env_vars}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "medforget"]
    return subprocess.run([*cmd, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_torchrun_trains_one_model_on_two_processes(tmp_path: Path, breast, breast_ckpt, quick_cfg) -> None:
    """2 CPU processes (gloo) train the recipe of ``breast_ckpt``: only rank 0 writes, the checkpoint verifies,
    records the world size, and its test accuracy is within noise of the one-process model.

    Each step sees the same global batch as in one process, but batch-norm statistics are per rank
    (16 images instead of 32), so the weights differ; on 156 test images the binomial standard error
    of an accuracy near 0.8 is 3.2 points, and 8 points is 2.5 of them."""
    out = tmp_path / "ddp.safetensors"
    ledger = tmp_path / "ledger.jsonl"
    recipe = ["--arch", quick_cfg.arch, "--epochs", str(quick_cfg.epochs), "--batch-size", str(quick_cfg.batch_size)]
    recipe += ["--lr", str(quick_cfg.lr), "--seed", str(quick_cfg.seed), "--device", "cpu"]
    args = ["train", *recipe, "--out", str(out), "--ledger", str(ledger), "--json", "--quiet"]
    res = _torchrun(args, tmp_path, MEDFORGET_KEY="a-secret-for-the-ddp-test")
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout)  # one JSON document: rank 1 printed nothing
    assert summary["checkpoint"] == str(out)
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".safetensors"] == ["ddp.safetensors"]
    assert len(ledger.read_text().splitlines()) == 1  # one ledger entry, from rank 0
    ddp = load_checkpoint(out)
    check_dataset(ddp, breast)  # the same data fingerprint as a one-process run
    single = load_checkpoint(breast_ckpt)
    assert ddp.meta.runtime is not None and ddp.meta.runtime.world_size == 2
    assert ddp.meta.train_config == single.meta.train_config
    gap = abs(ddp.meta.metrics["test_accuracy"] - single.meta.metrics["test_accuracy"])
    assert gap <= 0.08, (ddp.meta.metrics, single.meta.metrics)
    majority = float(torch.bincount(breast.test.labels).max()) / len(breast.test)
    assert ddp.meta.metrics["test_accuracy"] > majority + 0.03
