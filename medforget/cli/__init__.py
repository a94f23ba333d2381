"""The ``medforget`` command line: a thin Typer layer that parses, calls one library function, renders.

Conventions every command keeps, because the tool lives in shell automation: results on stdout
(``--json`` for programs), progress and logs on stderr, no prompts; exit 0 success, 1 internal
error, 2 bad input or missing data (one clear line, nothing written), 3 a verification verdict
failed or a file was tampered with (outputs of a run are still written), 4 a verdict is
inconclusive (the report says what would settle it).

Option defaults are read from the library's pydantic models (:mod:`medforget.config`), never
repeated here. This module is the one place with many-parameter functions: each Typer command's
parameters *are* its options. One module per group of commands: ``model`` (train, info, methods),
``unlearn`` (unlearn, request), ``audit`` (audit, ledger, key), ``study`` (study, tune, schema).
"""

from __future__ import annotations

import importlib
import os
import traceback

from medforget.cli._common import app
from medforget.errors import EXIT_INTERNAL

# Each module registers its commands on ``app``; this order is the order ``medforget --help`` lists them.
for _group in ("model", "unlearn", "audit", "study"):
    importlib.import_module(f"medforget.cli.{_group}")


def main() -> None:
    """Console-script entry point; under ``torchrun`` rank 0 runs the command and the other ranks train with it."""
    try:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from medforget.launch import run

            run(app)
        else:
            app()
    except SystemExit as exc:
        # Click reports usage errors with exit code 2, which is already our "bad input" code.
        raise SystemExit(exc.code if exc.code is not None else 0) from None
    except Exception:  # pragma: no cover - the command wrapper catches everything first
        traceback.print_exc()
        raise SystemExit(EXIT_INTERNAL) from None


__all__ = ["app", "main"]
