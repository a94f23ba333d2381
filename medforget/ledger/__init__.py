"""A tamper-evident deletion ledger, and the lineage of checkpoints read from it.

:mod:`.entry` defines and seals an entry, :mod:`.append` writes and :mod:`.verify` checks the
hash-chained, MAC-sealed JSON Lines file; :mod:`.lineage`
walks it from a checkpoint back to the training run.
"""

from medforget.ledger.append import EntryContent, append, check_appendable, lock_path
from medforget.ledger.entry import (
    GENESIS,
    LedgerEntry,
    LedgerProblem,
    LedgerVerification,
    find,
    ledger_schema,
    read_entries,
)
from medforget.ledger.verify import verify

__all__ = [
    "GENESIS",
    "EntryContent",
    "LedgerEntry",
    "LedgerProblem",
    "LedgerVerification",
    "append",
    "check_appendable",
    "find",
    "ledger_schema",
    "lock_path",
    "read_entries",
    "verify",
]
