"""``medforget audit`` on real BreastMNIST: integrity, lineage through the ledger, request coverage, MIA, LiRA."""

from __future__ import annotations

import json
import math
import random
from html import escape
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from medforget.audit import audit_schema
from medforget.audit.checks import judge_gap
from medforget.audit.integrity import check_integrity
from medforget.audit.lira import lira_likelihoods, tpr_at_fpr
from medforget.cli import app
from medforget.errors import MedforgetError
from medforget.evaluation import logit_confidence
from medforget.keys import IdHasher

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
RANDOM_5PCT = REPO / "sample_requests" / "breastmnist-random-5pct.json"  # 27 training samples
SINGLE_PATIENT = REPO / "sample_requests" / "breastmnist-single-patient.json"  # patient train-000042
KEY = "audit-test-secret-" + "k" * 20  # 38 characters


def audit(*args: str):
    """Run ``medforget audit --json`` on CPU; return the result and the parsed report (None if none printed)."""
    res = runner.invoke(app, ["audit", *args, "--device", "cpu", "--quiet", "--json"])
    report = json.loads(res.stdout) if res.stdout.strip() else None
    if report is not None:
        jsonschema.validate(report, audit_schema())  # --json prints the AuditReport and nothing else
    return res, report


def status(report: dict, name: str) -> str:
    return next(c["status"] for c in report["checks"] if c["name"] == name)


# --------------------------------------------------------------------------- integrity


def test_intact_checkpoint_passes_integrity_alone(breast_ckpt: Path) -> None:
    res, report = audit(str(breast_ckpt))
    assert res.exit_code == 0, res.stderr
    assert report["verdict"]["status"] == "pass" and status(report, "integrity") == "pass"
    assert {c["status"] for c in report["checks"][1:]} == {"skipped"}
    assert report["integrity"]["signed"] is False and "unsigned" in report["integrity"]["notes"][0]


def test_flipped_weight_byte_fails_integrity_exit_3(breast_ckpt: Path, tmp_path: Path) -> None:
    data = bytearray(breast_ckpt.read_bytes())
    data[-100] ^= 0x10  # a byte of the last tensor
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(data))
    res, report = audit(str(bad), "-r", str(RANDOM_5PCT))
    assert res.exit_code == 3, res.stderr
    assert report["verdict"]["status"] == "fail" and status(report, "integrity") == "fail"
    assert "weights hash mismatch" in report["integrity"]["error"]
    # nothing read from an untrusted file is used: every other check is skipped
    assert all(c["status"] == "skipped" for c in report["checks"][1:])


def test_any_damage_to_a_checkpoint_is_an_integrity_failure_not_bad_input(breast_ckpt: Path, tmp_path: Path) -> None:
    raw = breast_ckpt.read_bytes()
    header_len = int.from_bytes(raw[:8], "little") + 8
    rng = random.Random(1)
    target = tmp_path / "t.safetensors"
    for pos in [*range(8), *rng.sample(range(8, header_len), 40)]:
        data = bytearray(raw)
        data[pos] ^= 0x01
        target.write_bytes(bytes(data))
        result, _ = check_integrity(target, None)
        assert not result.ok and result.error, pos
    target.write_bytes(raw + b"\x00payload")
    result, _ = check_integrity(target, None)
    assert not result.ok and "extra payload" in (result.error or "")


def test_missing_file_or_non_checkpoint_is_bad_input_exit_2(tmp_path: Path) -> None:
    junk = tmp_path / "photo.jpg"
    junk.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    for path in (tmp_path / "missing.safetensors", junk, tmp_path):
        res, report = audit(str(path))
        assert res.exit_code == 2 and report is None, (path, res.stdout)
        assert res.stderr.startswith("error:") and "Traceback" not in res.stderr


def test_bad_options_are_bad_input(breast_ckpt: Path) -> None:
    for args in (["--deep", "1", "-r", str(RANDOM_5PCT)], ["--deep", "2"], ["--deep", "2", "--no-mia"]):
        res, _ = audit(str(breast_ckpt), *args)
        assert res.exit_code == 2, (args, res.stderr)
    res, _ = audit(str(breast_ckpt), "-r", str(RANDOM_5PCT), "--deep", "2", "--shadow-arch", "vgg")
    assert res.exit_code == 2 and "vgg" in res.stderr


# --------------------------------------------------------------------------- request and population MIA


