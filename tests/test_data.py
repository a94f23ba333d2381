"""The data layer on real BreastMNIST/PneumoniaMNIST files and on generated image folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import medmnist
import numpy as np
import pytest
import torch
from conftest import rewrite_csv, write_png_dataset

from medforget.data import (
    batches,
    load_csv_dataset,
    load_dataset,
    load_medmnist,
    parse_sample_id,
    resolve_positive,
    sample_id,
    to_float,
)
from medforget.errors import DataError


def test_sample_ids_are_stable_and_round_trip(breast) -> None:
    assert sample_id("train", 123) == "train-000123"
    assert parse_sample_id("test-000007") == ("test", 7)
    for split in breast.splits.values():
        for i in (0, len(split) - 1):
            assert parse_sample_id(split.sample_ids[i]) == (split.name, i)
    again = load_medmnist("breastmnist")
    assert again.train.sample_ids == breast.train.sample_ids
    assert torch.equal(again.train.images, breast.train.images)


@pytest.mark.parametrize("bad", ["train-123", "train_000123", "holdout-000001", "train-0001234", ""])
def test_malformed_sample_ids_are_rejected(bad: str) -> None:
    with pytest.raises(DataError, match="malformed sample ID"):
        parse_sample_id(bad)


def test_breastmnist_matches_medmnist_info(breast) -> None:
    info = medmnist.INFO["breastmnist"]
    for name, split in breast.splits.items():
        assert len(split) == info["n_samples"][name]
        assert split.images.dtype == torch.uint8 and split.images.shape[1:] == (1, 28, 28)
    assert breast.classes == ["malignant", "normal, benign"]
    assert breast.positive == [0]  # malignant is label 0 in BreastMNIST
    raw = np.load(Path(breast_root()) / "breastmnist.npz")
    assert np.array_equal(breast.train.images[:, 0].numpy(), raw["train_images"])
    assert breast.train.patient_ids == breast.train.sample_ids  # no manifest: one sample per patient


def breast_root() -> str:
    import os

    return os.environ["MEDFORGET_DATA_ROOT"]


def test_pneumonia_positive_class_and_64px_breast() -> None:
    pneu = load_medmnist("pneumoniamnist")
    assert pneu.classes[pneu.positive[0]] == "pneumonia" and pneu.positive == [1]
    big = load_medmnist("breastmnist", size=64)
    assert big.train.images.shape[1:] == (1, 64, 64)
    assert big.fingerprint() != load_medmnist("breastmnist").fingerprint()


def test_positive_accepts_names_indices_and_clinical_abbreviations() -> None:
    derma = [medmnist.INFO["dermamnist"]["label"][str(i)] for i in range(7)]
    assert resolve_positive("dermamnist", derma, None) == [0, 1, 4]
    assert resolve_positive("dermamnist", derma, ["mel", "1"]) == [1, 4]
    path = [medmnist.INFO["pathmnist"]["label"][str(i)] for i in range(9)]
    assert resolve_positive("pathmnist", path, None) == [8]
    assert resolve_positive("breastmnist", ["malignant", "normal, benign"], ["MALIGNANT"]) == [0]
    with pytest.raises(DataError, match="unknown positive class"):
        resolve_positive("breastmnist", ["malignant", "normal, benign"], ["tumour"])
    with pytest.raises(DataError, match="every class"):
        resolve_positive("breastmnist", ["malignant", "normal, benign"], ["0", "1"])


def test_missing_file_names_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError) as exc:
        load_medmnist("pneumoniamnist", data_root=tmp_path, download=False)
    assert "pneumoniamnist.npz" in str(exc.value) and str(tmp_path) in str(exc.value)


def test_corrupted_file_is_caught_by_md5(tmp_path: Path, data_root: Path) -> None:
    target = tmp_path / "breastmnist.npz"
    shutil.copy(data_root / "breastmnist.npz", target)
    target.chmod(0o644)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(DataError, match="corrupted"):
        load_medmnist("breastmnist", data_root=tmp_path, download=False)


def test_fingerprint_is_root_independent_and_content_sensitive(tmp_path: Path, data_root: Path, breast) -> None:
    shutil.copy(data_root / "breastmnist.npz", tmp_path / "breastmnist.npz")
    moved = load_medmnist("breastmnist", data_root=tmp_path)
    assert moved.fingerprint() == breast.fingerprint()
    shuffled = breast.train.subset(torch.randperm(len(breast.train), generator=torch.Generator().manual_seed(1)))
    assert shuffled.fingerprint() == breast.train.fingerprint()  # order-independent
    changed = breast.train.subset(range(len(breast.train)))
    changed.images[5, 0, 3, 3] ^= 1
    assert changed.fingerprint() != breast.train.fingerprint()


def test_manifest_attaches_patients_and_attributes(tmp_path: Path) -> None:
    manifest = tmp_path / "patients.csv"
    manifest.write_text("sample_id,patient_id,sex,site\ntrain-000000,P1,F,A\ntrain-000001,P1,F,A\ntest-000003,P9,M,B\n")
    ds = load_medmnist("breastmnist", manifest=manifest)
    assert ds.train.patient_ids[:3] == ["P1", "P1", "train-000002"]
    assert ds.train.attributes["sex"][:3] == ["F", "F", ""]
    assert ds.test.attributes["site"][3] == "B"
    assert ds.spec.manifest_sha256 is not None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("sample_id,patient_id\ntrain-000000,P1\ntrain-000000,P2\n", "duplicate sample_id"),
        ("sample_id,patient_id\ntrain-999999,P1\n", "not in breastmnist"),
        ("sample_id,patient_id\ntrain-000000,P1\ntest-000000,P1\n", "appears in splits train and test"),
        ("sample_id,subject\ntrain-000000,P1\n", "lacks column"),
    ],
)
def test_manifest_errors(tmp_path: Path, body: str, message: str) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(body)
    with pytest.raises(DataError, match=message):
        load_medmnist("breastmnist", manifest=manifest)


def test_custom_csv_dataset_loads_like_medmnist(tmp_path: Path) -> None:
    manifest = write_png_dataset(tmp_path / "ds")
    ds = load_dataset("csv", size=16, manifest=manifest, positive=["malignant"])
    assert ds.classes == ["benign", "malignant"] and ds.positive == [1]
    assert ds.train.images.shape == (16, 1, 16, 16) and ds.train.images.dtype == torch.uint8
    assert ds.train.patient_ids[:2] == ["P-train-0", "P-train-0"]
    assert ds.test.attributes["sex"][0] == "M"
    # brighter class really is brighter: labels line up with pixels
    mean = ds.train.images.float().mean((1, 2, 3))
    assert mean[ds.train.labels == 1].min() > mean[ds.train.labels == 0].max()
    rgb = load_dataset("csv", manifest=write_png_dataset(tmp_path / "rgb", mode="RGB"), positive=["malignant"])
    assert rgb.n_channels == 3 and rgb.train.images.shape[1:] == (3, 28, 28)


def test_custom_csv_binarise_collapses_multiclass(tmp_path: Path) -> None:
    manifest = write_png_dataset(tmp_path / "ds", classes=("nevus", "keratosis", "melanoma"))
    ds = load_csv_dataset(manifest, positive=["melanoma"], binary=True)
    assert ds.classes[0] == "negative" and ds.positive == [1]
    full = load_csv_dataset(manifest, positive=["melanoma"])
    assert torch.equal(ds.train.labels, (full.train.labels == full.classes.index("melanoma")).long())


def _drop_first_image(folder: Path) -> None:
    (folder / "img" / "train_0.png").unlink()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda rows: [*rows, dict(rows[0])], "duplicate sample_id"),
        (lambda rows: [{**r, "label": "cyst"} if r["split"] == "test" else r for r in rows], "unknown label 'cyst'"),
        (
            lambda rows: [{**r, "patient_id": "P-shared"} if i in (0, 20) else r for i, r in enumerate(rows)],
            "appears in splits",
        ),
        (lambda rows: [{**r, "split": "holdout"} if i == 3 else r for i, r in enumerate(rows)], "split 'holdout'"),
        (lambda rows: [{**r, "path": "img/nope.png"} if i == 2 else r for i, r in enumerate(rows)], "not found"),
    ],
)
def test_custom_csv_errors(tmp_path: Path, edit, message: str) -> None:
    manifest = write_png_dataset(tmp_path / "ds")
    rewrite_csv(manifest, edit)
    with pytest.raises(DataError, match=message):
        load_csv_dataset(manifest, positive=["malignant"])


def test_custom_csv_needs_positive(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="--positive"):
        load_csv_dataset(write_png_dataset(tmp_path / "ds"))


def test_batches_cover_every_row_once_and_normalise(breast) -> None:
    split = breast.train
    seen = []
    for x, y, rows in batches(
        split.images, split.labels, 100, shuffle=True, generator=torch.Generator().manual_seed(0)
    ):
        assert x.dtype == torch.float32 and float(x.min()) >= -1.0 and float(x.max()) <= 1.0
        assert torch.equal(y, split.labels[rows])
        assert torch.allclose(x, to_float(split.images[rows]))
        seen.append(rows)
    assert sorted(torch.cat(seen).tolist()) == list(range(len(split)))
