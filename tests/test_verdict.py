"""The verdict's rule on its own: each status, the unknown value that never passes, and the two statistical
properties it is built for, on simulated retrains where the truth is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medforget.config import Thresholds
from medforget.evaluation import MiaResult, ModelEval, set_metrics
from medforget.evaluation.calibration import apply_offset, operating_point, refit_spread
from medforget.evaluation.evaluate import OperatingMetrics
from medforget.evaluation.metrics import forget_auc, forget_auc_se
from medforget.verify.checks import judge
from medforget.verify.noise import Level, between_margin, per_sample_se, refit_se, requests_margin
from medforget.verify.verdict import Rule, judge_check, verdict_of

TWO = Rule("forget", "d", "m", "two-sided")
LOWER = Rule("quality", "d", "m", "lower-is-worse")
LEVEL = Level(0.05, 6, two_sided=True)


def test_each_status_follows_the_rule() -> None:
    tight = [0.800, 0.802, 0.798]  # retrains agree: the margin is under the tolerance
    assert judge_check(TWO, 0.80, tight, 0.05, "", LEVEL).status == "pass"
    assert judge_check(TWO, 0.60, tight, 0.05, "", LEVEL).status == "fail"
    loose = [0.60, 0.80, 1.00]  # retrains alone vary more than the tolerance
    check = judge_check(TWO, 0.82, loose, 0.05, "more retrains", LEVEL)
    assert check.status == "inconclusive" and check.settle == "more retrains"
    assert judge_check(LOWER, 0.99, tight, 0.03, "", Level(0.05, 6, False)).status == "pass"  # better is no harm
    assert judge_check(TWO, 0.8, [0.8], 0.05, "", LEVEL).status == "inconclusive"  # one retrain: no noise estimate


def test_an_undefined_value_is_unknown_and_never_passes() -> None:
    assert judge_check(TWO, None, [0.8, 0.8, 0.8], 0.05, "", LEVEL).status == "unknown"
    assert judge_check(TWO, 0.8, [0.8, None, 0.8], 0.05, "", LEVEL).status == "unknown"
    checks = [judge_check(TWO, 0.8, [0.8, 0.8, 0.8], 0.05, "", LEVEL), judge_check(TWO, None, [0.8], 0.05, "", LEVEL)]
    assert verdict_of(checks).status == "inconclusive"


def test_the_level_shares_alpha_among_the_checks() -> None:
    assert Level(0.05, 6, two_sided=True).p == pytest.approx(1 - 0.05 / 12)
    assert Level(0.05, 6, two_sided=False).p == pytest.approx(1 - 0.05 / 6)
    wide = judge_check(TWO, 0.8, [0.78, 0.80, 0.82], 0.0, "", Level(0.05, 6, True)).noise_margin
    narrow = judge_check(TWO, 0.8, [0.78, 0.80, 0.82], 0.0, "", Level(0.3, 6, True)).noise_margin
    assert wide is not None and narrow is not None and wide > 2 * narrow  # t(2) quantiles: 10.8 against 4.3


def _exact_retrain_fail_rate(level_alpha: float, k: int, trials: int, rng: np.random.Generator) -> float:
    """Six independent normal metrics; the candidate is one more draw (an exact retrain); no tolerance helps."""
    rules = [TWO, TWO, TWO, LOWER, LOWER, LOWER]
    fails = 0
    for _ in range(trials):
        draws = rng.normal(0.8, 0.03, size=(6, k + 1))
        checks = [
            judge_check(
                r, float(d[0]), list(map(float, d[1:])), 0.0, "", Level(level_alpha, 6, r.direction == "two-sided")
            )
            for r, d in zip(rules, draws, strict=True)
        ]
        fails += verdict_of(checks).status == "fail"
    return fails / trials


def test_bonferroni_holds_the_chance_of_failing_an_exact_retrain_at_alpha() -> None:
    """Six checks at 95% each fail an exact retrain about one time in five; sharing alpha keeps it under 5%."""
    rng = np.random.default_rng(0)
    shared = _exact_retrain_fail_rate(0.05, k=3, trials=3000, rng=rng)
    per_check = _exact_retrain_fail_rate(0.3, k=3, trials=3000, rng=rng)  # 97.5% per tail, the old rule
    assert shared <= 0.05 + 0.012  # 3000 trials: binomial SE 0.004
    assert per_check > 0.12


def test_image_margin_fits_checks_whose_whole_model_shifts_cancel() -> None:
    """Simulated models: each image has its own difficulty, each model an overall shift (a better or worse
    model). The difference forget - matched test cancels the shift, so its per-image standard error matches the
    real spread between exact retrains; a plain accuracy does not cancel it, and its per-image standard error
    would be far too small (which is why those checks use the spread between retrains)."""
    rng = np.random.default_rng(1)
    n_f, n_t, k = 120, 160, 3
    logit_f, logit_t = rng.normal(1.5, 1.5, n_f), rng.normal(1.5, 1.5, n_t)

    def model() -> tuple[np.ndarray, np.ndarray]:
        shift = rng.normal(0, 0.6)  # the whole model
        f = rng.random(n_f) < 1 / (1 + np.exp(-(logit_f + shift)))
        t = rng.random(n_t) < 1 / (1 + np.exp(-(logit_t + shift)))
        return f.astype(float), t.astype(float)

    weights = np.r_[np.full(n_f, 1 / n_f), np.full(n_t, 1 / n_t)]
    gap_diffs, gap_se, acc_diffs, acc_se = [], [], [], []
    for _ in range(400):
        models = [model() for _ in range(k + 1)]
        gap = np.array([f.mean() - t.mean() for f, t in models])
        gap_diffs.append(gap[0] - gap[1:].mean())
        scores = np.stack([np.r_[f, t] for f, t in models])
        gap_se.append(per_sample_se(scores[0], scores[1:], weights))
        acc = np.array([t.mean() for _, t in models])
        acc_diffs.append(acc[0] - acc[1:].mean())
        tests = np.stack([t for _, t in models])
        acc_se.append(per_sample_se(tests[0], tests[1:], np.full(n_t, 1 / n_t)))
    assert np.mean(gap_se) == pytest.approx(np.std(gap_diffs), rel=0.15)
    assert np.mean(acc_se) < 0.7 * np.std(acc_diffs)


def test_forget_auc_standard_error_matches_the_spread_over_drawn_images() -> None:
    """The calibrated confidence check's margin: DeLong's standard error of the class-matched forget-vs-unseen
    AUC, averaged over draws, is the AUC's real spread when other images are drawn (and it is no constant: a
    request half the size has a wider one)."""
    rng = np.random.default_rng(2)

    def draw(n_f: int, n_t: int) -> tuple[float, float]:
        yf, yt = rng.integers(0, 2, n_f), rng.integers(0, 2, n_t)
        phi_f, phi_t = rng.normal(0.3, 1, n_f) + yf, rng.normal(0, 1, n_t) + yt  # remembered a little
        return forget_auc(phi_f, yf, phi_t, yt), forget_auc_se(phi_f, yf, phi_t, yt)

    full = np.array([draw(110, 156) for _ in range(1500)])
    half = np.array([draw(55, 156) for _ in range(300)])
    assert full[:, 1].mean() == pytest.approx(full[:, 0].std(), rel=0.1)
    assert half[:, 1].mean() > 1.25 * full[:, 1].mean()


def test_calibrated_margin_covers_another_requests_retrain() -> None:
    """The calibrated verdict judges a request that is not one of its proxies. Simulated proxies (2 requests x 3
    retrains): when requests differ (which patients left moves the metric), the retrains' spread alone misses a new
    request's retrain far more often than its level allows; the random-effects margin covers it nearly as
    promised, and when requests do not differ it is no wider than needed."""
    rng = np.random.default_rng(3)
    level = Level(0.05, 1, two_sided=True)

    def coverage(request_sd: float, trials: int = 2000) -> tuple[float, float]:
        grouped = flat = 0
        for _ in range(trials):
            values = (rng.normal(0, request_sd, (2, 1)) + rng.normal(0, 1, (2, 3))).ravel()
            new = rng.normal(0, request_sd) + rng.normal(0, 1)
            grouped += abs(new - values.mean()) <= requests_margin(values, 3, level)
            flat += abs(new - values.mean()) <= between_margin(values, level)
        return grouped / trials, flat / trials

    grouped, flat = coverage(2.0)
    assert grouped > flat + 0.05 and grouped > 0.87
    grouped, _ = coverage(0.0)
    assert 0.93 < grouped < 0.985
    assert requests_margin([0.1, 0.2, 0.3, 0.4], 3, level) is None  # not 2 requests x 3 retrains: cannot group


def _scored_model(rng: np.random.Generator, val_disease: int) -> tuple[torch.Tensor, ...]:
    """One simulated model: its own heavy-tailed disease margins on validation and test (label 1 = disease)."""

    def split(n_pos: int, n_neg: int) -> tuple[torch.Tensor, torch.Tensor]:
        margin = np.r_[rng.standard_t(3, n_pos) + 1.6, rng.standard_t(3, n_neg) - 1.6]
        labels = torch.tensor(np.r_[np.ones(n_pos), np.zeros(n_neg)].astype(np.int64))
        return torch.tensor(np.c_[np.zeros_like(margin), margin]), labels

    return (*split(val_disease, 60), *split(40, 110))


def test_refit_spread_shrinks_with_more_validation_disease_cases() -> None:
    """The threshold's own noise comes from the few validation disease cases it rests on: 4x as many halve it
    (about), and without any there is nothing to refit."""
    rng = np.random.default_rng(4)
    few = [refit_spread(*_scored_model(rng, 20), [1], 0.85)[0] for _ in range(40)]
    many = [refit_spread(*_scored_model(rng, 80), [1], 0.85)[0] for _ in range(40)]
    assert np.mean(many) < 0.7 * np.mean(few)
    vl, vy, tl, ty = _scored_model(rng, 20)
    assert refit_spread(vl[vy == 0], vy[vy == 0], tl, ty, [1], 0.85) == (None, None)


def test_threshold_floor_keeps_exact_retrains_from_failing_test_accuracy() -> None:
    """Simulated exact retrains whose test accuracy is scored at an operating point refit on 21 validation disease
    cases (BreastMNIST's count). The threshold jumps now and then, which 3 retrains seldom show: judged on their
    spread alone, an exact retrain fails test accuracy several times as often as its share of alpha allows; with
    the refit's bootstrap noise as a floor under the margin it stays within that share."""
    rng = np.random.default_rng(0)
    level = Level(0.05, 6, two_sided=False)
    quality = Rule("test accuracy", "d", "m", "lower-is-worse")
    alone = floored = 0
    trials = 300
    for _ in range(trials):
        scored = []
        for _ in range(4):  # the candidate (one more exact retrain) and K = 3 retrains
            vl, vy, tl, ty = _scored_model(rng, 21)
            offset = operating_point(vl, vy, [1], 0.85).offset
            accuracy = float((apply_offset(tl, [1], offset).argmax(1) == ty).double().mean())
            scored.append((accuracy, refit_spread(vl, vy, tl, ty, [1], 0.85)[0]))
        (u, sd_u), *refs = scored
        values, floor = [a for a, _ in refs], refit_se(sd_u, [s for _, s in refs])
        alone += judge_check(quality, u, values, 0.0, "", level).status == "fail"
        check = judge_check(quality, u, values, 0.0, "", level, threshold_se=floor)
        floored += check.status == "fail"
    share = 1 - level.p
    assert alone / trials > 2 * share
    assert floored / trials <= share


def test_threshold_floor_only_widens_a_margin() -> None:
    """The retrains' spread already holds the threshold's noise: the floor replaces it only when larger."""
    level = Level(0.05, 6, two_sided=False)
    quality = Rule("test accuracy", "d", "m", "lower-is-worse")
    tight = [0.80, 0.805, 0.795]
    floored = judge_check(quality, 0.70, tight, 0.03, "", level, threshold_se=0.05)
    assert floored.noise_basis == "threshold" and floored.status == "inconclusive"
    assert "threshold refit on validation" in floored.reason  # says what varies, for the report's reader
    assert floored.noise_margin == pytest.approx(0.05 * 2.394, rel=1e-3)  # z(1 - 0.05 / 6)
    plain = judge_check(quality, 0.70, tight, 0.03, "", level, threshold_se=0.001)
    assert plain.noise_basis == "retrains" and plain.status == "fail"
    assert refit_se(0.03, [0.03, 0.03, 0.03]) == pytest.approx(0.03 * np.sqrt(1 + 1 / 3))
    assert refit_se(None, [0.03]) is None


def _scored_eval(test_errors: int, accuracy_sd: float) -> ModelEval:
    """A model's evaluation: 100 test images (30 disease), ``test_errors`` of them wrong, and its refit noise."""
    labels = torch.tensor([1] * 30 + [0] * 70)
    wrong = torch.zeros(100, dtype=torch.bool)
    wrong[30 : 30 + test_errors] = True  # false alarms only: FNR stays 0
    logits = torch.nn.functional.one_hot(torch.where(wrong, 1 - labels, labels), 2).float() * 4
    metrics = set_metrics(logits, labels, ["healthy", "disease"], [1])
    mia = MiaResult(forget_non_member_rate=0.5, forget_member_score=0.5, attack_auc=0.5, n_members=1, n_non_members=1)
    at_op = OperatingMetrics(accuracy=metrics.accuracy, fnr=0.0, fpr=0.1, accuracy_sd=accuracy_sd, fnr_sd=0.05)
    return ModelEval(retain=metrics, forget=metrics, test=metrics, mia=mia, at_operating_point=at_op)


def test_the_threshold_floor_covers_test_accuracy_only_when_thresholds_were_refit() -> None:
    """With ``--no-recalibrate`` test accuracy is scored at the model's own threshold, which no refit moved: its
    margin is the retrains' spread alone. Missed disease is scored at a refit operating point either way."""
    retrains = [_scored_eval(e, accuracy_sd=0.06) for e in (20, 21, 20)]  # they agree closely
    unlearned = _scored_eval(30, accuracy_sd=0.06)  # 9.7 points below their mean
    tolerances = Thresholds()
    refit = {c.name: c for c in judge(unlearned, retrains, None, tolerances, recalibrated=True).checks}
    own = {c.name: c for c in judge(unlearned, retrains, None, tolerances, recalibrated=False).checks}
    assert refit["test accuracy"].noise_basis == "threshold" and refit["test accuracy"].status == "inconclusive"
    assert own["test accuracy"].noise_basis == "retrains" and own["test accuracy"].status == "fail"
    safety = "missed disease (test FNR)"
    assert refit[safety].noise_basis == own[safety].noise_basis == "threshold"
