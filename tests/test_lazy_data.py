"""Lazily read data: the same IDs, fingerprints, batches and trained weights as in memory, from the image cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_png_dataset
from PIL import Image

from medforget.config import ReadOptions, TrainConfig
from medforget.data import LazyImages, batches, concat_splits, load_dataset, load_medmnist, reading
from medforget.data.lazy import lazy_batches
from medforget.engine import build_model, fit, predict
from medforget.methods import UnlearnTask, get_method

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def breast64_pair():
    eager = load_medmnist("breastmnist", size=64)
    with reading(ReadOptions(lazy=True, workers=2)):
        lazy = load_medmnist("breastmnist", size=64)
    return eager, lazy


def test_medmnist_plus_reads_lazily_with_the_same_ids_pixels_and_fingerprint(breast64_pair) -> None:
    eager, lazy = breast64_pair
    for s in ("train", "val", "test"):
        e, z = eager.splits[s], lazy.splits[s]
        assert isinstance(z.images, LazyImages) and z.images.shape == e.images.shape
        assert z.sample_ids == e.sample_ids and z.patient_ids == e.patient_ids and torch.equal(z.labels, e.labels)
        rows = torch.tensor([len(e) - 1, 0, 7, 7, 3])
        assert torch.equal(z.images[rows], e.images[rows])
    assert lazy.fingerprint() == eager.fingerprint()
    assert lazy.fingerprint() == eager.fingerprint()  # the second time from the memo
    sub = lazy.train.subset([5, 1, 9])
    assert isinstance(sub.images, LazyImages)
    assert torch.equal(sub.images[torch.arange(3)], eager.train.images[[5, 1, 9]])
    both = concat_splits("x", [lazy.test.subset([2]), lazy.train.subset([4])])
    assert torch.equal(both.images[torch.tensor([1, 0])], torch.stack([eager.train.images[4], eager.test.images[2]]))
    assert both.fingerprint() == concat_splits("x", [eager.test.subset([2]), eager.train.subset([4])]).fingerprint()


def test_batches_read_ahead_by_workers_match_in_memory_batches(breast64_pair) -> None:
    eager, lazy = breast64_pair
    split_e, split_z = eager.train.subset(range(150)), lazy.train.subset(range(150))
    got = list(batches(split_z.images, split_z.labels, 32, True, torch.Generator().manual_seed(3), True))
    want = list(batches(split_e.images, split_e.labels, 32, True, torch.Generator().manual_seed(3), True))
    assert len(got) == len(want) == 5
    for (xg, yg, rg), (xw, yw, rw) in zip(got, want, strict=True):
        assert torch.equal(rg, rw) and torch.equal(yg, yw) and torch.equal(xg, xw)
        assert xg.is_contiguous(memory_format=torch.channels_last)
    chunks = [r for _, _, r in want]  # the read-ahead threads a GPU gets, forced on here
    for got_raw, rows in zip(lazy_batches(split_z.images, chunks, ahead=True), chunks, strict=True):
        assert torch.equal(got_raw, split_e.images[rows])


def test_training_and_unlearning_on_lazy_data_give_the_same_weights(breast) -> None:
    with reading(ReadOptions(lazy=True, workers=2)):
        lazy = load_medmnist("breastmnist")
    cfg = TrainConfig(arch="resnet10s", epochs=1, batch_size=32, seed=2)
    models = []
    for ds in (breast, lazy):
        model = build_model(cfg, ds, CPU)
        fit(model, ds.train.subset(range(96)), cfg, CPU, val=ds.val)
        forget, retain = ds.train.subset(range(96, 112)), ds.train.subset(range(112, 200))
        spec = get_method("salun-cra")
        model = spec(UnlearnTask(model, forget, retain, ds, cfg, CPU, 0), spec.parse_params({"epochs": 1}))
        models.append((model, predict(model, ds.test, CPU)))
    (a, pa), (b, pb) = models
    for (name, wa), wb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(wa, wb), name
    assert torch.equal(pa, pb)


def test_image_folder_is_decoded_once_and_an_edited_image_is_decoded_again(tmp_path: Path) -> None:
    manifest = write_png_dataset(tmp_path / "ds", size=20)
    eager = load_dataset("csv", size=24, manifest=manifest, positive=["malignant"])
    with reading(ReadOptions(lazy=True, workers=2)):
        lazy = load_dataset("csv", size=24, manifest=manifest, positive=["malignant"])
        files = {s: Path(lazy.splits[s].images.files[0].path) for s in ("train", "val", "test")}
        stamps = {s: f.stat().st_mtime_ns for s, f in files.items()}
        again = load_dataset("csv", size=24, manifest=manifest, positive=["malignant"])
    assert {s: Path(again.splits[s].images.files[0].path) for s in files} == files  # reused, not rebuilt
    assert all(f.stat().st_mtime_ns == stamps[s] for s, f in files.items())
    assert lazy.fingerprint() == eager.fingerprint()
    assert torch.equal(lazy.test.images.contiguous(), eager.test.images)
    img = tmp_path / "ds" / "img" / "train_3.png"
    arr = np.asarray(Image.open(img)).copy()
    arr[0, 0] ^= 0xFF
    Image.fromarray(arr).save(img)
    os.utime(img, ns=(stamps["train"] + 10**9, stamps["train"] + 10**9))
    with reading(ReadOptions(lazy=True)):
        edited = load_dataset("csv", size=24, manifest=manifest, positive=["malignant"])
    assert Path(edited.train.images.files[0].path) != files["train"]
    assert edited.fingerprint() != eager.fingerprint() and edited.test.fingerprint() == eager.test.fingerprint()


def test_reading_is_lazy_by_size_unless_told(tmp_path: Path) -> None:
    from medforget.data.imagecache import LAZY_AUTO_BYTES, want_lazy

    assert not want_lazy(None, 100) and want_lazy(None, LAZY_AUTO_BYTES + 1)
    assert want_lazy(True, 1) and not want_lazy(False, 10 * LAZY_AUTO_BYTES)
    assert isinstance(load_medmnist("breastmnist").train.images, torch.Tensor)
