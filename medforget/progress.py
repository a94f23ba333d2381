"""Progress of long work, reported through a callback the caller installs.

The library never draws anything itself: a training loop calls :func:`track` and advances the
handle it gets, and whatever reporter the caller installed decides what that looks like (the
command line installs Rich progress bars on stderr; a notebook, a service or a test may install
its own, or nothing, in which case progress costs a function call). The same holds for
messages, which go through :mod:`logging` under the ``medforget`` logger.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol


class Task(Protocol):
    """A handle on one piece of work with a known size."""

    def advance(self, amount: float = 1, info: str = "") -> None:
        """Record ``amount`` more units done; ``info`` is a short status (loss, accuracy...)."""

    def note(self, info: str) -> None:
        """Replace the short status without advancing."""


class Reporter(Protocol):
    """Something that shows progress (installed with :func:`use`)."""

    def start(self, description: str, total: float) -> Task:
        """Begin a task of ``total`` units."""

    def stop(self, task: Task) -> None:
        """The task is over (finished, stopped early or failed)."""


class _Silent:
    def advance(self, amount: float = 1, info: str = "") -> None:
        pass

    def note(self, info: str) -> None:
        pass


class _NoReporter:
    def start(self, description: str, total: float) -> Task:
        return _Silent()

    def stop(self, task: Task) -> None:
        pass


_reporter: Reporter = _NoReporter()


@contextlib.contextmanager
def use(reporter: Reporter | None) -> Iterator[None]:
    """Report progress to ``reporter`` inside the block (``None``: report nothing)."""
    global _reporter
    previous, _reporter = _reporter, reporter or _NoReporter()
    try:
        yield
    finally:
        _reporter = previous


@contextlib.contextmanager
def track(description: str, total: float) -> Iterator[Task]:
    """A task of ``total`` units on the installed reporter, stopped when the block ends."""
    reporter = _reporter
    task = reporter.start(description, total)
    try:
        yield task
    finally:
        reporter.stop(task)


__all__ = ["Reporter", "Task", "track", "use"]
