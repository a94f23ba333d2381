"""Exceptions that map to the command-line exit codes.

Shell automation depends on exit codes, so the mapping lives in one place:
0 success, 1 internal error (a bug: the traceback is useful), 2 bad input or
missing data (one clear line, nothing written), 3 a verification verdict failed
(outputs are still written, so the failure can be inspected) or a file was
tampered with, 4 the verdict is inconclusive (the report says what would settle it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_VERDICT_FAILED = 3
EXIT_INCONCLUSIVE = 4


class MedforgetError(Exception):
    """Bad input or missing data: the user can fix it. Rendered as one line, exit code 2."""

    exit_code = EXIT_BAD_INPUT


class DataError(MedforgetError):
    """A dataset, manifest or image file is missing or inconsistent."""


class CheckpointError(MedforgetError):
    """A checkpoint is unreadable, tampered with, or does not fit the data it is used with."""


class TamperedError(CheckpointError):
    """A file that was written as a medforget checkpoint no longer verifies (edited, damaged, re-signed,
    signature stripped or malformed). Exit code 3, like a failed verification: this is what audits exist to find."""

    exit_code = EXIT_VERDICT_FAILED


class RequestError(MedforgetError):
    """A deletion request is malformed or cannot be applied to this model."""


def first_problem(exc: ValidationError, whole: str) -> str:
    """The first error pydantic found, as ``<dotted.location>: <message>`` (``whole`` names the document
    when the error is about all of it): bad input is reported in one line, not a page of tracebacks."""
    err = exc.errors()[0]
    msg = READABLE.get(err["type"], err["msg"])
    return f"{'.'.join(str(x) for x in err['loc']) or whole}: {msg}"


READABLE = {"string_unicode": "is not valid Unicode (it holds a lone surrogate)"}
"""pydantic messages that say too little to a user, by error type."""
