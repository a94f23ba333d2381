"""``medforget audit``: check, from the outside, that a checkpoint is what it claims to be.

``medforget unlearn`` judges its own run against retraining. An auditor (a data-protection
officer, a regulator, the hospital's own QA months later) has less: the deployed checkpoint
file, perhaps the deletion ledger, perhaps the request, perhaps the data. :func:`audit` answers,
with what it is given, four questions, as five :class:`AuditCheck` rows:

``integrity``
    Does the file parse as safetensors with no extra payload, does the metadata match its
    digest and the weights the hash the metadata records (:func:`medforget.checkpoint.load_checkpoint`)?
    With a key it must also carry an HMAC signature that verifies under it: without a
    signature the hashes prove only that nothing was corrupted *by accident*, since anyone
    can edit the file and recompute them, so an auditor who holds the key requires it.
``lineage`` (``ledger=``)
    Does the ledger verify (hash chain, and MACs with the key), and does it record an
    unbroken chain from this file back to a training run? See :func:`check_lineage`.
``request`` (``request=``)
    Are all the request's samples and patients in the checkpoint's forgotten set (keyed
    hashes compared under the record's own key or salt)? See :func:`check_request`.
``membership (population)`` and ``membership (LiRA)`` (``request=`` with the data, ``deep=``)
    Do the model's outputs still betray the requested samples as training members? See
    :func:`population_audit` and :func:`lira_audit`, whose docstrings give the exact rules.

Exit codes follow ``unlearn``: the verdict is ``fail`` (exit 3) if any check fails,
``inconclusive`` (exit 4) if none fails but a membership test saw a
difference too small a sample cannot confirm, else ``pass``. Bad input (exit 2,
:class:`MedforgetError`) is anything the auditor must fix before the audit means anything:
a checkpoint path that does not exist or names a file that is not a medforget checkpoint at all
(no medforget metadata anywhere in it), a missing ledger or request file, a request with
unknown IDs, a keyed forgotten record without (or with the wrong) key, missing data for the
membership tests. A file that *was* a medforget checkpoint but no longer verifies (a flipped
byte, a truncated or extended file, a stripped or foreign signature) is an integrity **failure**
(exit 3), reported as a check, because that is precisely what an audit exists to find; the other
checks are then skipped, since nothing read from an untrusted file can be relied on.
"""

from medforget.audit.report import AuditCheck, AuditReport, AuditVerdict, audit_schema
from medforget.audit.run import audit

__all__ = ["AuditCheck", "AuditReport", "AuditVerdict", "audit", "audit_schema"]
