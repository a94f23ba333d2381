"""The report's deeper analysis (bootstrap intervals, difficulty terciles, attribute groups) and the HTML page.

Unit tests run on synthetic outcomes in milliseconds; one end-to-end ``unlearn()`` (finetune for one
epoch against the cached retrain baseline, with a manifest giving sex for some samples) feeds the
report and HTML checks.
"""

from __future__ import annotations

import csv
import html
import itertools
import json
import re
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch

from medforget.errors import MedforgetError
from medforget.evaluation import (
    MiaResult,
    ModelEval,
    SampleOutcomes,
    bootstrap_ci,
    bootstrap_ratios,
    difficulty_terciles,
    set_metrics,
)
from medforget.verify.analysis import ModelSamples, attribute_analysis, build_analysis
from medforget.verify.report import UnlearnReport, report_schema
from medforget.verify.verdict import Verdict

REPO = Path(__file__).resolve().parents[1]
REQUEST = REPO / "sample_requests" / "breastmnist-malignant-heavy.json"


# --------------------------------------------------------------------------- helpers


def write_sex_manifest(path: Path, n_train: int, n_test: int) -> Path:
    """Sex for two thirds of the train and test samples; the rest left empty (not recorded)."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sample_id", "patient_id", "sex"])
        for split, n in (("train", n_train), ("test", n_test)):
            for i in range(n):
                w.writerow([f"{split}-{i:06d}", "", "" if i % 3 == 2 else ("F" if i % 2 else "M")])
    return path


def fake_eval(sets: dict[str, tuple[torch.Tensor, np.ndarray]], num_classes: int = 2) -> ModelEval:
    """A ModelEval with per-sample outcomes from given labels and predictions (no model needed)."""
    metrics, outcomes = {}, {}
    for name, (labels, pred) in sets.items():
        logits = torch.nn.functional.one_hot(torch.as_tensor(pred), num_classes).float() * 4
        metrics[name] = set_metrics(logits, labels, [str(i) for i in range(num_classes)], [0])
        outcomes[name] = SampleOutcomes.from_logits(logits, labels)
    n_forget = len(sets["forget"][0])
    mia = MiaResult(
        forget_non_member_rate=0.5,
        forget_member_score=0.5,
        attack_auc=0.5,
        n_members=1,
        n_non_members=1,
        forget_scores=[0.3 if i % 2 else 0.7 for i in range(n_forget)],
    )
    return ModelEval(**metrics, mia=mia).keep_outcomes(outcomes)


def samples(evals: dict[str, ModelEval]) -> dict[str, ModelSamples]:
    """Per-sample facts of each fake evaluation, as the report analysis reads them."""
    out = {k: ModelSamples.of(e) for k, e in evals.items()}
    assert all(v is not None for v in out.values())
    return out  # type: ignore[return-value]


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_ci_contains_the_estimate_and_narrows_with_more_samples() -> None:
    rng = np.random.default_rng(0)
    widths = []
    for n in (40, 400, 4000):
        flags = (rng.random(n) < 0.7).astype(float)
        ci = bootstrap_ci(flags, n_resamples=1000, seed=1)
        assert ci is not None and ci.low <= flags.mean() <= ci.high
        widths.append(ci.high - ci.low)
        assert bootstrap_ci(flags, n_resamples=1000, seed=1) == ci  # seeded: repeatable
    assert widths[0] > widths[1] > widths[2]
    assert 0.5 < widths[0] / widths[1] / np.sqrt(10) < 2  # shrinks like 1/sqrt(n)


def test_paired_bootstrap_and_empty_denominators() -> None:
    rng = np.random.default_rng(3)
    a = (rng.random(200) < 0.8).astype(float)
    dist = bootstrap_ratios(np.stack([a, a], 1), np.ones((200, 2)), 500, seed=0)
    assert np.array_equal(dist[:, 0], dist[:, 1])  # same resamples for every column: pairs cancel exactly
    assert np.isnan(bootstrap_ratios(a, np.zeros(200), 50)).all()  # FNR without positives: undefined
    assert bootstrap_ci(np.zeros(0)) is None


# --------------------------------------------------------------------------- slices


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 55])
def test_difficulty_terciles_partition_the_forget_set(n: int) -> None:
    loss = np.round(np.random.default_rng(n).random(n), 1)  # rounding makes ties
    parts = difficulty_terciles(loss)
    assert len(parts) == 3
    assert sorted(np.concatenate(parts).tolist()) == list(range(n))
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    for easier, harder in itertools.pairwise(parts):
        if len(easier) and len(harder):
            assert loss[easier].max() <= loss[harder].min()


def test_attribute_slices_from_a_manifest(tmp_path: Path, breast) -> None:
    from medforget.data import load_medmnist

    manifest = write_sex_manifest(tmp_path / "sex.csv", 60, 30)
    ds = load_medmnist("breastmnist", manifest=manifest)
    forget, test = ds.train.subset(range(30)), ds.test
    rng = np.random.default_rng(0)

    def preds(labels: torch.Tensor, flip: float) -> np.ndarray:
        y = labels.numpy()
        return np.where(rng.random(len(y)) < flip, 1 - y, y)

    def ev(flip: float) -> ModelEval:
        sets = {"retain": ds.train.subset(range(30, 60)), "forget": forget, "test": test}
        return fake_eval({k: (s.labels, preds(s.labels, flip)) for k, s in sets.items()})

    evals = {"original": ev(0.0), "unlearned": ev(0.3), "retrain": ev(0.2)}
    out, notes = attribute_analysis(samples(evals), {"forget": forget.attributes, "test": test.attributes}, ds.positive)
    assert notes == []
    assert [(a.attribute, a.set) for a in out] == [("sex", "forget"), ("sex", "test")]
    for a, split in zip(out, (forget, test), strict=True):
        assert [g.group for g in a.groups] == ["F", "M", "(not recorded)"]
        assert sum(g.n for g in a.groups) == len(split)
        assert not a.groups[-1].recorded
        assert all(g.original.accuracy == 1.0 for g in a.groups)  # the "original" predicted perfectly
        assert a.gap_original.accuracy == 0.0 and a.gap_retrain is not None
    big = {"forget": {"age": [str(i) for i in range(30)]}, "test": {}}
    out, notes = attribute_analysis(samples(evals), big, ds.positive)
    assert out == [] and "age" in notes[0]  # too many distinct values: left out, with a note


def test_analysis_is_skipped_for_evaluations_without_outcomes() -> None:
    labels = torch.tensor([0, 1, 1, 0])
    e = fake_eval({k: (labels, labels.numpy()) for k in ("retain", "forget", "test")})
    reloaded = ModelEval.model_validate_json(e.model_dump_json())
    assert reloaded.outcomes("test") is None
    assert build_analysis(reloaded, reloaded, [], {}, [0], seed=0) == (None, {})
    analysis, diffs = build_analysis(e, e, [e, e], {}, [0], seed=0)
    assert analysis is not None and set(diffs) == {
        "retain accuracy",
        "forget accuracy",
        "test accuracy",
        "MIA efficacy",
        "test FNR",
    }
    assert all(d is not None and d.low == d.high == 0.0 for d in diffs.values())  # identical models, paired


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def finetune_run(breast_ckpt: Path, breast, tmp_path_factory: pytest.TempPathFactory, monkeypatch_module):
    """One real unlearn() with a sex manifest, a retrain baseline and the HTML page; predict() calls counted."""
    import importlib

    from medforget.config import UnlearnSettings
    from medforget.data import DataPaths
    from medforget.evaluation import EvalMemo
    from medforget.request import read_request
    from medforget.unlearn import Outputs, unlearn

    folder = tmp_path_factory.mktemp("analysis")
    manifest = write_sex_manifest(folder / "sex.csv", len(breast.train), len(breast.test))
    # the module, not the package's same-named function
    evaluate_mod = importlib.import_module("medforget.evaluation.evaluate")
    calls: list[str] = []
    real_predict = evaluate_mod.predict

    def counting_predict(model, split, device, *args, **kwargs):
        calls.append(split.name)
        return real_predict(model, split, device, *args, **kwargs)

    monkeypatch_module.setattr(evaluate_mod, "predict", counting_predict)
    monkeypatch_module.setattr("medforget.unlearn.predict", counting_predict)  # the unlearned model's pass
    memo = EvalMemo()  # evaluate every model in this run, whatever earlier tests in this process evaluated
    for module in ("medforget.verification", "medforget.recalibrate", "medforget.calibrate"):
        monkeypatch_module.setattr(f"{module}.MEMO", memo)
    paths = {
        "out": folder / "ft.safetensors",
        "report": folder / "ft.report.json",
        "html": folder / "ft.report.html",
    }
    report = unlearn(
        breast_ckpt,
        read_request(REQUEST),
        UnlearnSettings(method="finetune", params={"epochs": 1}, device="cpu", retrains=2),
        Outputs(checkpoint=paths["out"], report=paths["report"], html=paths["html"]),
        data=DataPaths(manifest=manifest),
    )
    return report, paths, calls


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_each_model_is_run_once_per_set(finetune_run) -> None:
    _, _, calls = finetune_run
    # retain, forget, test and validation once for the unlearned model and each of the 2 retrains; never for the
    # original, whose checkpoint recorded its outputs (its evaluation and its validation sensitivity come from them)
    assert sorted(calls) == sorted(["train", "train", "test", "val"] * 3)


def test_the_memo_builds_a_model_only_for_an_evaluation_it_does_not_remember(tmp_path: Path) -> None:
    """A remembered evaluation (a retrain's recalibrated copy, the original) costs no model load, copy or pass."""
    from conftest import write_png_dataset

    from medforget.data import load_dataset
    from medforget.evaluation import EvalContext, EvalMemo
    from medforget.models import create_model

    ds = load_dataset("csv", size=16, manifest=write_png_dataset(tmp_path / "ds"), positive=["malignant"])
    built: list[int] = []

    def build() -> torch.nn.Module:
        built.append(1)
        torch.manual_seed(0)
        return create_model("resnet10", num_classes=2, in_channels=1, image_size=16)

    forget = ds.train.subset([0, 1])
    sets = {"retain": ds.train.subset(list(range(2, len(ds.train)))), "forget": forget, "test": ds.test, "val": ds.val}
    ctx, memo, cpu = EvalContext(classes=ds.classes, positive=ds.positive), EvalMemo(), torch.device("cpu")
    first = memo.evaluate("abc", build, sets, ctx, cpu, forget.sample_ids)
    assert memo.evaluate("abc", build, sets, ctx, cpu, forget.sample_ids) is first and len(built) == 1
    memo.evaluate("abc", build, sets, ctx, cpu, forget.sample_ids[:1])  # another forget set: evaluated again
    memo.evaluate(None, build, sets, ctx, cpu, forget.sample_ids)  # an unidentified model is never remembered
    assert len(built) == 3


def test_report_json_has_intervals_difficulty_and_groups(finetune_run) -> None:
    report, paths, _ = finetune_run
    data = json.loads(paths["report"].read_text())
    jsonschema.validate(data, report_schema())
    assert data == json.loads(report.model_dump_json())
    a = report.analysis
    assert a is not None and a.intervals.n_resamples == 1000 and a.intervals.level == 0.95
    rows = {r.key: r for r in report.metrics}
    for name in ("original", "unlearned", "retrain"):
        iv = getattr(a.intervals, name)
        for s in ("retain", "forget", "test"):
            row = rows[f"{s}_accuracy"]
            acc = row.retrain_mean if name == "retrain" else getattr(row, name)
            ci = getattr(iv, s).accuracy
            assert ci is not None and ci.low - 1e-9 <= acc <= ci.high + 1e-9  # retrain: the per-sample average
        assert iv.test.fnr is not None and iv.mia_efficacy is not None
    assert {"test accuracy", "test fnr", "test fpr", "forget mia"} <= set(a.intervals.differences)
    # every averaged metric row carries its paired interval around unlearned - retrain mean
    for row in report.metrics:
        if row.key in ("retain_accuracy", "forget_accuracy", "test_accuracy", "test_fnr", "mia"):
            assert row.ci is not None and row.ci.low - 1e-9 <= row.unlearned - row.retrain_mean <= row.ci.high + 1e-9
    # the verdict compares with both retrains: means and spreads are theirs
    assert len(report.retrains) == 2 and len(report.retrain_seeds) == 2 and 0 not in report.retrain_seeds
    for c in report.verdict.checks:
        assert c.status in ("pass", "fail", "inconclusive", "unknown")
        if c.status != "unknown":
            assert len(c.retrain_values) == 2 and c.noise_margin is not None
    # difficulty terciles partition the 55 forget samples, easiest first
    d = a.difficulty
    assert d is not None and [s.name for s in d.slices] == ["easy", "medium", "hard"]
    assert sum(s.n for s in d.slices) == 55 and max(s.n for s in d.slices) - min(s.n for s in d.slices) <= 1
    assert d.slices[0].loss_max <= d.slices[1].loss_min and d.slices[1].loss_max <= d.slices[2].loss_min
    assert sum(s.n_positive for s in d.slices) == report.original.forget.n_positive
    # sex slices on forget and test, with "(not recorded)" kept apart
    by_key = {(x.attribute, x.set): x for x in a.attributes}
    assert set(by_key) == {("sex", "forget"), ("sex", "test")}
    test_sex = by_key[("sex", "test")]
    assert sum(g.n for g in test_sex.groups) == report.unlearned.test.n
    assert {g.group for g in test_sex.groups} == {"F", "M", "(not recorded)"}
    assert test_sex.gap_unlearned.accuracy is not None and test_sex.gap_retrain is not None


def test_html_is_self_contained_and_readable(finetune_run) -> None:
    from medforget.render.html import plain_verdict

    report, paths, _ = finetune_run
    page = paths["html"].read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "http://" not in page and "https://" not in page and "<script" not in page and "<link" not in page
    assert page.count("<img") >= 5 and "data:image/png;base64," in page
    assert html.escape(report.verdict.summary) in page
    assert html.escape(plain_verdict(report)) in page
    assert html.escape(report.request.request_id) in page
    assert report.provenance.output_sha256 in page and report.provenance.input_sha256 in page
    assert all(h in page for h in report.provenance.baseline_sha256)
    # the checks against the K retrains: tolerance and noise margin, not a single retrain's 95% range
    k = len(report.retrains)
    assert f"Retrained without the patients ({k} model" in page and "Where a retrained model lands by chance" in page
    assert "Does each erased image look as if it had never been seen?" in page
    assert "sex — erased images" in page and "sex — new patients (test)" in page
    assert "easy (loss" in page and "hard (loss" in page


def test_html_renders_reloaded_and_unverified_reports(finetune_run, tmp_path: Path) -> None:
    from medforget.render.html import LEDGER_PLACEHOLDER, render_unlearn_html

    _, paths, _ = finetune_run
    reloaded = UnlearnReport.model_validate_json(paths["report"].read_text())
    target = tmp_path / "again.html"
    target.write_text(render_unlearn_html(reloaded, ledger_entry=7), encoding="utf-8")
    assert re.search(r"Ledger position</td><td[^>]*>7</td>", target.read_text(encoding="utf-8"))
    # the placeholder unlearn.write_outputs replaces once the ledger entry exists passes through escaping intact
    assert LEDGER_PLACEHOLDER in render_unlearn_html(reloaded, ledger_entry=LEDGER_PLACEHOLDER)
    # a report without the analysis and without retrains: still renders, says so plainly
    old = json.loads(paths["report"].read_text())
    old.pop("analysis")
    for row in old["metrics"]:
        row.pop("ci", None)
    bare = UnlearnReport.model_validate(old).model_copy(
        update={
            "retrains": [],
            "retrain_seeds": [],
            "evidence": None,
            "verdict": Verdict(status="unverified", summary='Not verified: <no baseline> & "quotes"'),
        }
    )
    page = render_unlearn_html(bare)
    assert "Erasure not verified" in page and "&lt;no baseline&gt; &amp; &#34;quotes&#34;" in page
    assert "<no baseline>" not in page


def test_html_path_is_checked_before_any_work(breast_ckpt: Path, tmp_path: Path) -> None:
    from medforget.config import UnlearnSettings
    from medforget.request import read_request
    from medforget.unlearn import Outputs, unlearn

    taken = tmp_path / "taken.html"
    taken.write_text("keep me")
    settings = UnlearnSettings(method="finetune")
    out = tmp_path / "o.safetensors"
    with pytest.raises(MedforgetError, match="already exists"):
        unlearn(breast_ckpt, read_request(REQUEST), settings, Outputs(checkpoint=out, html=taken))
    with pytest.raises(MedforgetError, match="same file"):
        unlearn(breast_ckpt, read_request(REQUEST), settings, Outputs(checkpoint=out, html=out))
    assert taken.read_text() == "keep me" and not (tmp_path / "o.safetensors").exists()
