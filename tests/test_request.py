"""Deletion requests: parsing, resolution against a real dataset, and every refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from medforget.data import load_medmnist
from medforget.errors import RequestError
from medforget.keys import IdHasher
from medforget.request import DeletionRequest, design_request, parse_request, read_request, resolve

REPO = Path(__file__).resolve().parents[1]


def test_bare_list_and_object_forms() -> None:
    assert parse_request('["train-000001", "train-000002"]').sample_ids == ["train-000001", "train-000002"]
    req = parse_request('{"request_id": "R1", "patient_ids": ["P1"], "received_at": "2026-01-02T03:04:05Z"}')
    assert req.request_id == "R1" and req.patient_ids == ["P1"] and req.received_at.year == 2026


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"sample_ids": ["train-000001",]}', "line 1, column"),
        ('{\n  "sample_ids": [\n    "a"\n  ]\n  "x": 1}', "line 5, column 3"),
        ("   ", "empty"),
        ('{"sample_id": ["train-000001"]}', "sample_id"),  # a typo'd field is an error, not ignored
        ('"train-000001"', "JSON object or a list"),
    ],
)
def test_malformed_requests(text: str, message: str) -> None:
    with pytest.raises(RequestError, match=message):
        parse_request(text)


def test_sample_requests_are_valid(breast) -> None:
    files = sorted((REPO / "sample_requests").glob("*.json"))
    assert len(files) >= 6
    for f in files:
        req = read_request(f)
        if req.dataset == "breastmnist":
            res = resolve(req, breast)
            assert res.forget_rows and len(res.retain_rows) + len(res.forget_rows) == len(breast.train)


def test_patients_resolve_to_all_their_samples(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("sample_id,patient_id\ntrain-000003,P7\ntrain-000010,P7\ntrain-000011,P8\n")
    ds = load_medmnist("breastmnist", manifest=manifest)
    res = resolve(DeletionRequest(patient_ids=["P7"], sample_ids=["train-000020"]), ds)
    assert res.sample_ids == ["train-000003", "train-000010", "train-000020"]
    assert res.patient_ids == ["P7", "train-000020"]
    assert set(res.forget_rows).isdisjoint(res.retain_rows)


def test_resolution_refusals(breast) -> None:
    unknown = DeletionRequest(sample_ids=["train-000001", "train-999998", "train-999999"])
    with pytest.raises(RequestError, match=r"unknown sample IDs.*sample_ids\[1\], sample_ids\[2\] \(2 in all\)") as e:
        resolve(unknown, breast)
    assert "train-999998" not in str(e.value)  # errors name positions, not IDs, unless asked
    with pytest.raises(RequestError, match=r"unknown sample IDs.*train-999998, train-999999 \(2 in all\)"):
        resolve(unknown, breast, show_ids=True)
    with pytest.raises(RequestError, match=r"never trained on.*1 samples") as e:
        resolve(DeletionRequest(sample_ids=["train-000001", "test-000004"]), breast)
    assert "test-000004" not in str(e.value)
    with pytest.raises(RequestError, match=r"never trained on.*test-000004"):
        resolve(DeletionRequest(sample_ids=["train-000001", "test-000004"]), breast, show_ids=True)
    with pytest.raises(RequestError, match="unknown patient IDs"):
        resolve(DeletionRequest(patient_ids=["nobody"]), breast)
    with pytest.raises(RequestError, match="nothing to forget"):
        resolve(DeletionRequest(), breast)
    with pytest.raises(RequestError, match="dataset 'pneumoniamnist'"):
        resolve(DeletionRequest(dataset="pneumoniamnist", sample_ids=["train-000001"]), breast)
    malignant = [s for s, y in zip(breast.train.sample_ids, breast.train.labels.tolist(), strict=True) if y == 0]
    with pytest.raises(RequestError, match="every training sample of class malignant"):
        resolve(DeletionRequest(sample_ids=malignant), breast)
    assert len(resolve(DeletionRequest(sample_ids=malignant), breast, allow_class_removal=True).forget_rows) == len(
        malignant
    )


def test_duplicates_merge_with_warning_and_counts(breast) -> None:
    res = resolve(DeletionRequest(sample_ids=["train-000001", "train-000001", "train-000004"]), breast)
    assert res.sample_ids == ["train-000001", "train-000004"]
    assert any("duplicate" in w for w in res.warnings)
    labels = breast.train.labels
    expected = {breast.classes[int(labels[i])] for i in (1, 4)}
    assert {c.label for c in res.counts} == expected and sum(c.n for c in res.counts) == 2


def test_earlier_deletions_stay_out_of_the_retain_set(breast) -> None:
    hasher = IdHasher(None)
    earlier = hasher.record(["train-000100", "train-000101"], [])
    res = resolve(DeletionRequest(sample_ids=["train-000101", "train-000200"]), breast, forgotten=earlier)
    assert res.previously_forgotten == 2
    assert {100, 101, 200}.isdisjoint(res.retain_rows) and len(res.retain_rows) == len(breast.train) - 3
    assert any("already in the model's forgotten set" in w for w in res.warnings)


def test_designed_requests_have_the_asked_composition(breast) -> None:
    rnd = design_request(breast, "random", 0.2, seed=3)
    assert len(rnd.sample_ids) == round(0.2 * 546) and rnd.dataset == "breastmnist"
    heavy = design_request(breast, "positive-heavy", 0.2, seed=3)
    rows = [breast.train.sample_ids.index(s) for s in heavy.sample_ids]
    positives = int((breast.train.labels[torch.tensor(rows)] == 0).sum())
    assert positives == round(0.8 * len(rows))
    assert design_request(breast, "random", 0.2, seed=3) == rnd  # seeded
    assert json.loads(heavy.model_dump_json())["sample_ids"] == heavy.sample_ids
