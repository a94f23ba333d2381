"""The HTML pages, rendered from saved reports: every verdict status, escaping, self-containment, the audit.

``tests/data/report_v2.json`` is a real ``medforget unlearn`` report (salun-cra on BreastMNIST, K=3
retrains, verdict "fail") with its per-sample lists cut to 20 values; the other statuses are made
from it in memory. Nothing here trains or evaluates a model.
"""

from __future__ import annotations

import html
import io
import re
from pathlib import Path

import pytest

from medforget.audit.report import (
    AuditCheck,
    AuditReport,
    AuditSettings,
    AuditVerdict,
    IntegrityResult,
    LiraAudit,
    PopulationAudit,
    RequestCoverage,
    SampleLikelihood,
    SampleScore,
    TprAtFpr,
)
from medforget.render.html import LEDGER_PLACEHOLDER, plain_verdict, render_audit_html, render_unlearn_html
from medforget.verify.analysis import AttributeAnalysis
from medforget.verify.report import UnlearnReport
from medforget.verify.verdict import UNVERIFIED, Verdict

FIXTURE = Path(__file__).parent / "data" / "report_v2.json"
HOSTILE = '<script>alert("x")</script> & co'


def load() -> UnlearnReport:
    return UnlearnReport.model_validate_json(FIXTURE.read_text(encoding="utf-8"))


def with_statuses(report: UnlearnReport, status: str, checks: dict[str, str]) -> UnlearnReport:
    """The report with its verdict set to ``status`` and the named checks' statuses overridden."""
    new = [c.model_copy(update={"status": checks.get(c.name, c.status)}) for c in report.verdict.checks]
    verdict = Verdict(status=status, summary=f"{status.capitalize()}: made up for the test.", checks=new)
    return report.model_copy(update={"verdict": verdict})


def variants() -> dict[str, UnlearnReport]:
    base = load()
    names = [c.name for c in base.verdict.checks]
    bare = {"retrains": [], "retrain_seeds": [], "evidence": None, "verdict": UNVERIFIED}
    return {
        "fail": base,
        "pass": with_statuses(base, "pass", dict.fromkeys(names, "pass")),
        "inconclusive": with_statuses(base, "inconclusive", {"membership inference": "inconclusive"}),
        "unverified": base.model_copy(update=bare),
    }


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return {status: render_unlearn_html(r) for status, r in variants().items()}


def headline(page: str) -> str:
    match = re.search(r'<p class="headline">(.*?)</p>', page, re.S)
    assert match is not None
    return html.unescape(match.group(1))


def test_the_fixture_is_a_format_2_report_that_fails() -> None:
    r = load()
    assert r.format == "medforget-report/2" and len(r.retrains) == 3 and r.verdict.status == "fail"
    assert r.evidence is not None and 0 < len(r.evidence.forget_z) <= 20


@pytest.mark.parametrize(
    ("status", "phrases"),
    [
        ("pass", ["Erasure confirmed", "within every agreed tolerance"]),
        ("fail", ["Erasure NOT confirmed", "privacy", "by more than the agreed tolerance"]),
        (
            "inconclusive",
            [
                "Erasure inconclusive: nothing failed",
                "models retrained from scratch without these patients differ from each other by more than the "
                "agreed tolerance",
                "the data cannot show that the updated model is within it",
            ],
        ),
        ("unverified", ["Erasure not verified", "no evidence"]),
    ],
)
def test_each_verdict_leads_with_its_plain_sentence(pages: dict[str, str], status: str, phrases: list[str]) -> None:
    head = headline(pages[status])
    assert head == plain_verdict(variants()[status])
    for phrase in phrases:
        assert phrase in head, (status, head)


def test_inconclusive_says_what_would_settle_it(pages: dict[str, str]) -> None:
    page = html.unescape(pages["inconclusive"])
    assert "What would settle it:" in page
    assert "--retrains 6" in page and "a test set with more disease cases (it has 42)" in page
    assert "✗ fail" not in page


def test_fail_names_the_failed_check_and_its_direction(pages: dict[str, str]) -> None:
    page = html.unescape(pages["fail"])
    assert "Privacy: fewer erased images look unused than with the retrained models" in page
    assert "Of 6 checks: 1 failed, 5 inconclusive." in page


def test_checks_table_shows_difference_tolerance_noise_and_reason(pages: dict[str, str]) -> None:
    page = html.unescape(pages["fail"])
    assert "Where a retrained model lands by chance" in page and "95% range</th>" not in page
    assert "-56.4 pts" in page and "within ±10.0 pts" in page and "±32.6 pts" in page
    assert "+0.48 SD" in page and "±1.43 SD" in page  # the evidence check, in SD
    assert "up to 5.0 pts worse" in page  # one-sided patient safety
    assert "same operating point" in page
    assert "Retrained without the patients (3 models)" in page and "range 77.8–80.2%" in page
    for section in ("Does each erased image look as if it had never been seen?", "Operating point", "AUROC"):
        assert section in page
    assert "Inconclusive</dt>" in page and "Retrain spread / noise margin" in page and "z-score" in page


