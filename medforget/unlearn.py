"""``medforget unlearn``: apply a deletion request to a checkpoint and verify it against retraining.

The flow, in the order a careful engineer would do it by hand:

1. check every output path before any work (a typo must not cost an hour);
2. load and verify the checkpoint, rebuild its data and check the fingerprint;
3. resolve the request to training rows (and exclude earlier deletions);
4. run the method on a copy of the model, timed;
5. obtain the retrain baseline (cached by recipe + retain set, or a given checkpoint);
6. evaluate original, unlearned and retrain models on retain, forget and test sets;
7. judge, add bootstrap intervals and difficulty/group slices, then write checkpoint, report
   and (optionally) the HTML report atomically together.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from medforget.checkpoint import (
    CheckpointMeta,
    LoadedCheckpoint,
    UnlearningRecord,
    check_dataset,
    checkpoint_bytes,
    load_checkpoint,
)
from medforget.data import Dataset, Split, load_from_spec
from medforget.engine import predict, resolve_device, stderr
from medforget.errors import CheckpointError, MedforgetError
from medforget.fileio import atomic_path, cache_dir, check_writable
from medforget.keys import IdHasher
from medforget.methods import UnlearnTask, get_method
from medforget.metrics import SampleOutcomes, population_mia, set_metrics
from medforget.report import (
    Cost,
    ModelEval,
    Provenance,
    RequestSummary,
    Thresholds,
    UnlearnReport,
    attach_intervals,
    build_analysis,
    compute_gaps,
    judge,
)
from medforget.request import DeletionRequest, ResolvedRequest, resolve

if TYPE_CHECKING:
    from medforget.tune import TuningRecord


def evaluate(
    model: torch.nn.Module,
    sets: dict[str, Split],
    dataset: Dataset,
    device: torch.device,
    fn_cost: float,
    fp_cost: float,
    seed: int,
) -> ModelEval:
    """Metrics on retain, forget and test, and the population MIA, from one inference pass per set.

    The per-sample outcomes (prediction, loss) are kept on the result, so the report's bootstrap
    intervals and difficulty/group slices reuse this pass instead of running the model again.
    """
    logits = {k: predict(model, s, device) for k, s in sets.items()}
    metrics = {
        k: set_metrics(logits[k], s.labels, dataset.classes, dataset.positive, fn_cost, fp_cost)
        for k, s in sets.items()
    }
    mia = population_mia(
        (logits["retain"], sets["retain"].labels),
        (logits["test"], sets["test"].labels),
        (logits["forget"], sets["forget"].labels),
        seed=seed,
    )
    outcomes = {k: SampleOutcomes.from_logits(logits[k], s.labels) for k, s in sets.items()}
    return ModelEval(retain=metrics["retain"], forget=metrics["forget"], test=metrics["test"], mia=mia).keep_outcomes(
        outcomes
    )


_EVAL_MEMO: dict[tuple[Any, ...], ModelEval] = {}


def _evaluate_memo(
    sha: str | None,
    model: torch.nn.Module,
    sets: dict[str, Split],
    dataset: Dataset,
    device: torch.device,
    memo_base: tuple[Any, ...],
) -> ModelEval:
    """Evaluate, remembering results for identified models: the original and the retrain baseline are
    evaluated identically by every method run on the same request in one process."""
    key = (sha, *memo_base)
    if sha is not None and key in _EVAL_MEMO:
        return _EVAL_MEMO[key]
    result = evaluate(model, sets, dataset, device, memo_base[1], memo_base[2], memo_base[3])
    if sha is not None:
        if len(_EVAL_MEMO) > 64:
            _EVAL_MEMO.clear()
        _EVAL_MEMO[key] = result
    return result


def _hasher(ckpt: LoadedCheckpoint, key: bytes | None) -> IdHasher:
    """Keep using the checkpoint's key (or salt) so its forgotten set stays one comparable list."""
    prev = ckpt.meta.forgotten
    if prev.sample_hashes:
        return prev.hasher(key)
    if key is None:
        stderr.print(
            "[yellow]warning:[/] no key ($MEDFORGET_KEY or --key-file): forgotten IDs are stored as salted hashes, "
            "which anyone can test guesses against"
        )
    return IdHasher(key)


