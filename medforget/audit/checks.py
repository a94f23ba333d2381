"""Each audit result as one check row, and the verdict over them.

Membership verdicts (the same rule for both attacks, because both reduce to a rate):

* population: gap = (held-out test non-member rate) - (requested non-member rate);
* LiRA: gap = (fraction of requested with LR > 1) - (fraction of test references with LR > 1).

Each passes when |gap| <= ``mia_tolerance`` (0.10: requested samples may look like members, or
like non-members, at most 10 points more often than true non-members). Beyond it, either way, the
check fails only if a two-sided Fisher exact test on the 2x2 counts gives p < ``alpha`` (0.05),
and is "inconclusive" otherwise: requested samples that look unseen far *more* often than unseen
data are over-forgotten, which tells an observer who was deleted. Why both: with k requested
samples a rate moves in steps of 1/k and has a standard error near 0.5/sqrt(k) (0.5 for a
single patient, 0.07 for 50 samples), so a tolerance alone would fail small requests on noise;
a test alone would fail large requests on differences too small to matter. A single requested sample fails only if the
attack calls it a member while calling almost no true non-member one (p = (m+1)/(n+1) for m
of n references called members: with 78 references, m <= 2); otherwise one attack decision
is at most inconclusive, which is all it can honestly show. A pass means the attack found no
evidence of membership, not proof of absence: read it with the attack's AUC (near 0.5, the
attack could not see members anyway). Mean LRs and the LiRA AUC of requested vs references are
reported but not judged: one extreme sample dominates a mean, and the AUC has no tolerance a
user could reason about in the same units as the population check.
"""

from __future__ import annotations

from medforget.audit.report import (
    AuditCheck,
    AuditVerdict,
    CheckStatus,
    IntegrityResult,
    LiraAudit,
    PopulationAudit,
    RequestCoverage,
)
from medforget.ledger.lineage import LineageResult


def judge_gap(gap: float, p_value: float, tolerance: float, alpha: float) -> CheckStatus:
    """Two-sided: pass within ``tolerance`` either way; beyond it fail only if significant at ``alpha``, else
    inconclusive. Requested samples that look far *less* member-like than unseen data fail too: that
    over-forgetting tells any observer which patients were deleted."""
    if abs(gap) <= tolerance:
        return "pass"
    return "fail" if p_value < alpha else "inconclusive"


def integrity_check(res: IntegrityResult) -> AuditCheck:
    if not res.ok:
        return AuditCheck(name="integrity", status="fail", summary=f"does not verify: {res.error}")
    how = "weights and metadata hashes verified, safetensors with no extra payload"
    if res.signature_verified:
        how += f", signature verified (key id {res.signature_key_id})"
    elif res.notes:
        how += f"; {res.notes[0]}"
    return AuditCheck(name="integrity", status="pass", summary=how)


def lineage_check(res: LineageResult) -> AuditCheck:
    chain = " <- ".join(f"#{lk.seq} {lk.method or lk.entry_type}" for lk in res.chain) or "no chain"
    if res.ok:
        macs = "" if res.macs_checked else " (MACs not checked: no key)"
        return AuditCheck(
            name="lineage",
            status="pass",
            summary=f"{len(res.chain)} ledger entries from this checkpoint back to its training run, every link "
            f"consistent, ledger intact{macs}: {chain}",
        )
    reasons = [p.message for p in res.ledger_problems][:2]
    reasons += res.problems
    reasons += [f"entry {lk.seq}: {p}" for lk in res.chain for p in lk.problems]
    if not res.complete and not res.problems and res.chain:
        reasons.append("the chain does not reach a training run")
    more = f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else ""
    return AuditCheck(name="lineage", status="fail", summary="; ".join(reasons[:3]) + more)


def request_check(res: RequestCoverage) -> AuditCheck:
    what = "the request" if res.request is None else f"request {res.request}"
    if res.ok:
        return AuditCheck(
            name="request",
            status="pass",
            summary=f"all {res.n_samples} samples and {res.n_patients} patients of {what} are in the forgotten set",
        )
    parts = []
    if res.n_missing_samples:
        parts.append(f"{res.n_missing_samples} of {res.n_samples} samples")
    if res.n_missing_patients:
        parts.append(f"{res.n_missing_patients} of {res.n_patients} patients")
    example = (res.missing_samples or res.missing_patients)[0]
    return AuditCheck(
        name="request",
        status="fail",
        summary=f"{' and '.join(parts)} of {what} are not in the checkpoint's forgotten set (e.g. {example})",
    )


def population_check(res: PopulationAudit, tolerance: float, alpha: float) -> AuditCheck:
    status = judge_gap(res.gap, res.p_value, tolerance, alpha)
    head = (
        f"requested samples called non-member {100 * res.requested_non_member_rate:.0f}% "
        f"(n={res.n_requested}) vs held-out test samples of the same classes "
        f"{100 * res.reference_non_member_rate:.0f}% (n={res.n_reference}); gap {100 * res.gap:+.0f} pts, "
        f"tolerance ±{100 * tolerance:.0f}, p={res.p_value:.3g}, attack AUC {res.attack_auc:.2f}"
    )
    return AuditCheck(name="membership (population)", status=status, summary=head + _tail(status, res.gap, alpha))


def lira_check(res: LiraAudit, tolerance: float, alpha: float) -> AuditCheck:
    status = judge_gap(res.gap, res.p_value, tolerance, alpha)
    t1 = res.tpr_at_fpr[0]
    head = (
        f"LR > 1 for {100 * res.fraction_lr_above_1_requested:.0f}% of requested (n={len(res.requested)}) vs "
        f"{100 * res.fraction_lr_above_1_reference:.0f}% of test references (n={len(res.references)}); "
        f"gap {100 * res.gap:+.0f} pts, p={res.p_value:.3g}; median LR {res.median_lr_requested:.3g}; "
        f"TPR {100 * t1.tpr:.0f}% at FPR {100 * t1.achieved_fpr:.1f}% ({res.n_shadows} shadows"
        + (", recipe unlike the checkpoint's: weaker attack)" if res.notes else ")")
    )
    name = f"membership ({res.attack})"
    return AuditCheck(name=name, status=status, summary=head + _tail(status, -res.gap, alpha))


def _tail(status: CheckStatus, gap: float, alpha: float) -> str:
    """What a membership result means; ``gap`` > 0 means the requested samples look like members."""
    if status == "fail":
        if gap > 0:
            return ": the requested samples still look like training members"
        return ": the requested samples look unseen far more often than truly unseen data, which singles them out"
    if status == "inconclusive":
        return f": beyond tolerance but not significant at alpha={alpha:g} with this few samples"
    return ""


def audit_verdict(checks: list[AuditCheck]) -> AuditVerdict:
    ran = [c for c in checks if c.status != "skipped"]
    failed = [c.name for c in ran if c.status == "fail"]
    unsure = [c.name for c in ran if c.status == "inconclusive"]
    names = ", ".join(c.name for c in ran)
    if failed:
        return AuditVerdict(status="fail", summary=f"Fail: {', '.join(failed)} failed (checked: {names}).")
    if unsure:
        return AuditVerdict(
            status="inconclusive",
            summary=f"Inconclusive: nothing failed, but {', '.join(unsure)} saw a difference too few samples cannot "
            f"confirm (checked: {names}).",
        )
    return AuditVerdict(status="pass", summary=f"Pass: every check passed ({names}).")
