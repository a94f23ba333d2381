"""The command line's live output on stderr: log messages through a Rich handler, and Rich progress bars.

The library only logs (:mod:`logging`) and reports progress (:mod:`medforget.progress`); this module is
what the CLI installs to show both. Messages are never parsed as markup.
"""

from __future__ import annotations

import logging
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def install_logging(console: Console, level: int) -> None:
    """Send the ``medforget`` logger's messages to ``console`` (stderr), without markup or paths."""
    logger = logging.getLogger("medforget")
    for h in list(logger.handlers):
        if getattr(h, "_medforget_cli", False):
            logger.removeHandler(h)
    handler = RichHandler(console=console, show_time=False, show_path=False, markup=False, rich_tracebacks=False)
    handler._medforget_cli = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


class RichReporter:
    """Progress bars on stderr (a :class:`medforget.progress.Reporter`); nested tasks vanish when done."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}", markup=False),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self.depth = 0

    def start(self, description: str, total: float) -> _RichTask:
        if self.depth == 0:
            self.progress.start()
        self.depth += 1
        task_id = self.progress.add_task(description, total=total, info="")
        return _RichTask(self.progress, task_id, nested=self.depth > 1)

    def stop(self, task: Any) -> None:
        self.depth -= 1
        if task.nested:
            self.progress.remove_task(task.task_id)
        if self.depth == 0:
            self.progress.stop()


class _RichTask:
    def __init__(self, progress: Progress, task_id: TaskID, nested: bool) -> None:
        self.progress, self.task_id, self.nested = progress, task_id, nested

    def advance(self, amount: float = 1, info: str = "") -> None:
        self.progress.update(self.task_id, advance=amount, **({"info": info} if info else {}))

    def note(self, info: str) -> None:
        self.progress.update(self.task_id, info=info)


__all__ = ["RichReporter", "install_logging"]
