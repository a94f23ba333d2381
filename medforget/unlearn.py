"""``medforget unlearn``: honour a deletion request, verify it against retraining, write the outputs.

The path of a request, top to bottom (one room per step):

1. :func:`unlearn` checks every output path against every input before any work
   (:func:`medforget.fileio.check_outputs`), and that the ledger can be appended to;
2. :func:`medforget.session.open_task` loads and verifies the checkpoint, rebuilds its data and
   resolves the request to forget and retain sets;
3. :func:`run_unlearning` runs the method (:mod:`medforget.methods`), obtains the retrain baseline
   (:mod:`medforget.baseline`), evaluates every model (:mod:`medforget.evaluation`) and judges
   (:mod:`medforget.verify`); it computes and writes nothing;
4. :func:`write_outputs` writes the checkpoint and the JSON report atomically, *then* appends the
   ledger entry, then renders the HTML page (:mod:`medforget.render`): the ledger never records an
   erasure whose output is not complete and in place.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from pydantic import BaseModel
from torch import nn

from medforget import outputs as recorded
from medforget.baseline import Retrain, retrain_distribution, retrain_seeds, train_or_load
from medforget.checkpoint import (
    CheckpointMeta,
    LoadedCheckpoint,
    UnlearningRecord,
    checkpoint_bytes,
    load_checkpoint,
)
from medforget.config import UnlearnSettings
from medforget.data import DataPaths
from medforget.engine import predict
from medforget.errors import CheckpointError, MedforgetError
from medforget.fileio import check_outputs, commit, fault_point, interrupts_deferred, staged
from medforget.keys import IdHasher
from medforget.methods import get_method
from medforget.recalibrate import recalibrate, warn_if_unguaranteed
from medforget.request import DeletionRequest
from medforget.session import Task, open_task
from medforget.verification import MethodRun, verify
from medforget.verify.report import UnlearnReport

if TYPE_CHECKING:
    from medforget.tune import TuningRecord

log = logging.getLogger(__name__)


class Outputs(BaseModel):
    """Where ``unlearn`` writes: the checkpoint, the JSON report, the HTML page and the ledger entry."""

    checkpoint: Path
    report: Path | None = None
    html: Path | None = None
    ledger: Path | None = None
    force: bool = False


@dataclass
class UnlearnResult:
    """What :func:`run_unlearning` computed: the unlearned model, its record and the report (not yet written)."""

    model: nn.Module
    meta: CheckpointMeta
    report: UnlearnReport
    request_sample_ids: list[str] = field(default_factory=list)
    request_patient_ids: list[str] = field(default_factory=list)
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)  # the model's logits, recorded with it


# --------------------------------------------------------------------------- the method and the baseline


def _hasher(ckpt: LoadedCheckpoint, key: bytes | None) -> IdHasher:
    """Keep using the checkpoint's key (or salt) so its forgotten set stays one comparable list."""
    prev = ckpt.meta.forgotten
    return prev.hasher(key) if prev.sample_hashes else IdHasher(key)


def _input_signature(task: Task) -> str:
    if task.checkpoint.signature_verified:
        return "verified"
    return "not checked (no key)" if task.key is None else "unsigned, accepted"


def require_signed(task: Task, accept_unsigned: bool) -> None:
    """With a key, an input without a verified signature is refused unless explicitly accepted.

    Without a signature nothing shows the hospital wrote the file: anyone could have edited its forgotten
    set (bringing earlier deletions back) and recomputed its hashes, and signing the output would launder it.
    """
    if task.key is not None and not task.checkpoint.signature_verified and not accept_unsigned:
        raise CheckpointError(
            f"{task.checkpoint.path} is not signed, so nothing shows it is the model the hospital wrote (its record "
            "could have been edited); pass --accept-unsigned to use it anyway (recorded in the output)"
        )


