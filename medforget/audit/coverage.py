"""Request coverage: are all of a request's samples and patients in the checkpoint's forgotten set?"""

from __future__ import annotations

from medforget.audit.report import RequestCoverage, sample_namer
from medforget.checkpoint import LoadedCheckpoint
from medforget.errors import RequestError
from medforget.request import DeletionRequest


def check_request(
    request: DeletionRequest,
    ck: LoadedCheckpoint,
    key: bytes | None,
    sample_ids: list[str] | None = None,
    show_ids: bool = False,
) -> RequestCoverage:
    """Whether every requested sample and patient is in the checkpoint's forgotten set.

    IDs are compared as digests under the record's own key (or public salt), so the record
    never has to be decrypted; a keyed record needs that key (bad input without it).
    ``sample_ids`` (from resolving the request on the data) adds the samples of requested
    patients, which catches a model that forgot the patient's name but kept some of its images.
    """
    if not request.sample_ids and not request.patient_ids:
        raise RequestError("the request names no sample_ids and no patient_ids; there is nothing to audit")
    trained_on = ck.meta.dataset.spec.name
    if request.dataset and request.dataset.lower() != trained_on.lower():
        raise RequestError(f"the request is for dataset {request.dataset!r} but the model was trained on {trained_on}")
    rec = ck.meta.forgotten
    hasher = rec.hasher(key)  # raises MedforgetError for a keyed record without the right key
    samples = list(dict.fromkeys([s.strip() for s in request.sample_ids] + (sample_ids or [])))
    patients = list(dict.fromkeys(p.strip() for p in request.patient_ids))
    known_s, known_p = set(rec.sample_hashes), set(rec.patient_hashes)
    missing_s = [s for s in samples if hasher(s) not in known_s]
    name = sample_namer(key, show_ids)
    missing_p = [p for p in patients if hasher(p) not in known_p]
    return RequestCoverage(
        ok=not missing_s and not missing_p,
        request=request.request_id if show_ids else hasher.request_ref(request.request_id),
        n_samples=len(samples),
        n_patients=len(patients),
        n_missing_samples=len(missing_s),
        n_missing_patients=len(missing_p),
        missing_samples=[name(s, samples.index(s)) for s in missing_s],
        missing_patients=[name(p, patients.index(p)) for p in missing_p],
        record_key_id=rec.key_id,
        expanded_patients=sample_ids is not None,
    )