def baseline_key(ckpt: LoadedCheckpoint, retain: Split) -> str:
    """Content address of a retrain: the recorded recipe, the data, and exactly which samples remain."""
    h = hashlib.sha256()
    h.update(ckpt.meta.train_config.model_dump_json().encode())
    h.update(ckpt.meta.dataset.fingerprint.encode())
    h.update("\n".join(sorted(retain.sample_ids)).encode())
    return h.hexdigest()


def derived_meta(
    ckpt: LoadedCheckpoint,
    hasher: IdHasher,
    resolved: ResolvedRequest,
    method: str,
    params: dict[str, Any],
    seconds: float,
    metrics: dict[str, float],
) -> CheckpointMeta:
    """The child checkpoint's record: same model and data, one more deletion, lineage to the parent."""
    meta = ckpt.meta
    return CheckpointMeta(
        **meta.model_dump(
            include={
                "arch",
                "num_classes",
                "in_channels",
                "image_size",
                "classes",
                "positive",
                "dataset",
                "train_config",
            }
        ),
        metrics=metrics,
        forgotten=hasher.record(resolved.sample_ids, resolved.patient_ids, meta.forgotten),
        parent_sha256=ckpt.sha256,
        unlearning=UnlearningRecord(
            method=method,
            params=params,
            request_id=resolved.request.request_id,
            n_forgotten_samples=len(resolved.sample_ids),
            n_forgotten_patients=len(resolved.patient_ids),
            seconds=round(seconds, 3),
        ),
    )


def retrain_baseline(
    ckpt: LoadedCheckpoint, task: UnlearnTask, hasher: IdHasher, resolved: ResolvedRequest
) -> tuple[torch.nn.Module, float | None, str, str]:
    """Retrain without the forget set, or reuse the cached result of the identical retrain."""
    path = cache_dir() / "baselines" / f"{baseline_key(ckpt, task.retain)}.safetensors"
    if path.exists():
        try:
            cached = load_checkpoint(path)
            stderr.print(f"retrain baseline: reusing {path}")
            seconds = cached.meta.unlearning.seconds if cached.meta.unlearning else None
            return cached.build_model(task.device), seconds, "retrain (cache)", cached.sha256
        except CheckpointError:
            path.unlink(missing_ok=True)  # a damaged cache entry is recomputed, never trusted
    stderr.print(f"retrain baseline: training {ckpt.meta.arch} from scratch on {len(task.retain)} retained samples")
    retrain = get_method("retrain")
    params = retrain.parse_params({})
    start = time.perf_counter()
    model = retrain(task, params)
    seconds = time.perf_counter() - start
    meta = derived_meta(ckpt, hasher, resolved, "retrain", params.model_dump(), seconds, {})
    path.parent.mkdir(parents=True, exist_ok=True)
    data = checkpoint_bytes(model, meta)
    with atomic_path(path, force=True) as tmp:
        tmp.write_bytes(data)
    return model, seconds, "retrain (trained now)", hashlib.sha256(data).hexdigest()


def _given_baseline(
    path: Path, ckpt: LoadedCheckpoint, resolved: ResolvedRequest, key: bytes | None, device: torch.device
) -> tuple[torch.nn.Module, str]:
    """A retrained checkpoint supplied by the user: it must come from the same data and never have seen
    the forget set (its own record must list every forget sample as removed by retraining)."""
    base = load_checkpoint(path)
    if base.meta.dataset.fingerprint != ckpt.meta.dataset.fingerprint:
        raise CheckpointError(f"baseline {path} was trained on different data than {ckpt.path}")
    if base.meta.unlearning is None or base.meta.unlearning.method != "retrain":
        raise CheckpointError(f"baseline {path} is not a retrained model (its record shows no retrain)")
    missing = [
        s
        for s, ok in zip(
            resolved.sample_ids, base.meta.forgotten.contains_samples(resolved.sample_ids, key), strict=True
        )
        if not ok
    ]
    if missing:
        raise CheckpointError(
            f"baseline {path} was trained with {len(missing)} of the forget samples, e.g. {missing[0]}"
        )
    return base.build_model(device), base.sha256