def test_unapplied_request_fails_naming_how_many_are_missing(breast_ckpt: Path) -> None:
    res, report = audit(str(breast_ckpt), "-r", str(RANDOM_5PCT), "--no-mia")
    assert res.exit_code == 3, res.stderr
    assert status(report, "request") == "fail" and report["request"]["n_missing_samples"] == 27
    assert "27 of 27 samples" in next(c["summary"] for c in report["checks"] if c["name"] == "request")
    # with the data, a requested patient is expanded to the samples the model trained on
    res, report = audit(str(breast_ckpt), "-r", str(SINGLE_PATIENT), "--show-ids")
    assert res.exit_code == 3
    cov = report["request"]
    assert cov["expanded_patients"] and cov["n_samples"] == 1 and cov["n_patients"] == 1
    assert cov["missing_samples"] == ["train-000042"] and cov["missing_patients"] == ["train-000042"]
    # without --show-ids an audit names no requested patient, in JSON or on the terminal
    res, report = audit(str(breast_ckpt), "-r", str(SINGLE_PATIENT))
    assert report["request"]["missing_samples"] == ["requested #0"] and "train-000042" not in res.stdout
    assert all(not s["sample"].startswith("train-") for s in report["population_mia"]["requested"])


def test_population_mia_calls_training_samples_members_more_often_than_test(breast_ckpt: Path, tmp_path: Path) -> None:
    ids = sorted(f"train-{i:06d}" for i in random.Random(0).sample(range(546), 150))
    request = tmp_path / "r.json"
    request.write_text(json.dumps({"request_id": "members", "sample_ids": ids}))
    res, report = audit(str(breast_ckpt), "-r", str(request))
    assert res.exit_code == 3, res.stderr  # the request was never applied
    mia = report["population_mia"]
    assert mia["n_requested"] == 150 and mia["n_reference"] == 78 and len(mia["requested"]) == 150
    assert mia["requested_non_member_rate"] < mia["reference_non_member_rate"]
    assert mia["gap"] == pytest.approx(mia["reference_non_member_rate"] - mia["requested_non_member_rate"])
    # the same audit as a self-contained HTML page for a data-protection officer
    page = tmp_path / "audit.html"
    res = runner.invoke(app, ["audit", str(breast_ckpt), "-r", str(request), "--html", str(page), "--quiet"])
    assert res.exit_code == 3 and page.is_file()
    html = page.read_text()
    assert escape(report["verdict"]["summary"]) in html and "<img" in html and "data:image/png;base64" in html
    assert "http://" not in html and "https://" not in html
    res = runner.invoke(app, ["audit", str(breast_ckpt), "--html", str(page)])
    assert res.exit_code == 2 and "already exists" in res.stderr


# --------------------------------------------------------------------------- lineage


