"""Checkpoints: round trip, tamper detection, no clobbering, data fingerprint checks."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest
import torch

from medforget.checkpoint import load_checkpoint, save_checkpoint
from medforget.errors import CheckpointError, MedforgetError


def test_round_trip_keeps_weights_and_provenance(breast, breast_ckpt: Path, quick_cfg, tmp_path: Path) -> None:
    ck = load_checkpoint(breast_ckpt)
    meta = ck.meta
    assert meta.arch == "resnet10s" and meta.classes == breast.classes and meta.positive == [0]
    assert meta.dataset.fingerprint == breast.fingerprint() and meta.dataset.n_train == 546
    assert meta.train_config == quick_cfg
    assert meta.parent_sha256 is None and meta.forgotten.sample_hashes == []
    assert ck.sha256 == hashlib.sha256(breast_ckpt.read_bytes()).hexdigest()
    copy = tmp_path / "copy.safetensors"
    save_checkpoint(copy, ck.state, meta, outputs=ck.outputs)
    again = load_checkpoint(copy)
    assert again.meta == meta
    for k, v in (ck.state | ck.outputs).items():
        assert torch.equal(v, (again.state | again.outputs)[k])


def test_every_single_byte_change_is_detected(breast_ckpt: Path, tmp_path: Path) -> None:
    raw = breast_ckpt.read_bytes()
    header_len = int.from_bytes(raw[:8], "little") + 8
    rng = random.Random(0)
    # every byte of the length prefix, a spread of header bytes, and random weight bytes
    positions = list(range(8)) + rng.sample(range(8, header_len), 150) + rng.sample(range(header_len, len(raw)), 150)
    target = tmp_path / "tampered.safetensors"
    for pos in positions:
        data = bytearray(raw)
        data[pos] ^= 0x01
        target.write_bytes(bytes(data))
        with pytest.raises(CheckpointError):
            load_checkpoint(target)


def test_extra_payload_is_rejected(breast_ckpt: Path, tmp_path: Path) -> None:
    target = tmp_path / "extra.safetensors"
    target.write_bytes(breast_ckpt.read_bytes() + b"\x00payload")
    with pytest.raises(CheckpointError, match="extra payload"):
        load_checkpoint(target)


def test_never_overwrites_without_force(breast_ckpt: Path, tmp_path: Path) -> None:
    ck = load_checkpoint(breast_ckpt)
    target = tmp_path / "m.safetensors"
    target.write_bytes(b"precious")
    with pytest.raises(MedforgetError, match="already exists"):
        save_checkpoint(target, ck.state, ck.meta)
    assert target.read_bytes() == b"precious"
    assert list(tmp_path.iterdir()) == [target]  # no temp file left behind
    save_checkpoint(target, ck.state, ck.meta, force=True, outputs=ck.outputs)
    assert load_checkpoint(target).meta == ck.meta


def test_signature_verifies_only_under_its_key(breast_ckpt: Path, tmp_path: Path) -> None:
    ck = load_checkpoint(breast_ckpt)
    target = tmp_path / "signed.safetensors"
    save_checkpoint(target, ck.state, ck.meta, key=b"k" * 32)
    assert load_checkpoint(target, key=b"k" * 32).signature_verified
    with pytest.raises(CheckpointError, match="signature"):
        load_checkpoint(target, key=b"x" * 32)


def test_dataset_fingerprint_mismatch_is_refused(breast_ckpt: Path, breast) -> None:
    from medforget.checkpoint import check_dataset
    from medforget.data import load_medmnist

    ck = load_checkpoint(breast_ckpt)
    check_dataset(ck, breast)
    altered = load_medmnist("breastmnist")
    altered.train.labels[0] = 1 - altered.train.labels[0]
    with pytest.raises(CheckpointError, match="fingerprint mismatch"):
        check_dataset(ck, altered)
    with pytest.raises(CheckpointError, match="trained on breastmnist"):
        check_dataset(ck, load_medmnist("pneumoniamnist"))


def test_not_a_checkpoint(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match="not a medforget checkpoint"):
        load_checkpoint(plain)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.safetensors")