def derived_meta(task: Task, hasher: IdHasher, method: str, params: dict[str, Any], seconds: float) -> CheckpointMeta:
    """The child checkpoint's record: same model and data, one more deletion, lineage to the parent."""
    meta, resolved = task.checkpoint.meta, task.resolved
    keep = {"arch", "num_classes", "in_channels", "image_size", "classes", "positive", "dataset", "train_config"}
    return CheckpointMeta(
        **meta.model_dump(include=keep),
        forgotten=hasher.record(resolved.sample_ids, resolved.patient_ids, meta.forgotten),
        parent_sha256=task.checkpoint.sha256,
        unlearning=UnlearningRecord(
            method=method,
            params=params,
            request_ref=hasher.request_ref(resolved.request.request_id),
            n_forgotten_samples=len(resolved.sample_ids),
            n_forgotten_patients=len(resolved.patient_ids),
            seconds=round(seconds, 3),
            input_signature=_input_signature(task),
        ),
    )


def given_baseline(path: Path, task: Task) -> Retrain:
    """A retrained checkpoint supplied by the user: it must come from the same data and never have seen
    the forget set (its own record must list every forget sample as removed by retraining)."""
    base = load_checkpoint(path)
    ckpt = task.checkpoint
    if base.meta.dataset.fingerprint != ckpt.meta.dataset.fingerprint:
        raise CheckpointError(f"baseline {path} was trained on different data than {ckpt.path}")
    if base.meta.unlearning is None or base.meta.unlearning.method != "retrain":
        raise CheckpointError(f"baseline {path} is not a retrained model (its record shows no retrain)")
    ids = task.resolved.sample_ids
    seen = [s for s, ok in zip(ids, base.meta.forgotten.contains_samples(ids, task.key), strict=True) if not ok]
    if seen:
        raise CheckpointError(f"baseline {path} was trained with {len(seen)} of the forget samples")
    return Retrain(base.meta.train_config.seed, base.build_model(task.device), None, True, base.sha256)


def _run_method(task: Task, settings: UnlearnSettings) -> MethodRun:
    """Run the method on a copy of the original: its model, validated parameters, seconds and stopping record
    (the baseline and recalibration are added to the run later).

    Exact retraining with the recorded recipe (any seed) goes through the retrain cache, so running it twice,
    or running it with a seed the baseline also uses, trains once.
    """
    spec = get_method(settings.method)
    parsed = spec.parse_params(settings.params, settings.preset)
    if settings.method == "retrain" and parsed.epochs is None:
        recipe = task.checkpoint.meta.train_config
        seed = recipe.seed if parsed.seed is None else parsed.seed
        exact = train_or_load(task.dataset, recipe, task.retain, seed, task.device)
        return MethodRun(exact.model, parsed.model_dump(), exact.seconds or 0.0)
    method_task = task.method_task(settings.seed, _calibrated_auc(task, settings, parsed))
    start = time.perf_counter()
    model = spec(method_task, parsed)
    return MethodRun(model, parsed.model_dump(), time.perf_counter() - start, stopping=method_task.stopping)


def _calibrated_auc(task: Task, settings: UnlearnSettings, parsed: Any) -> float | None:
    """The stopping target a calibration gives (``stop_target="calibrated"``); None when the method does not ask
    or no calibration was given (the stopping rule then refuses; ``unlearn`` already did, at its boundary)."""
    if getattr(parsed, "stop_target", "fixed") != "calibrated" or settings.calibration is None:
        return None
    from medforget.calibrate import check_fits, read_calibration, stop_auc_target

    cal = read_calibration(settings.calibration)
    check_fits(cal, task, len(task.forget) / len(task.dataset.train))  # refuses a calibration of other data
    return stop_auc_target(cal)


def _baseline(task: Task, settings: UnlearnSettings) -> tuple[list[Retrain], str]:
    """The retrain distribution and where it came from (``none``, a path, or how many were trained now)."""
    if settings.baseline == "none":
        return [], "none"
    if settings.baseline == "calibrated":
        return [], f"calibrated ({settings.calibration})"
    if settings.baseline != "retrain":
        return [given_baseline(Path(settings.baseline), task)], settings.baseline
    recipe = task.checkpoint.meta.train_config
    seeds = retrain_seeds(recipe.seed, settings.retrains)
    retrains = retrain_distribution(task.dataset, recipe, task.retain_set(), seeds, task.device, settings.workers)
    fresh = sum(not r.cached for r in retrains)
    return retrains, f"{len(retrains)} retrains ({fresh} trained now, {len(retrains) - fresh} from the cache)"