def test_lineage_through_the_ledger_and_tampering(
    breast_ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDFORGET_KEY", KEY)
    ledger, m0, m1 = tmp_path / "ledger.jsonl", tmp_path / "m0.safetensors", tmp_path / "m1.safetensors"
    common = ["--device", "cpu", "--quiet", "--ledger", str(ledger)]
    res = runner.invoke(
        app, ["train", "--out", str(m0), "--arch", "resnet10s", "--epochs", "1", "--batch-size", "64", *common]
    )
    assert res.exit_code == 0, res.stderr
    unlearn = ["unlearn", "-c", str(m0), "-r", str(SINGLE_PATIENT), "-o", str(m1), "--baseline", "none"]
    res = runner.invoke(app, [*unlearn, "-p", "epochs=1", *common])
    assert res.exit_code == 0, res.stderr
    assert len(ledger.read_text().splitlines()) == 2

    res, report = audit(str(m1), "--ledger", str(ledger), "-r", str(SINGLE_PATIENT), "--no-mia")
    assert res.exit_code == 0, res.stderr
    assert report["verdict"]["status"] == "pass"
    assert status(report, "lineage") == status(report, "request") == "pass"
    assert report["integrity"]["signature_verified"]
    lin = report["lineage"]
    assert lin["ok"] and lin["complete"] and lin["macs_checked"] and lin["ledger_ok"]
    assert [(lk["seq"], lk["entry_type"], lk["method"]) for lk in lin["chain"]] == [
        (1, "unlearn", "salun-cra"),
        (0, "train", None),
    ]
    assert lin["chain"][0]["request_ref"] == IdHasher(KEY.encode()).request_ref("breastmnist-DPO-2026-0001")
    assert "DPO-2026-0001" not in ledger.read_text() and "DPO-2026-0001" not in m1.read_bytes().decode("latin-1")
    text = runner.invoke(app, ["audit", str(m1), "--ledger", str(ledger), "--quiet"])
    assert text.exit_code == 0 and "lineage (newest first)" in text.stdout and "salun-cra" in text.stdout
    res, report = audit(str(m0), "--ledger", str(ledger))  # the training run is its own one-link chain
    assert res.exit_code == 0 and [lk["seq"] for lk in report["lineage"]["chain"]] == [0]

    # the wrong key: the signature does not verify -> integrity fails
    monkeypatch.setenv("MEDFORGET_KEY", "another-secret-" + "x" * 20)
    res, report = audit(str(m1))
    assert res.exit_code == 3 and "signature does not verify" in report["integrity"]["error"]
    # no key: signatures and MACs cannot be checked (said so); a checkpoint the ledger never recorded has no lineage
    monkeypatch.delenv("MEDFORGET_KEY")
    res, report = audit(str(m1), "--ledger", str(ledger))
    assert (
        res.exit_code == 0
        and not report["lineage"]["macs_checked"]
        and "not verified" in report["integrity"]["notes"][0]
    )
    res, report = audit(str(breast_ckpt), "--ledger", str(ledger))
    assert res.exit_code == 3 and "no ledger entry produced this checkpoint" in report["lineage"]["problems"][0]
    monkeypatch.setenv("MEDFORGET_KEY", KEY)

    # hand-edit the unlearning entry: the ledger no longer verifies and the link contradicts the checkpoint
    lines = ledger.read_text().splitlines()
    entry = json.loads(lines[1])
    entry["method"] = "retrain"
    ledger.write_text("\n".join([lines[0], json.dumps(entry, sort_keys=True, separators=(",", ":"))]) + "\n")
    res, report = audit(str(m1), "--ledger", str(ledger))
    assert res.exit_code == 3, res.stderr
    assert status(report, "lineage") == "fail" and report["verdict"]["status"] == "fail"
    lin = report["lineage"]
    assert not lin["ledger_ok"] and [p["kind"] for p in lin["ledger_problems"]] == ["edited"]
    assert any("method 'retrain'" in p for p in lin["chain"][0]["problems"])

    # drop the training entry: the chain no longer reaches a training run
    ledger.write_text(lines[1] + "\n")
    res, report = audit(str(m1), "--ledger", str(ledger))
    assert res.exit_code == 3 and not report["lineage"]["complete"]
    assert "no ledger entry produced its input" in report["lineage"]["chain"][0]["problems"][0]


def test_unsigned_checkpoint_fails_when_the_auditor_has_a_key(
    breast_ckpt: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDFORGET_KEY", KEY)
    res, report = audit(str(breast_ckpt))
    assert res.exit_code == 3 and "no signature" in report["integrity"]["error"]


# --------------------------------------------------------------------------- LiRA


def test_deep_lira_returns_per_sample_likelihood_ratios(breast_ckpt: Path) -> None:
    res, report = audit(
        str(breast_ckpt), "-r", str(RANDOM_5PCT), "--deep", "2", "--shadow-arch", "resnet10s", "--shadow-epochs", "1"
    )
    assert res.exit_code == 3, res.stderr  # the request was not applied
    lira = report["lira"]
    assert lira["n_shadows"] == 2 and lira["shadow_epochs"] == 1 and lira["variance"] == "global"
    assert len(lira["requested"]) == 27 and len(lira["references"]) == 27
    for s in lira["requested"] + lira["references"]:
        assert s["n_in"] == 1 and s["n_out"] == 1
        assert math.isfinite(s["log_lr"]) and s["lr"] == pytest.approx(math.exp(s["log_lr"]))
    assert lira["attack"] == "LiRA"  # an original training run: plain LiRA, not the unlearning-aware U-LiRA
    assert [r["sample"] for r in lira["requested"]] == [f"requested #{i}" for i in range(27)]  # no clear IDs
    assert [t["target_fpr"] for t in lira["tpr_at_fpr"]] == [0.01, 0.001]
    assert all(0 <= t["tpr"] <= 1 and t["achieved_fpr"] <= t["target_fpr"] for t in lira["tpr_at_fpr"])
    # the check applies the documented two-sided rule to the numbers it reports
    expected = judge_gap(lira["gap"], lira["p_value"], 0.10, 0.05)
    assert status(report, "membership (LiRA)") == expected
    assert lira["gap"] == pytest.approx(lira["fraction_lr_above_1_requested"] - lira["fraction_lr_above_1_reference"])


def test_deep_audit_of_an_unlearned_model_runs_u_lira_with_the_recorded_method(
    breast_ckpt: Path, tmp_path: Path
) -> None:
    """Hayes et al. (2024): for an approximate unlearning the "in" shadows are trained and then unlearned."""
    out = tmp_path / "forgot.safetensors"
    res = runner.invoke(
        app,
        ["unlearn", "-c", str(breast_ckpt), "-r", str(RANDOM_5PCT), "-m", "random-label", "-p", "epochs=1",
         "--baseline", "none", "-o", str(out), "--device", "cpu", "--quiet"],
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    res, report = audit(str(out), "-r", str(RANDOM_5PCT), "--deep", "2", "--shadow-arch", "resnet10s",
                        "--shadow-epochs", "1")  # fmt: skip
    lira = report["lira"]
    assert lira["attack"] == "U-LiRA"
    assert any("unlearned with random-label" in note for note in lira["notes"]), lira["notes"]
    # two shadows make a weak attack, so any status can be right (CPUs differ); it must be the documented rule's,
    # and the exit code the verdict's
    u_lira = status(report, "membership (U-LiRA)")
    assert u_lira == judge_gap(lira["gap"], lira["p_value"], 0.10, 0.05)
    verdict = report["verdict"]["status"]
    assert u_lira == "pass" or verdict == u_lira or verdict == "fail"
    assert res.exit_code == {"pass": 0, "fail": 3, "inconclusive": 4}[verdict], res.stderr
    assert not [c for c in report["checks"] if c["name"] == "membership (LiRA)"]
    assert len(lira["requested"]) == 27 and all(math.isfinite(s["log_lr"]) for s in lira["requested"])


def test_lira_likelihood_ratio_says_in_for_in_and_out_for_out() -> None:
    rng = np.random.default_rng(0)
    n_shadows, n = 8, 40
    in_mask = np.zeros((n_shadows, n), dtype=bool)
    for j in range(n):
        in_mask[rng.choice(n_shadows, 4, replace=False), j] = True
    phi_shadow = np.where(in_mask, 3.0, 0.0) + rng.normal(0, 0.5, (n_shadows, n))
    target = np.where(np.arange(n) < n // 2, 3.0, 0.0)  # first half members of the audited model
    log_lr, fits, mode = lira_likelihoods(phi_shadow, in_mask, target)
    assert mode == "pooled" and (fits["n_in"] == 4).all()
    assert (log_lr[: n // 2] > 0).all() and (log_lr[n // 2 :] < 0).all()
    res = tpr_at_fpr(log_lr[: n // 2], log_lr[n // 2 :], 0.01)
    assert res.tpr == 1.0 and res.achieved_fpr == 0.0
    # with too few negatives to resolve 1%, a positive must beat every negative
    assert tpr_at_fpr(np.array([0.5, 2.0]), np.array([0.0, 1.0, 1.5]), 0.01).tpr == 0.5
    with pytest.raises(ValueError):
        lira_likelihoods(phi_shadow, np.ones_like(in_mask), target)


def test_logit_confidence_is_log_odds_of_the_true_class() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 0.0, 0.0], [40.0, -40.0, 0.0]])
    labels = torch.tensor([0, 2, 0])
    p = torch.softmax(logits.double(), 1)[torch.arange(3), labels]
    phi = logit_confidence(logits, labels)
    assert np.allclose(phi[:2], torch.log(p / (1 - p))[:2].numpy())
    assert math.isfinite(phi[2]) and phi[2] > 30  # stable where 1 - p underflows


def test_request_check_needs_the_records_key_and_a_real_request() -> None:
    from medforget.audit.coverage import check_request
    from medforget.keys import IdHasher
    from medforget.request import DeletionRequest

    forgotten = IdHasher(b"s" * 32).record(["train-000001"], [])  # only .meta.forgotten and the dataset name are read
    ck = SimpleNamespace(
        meta=SimpleNamespace(forgotten=forgotten, dataset=SimpleNamespace(spec=SimpleNamespace(name="breastmnist")))
    )
    req = DeletionRequest(sample_ids=["train-000001", "train-000002"])
    with pytest.raises(MedforgetError, match="keyed"):
        check_request(req, ck, None)  # type: ignore[arg-type]
    with pytest.raises(MedforgetError, match="wrong key"):
        check_request(req, ck, b"t" * 32)  # type: ignore[arg-type]
    cov = check_request(req, ck, b"s" * 32)  # type: ignore[arg-type]
    assert not cov.ok and cov.n_missing_samples == 1 and cov.missing_samples[0].startswith("hmac:")
    assert check_request(req, ck, b"s" * 32, show_ids=True).missing_samples == ["train-000002"]  # type: ignore[arg-type]
    for bad in (DeletionRequest(), DeletionRequest(dataset="pneumoniamnist", sample_ids=["train-000001"])):
        with pytest.raises(MedforgetError):
            check_request(bad, ck, b"s" * 32)  # type: ignore[arg-type]