def test_unverified_renders_without_retrained_models(pages: dict[str, str]) -> None:
    page = pages["unverified"]
    assert "No checks could be made" in page and "Retrained without the patients (" not in page
    assert "Not available: comparing image by image" in page


def test_pages_are_self_contained(pages: dict[str, str]) -> None:
    for page in pages.values():
        assert page.startswith("<!DOCTYPE html>")
        assert "http://" not in page and "https://" not in page and "<script" not in page and "<link" not in page
        sources = re.findall(r'<img[^>]*src="([^"]*)"', page)
        assert sources and all(s.startswith("data:image/png;base64,") for s in sources)


def test_user_text_is_escaped_and_the_ledger_placeholder_survives() -> None:
    r = load()
    request = r.request.model_copy(update={"request_id": HOSTILE, "reason": HOSTILE, "warnings": [HOSTILE]})
    group = {"group": HOSTILE, "recorded": True, "n": 10, "n_positive": 4}
    cells = {m: {"accuracy": 0.5, "fnr": 0.25} for m in ("original", "unlearned", "retrain")}
    gap = {"accuracy": None, "fnr": None}
    attribute = AttributeAnalysis.model_validate(
        {
            "attribute": HOSTILE,
            "set": "test",
            "groups": [group | cells],
            **{f"gap_{m}": gap for m in ("original", "unlearned", "retrain")},
        }
    )
    assert r.analysis is not None
    analysis = r.analysis.model_copy(update={"attributes": [attribute], "notes": [HOSTILE]})
    checks = [c.model_copy(update={"reason": HOSTILE}) for c in r.verdict.checks]
    verdict = r.verdict.model_copy(update={"summary": HOSTILE, "checks": checks})
    hostile = r.model_copy(update={"request": request, "analysis": analysis, "verdict": verdict})
    page = render_unlearn_html(hostile, ledger_entry=LEDGER_PLACEHOLDER)
    assert "<script" not in page and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; co" in page
    assert LEDGER_PLACEHOLDER in page
    assert re.search(r"Ledger position</td><td[^>]*>7</td>", render_unlearn_html(load(), ledger_entry=7))


# --------------------------------------------------------------------------- the audit page


def audit_report(show_ids: bool = False) -> AuditReport:
    """An audit with a request coverage gap, an over-forgetting population result and a U-LiRA attack."""
    names = [f"hmac:{i:016x}" for i in range(12)]
    likelihood = {"label": 0, "phi": 1.0, "mu_in": 2.0, "sd_in": 1.0, "mu_out": 0.0, "sd_out": 1.0, "n_in": 4}
    requested = [
        SampleLikelihood(sample=n, n_out=4, log_lr=0.1 * i, lr=1.1**i, **likelihood) for i, n in enumerate(names)
    ]
    lira = LiraAudit(
        attack="U-LiRA",
        n_shadows=8,
        shadow_arch="resnet10s",
        shadow_epochs=3,
        shadow_train_size=400.0,
        variance="pooled",
        requested=requested,
        references=requested[:3],
        fraction_lr_above_1_requested=0.30,
        fraction_lr_above_1_reference=0.50,
        gap=-0.20,
        p_value=0.01,
        auc_requested_vs_reference=0.4,
        median_lr_requested=0.9,
        median_lr_reference=1.0,
        mean_log_lr_requested=-0.1,
        tpr_at_fpr=[TprAtFpr(target_fpr=0.01, achieved_fpr=0.01, threshold_log_lr=2.0, tpr=0.0)],
        notes=[HOSTILE],
        seconds=1.0,
    )
    population = PopulationAudit(
        n_requested=12,
        n_reference=78,
        n_attack_members=100,
        n_attack_non_members=78,
        attack_auc=0.55,
        requested_non_member_rate=0.9,
        reference_non_member_rate=0.6,
        gap=-0.3,
        p_value=0.2,
        requested=[SampleScore(sample=n, label=0, member_score=0.4) for n in names],
    )
    coverage = RequestCoverage(
        ok=False,
        request="hmac:feedfacecafebeef",
        n_samples=12,
        n_patients=3,
        n_missing_samples=1,
        n_missing_patients=0,
        missing_samples=[names[0]],
        record_key_id="k1",
        expanded_patients=False,
    )
    checks = [
        AuditCheck(name="request", status="fail", summary=HOSTILE),
        AuditCheck(name="membership (U-LiRA)", status="fail", summary="look unseen far more often"),
    ]
    return AuditReport(
        checkpoint="/models/<x>.safetensors",
        sha256="ab" * 32,
        dataset="breastmnist",
        verdict=AuditVerdict(status="fail", summary="Fail: request, membership (U-LiRA) failed."),
        checks=checks,
        integrity=IntegrityResult(ok=True, path="/models/x.safetensors", size_bytes=1, sha256="ab" * 32),
        request=coverage,
        population_mia=population,
        lira=lira,
        settings=AuditSettings(
            mia_tolerance=0.1,
            alpha=0.05,
            seed=0,
            deep=8,
            shadow_arch=None,
            shadow_epochs=None,
            device="cpu",
            key_id="k1",
            show_ids=show_ids,
        ),
        seconds=2.0,
    )


