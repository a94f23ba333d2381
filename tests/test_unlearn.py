"""``medforget unlearn`` end to end on real BreastMNIST: outputs, lineage, report schema, exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import torch
from typer.testing import CliRunner

from medforget.checkpoint import load_checkpoint
from medforget.cli import app
from medforget.methods import list_methods
from medforget.verify.report import report_schema

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
REQUEST = REPO / "sample_requests" / "breastmnist-malignant-heavy.json"


EXIT = {"pass": 0, "unverified": 0, "fail": 3, "inconclusive": 4}


def run(*args: str, input: str | None = None):
    return runner.invoke(app, [*args, "--device", "cpu", "--quiet"], input=input)


def files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


@pytest.fixture(scope="module")
def salun_cra_run(breast_ckpt: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("unlearn") / "cra.safetensors"
    res = run("unlearn", "-c", str(breast_ckpt), "-r", str(REQUEST), "-m", "salun-cra", "-o", str(out), "--json")
    return res, out


def test_unlearn_writes_checkpoint_and_schema_valid_report(salun_cra_run, breast_ckpt: Path) -> None:
    res, out = salun_cra_run
    report = json.loads(res.stdout)  # --json: stdout is the report and nothing else
    assert res.exit_code == EXIT[report["verdict"]["status"]], res.stderr
    jsonschema.validate(report, report_schema())
    on_disk = json.loads(out.with_suffix(".report.json").read_text())
    assert on_disk == report
    assert report["method"] == "salun-cra" and report["params"]["mask_fraction"] == 0.5
    assert report["request"]["n_samples"] == 55 and len(report["retrains"]) == 3
    assert report["retrain_seeds"] == [1, 2, 3]  # derived from the recipe's seed 0, never the original's own
    assert report["cost"]["retrain_seconds"] > 0 and report["cost"]["speedup"] > 0
    stop = report["stopping"]  # when the method stopped, and why
    assert stop["rule"] == "auc" and 0 < stop["steps"] <= stop["max_steps"] and stop["checks"]
    agreed = len(stop["checks"]) >= 2 and all(c["met"] for c in stop["checks"][-2:])
    assert stop["outcome"] == ("forgotten" if agreed else "step budget")
    assert stop["steps"] == (stop["checks"][-1]["step"] if agreed else stop["max_steps"])
    for model in [report["original"], report["unlearned"], *report["retrains"]]:
        assert model["test"]["fnr"] is not None and model["forget"]["n"] == 55
        assert model["test_auroc"] is not None and model["refit"]["forget_accuracy"] is not None
        assert model["at_operating_point"]["fnr"] is not None
        assert model["at_operating_point"]["accuracy_sd"] > 0  # 21 validation disease cases: the threshold moves
    assert [c["name"] for c in report["verdict"]["checks"]] == [
        "forget accuracy",
        "forget evidence",
        "membership inference",
        "test accuracy",
        "test AUROC",
        "missed disease (test FNR)",
    ]
    ev = report["evidence"]
    assert ev["n_retrains"] == 3 and len(ev["retrain_differences"]) == 3 and len(ev["forget_z"]) == 55
    # the original model saw the forget set: the attack calls it member more often than the retrains do
    mia = {r["key"]: r for r in report["metrics"]}["mia"]
    assert mia["original"] < min(mia["retrain_values"])


def test_unlearned_checkpoint_lineage(salun_cra_run, breast_ckpt: Path) -> None:
    _, out = salun_cra_run
    parent = load_checkpoint(breast_ckpt)
    child = load_checkpoint(out)
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert child.meta.parent_sha256 == parent.sha256 == report["provenance"]["input_sha256"]
    assert child.sha256 == report["provenance"]["output_sha256"]
    assert child.meta.unlearning.method == "salun-cra" and child.meta.unlearning.params == report["params"]
    assert child.meta.dataset == parent.meta.dataset and child.meta.train_config == parent.meta.train_config
    requested = json.loads(REQUEST.read_text())["sample_ids"]
    assert all(child.meta.forgotten.contains_samples(requested, None))
    others = [s for s in ("train-000000", "train-000001", "train-000002") if s not in requested]
    assert others and not any(child.meta.forgotten.contains_samples(others, None))
    raw = out.read_bytes()
    assert requested[0].encode() not in raw  # IDs are stored only as hashes


def test_second_run_reuses_the_cached_baseline_and_chains(salun_cra_run, tmp_path: Path) -> None:
    _, first = salun_cra_run
    out = tmp_path / "ft.safetensors"
    res = run(
        "unlearn",
        "-c",
        str(first),
        "-r",
        str(REPO / "sample_requests" / "breastmnist-random-5pct.json"),
        "-m",
        "finetune",
        "-p",
        "epochs=1",
        "-o",
        str(out),
        "--baseline",
        "none",
        "--json",
    )
    report = json.loads(res.stdout)
    assert res.exit_code == 0 and report["verdict"]["status"] == "unverified" and report["retrains"] == []
    assert report["request"]["previously_forgotten"] == 55
    child = load_checkpoint(out)
    assert child.meta.parent_sha256 == load_checkpoint(first).sha256
    # it records outputs for the rows it keeps, and none for a sample forgotten now or by the first request
    forgotten_rows = int(torch.isnan(child.outputs["train"]).any(1).sum())
    assert forgotten_rows == len(child.meta.forgotten.sample_hashes) and not torch.isnan(child.outputs["test"]).any()
    assert len(child.meta.forgotten.sample_hashes) == 55 + report["request"]["n_samples"] - len(
        set(json.loads(REQUEST.read_text())["sample_ids"])
        & set(json.loads((REPO / "sample_requests" / "breastmnist-random-5pct.json").read_text())["sample_ids"])
    )


@pytest.mark.parametrize("method", [m for m in list_methods() if m not in ("retrain", "salun-cra")])
def test_every_method_through_the_cli(method: str, salun_cra_run, breast_ckpt: Path, tmp_path: Path) -> None:
    """Each method on the same request; the retrain baseline comes from the cache the first run filled."""
    out = tmp_path / "m.safetensors"
    extra = ["-p", "epochs=1"] if method not in ("ssd",) else []
    res = run("unlearn", "-c", str(breast_ckpt), "-r", str(REQUEST), "-m", method, "-o", str(out), *extra, "--json")
    report = json.loads(res.stdout)
    assert res.exit_code == EXIT[report["verdict"]["status"]]
    assert report["cost"]["baseline_source"] == "3 retrains (0 trained now, 3 from the cache)"
    assert load_checkpoint(out).meta.unlearning.method == method
    assert report["average_gap"] is not None and 0 <= report["average_gap"] <= 1
    # every iterative method records how it stopped; SSD takes no steps
    assert (report["stopping"] is None) == (method == "ssd")


def test_exact_retraining_never_fails_and_the_untouched_original_does(salun_cra_run, breast_ckpt, tmp_path) -> None:
    """The verdict's two properties on real models: a fresh retrain (a seed not among the K) is exact unlearning
    and must never fail; the original, which never forgot anything, must fail."""
    fresh = tmp_path / "retrain9.safetensors"
    res = run(
        "unlearn",
        "-c",
        str(breast_ckpt),
        "-r",
        str(REQUEST),
        "-m",
        "retrain",
        "-p",
        "seed=9",
        "-o",
        str(fresh),
        "--json",
    )
    report = json.loads(res.stdout)
    assert report["verdict"]["status"] in ("pass", "inconclusive"), report["verdict"]
    assert res.exit_code == EXIT[report["verdict"]["status"]]
    # the original remembers the forget set; an exact retrain is far closer to the others than it
    assert report["average_gap"] < 0.75 * report["original_average_gap"], report
    untouched = tmp_path / "untouched.safetensors"
    res = run(
        "unlearn",
        "-c",
        str(breast_ckpt),
        "-r",
        str(REQUEST),
        "-m",
        "ssd",
        "-p",
        "alpha=1e9",
        "-o",
        str(untouched),
        "--json",
    )
    report = json.loads(res.stdout)
    assert res.exit_code == 3 and report["verdict"]["status"] == "fail", report["verdict"]
    # doing nothing is as far from the retrains as the original, within a point: the untouched copy is recalibrated
    # like the retrains, the original's column is at its own threshold (measured: 18.6 against 18.7)
    assert report["average_gap"] == pytest.approx(report["original_average_gap"], abs=0.01)
    failed = {c["name"] for c in report["verdict"]["checks"] if c["status"] == "fail"}
    assert failed & {"forget evidence", "membership inference", "forget accuracy"}, failed
    # the retrained checkpoint can serve as a (single) baseline; one retrain cannot measure noise
    res = run(
        "unlearn",
        "-c",
        str(breast_ckpt),
        "-r",
        str(REQUEST),
        "-m",
        "ssd",
        "-o",
        str(tmp_path / "s.safetensors"),
        "--baseline",
        str(fresh),
        "--json",
    )
    report = json.loads(res.stdout)
    assert res.exit_code == 4 and report["verdict"]["status"] == "inconclusive"
    assert report["provenance"]["baseline_sha256"] == [load_checkpoint(fresh).sha256]
    # a model that saw the forget set is refused as a baseline
    res = run(
        "unlearn",
        "-c",
        str(breast_ckpt),
        "-r",
        str(REQUEST),
        "-m",
        "ssd",
        "-o",
        str(tmp_path / "x.safetensors"),
        "--baseline",
        str(breast_ckpt),
    )
    assert res.exit_code == 2 and "not a retrained model" in res.stderr


def test_failed_verdict_exits_3_with_outputs_written(salun_cra_run, breast_ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "strict.safetensors"
    res = run("unlearn", "-c", str(breast_ckpt), "-r", str(REQUEST), "-m", "ssd", "-p", "alpha=1e9", "-o", str(out))
    assert res.exit_code == 3
    assert out.exists() and out.with_suffix(".report.json").exists()
    assert "Fail" in res.stdout and "missed disease" in res.stdout  # the table shows clinical risk


def test_request_from_stdin_and_request_check(breast_ckpt: Path) -> None:
    res = runner.invoke(
        app,
        [
            "request",
            "check",
            "-c",
            str(breast_ckpt),
            "-r",
            "-",
            "--json",
        ],
        input='["train-000001", "train-000001", "train-000005"]',
    )
    summary = json.loads(res.stdout)
    assert res.exit_code == 0 and summary["n_samples"] == 2 and summary["warnings"]
    res = runner.invoke(app, ["request", "check", "-c", str(breast_ckpt), "-r", str(REQUEST)])
    assert res.exit_code == 0 and "malignant" in res.stdout and "55 samples" in res.stdout
    schema = json.loads(runner.invoke(app, ["request", "schema"]).stdout)
    assert set(schema["properties"]) >= {"sample_ids", "patient_ids", "request_id", "received_at", "reason"}


BAD_REQUESTS = {
    "malformed.json": ('{"sample_ids": ["train-000001"', "not valid JSON: .* line 1, column"),
    "unknown.json": ('["train-000001", "train-900000"]', "unknown sample IDs"),
    "test.json": ('["test-000001"]', "never trained on"),
    "empty.json": ("{}", "nothing to forget"),
    "other.json": ('{"dataset": "pneumoniamnist", "sample_ids": ["train-000001"]}', "dataset 'pneumoniamnist'"),
}


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_bad_requests_exit_2_and_write_nothing(name: str, breast_ckpt: Path, tmp_path: Path) -> None:
    body, message = BAD_REQUESTS[name]
    req = tmp_path / name
    req.write_text(body)
    before = files(tmp_path)
    res = run("unlearn", "-c", str(breast_ckpt), "-r", str(req), "-o", str(tmp_path / "out.safetensors"))
    assert res.exit_code == 2, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and re.search(message, errors[0]), res.stderr
    assert files(tmp_path) == before and res.stdout == ""


def test_other_bad_input_exits_2_and_writes_nothing(breast, breast_ckpt: Path, tmp_path: Path) -> None:
    malignant = [s for s, y in zip(breast.train.sample_ids, breast.train.labels.tolist(), strict=True) if y == 0]
    whole = tmp_path / "whole-class.json"
    whole.write_text(json.dumps(malignant))
    out = str(tmp_path / "out.safetensors")
    cases = [
        (["-r", str(whole)], "every training sample of class malignant"),
        (["-r", str(REQUEST), "-m", "amnesia"], "unknown method"),
        (["-r", str(REQUEST), "-p", "mask_fraction=3"], "mask_fraction"),
        (["-r", str(REQUEST), "-p", "oops"], "key=value"),
        (["-r", str(tmp_path / "missing.json")], "not found"),
        (["-r", str(REQUEST), "--baseline", str(tmp_path / "nope.safetensors")], "not found"),
    ]
    before = files(tmp_path)
    for args, message in cases:
        res = run("unlearn", "-c", str(breast_ckpt), "-o", out, *args)
        assert res.exit_code == 2 and message in res.stderr, (args, res.stderr)
        assert files(tmp_path) == before
    for force in ([], ["--force"]):
        res = run("unlearn", "-c", str(breast_ckpt), "-r", str(REQUEST), "-o", str(breast_ckpt), *force)
        assert res.exit_code == 2 and "is the input checkpoint; it is never overwritten" in res.stderr


def test_published_schemas_match_the_code() -> None:
    from medforget.schemas import SCHEMAS, render

    for name in SCHEMAS:
        path = REPO / "schemas" / f"{name}.schema.json"
        assert path.read_text() == render(name), f"run: python -m medforget.schemas schemas  ({path} is stale)"


def test_calibrate_then_unlearn_with_the_calibrated_baseline_trains_no_retrain(
    one_epoch_ckpt: Path, tmp_path: Path
) -> None:
    """The production path: calibrate once, then judge a request without retraining (on a one-epoch model: the
    path, not the model's quality, is under test, and calibration retrains it twice)."""
    cal = tmp_path / "cal.json"
    res = runner.invoke(app, ["calibrate", "-c", str(one_epoch_ckpt), "-o", str(cal), "--proxies", "1", "--retrains",
                              "2", "--fraction", "0.1", "--workers", "1", "--device", "cpu", "--quiet"])  # fmt: skip
    assert res.exit_code == 0, res.stderr
    values = json.loads(cal.read_text())["forget_auc"]["values"]
    assert len(values) == 2 and all(0 <= v <= 1 for v in values)
    report = tmp_path / "r.json"
    res = runner.invoke(app, ["unlearn", "-c", str(one_epoch_ckpt), "-r", str(REPO / "sample_requests" /
                              "breastmnist-single-patient.json"), "-m", "finetune", "-p", "epochs=1", "--baseline",
                              "calibrated", "--calibration", str(cal), "--forget-auc-tolerance", "0.2",
                              "--out", str(tmp_path / "u.safetensors"), "--report", str(report), "--device", "cpu",
                              "--quiet"])  # fmt: skip
    assert res.exit_code in (0, 3, 4), res.stderr
    rep = json.loads(report.read_text())
    assert rep["retrains"] == [] and rep["cost"]["retrains_trained"] == 0
    assert rep["calibrated_verdict"] is None  # with no retrains, the calibrated verdict is the verdict
    assert all(c["name"].endswith("(calibrated)") for c in rep["verdict"]["checks"]), rep["verdict"]
    assert {"pass": 0, "fail": 3, "inconclusive": 4}[rep["verdict"]["status"]] == res.exit_code
    assert rep["thresholds"]["forget_auc_tolerance"] == 0.2
    confidence = next(c for c in rep["verdict"]["checks"] if c["name"] == "forget confidence (calibrated)")
    assert confidence["noise_basis"] == "images" and confidence["sample_se"] > 0  # DeLong, not the 2 retrains
    # the calibration also says where retrains put the forget samples against validation: a method can stop there
    stop_at = json.loads(cal.read_text())["forget_val_auc"]["values"]
    assert len(stop_at) == 2 and all(0 <= v <= 1 for v in stop_at)
    request = REPO / "sample_requests" / "breastmnist-single-patient.json"
    args = ["unlearn", "-c", str(one_epoch_ckpt), "-r", str(request), "-m", "salun-cra", "-p",
            "stop_target=calibrated", "--baseline", "none", "--out", str(tmp_path / "s.safetensors"),
            "--report", str(tmp_path / "s.json"), "--device", "cpu", "--quiet"]  # fmt: skip
    res = runner.invoke(app, args)  # without the calibration: refused, nothing written
    assert res.exit_code == 2 and "stop_target 'calibrated' needs --calibration" in res.stderr
    assert not (tmp_path / "s.safetensors").exists() and not (tmp_path / "s.json").exists()
    older = tmp_path / "older.json"  # a calibration written before it recorded the level: refused, one line
    older.write_text(json.dumps({k: v for k, v in json.loads(cal.read_text()).items() if k != "forget_val_auc"}))
    res = runner.invoke(app, [*args, "--calibration", str(older)])
    assert res.exit_code == 2 and "written by an older medforget" in res.stderr
    assert "written by an older medforget" in res.stderr.strip().splitlines()[-1]  # after the no-key warning
    assert not (tmp_path / "s.safetensors").exists() and not (tmp_path / "s.json").exists()
    res = runner.invoke(app, [*args, "--calibration", str(cal)])
    assert res.exit_code in (0, 3, 4), res.stderr  # judged against the calibration: the path is under test
    written = json.loads((tmp_path / "s.json").read_text())
    stopping = written["stopping"]
    assert 0 <= written["unlearned"]["forget_val_auc"] <= 1  # the rule's measure, on the whole forget set
    assert stopping["target_from"] == "calibration"
    assert stopping["target"] == pytest.approx(sum(stop_at) / 2)
    assert stopping["checks"] and all(
        c["met"] == (c["value"] is not None and c["value"] <= stopping["target"]) for c in stopping["checks"]
    )
