"""Shared fixtures: real MedMNIST data from ../shared/medmnist and small generated datasets.

Training fixtures are session-scoped and small (``resnet10s``: ResNet-10 with a stride-2 stem, a few
epochs) so the suite stays within minutes on two CPU cores while still exercising real data end to end.

``scripts/test.sh`` runs the suite as one single-threaded pytest-xdist worker per core, a file per
worker at a time (``-n auto --dist loadfile``: a module's fixtures are built once). The workers share
the medforget cache (a retrain one trained, the other reuses) and build each trained checkpoint
once, under a file lock (:func:`_built_once`).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("MEDFORGET_DATA_ROOT") or REPO.parent / "shared" / "medmnist").resolve()


def _run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This test run's folder: shared by all xdist workers (their base folders' parent), else the base folder."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build) -> Path:
    """``build(path)`` for the first worker that asks; the others wait for it and reuse the file."""
    path = _run_dir(tmp_path_factory) / "models" / name
    path.parent.mkdir(exist_ok=True)
    with FileLock(f"{path}.lock"):
        if not path.exists():
            build(path)
    return path


@pytest.fixture(scope="session", autouse=True)
def medforget_env(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Point medforget at the shared data and at a cache private to this run; never download in tests."""
    assert (DATA_ROOT / "breastmnist.npz").is_file(), f"MedMNIST files not found in {DATA_ROOT}"
    os.environ["MEDFORGET_DATA_ROOT"] = str(DATA_ROOT)
    cache = _run_dir(tmp_path_factory) / "cache"
    cache.mkdir(exist_ok=True)
    os.environ["MEDFORGET_CACHE_DIR"] = str(cache)
    os.environ.pop("MEDFORGET_KEY", None)
    os.environ.pop("MEDFORGET_KEY_FILE", None)


@pytest.fixture(scope="session")
def data_root() -> Path:
    return DATA_ROOT


@pytest.fixture(scope="session")
def breast():
    from medforget.data import load_medmnist

    return load_medmnist("breastmnist")


@pytest.fixture(scope="session")
def quick_cfg():
    """A recipe that beats the majority class on BreastMNIST in about 20 s on one CPU core."""
    from medforget.config import TrainConfig

    return TrainConfig(arch="resnet10s", epochs=5, batch_size=32, lr=1e-3, seed=0)


@pytest.fixture(scope="session")
def breast_ckpt(tmp_path_factory: pytest.TempPathFactory, breast, quick_cfg) -> Path:
    """A trained BreastMNIST checkpoint, shared by the tests that need a real model."""
    from medforget.train import train

    return _built_once(tmp_path_factory, "breast.safetensors", lambda p: train(breast, quick_cfg, p, device="cpu"))


@pytest.fixture(scope="session")
def one_epoch_ckpt(tmp_path_factory: pytest.TempPathFactory, breast) -> Path:
    """A BreastMNIST checkpoint trained one epoch, for tests of paths that retrain it and need no good model:
    its retrains follow its recipe, so each costs about a fifth of one of ``breast_ckpt``'s."""
    from medforget.config import TrainConfig
    from medforget.train import train

    cfg = TrainConfig(arch="resnet10s", epochs=1, batch_size=32, lr=1e-3, seed=0)
    return _built_once(tmp_path_factory, "breast-1-epoch.safetensors", lambda p: train(breast, cfg, p, device="cpu"))


def write_png_dataset(
    folder: Path,
    n_per_split: dict[str, int] | None = None,
    classes: tuple[str, ...] = ("benign", "malignant"),
    mode: str = "L",
    size: int = 20,
    attributes: bool = True,
) -> Path:
    """A small image dataset on disk: class ``k`` images are brighter with ``k``; two images per patient."""
    n_per_split = n_per_split or {"train": 16, "val": 6, "test": 6}
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "img").mkdir(exist_ok=True)
    rows = []
    for split, n in n_per_split.items():
        for i in range(n):
            label = classes[i % len(classes)]
            level = 40 + 160 * classes.index(label) / max(len(classes) - 1, 1)
            shape = (size, size) if mode == "L" else (size, size, 3)
            arr = np.clip(rng.normal(level, 20, shape), 0, 255).astype(np.uint8)
            rel = f"img/{split}_{i}.png"
            Image.fromarray(arr, mode).save(folder / rel)
            row = {
                "sample_id": f"{split}-{i:06d}",
                "path": rel,
                "label": label,
                "split": split,
                "patient_id": f"P-{split}-{i // 2}",
            }
            if attributes:
                row["sex"] = "F" if i % 3 else "M"
            rows.append(row)
    manifest = folder / "manifest.csv"
    with open(manifest, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return manifest


def rewrite_csv(path: Path, edit) -> None:
    """Apply ``edit(rows) -> rows`` to a CSV in place (for building bad manifests)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows = edit(rows)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