def unlearn(
    checkpoint: str | Path,
    request: DeletionRequest,
    method: str,
    out: str | Path,
    params: dict[str, Any] | None = None,
    report_path: str | Path | None = None,
    baseline: str = "retrain",
    data_root: str | Path | None = None,
    manifest: str | Path | None = None,
    device: str = "auto",
    seed: int = 0,
    fn_cost: float = 5.0,
    fp_cost: float = 1.0,
    thresholds: Thresholds | None = None,
    force: bool = False,
    key: bytes | None = None,
    allow_class_removal: bool = False,
    show_progress: bool = True,
    ledger: str | Path | None = None,
    html_path: str | Path | None = None,
    tuning: TuningRecord | None = None,
) -> UnlearnReport:
    """Remove ``request`` from ``checkpoint`` with ``method``; write the new checkpoint and report.

    ``html_path`` also writes the report as one self-contained HTML page for non-specialist readers
    (:func:`medforget.html.render_unlearn_html`), atomically with the other outputs. ``tuning`` is the
    record of how the parameters were tuned (``medforget tune``); the report then states what tuning
    cost and after how many requests it pays for itself. Returns the
    report; the caller decides the exit code from ``report.verdict.status``.
    """
    out = Path(out)
    report_file = Path(report_path) if report_path else None
    html_file = Path(html_path) if html_path else None
    check_writable(out, force)
    if report_file:
        check_writable(report_file, force)
    if html_file:
        check_writable(html_file, force)
    if report_file and report_file.resolve() == out.resolve():
        raise MedforgetError("--out and --report must be different files")
    if html_file and html_file.resolve() in {out.resolve(), *([report_file.resolve()] if report_file else [])}:
        raise MedforgetError("the HTML report must be a different file from --out and --report")
    if ledger is not None:
        check_ledger(ledger, key)
    spec = get_method(method)
    parsed = spec.parse_params(params)
    thresholds = thresholds or Thresholds()
    ckpt = load_checkpoint(checkpoint, key=key)
    if out.exists() and out.resolve() == Path(checkpoint).resolve():
        raise MedforgetError("refusing to overwrite the input checkpoint; choose another --out")
    dataset = load_from_spec(ckpt.meta.dataset.spec, data_root, manifest)
    check_dataset(ckpt, dataset)
    resolved = resolve(request, dataset, ckpt.meta.forgotten, key, allow_class_removal)
    for w in resolved.warnings:
        stderr.print(f"[yellow]warning:[/] {w}")
    hasher = _hasher(ckpt, key)
    dev = resolve_device(device)
    forget = dataset.train.subset(resolved.forget_rows)
    retain = dataset.train.subset(resolved.retain_rows)
    original = ckpt.build_model(dev)
    task = UnlearnTask(
        copy.deepcopy(original), forget, retain, dataset, ckpt.meta.train_config, dev, seed, show_progress
    )

    stderr.print(f"unlearning {len(forget)} samples ({len(resolved.patient_ids)} patients) with {method} on {dev}")
    retrain_model, retrain_seconds, source, base_sha = None, None, "none", None
    if method == "retrain" and parsed == spec.params():
        # Exact unlearning with the recorded recipe *is* the baseline: train (or reuse) it once.
        model, retrain_seconds, source, base_sha = retrain_baseline(ckpt, task, hasher, resolved)
        method_seconds = retrain_seconds or 0.0
        if baseline == "retrain":
            retrain_model, baseline = model, "done"
    else:
        start = time.perf_counter()
        model = spec(task, parsed)
        method_seconds = time.perf_counter() - start

    if baseline == "retrain":
        base_task = UnlearnTask(
            copy.deepcopy(original), forget, retain, dataset, ckpt.meta.train_config, dev, seed, show_progress
        )
        retrain_model, retrain_seconds, source, base_sha = retrain_baseline(ckpt, base_task, hasher, resolved)
    elif baseline not in ("none", "done"):
        retrain_model, base_sha = _given_baseline(Path(baseline), ckpt, resolved, key, dev)
        source = str(baseline)

    sets = {"retain": retain, "forget": forget, "test": dataset.test}
    memo_base = (hashlib.sha256("\n".join(forget.sample_ids).encode()).hexdigest(), fn_cost, fp_cost, seed)
    evals = {
        name: _evaluate_memo(sha, m, sets, dataset, dev, memo_base) if m is not None else None
        for name, m, sha in (
            ("original", original, ckpt.sha256),
            ("unlearned", model, None),
            ("retrain", retrain_model, base_sha),
        )
    }
    unlearned_eval = evals["unlearned"]
    assert unlearned_eval is not None and evals["original"] is not None
    gaps, avg = compute_gaps(unlearned_eval, evals["retrain"])
    verdict = judge(unlearned_eval, evals["retrain"], thresholds)
    analysis, gap_intervals = build_analysis(
        evals["original"],
        unlearned_eval,
        evals["retrain"],
        {"forget": forget.attributes, "test": dataset.test.attributes},
        dataset.positive,
        seed,
    )
    gaps, verdict = attach_intervals(gaps, verdict, gap_intervals)

    test_metrics = {"test_accuracy": unlearned_eval.test.accuracy or 0.0}
    if unlearned_eval.test.fnr is not None:
        test_metrics["test_fnr"] = unlearned_eval.test.fnr
    meta = derived_meta(ckpt, hasher, resolved, method, parsed.model_dump(), method_seconds, test_metrics)
    data = checkpoint_bytes(model, meta, key)
    out_sha = hashlib.sha256(data).hexdigest()
    req = resolved.request
    report = UnlearnReport(
        method=method,
        params=parsed.model_dump(),
        request=RequestSummary(
            request_id=req.request_id,
            received_at=req.received_at,
            reason=req.reason,
            n_samples=len(resolved.sample_ids),
            n_patients=len(resolved.patient_ids),
            counts=resolved.counts,
            previously_forgotten=resolved.previously_forgotten,
            warnings=resolved.warnings,
        ),
        classes=dataset.classes,
        positive=[dataset.classes[i] for i in dataset.positive],
        fn_cost=fn_cost,
        fp_cost=fp_cost,
        original=evals["original"],
        unlearned=unlearned_eval,
        retrain=evals["retrain"],
        gaps=gaps,
        average_gap=avg,
        thresholds=thresholds,
        verdict=verdict,
        cost=Cost(
            method_seconds=round(method_seconds, 3),
            retrain_seconds=None if retrain_seconds is None else round(retrain_seconds, 3),
            speedup=round(retrain_seconds / method_seconds, 2) if retrain_seconds and method_seconds else None,
            baseline_source=source,
            tuning_seconds=tuning.tuning_seconds if tuning is not None else None,
            tuning_break_even_requests=tuning.break_even_requests if tuning is not None else None,
        ),
        provenance=Provenance(
            dataset=dataset.name,
            dataset_fingerprint=ckpt.meta.dataset.fingerprint,
            input_checkpoint=str(checkpoint),
            input_sha256=ckpt.sha256,
            output_checkpoint=str(out),
            output_sha256=out_sha,
            baseline_sha256=base_sha,
            seed=seed,
            device=str(dev),
        ),
        analysis=analysis,
    )
    report_text = report.model_dump_json(indent=2)
    html_text = None
    if html_file:
        from medforget.html import render_unlearn_html  # matplotlib is imported only when a page is wanted

        html_text = render_unlearn_html(report)  # before any write: a rendering error leaves nothing behind
    with contextlib.ExitStack() as outputs:  # nothing moves into place unless every file was written
        outputs.enter_context(atomic_path(out, force)).write_bytes(data)
        if report_file:
            outputs.enter_context(atomic_path(report_file, force)).write_text(report_text)
        seq = None
        if ledger is not None:  # last step before the outputs move into place: a refused append leaves nothing
            from medforget import ledger as ledger_mod

            seq = ledger_mod.append(
                ledger,
                key=key,
                entry_type="unlearn",
                request_id=req.request_id,
                sample_ids=resolved.sample_ids,
                patient_ids=resolved.patient_ids,
                method=method,
                params=report.params,
                input_sha256=ckpt.sha256,
                output_sha256=out_sha,
                report_sha256=hashlib.sha256(report_text.encode()).hexdigest(),
            ).seq
            stderr.print(f"ledger: appended entry {seq} to {ledger}")
            if html_file:
                html_text = render_unlearn_html(report, ledger_entry=seq)
        if html_file and html_text is not None:
            outputs.enter_context(atomic_path(html_file, force)).write_text(html_text, encoding="utf-8")
    return report


def check_ledger(ledger: str | Path, key: bytes | None) -> None:
    """Fail before any work if the ledger cannot be appended to (no key, no folder)."""
    if key is None:
        raise MedforgetError(
            "--ledger needs a secret key ($MEDFORGET_KEY or --key-file): the ledger refuses to store patient IDs "
            "in clear; create one with 'medforget key new > medforget.key'"
        )
    if not Path(ledger).parent.is_dir():
        raise MedforgetError(f"ledger folder {Path(ledger).parent} does not exist")