# --------------------------------------------------------------------------- the whole computation


def run_unlearning(task: Task, settings: UnlearnSettings, tuning: TuningRecord | None = None) -> UnlearnResult:
    """Apply ``settings.method`` to ``task`` and verify it against retraining. Computes; writes nothing.

    Args:
        task: the opened request (:func:`medforget.session.open_task`).
        settings: the method, its parameters and seed, the baseline, costs and verdict tolerances.
        tuning: how the parameters were tuned (``medforget tune``), repeated in the report's cost section.

    Returns:
        The unlearned model, its checkpoint record and the report (output paths and hashes are filled
        in by :func:`write_outputs`).
    """
    resolved = task.resolved
    log.info(
        "unlearning %d samples (%d patients) with %s on %s",
        len(task.forget),
        len(resolved.patient_ids),
        settings.method,
        task.device,
    )
    run = _run_method(task, settings)
    if settings.recalibrate:  # a step of its own: the threshold the deployed model will use
        run.recalibration = recalibrate(
            run.model, task.dataset.val, task.dataset.positive, task.target_sensitivity(), task.device
        )
        warn_if_unguaranteed(run.recalibration)
    run.logits = {name: predict(run.model, split, task.device) for name, split in task.eval_sets().items()}
    run.retrains, run.source = _baseline(task, settings)
    report = verify(task, settings, run, tuning)
    meta = derived_meta(task, _hasher(task.checkpoint, task.key), settings.method, run.params, run.seconds)
    meta.operating_point = run.recalibration
    meta.metrics = {"test_accuracy": report.unlearned.test.accuracy or 0.0}
    if report.unlearned.test.fnr is not None:
        meta.metrics["test_fnr"] = report.unlearned.test.fnr
    outputs = recorded.of_unlearned(len(task.dataset.train), resolved.retain_rows, run.logits)
    return UnlearnResult(run.model, meta, report, resolved.sample_ids, resolved.patient_ids, outputs)


# --------------------------------------------------------------------------- writing


def write_outputs(result: UnlearnResult, outputs: Outputs, key: bytes | None) -> UnlearnReport:
    """Write the checkpoint and report, then record them in the ledger, then render the HTML page.

    The order is the guarantee: the ledger entry is appended only once both files are complete and in
    place, so a crash at any point leaves either no claim or a true one; an output without its entry is
    found by ``medforget audit`` and can be recorded with ``medforget ledger record``.

    Returns:
        The report as written (with the output's path and hash).
    """
    data = checkpoint_bytes(result.model, result.meta, key, result.outputs)
    out_sha = hashlib.sha256(data).hexdigest()
    prov = result.report.provenance.model_copy(
        update={"output_checkpoint": str(outputs.checkpoint), "output_sha256": out_sha}
    )
    report = result.report.model_copy(update={"provenance": prov})
    report_text = report.model_dump_json(indent=2)
    files = {outputs.checkpoint: data}
    if outputs.report is not None:
        files[outputs.report] = report_text.encode()
    page = None
    if outputs.html is not None:  # rendered before anything is written: a rendering error leaves nothing behind
        from medforget.render.html import LEDGER_PLACEHOLDER, render_unlearn_html  # matplotlib only when needed

        page = render_unlearn_html(report, ledger_entry=LEDGER_PLACEHOLDER)
    fault_point("before-outputs")
    with staged(files, outputs.force) as ready, interrupts_deferred():
        # From here until the entry is appended, Ctrl-C and SIGTERM wait: the outputs and the record of them
        # land together. kill -9 cannot be held; it leaves outputs without an entry, which audit reports and
        # ``medforget ledger record`` repairs, but never an entry without its outputs.
        ready.publish()
        fault_point("outputs-in-place")
        seq = _record(result, report, report_text, out_sha, outputs, key)
    fault_point("ledger-written")
    if outputs.html is not None and page is not None:
        # The page names its ledger entry, known only now; the entry itself covers the JSON report, not the page.
        position = str(seq) if seq is not None else "not recorded in a ledger"
        commit({outputs.html: page.replace(LEDGER_PLACEHOLDER, position).encode("utf-8")}, outputs.force)
    return report


