"""``medforget audit``: run the checks an auditor asked for, with what the auditor has."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from medforget.audit.checks import (
    audit_verdict,
    integrity_check,
    lineage_check,
    lira_check,
    population_check,
    request_check,
)
from medforget.audit.coverage import check_request
from medforget.audit.integrity import check_integrity
from medforget.audit.lira import lira_audit
from medforget.audit.membership import population_audit
from medforget.audit.report import (
    AuditCheck,
    AuditReport,
    AuditSettings,
    LiraAudit,
    PopulationAudit,
    RequestCoverage,
    sample_namer,
)
from medforget.checkpoint import LoadedCheckpoint
from medforget.config import AuditOptions
from medforget.data import DataPaths
from medforget.errors import MedforgetError
from medforget.keys import key_id
from medforget.ledger.lineage import LineageResult, check_lineage
from medforget.models import list_models
from medforget.request import DeletionRequest
from medforget.session import Task, open_task

log = logging.getLogger(__name__)


def _validate(o: AuditOptions, request: DeletionRequest | None, ledger: Path | None) -> None:
    if o.deep < 0 or o.deep == 1:
        raise MedforgetError(
            f"--deep needs at least 2 shadow models (some with, some without each sample), got {o.deep}"
        )
    if o.deep and (request is None or not o.mia):
        raise MedforgetError("--deep runs a membership attack on the requested samples: it needs --request and data")
    if o.shadow_arch is not None and o.shadow_arch not in list_models():
        raise MedforgetError(f"unknown --shadow-arch {o.shadow_arch!r}; available: {', '.join(list_models())}")
    if ledger is not None and not Path(ledger).is_file():
        raise MedforgetError(f"ledger {ledger} not found")


def _membership(task: Task, o: AuditOptions) -> _Membership:
    """The population attack and, with ``deep``, LiRA or U-LiRA on the requested samples."""
    model = task.original()  # the audited checkpoint's own weights
    found = _Membership(device=str(task.device))
    name = sample_namer(task.key, o.show_ids)
    if len(task.dataset.test) < 4:
        summary = "fewer than 4 test samples to compare with"
        found.checks.append(AuditCheck(name="membership (population)", status="skipped", summary=summary))
    else:
        log.info("membership inference on %d requested samples (%s)", len(task.forget), task.device)
        found.population = population_audit(
            model, task.retain, task.forget, task.dataset.test, task.device, o.seed, name
        )
        found.checks.append(population_check(found.population, o.mia_tolerance, o.alpha))
    if o.deep:
        found.lira = lira_audit(model, task, o)
        found.checks.append(lira_check(found.lira, o.mia_tolerance, o.alpha))
    else:
        found.checks.append(AuditCheck(name="membership (LiRA)", status="skipped", summary="no --deep given"))
    return found


@dataclass
class _Membership:
    device: str
    checks: list[AuditCheck] = field(default_factory=list)
    population: PopulationAudit | None = None
    lira: LiraAudit | None = None


def audit(
    checkpoint: str | Path,
    options: AuditOptions | None = None,
    *,
    key: bytes | None = None,
    ledger: str | Path | None = None,
    request: DeletionRequest | None = None,
    data: DataPaths | None = None,
) -> AuditReport:
    """Audit ``checkpoint``: integrity always; lineage with ``ledger``; the request with ``request``.

    With ``request`` and ``options.mia`` (the default) the data is loaded (``data``, fingerprint
    checked) and the population attack runs on the requested samples; ``options.deep`` N >= 2 adds a
    LiRA attack with N shadow models. Writes nothing. The caller decides the exit code from
    ``report.verdict.status``; bad input raises :class:`MedforgetError` before any slow work.

    The membership verdicts follow :mod:`medforget.audit.checks`.
    """
    start = time.perf_counter()
    o = options or AuditOptions()
    ledger = Path(ledger) if ledger is not None else None
    _validate(o, request, ledger)
    settings = AuditSettings(**o.model_dump(exclude={"mia"}), key_id=key_id(key) if key else None)
    settings.device = None
    integrity, ck = check_integrity(checkpoint, key)
    checks = [integrity_check(integrity)]
    lineage = coverage = None
    member = _Membership(device="")
    if not integrity.ok or ck is None:
        why = "the file does not verify, so nothing read from it can be trusted"
        checks += [AuditCheck(name=n, status="skipped", summary=why) for n in LATER]
    else:
        found = _trusted(ck, o, key, ledger, request, data)
        lineage, coverage, member = found.lineage, found.coverage, found.member
        checks += found.checks
        settings.device = member.device or None
    return AuditReport(
        checkpoint=str(checkpoint),
        sha256=integrity.sha256,
        dataset=ck.meta.dataset.spec.name if ck else None,
        verdict=audit_verdict(checks),
        checks=checks,
        integrity=integrity,
        lineage=lineage,
        request=coverage,
        population_mia=member.population,
        lira=member.lira,
        settings=settings,
        seconds=round(time.perf_counter() - start, 2),
    )


@dataclass
class _Found:
    checks: list[AuditCheck]
    lineage: LineageResult | None
    coverage: RequestCoverage | None
    member: _Membership


def _trusted(
    ck: LoadedCheckpoint,
    o: AuditOptions,
    key: bytes | None,
    ledger: Path | None,
    request: DeletionRequest | None,
    data: DataPaths | None,
) -> _Found:
    """The checks that read a verified checkpoint; everything that can reject the input runs before the slow parts."""
    task = None
    if request is not None and o.mia:
        task = open_task(ck, request, data, o.device, key, allow_class_removal=True, show_ids=o.show_ids)
    coverage = None
    if request is not None:
        coverage = check_request(request, ck, key, task.resolved.sample_ids if task else None, o.show_ids)
    lineage = check_lineage(ledger, ck, key) if ledger is not None else None
    checks = [
        lineage_check(lineage) if lineage else _skipped("lineage", "no --ledger given"),
        request_check(coverage) if coverage else _skipped("request", "no --request given"),
    ]
    member = _Membership(device="")
    if task is not None:
        member = _membership(task, o)
        checks += member.checks
    else:
        why = "no --request given" if request is None else "--no-mia"
        checks += [_skipped(n, why) for n in LATER[2:]]
    return _Found(checks, lineage, coverage, member)


LATER = ["lineage", "request", "membership (population)", "membership (LiRA)"]


def _skipped(name: str, why: str) -> AuditCheck:
    return AuditCheck(name=name, status="skipped", summary=why)