def test_audit_page_names_the_attack_and_reads_membership_both_ways() -> None:
    page = render_audit_html(audit_report())
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "Shadow-model attack (U-LiRA)" in text and "then had them erased by the same method" in text
    assert "look used less often than images the model truly never saw" in text
    assert "singles them out" in text and "statistically clear" in text  # LiRA: p 0.01
    assert "could still be chance" in text  # population: p 0.2
    assert "hmac:feedfacecafebeef" in text and "hmac:000000000000000b" in text
    assert "never by their IDs" in text
    assert "<script" not in page and "&lt;x&gt;" in page and "http://" not in page and "https://" not in page
    assert html.escape("Fail: request, membership (U-LiRA) failed.") in page
    assert "--show-ids" in render_audit_html(audit_report(show_ids=True))


@pytest.mark.parametrize(
    ("outcome", "html_phrase", "line"),
    [
        ("forgotten", "It stopped after 33 of at most 225 training steps", "stopped at step 33 of 225: forget AUC"),
        ("step budget", "It used all 225 training steps", "ran all 225 steps without two checks in a row"),
    ],
)
def test_the_report_says_when_and_why_the_method_stopped(outcome: str, html_phrase: str, line: str) -> None:
    from rich.console import Console

    from medforget.methods import StopCheck, Stopping
    from medforget.render.terminal import stopping_line, unlearn_report

    checks = [StopCheck(step=11, value=0.71, met=False), StopCheck(step=22, value=0.54, met=True)]
    checks.append(StopCheck(step=33, value=0.52 if outcome == "forgotten" else 0.60, met=outcome == "forgotten"))
    steps = 33 if outcome == "forgotten" else 225
    stopping = Stopping(
        rule="auc", target=0.55, check_every=11, steps=steps, max_steps=225, outcome=outcome, checks=checks
    )
    page = render_unlearn_html(load().model_copy(update={"stopping": stopping}))
    assert html_phrase in html.unescape(page)
    assert stopping_line(stopping).startswith(line)
    last_two = "0.540, 0.520 <= 0.550" if outcome == "forgotten" else "(last: 0.540, 0.600)"
    assert last_two in stopping_line(stopping)
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(unlearn_report(load().model_copy(update={"stopping": stopping})))
    assert stopping_line(stopping) in console.export_text()  # the terminal report carries the line
    assert "training steps" not in html.unescape(render_unlearn_html(load()))  # no record (older report): no claim
    # the last check's AUC of each class, when there are several: an average can hide classes going opposite ways
    by_class = checks[-1].model_copy(update={"by_class": {"malignant": 0.59, "normal, benign": 0.41}})
    split = stopping.model_copy(update={"checks": [*checks[:-1], by_class]})
    assert "by class: malignant 0.590 / normal, benign 0.410" in stopping_line(split)
    assert "by class" not in stopping_line(stopping)
    calibrated = stopping.model_copy(update={"target_from": "calibration"})
    assert "<= 0.550 (the calibrated retrains')" in stopping_line(calibrated)
    assert "models retrained without them" in html.unescape(
        render_unlearn_html(load().model_copy(update={"stopping": calibrated}))
    )


def test_the_terminal_report_gives_the_original_gap_beside_the_method_gap() -> None:
    """The average gap is read against the original's (how far from the retrains the model was); a report written
    before the field was recorded prints the gap alone."""
    from rich.console import Console

    from medforget.render.terminal import unlearn_report
    from medforget.verify.metrics import average_gap

    def text(report: UnlearnReport) -> str:
        console = Console(width=200, record=True, file=io.StringIO())
        console.print(unlearn_report(report))
        return console.export_text()

    old = load()
    assert old.original_average_gap is None and "before unlearning" not in text(old)
    before = average_gap(old.metrics, of="original")
    assert before is not None and before > old.average_gap  # the original never forgot the request
    new = old.model_copy(update={"original_average_gap": before})
    assert f"{100 * old.average_gap:.2f} pts (before unlearning: {100 * before:.2f})" in text(new)