def _record(
    result: UnlearnResult, report: UnlearnReport, report_text: str, out_sha: str, outputs: Outputs, key: bytes | None
) -> int | None:
    """Append the run's ledger entry (if a ledger was given); returns its position."""
    if outputs.ledger is None:
        return None
    from medforget import ledger

    content = ledger.EntryContent(
        entry_type="unlearn",
        request_id=report.request.request_id,
        sample_ids=result.request_sample_ids,
        patient_ids=result.request_patient_ids,
        method=report.method,
        params=report.params,
        operating_point=report.recalibration.model_dump() if report.recalibration else None,
        input_sha256=report.provenance.input_sha256,
        output_sha256=out_sha,
        report_sha256=hashlib.sha256(report_text.encode()).hexdigest(),
    )
    entry = ledger.append(outputs.ledger, key=key, content=content)
    log.info("ledger: appended entry %d to %s", entry.seq, outputs.ledger)
    return entry.seq


def unlearn(
    checkpoint: str | Path,
    request: DeletionRequest,
    settings: UnlearnSettings,
    outputs: Outputs,
    *,
    data: DataPaths | None = None,
    key: bytes | None = None,
    tuning: TuningRecord | None = None,
) -> UnlearnReport:
    """Remove ``request`` from ``checkpoint`` and write the unlearned checkpoint, report, page and ledger entry.

    Everything that can refuse the job (an output path that exists or would overwrite an input, a ledger
    that cannot be appended to, a bad checkpoint, unknown IDs, bad method parameters) refuses before
    any training. Returns the report; the caller decides the exit code from ``report.verdict.status``.
    """
    from medforget import ledger

    data = data or DataPaths()
    inputs = {"the input checkpoint": Path(checkpoint), "the manifest": data.manifest, "the ledger": outputs.ledger}
    if outputs.ledger is not None:
        inputs["the ledger's lock file"] = ledger.lock_path(Path(outputs.ledger))
        ledger.check_appendable(outputs.ledger, key)
    if settings.baseline == "calibrated" and settings.calibration is None:
        raise MedforgetError("--baseline calibrated needs --calibration FILE (written by 'medforget calibrate')")
    if settings.calibration is not None:
        inputs["the calibration"] = settings.calibration
    if settings.baseline not in ("retrain", "none", "calibrated"):
        inputs["the baseline checkpoint"] = Path(settings.baseline)
    if settings.baseline == "retrain" and settings.retrains < 3:
        log.warning(
            "with %d retrain(s) the verdict cannot pass: the noise floor needs 2 and the per-sample evidence 3",
            settings.retrains,
        )
    check_outputs(
        {"--out": outputs.checkpoint, "--report": outputs.report, "--html": outputs.html}, inputs, outputs.force
    )
    params = get_method(settings.method).parse_params(settings.params, settings.preset)  # bad parameters fail first
    if getattr(params, "stop_target", "fixed") == "calibrated" and settings.calibration is None:
        raise MedforgetError("stop_target 'calibrated' needs --calibration FILE (written by 'medforget calibrate')")
    if key is None:
        log.warning(
            "no key ($MEDFORGET_KEY or --key-file): forgotten IDs are stored as salted hashes, "
            "which anyone can test guesses against"
        )
    task = open_task(checkpoint, request, data, settings.device, key, settings.allow_class_removal, settings.show_ids)
    require_signed(task, settings.accept_unsigned)
    result = run_unlearning(task, settings, tuning)
    return write_outputs(result, outputs, key)


__all__ = ["Outputs", "UnlearnResult", "derived_meta", "run_unlearning", "unlearn", "write_outputs"]
