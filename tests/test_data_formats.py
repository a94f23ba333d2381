"""Every MedMNIST 2D task a hospital could mean, CheXpert's own layout, and plain CSVs without patients.

MedMNIST files are generated in the official layout (``<split>_images`` / ``<split>_labels`` in an
``.npz``); their MD5 is registered in ``medmnist.INFO`` for the test, as the real files' are.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import medmnist
import numpy as np
import pytest
import torch
from conftest import rewrite_csv, write_png_dataset
from PIL import Image
from typer.testing import CliRunner

from medforget.cli import app
from medforget.config import CsvLayout
from medforget.data import load_dataset, load_from_spec, load_medmnist
from medforget.data.chexpert import FINDINGS
from medforget.errors import DataError

N = {"train": 40, "val": 10, "test": 12}


def write_npz(root: Path, flag: str, labels: dict[str, np.ndarray], channels: int, monkeypatch) -> Path:
    """``<flag>.npz`` in MedMNIST's layout; images brighten with the first label column; INFO learns its MD5."""
    rng = np.random.default_rng(1)
    arrays = {}
    for split, lab in labels.items():
        level = 60 + 40 * lab[:, :1].astype(float)[:, :, None]
        shape = (len(lab), 28, 28) + ((channels,) if channels == 3 else ())
        noise = rng.normal(0, 10, shape)
        img = level[..., None] + noise if channels == 3 else level + noise
        arrays[f"{split}_images"] = np.clip(img, 0, 255).astype(np.uint8)
        arrays[f"{split}_labels"] = lab
    path = root / f"{flag}.npz"
    np.savez_compressed(path, **arrays)
    monkeypatch.setitem(medmnist.INFO[flag], "MD5", hashlib.md5(path.read_bytes()).hexdigest())
    return path


@pytest.fixture
def chest_root(tmp_path: Path, monkeypatch) -> Path:
    rng = np.random.default_rng(0)
    labels = {s: (rng.random((n, 14)) < 0.3).astype(np.uint8) for s, n in N.items()}
    write_npz(tmp_path, "chestmnist", labels, 1, monkeypatch)
    return tmp_path


@pytest.fixture
def retina_root(tmp_path: Path, monkeypatch) -> Path:
    labels = {s: (np.arange(n) % 5).reshape(-1, 1).astype(np.uint8) for s, n in N.items()}
    write_npz(tmp_path, "retinamnist", labels, 3, monkeypatch)
    return tmp_path


def test_chestmnist_trains_one_finding_as_the_disease(chest_root: Path) -> None:
    raw = np.load(chest_root / "chestmnist.npz")
    ds = load_medmnist("chestmnist", data_root=chest_root, positive=["effusion"])
    assert ds.classes == ["no effusion", "effusion"] and ds.positive == [1]
    effusion = medmnist.INFO["chestmnist"]["label"]
    col = next(k for k, v in effusion.items() if v == "effusion")
    for s in ("train", "val", "test"):
        assert ds.splits[s].labels.tolist() == raw[f"{s}_labels"][:, int(col)].astype(int).tolist()
        assert ds.splits[s].sample_ids[0] == f"{s}-000000"
    assert ds.spec.binary and ds.spec.positive == ["effusion"]
    both = load_medmnist("chestmnist", data_root=chest_root, positive=["effusion,pneumonia"])
    either = raw["train_labels"][:, [2, 6]].max(1)
    assert both.train.labels.tolist() == either.astype(int).tolist() and both.classes[1] == "effusion+pneumonia"
    again = load_from_spec(ds.spec, chest_root)
    assert again.fingerprint() == ds.fingerprint()


def test_chestmnist_without_a_finding_is_refused_with_the_reason(chest_root: Path) -> None:
    with pytest.raises(DataError, match=r"multi-label.*14 findings.*--positive \(one of atelectasis"):
        load_medmnist("chestmnist", data_root=chest_root)
    with pytest.raises(DataError, match="unknown positive class 'lungs'"):
        load_medmnist("chestmnist", data_root=chest_root, positive=["lungs"])


