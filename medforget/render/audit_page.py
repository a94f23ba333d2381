"""What the audit page shows, read from an audit report as plain data for its template.

Requested images are named only as the report names them (``sample``: a keyed digest or a position,
unless the audit was run with ``--show-ids``), so the page never adds an identifier the report left out.
Both membership attacks are read two-sided: requested images that look *less* used than images the
model never saw stand out just as much as images that still look used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from medforget.render.figures import data_uri, plot_member_scores
from medforget.render.pages import Fact

if TYPE_CHECKING:
    from medforget.audit.report import AuditReport

Direction = Literal["same", "used", "unused"]

MOST_MEMBER_LIKE = 10
"""Requested images listed by how used they look to the attack."""

AUDIT_PLAIN: dict[str, str] = {
    "pass": "Every check that was run passed. A passed membership test means the attack found no trace of the "
    "requested images, not proof that none exists.",
    "fail": "At least one check failed: the table below says which, and why.",
    "inconclusive": "Nothing failed, but a membership test saw a difference that this few images can neither "
    "confirm nor rule out.",
}
"""The audit verdict, by status, in one plain sentence (the technical summary follows it)."""

ATTACK_TEXT: dict[str, str] = {
    "LiRA": "Shadow models were trained, some with and some without each requested image, to learn how sure a "
    "model is of an image it was trained on and of one it never saw; the audited model is compared with both.",
    "U-LiRA": "Shadow models were trained with the requested images and then had them erased by the same method, "
    "and are compared with shadow models that never saw them: the attack looks for exactly the trace this "
    "method of erasure leaves.",
}


@dataclass(frozen=True)
class MemberLike:
    """One requested image and how used it looks to the attack (as the report names it)."""

    sample: str
    score: float
    is_lr: bool  # LiRA likelihood ratio (> 1: looks used); else a membership probability (>= 0.5: looks used)


def direction(member_gap: float, tolerance: float) -> Direction:
    """Which way the requested images differ from unseen ones; ``member_gap`` > 0: they look more used.

    Args:
        member_gap: how much more often the requested images look used than unseen images (a rate difference).
        tolerance: the audit's membership tolerance.

    Returns:
        ``same`` within the tolerance, else ``used`` or ``unused``.
    """
    if abs(member_gap) <= tolerance:
        return "same"
    return "used" if member_gap > 0 else "unused"


def most_member_like(report: AuditReport, n: int = MOST_MEMBER_LIKE) -> list[MemberLike]:
    """The requested images that look most used to the strongest attack run (LiRA if run, else the population).

    Args:
        report: the audit report.
        n: how many to list.

    Returns:
        Up to ``n`` images, most used-looking first.
    """
    if report.lira is not None and report.lira.requested:
        ranked = sorted(report.lira.requested, key=lambda s: s.log_lr, reverse=True)[:n]
        return [MemberLike(s.sample, s.lr, True) for s in ranked]
    if report.population_mia is not None:
        scores = sorted(report.population_mia.requested, key=lambda s: s.member_score, reverse=True)[:n]
        return [MemberLike(s.sample, s.member_score, False) for s in scores]
    return []


def audit_facts(report: AuditReport) -> list[Fact]:
    """The provenance table of the audit page (every value monospaced).

    Args:
        report: the audit report.

    Returns:
        One fact per row.
    """
    integ = report.integrity
    signature = "verified" if integ.signature_verified else "present, not checked" if integ.signed else "none"
    request = report.request.request if report.request is not None else None
    rows = [
        ("File", report.checkpoint),
        ("SHA-256", report.sha256),
        ("Weights hash", integ.weights_sha256 or "—"),
        ("Signature", signature),
        ("Dataset", report.dataset or "—"),
        ("Request", request or "—"),
        ("Audited", f"{report.created_at} by medforget {report.medforget_version} in {report.seconds:.0f} s"),
    ]
    return [Fact(k, v, mono=True) for k, v in rows]


def audit_membership_figure(report: AuditReport) -> str | None:
    """The histogram of the requested images' membership scores, or None without a population attack."""
    pop = report.population_mia
    if pop is None or not pop.requested:
        return None
    return data_uri(plot_member_scores([s.member_score for s in pop.requested]))


@dataclass(frozen=True)
class AuditView:
    """Everything the audit template shows beyond the report itself."""

    plain: str
    population_direction: Direction | None
    lira_direction: Direction | None
    attack_text: str
    most_member_like: list[MemberLike]
    figure: str | None
    facts: list[Fact]


def audit_view(report: AuditReport) -> AuditView:
    """What the audit page shows, read from the report.

    Args:
        report: the audit report.

    Returns:
        The view for the template.
    """
    tol = report.settings.mia_tolerance
    pop, lira = report.population_mia, report.lira
    return AuditView(
        plain=AUDIT_PLAIN.get(report.verdict.status, ""),
        # population gap: reference - requested non-member rate, so > 0 means the requested look more used
        population_direction=direction(pop.gap, tol) if pop is not None else None,
        # LiRA gap: requested - reference share with LR > 1, so > 0 means the requested look more used
        lira_direction=direction(lira.gap, tol) if lira is not None else None,
        attack_text=ATTACK_TEXT.get(lira.attack, "") if lira is not None else "",
        most_member_like=most_member_like(report),
        figure=audit_membership_figure(report),
        facts=audit_facts(report),
    )


__all__ = [
    "ATTACK_TEXT",
    "AUDIT_PLAIN",
    "AuditView",
    "MemberLike",
    "audit_facts",
    "audit_membership_figure",
    "audit_view",
    "direction",
    "most_member_like",
]