def test_retinamnist_grades_train_as_classes_and_binarise_to_referable(retina_root: Path) -> None:
    ds = load_medmnist("retinamnist", data_root=retina_root, positive=["4"])
    assert ds.classes == ["0", "1", "2", "3", "4"] and ds.n_channels == 3
    assert ds.train.labels.tolist() == [i % 5 for i in range(N["train"])]
    referable = load_medmnist("retinamnist", data_root=retina_root, positive=["2,3,4"], binary=True)
    assert referable.classes == ["negative", "positive (2+3+4)"]
    assert referable.train.labels.tolist() == [int(i % 5 >= 2) for i in range(N["train"])]
    with pytest.raises(DataError, match="no default disease class for retinamnist"):
        load_medmnist("retinamnist", data_root=retina_root)


def test_cli_trains_retinamnist_referable_vs_not(retina_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "retina.safetensors"
    args = ["train", "--dataset", "retinamnist", "--data-root", str(retina_root), "--binary", "--positive", "2,3,4"]
    args += ["--arch", "resnet10s", "--epochs", "1", "--out", str(out), "--device", "cpu", "--json", "--quiet"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["test"]["n"] == N["test"]


def test_cli_refuses_chestmnist_without_a_finding(chest_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.safetensors"
    args = ["train", "--dataset", "chestmnist", "--data-root", str(chest_root), "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "is a multi-label, binary-class task" in res.stderr and not out.exists()


def test_plain_csv_without_patient_column_makes_each_image_its_own_patient(tmp_path: Path) -> None:
    manifest = write_png_dataset(tmp_path / "ds")
    rewrite_csv(manifest, lambda rows: [{k: v for k, v in r.items() if k != "patient_id"} for r in rows])
    ds = load_dataset("csv", size=16, manifest=manifest, positive=["malignant"])
    for split in ds.splits.values():
        assert split.patient_ids == split.sample_ids
    assert "patient_id" not in ds.train.attributes and ds.train.attributes["sex"][0] == "M"


# ----------------------------------------------------------------------------- CheXpert


def write_chexpert(root: Path, n_train_patients: int = 24, n_valid_patients: int = 4) -> Path:
    """A small CheXpert-v1.0-small folder as published: train.csv, valid.csv and JPEGs under patient folders.

    Each patient has one study with a frontal and a lateral view; Pleural Effusion cycles through
    1.0, 0.0, -1.0 and blank; effusion images are brighter.
    """
    base = root / "CheXpert-v1.0-small"
    header = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *FINDINGS]
    values = ["1.0", "0.0", "-1.0", ""]
    rng = np.random.default_rng(0)
    for split, first, n in (("train", 1, n_train_patients), ("valid", 64541, n_valid_patients)):
        rows = []
        for k in range(n):
            pid = f"patient{first + k:05d}"
            value = values[k % 4]
            for view, kind in (("view1_frontal", "Frontal"), ("view2_lateral", "Lateral")):
                rel = f"{split}/{pid}/study1/{view}.jpg"
                (base / rel).parent.mkdir(parents=True, exist_ok=True)
                level = 170 if value in ("1.0", "-1.0") else 70
                arr = np.clip(rng.normal(level, 15, (36, 30)), 0, 255).astype(np.uint8)
                Image.fromarray(arr, "L").save(base / rel, quality=95)
                finding = dict.fromkeys(FINDINGS, "")
                finding["Pleural Effusion"] = value
                finding["No Finding"] = "1.0" if value == "0.0" else ""
                rows.append({"Path": f"CheXpert-v1.0-small/{rel}", "Sex": "Female" if k % 2 else "Male",
                             "Age": str(30 + 7 * k), "Frontal/Lateral": kind,
                             "AP/PA": "AP" if kind == "Frontal" else "", **finding})  # fmt: skip
        with open(base / f"{split}.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=header)
            w.writeheader()
            w.writerows(rows)
    return base / "train.csv"


def test_chexpert_layout_reads_patients_attributes_and_one_finding(tmp_path: Path) -> None:
    train_csv = write_chexpert(tmp_path)
    layout = CsvLayout(format="chexpert")
    ds = load_dataset("csv", size=28, manifest=train_csv, positive=["pleural effusion"], classes=layout)
    assert ds.classes == ["no Pleural Effusion", "Pleural Effusion"] and ds.positive == [1]
    assert len(ds.train) + len(ds.val) == 24 and len(ds.test) == 4  # frontal views only; valid.csv is the test
    sid = "train/patient00001/study1/view1_frontal.jpg"
    split = ds.train if sid in ds.train.sample_ids else ds.val
    i = split.sample_ids.index(sid)
    assert split.patient_ids[i] == "patient00001" and split.attributes["sex"][i] == "Male"
    assert split.attributes["age"][i] == "30" and split.attributes["age_band"][i] == "20-39"
    assert split.attributes["view"][i] == "AP"
    assert ds.val.patient_ids and not set(ds.val.patient_ids) & set(ds.train.patient_ids)
    # U-Ones by default: 1.0 and -1.0 are effusion (patients 0, 2 mod 4), 0.0 and blank are not
    by_patient = dict(zip(ds.train.patient_ids + ds.val.patient_ids,
                          (ds.train.labels.tolist() + ds.val.labels.tolist()), strict=True))  # fmt: skip
    assert all(lab == int((int(p[-5:]) - 1) % 4 in (0, 2)) for p, lab in by_patient.items())
    mean = ds.train.images.float().mean((1, 2, 3))
    assert mean[ds.train.labels == 1].min() > mean[ds.train.labels == 0].max()
    assert ds.spec.layout == layout and ds.spec.positive == ["Pleural Effusion"]
    again = load_from_spec(ds.spec, manifest=train_csv)
    assert again.fingerprint() == ds.fingerprint() and again.train.sample_ids == ds.train.sample_ids


@pytest.mark.parametrize(("policy", "n_train_val", "n_positive"), [("negative", 24, 6), ("drop", 18, 6)])
def test_chexpert_uncertainty_policy_and_views(tmp_path: Path, policy: str, n_train_val: int, n_positive: int) -> None:
    train_csv = write_chexpert(tmp_path)
    layout = CsvLayout(format="chexpert", uncertain=policy)
    ds = load_dataset("csv", size=16, manifest=train_csv, positive=["Pleural Effusion"], classes=layout)
    labels = torch.cat([ds.train.labels, ds.val.labels])
    assert len(labels) == n_train_val and int(labels.sum()) == n_positive
    both = load_dataset("csv", size=16, manifest=train_csv, positive=["Pleural Effusion"],
                        classes=CsvLayout(format="chexpert", views="all"))  # fmt: skip
    assert len(both.train) + len(both.val) == 48
    assert ds.fingerprint() != load_dataset("csv", size=16, manifest=train_csv, positive=["Pleural Effusion"],
                                            classes=CsvLayout(format="chexpert")).fingerprint()  # fmt: skip


def test_chexpert_refusals_and_manifest_digest(tmp_path: Path) -> None:
    train_csv = write_chexpert(tmp_path)
    layout = CsvLayout(format="chexpert")
    with pytest.raises(DataError, match=r"one finding as the disease.*Pleural Effusion"):
        load_dataset("csv", manifest=train_csv, classes=layout)
    with pytest.raises(DataError, match="unknown CheXpert finding 'Effusions'"):
        load_dataset("csv", manifest=train_csv, positive=["Effusions"], classes=layout)
    ds = load_dataset("csv", size=16, manifest=train_csv, positive=["Pleural Effusion"], classes=layout)
    valid = train_csv.with_name("valid.csv")
    valid.write_text(valid.read_text().replace("Female", "Unknown"))
    with pytest.raises(DataError, match="differs from the one this model was trained with"):
        load_from_spec(ds.spec, manifest=train_csv)
    valid.unlink()
    with pytest.raises(DataError, match=r"valid.csv not found"):
        load_dataset("csv", manifest=train_csv, positive=["Pleural Effusion"], classes=layout)


def test_cli_trains_on_chexpert_layout(tmp_path: Path) -> None:
    train_csv = write_chexpert(tmp_path)
    out = tmp_path / "cx.safetensors"
    args = ["train", "--dataset", "csv", "--manifest", str(train_csv), "--manifest-format", "chexpert"]
    args += ["--positive", "Pleural Effusion", "--uncertain", "drop", "--size", "28", "--arch", "resnet10s"]
    args += ["--epochs", "1", "--out", str(out), "--device", "cpu", "--json", "--quiet"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.stderr
    info = json.loads(CliRunner().invoke(app, ["info", str(out), "--json"]).stdout)["metadata"]
    assert info["dataset"]["spec"]["layout"]["format"] == "chexpert"
    assert info["dataset"]["spec"]["layout"]["uncertain"] == "drop" and info["classes"][1] == "Pleural Effusion"
