"""Writing files so that nothing is lost and nothing is half-written, and reading users' config documents.

A hospital must never lose a model or find a half-written one. Every output is written to a
temporary file in its destination folder (named after the writing process, so a later run can
remove what a killed one left), flushed to disk, then moved into place in one step. Without
``force`` the move refuses to replace an existing file, atomically (``os.link``) rather than by a
racy ``exists()`` test.

Before any expensive work a command declares every path it will write and every path it reads
(:func:`check_outputs`): each output must be writable, and distinct from every other output, every
input and the ledger, with or without ``--force``, so that no option combination can overwrite
the model being unlearned or the deletion ledger.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from medforget.errors import MedforgetError

_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.tmp$")


def _same(a: Path, b: Path) -> bool:
    """Whether two paths name one file (through symlinks and hard links)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def _probe_folder(folder: Path) -> None:
    """Create and remove a file in ``folder``: the only test that read-only filesystems and ACLs cannot fool."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".medforget-probe.{os.getpid()}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise MedforgetError(f"cannot write to folder {folder}: {exc.strerror}") from None
    os.close(fd)
    os.unlink(name)


def check_outputs(outputs: Mapping[str, Path | None], inputs: Mapping[str, Path | None], force: bool) -> None:
    """Refuse, before any work, a set of outputs that cannot be written or would destroy an input.

    Args:
        outputs: option name (e.g. ``--report``) to the path it will write; None entries are ignored.
        inputs: name (``the input checkpoint``, ``the ledger``...) to every path that must survive the run.
        force: whether existing outputs may be replaced (never an input, whatever ``force`` says).

    Raises:
        MedforgetError: one line naming the option and the path.
    """
    outs = {k: Path(v) for k, v in outputs.items() if v is not None}
    ins = {k: Path(v) for k, v in inputs.items() if v is not None}
    for opt, path in outs.items():
        for what, src in ins.items():
            if _same(path, src):
                raise MedforgetError(f"{opt} {path} is {what}; it is never overwritten, choose another path")
    names = list(outs.items())
    for i, (opt, path) in enumerate(names):
        for other, path2 in names[i + 1 :]:
            if _same(path, path2):
                raise MedforgetError(f"{opt} and {other} name the same file {path}; give each its own path")
    for opt, path in outs.items():
        check_writable(path, force, opt)


def check_writable(path: Path, force: bool, option: str = "output") -> None:
    """Fail early, before any expensive work, if ``path`` cannot be written (or exists and may not be replaced)."""
    path = Path(path)
    if path.is_dir():
        raise MedforgetError(f"{option} {path} is a folder, not a file")
    if path.exists() and not force:
        raise MedforgetError(f"{path} already exists; pass --force to replace it")
    if not path.parent.is_dir():
        raise MedforgetError(f"folder {path.parent} does not exist")
    _probe_folder(path.parent)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def sweep_stale_temps(folder: Path) -> list[Path]:
    """Remove temporary files that killed medforget processes left in ``folder``; returns what was removed."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = _TEMP.match(name)
        if m and int(m.group("pid")) != os.getpid() and not _pid_alive(int(m.group("pid"))):
            with contextlib.suppress(OSError):
                (folder / name).unlink()
                removed.append(folder / name)
    return removed


def _temp_for(path: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(name, 0o600)
    return Path(name)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a folder be opened
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _move_into_place(tmp: Path, path: Path, force: bool) -> None:
    if force:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if path appeared meanwhile: never clobber
    except FileExistsError:
        raise MedforgetError(f"{path} already exists; pass --force to replace it") from None
    except OSError:  # filesystems without hard links
        if path.exists():
            raise MedforgetError(f"{path} already exists; pass --force to replace it") from None
        os.replace(tmp, path)
    tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) and SIGTERM until the block ends, then deliver them.

    Used around the few system calls that move finished outputs into place and record them, so an
    interrupt cannot fall between "the model is written" and "the ledger says so" (kill -9 still
    can: that is why the ledger entry always comes last and ``audit`` finds an unrecorded output).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: held.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for s in held:
            signal.raise_signal(s)  # in this thread, so it is handled here and now, not by a later bytecode


FAULT_ENV = "MEDFORGET_FAULT_AT"
"""Test hook: ``<point>:<signal>`` makes this process send itself the signal at that point of the write path,
so the fault-injection tests can kill a real run between any two steps (see ``tests/test_faults.py``)."""


def fault_point(name: str) -> None:
    """Where a write can be interrupted; a no-op unless ``$MEDFORGET_FAULT_AT`` names this point."""
    spec = os.environ.get(FAULT_ENV)
    if spec and spec.split(":")[0] == name:
        # raise_signal, not kill(getpid()): with torch's threads running, a signal sent to the process may be
        # taken by another thread and reach Python only after the next step has begun
        signal.raise_signal(getattr(signal, spec.split(":")[1] if ":" in spec else "SIGKILL"))


class Staged:
    """Files fully written and flushed to temporary names next to their destinations, not yet in place."""

    def __init__(self, temps: dict[Path, Path], force: bool) -> None:
        self.temps, self.force = temps, force

    def publish(self) -> None:
        """Move every file into place (call with interrupts deferred, together with recording them)."""
        for i, (path, tmp) in enumerate(self.temps.items()):
            if i:
                fault_point("between-moves")
            _move_into_place(tmp, path, self.force)
        for folder in {p.parent for p in self.temps}:
            _fsync_dir(folder)


@contextlib.contextmanager
def staged(files: Mapping[Path, bytes], force: bool) -> Iterator[Staged]:
    """Write ``files`` to temporary files (interruptible: an interrupt leaves nothing); temporaries never outlive
    the block, whether or not :meth:`Staged.publish` moved them into place."""
    temps: dict[Path, Path] = {}
    try:
        for path, data in files.items():
            sweep_stale_temps(path.parent)
            tmp = temps[path] = _temp_for(path)
            tmp.write_bytes(data)
            _fsync_file(tmp)
        fault_point("temps-written")
        yield Staged(temps, force)
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)


def commit(files: Mapping[Path, bytes], force: bool) -> None:
    """Write several files so that each is either complete and in place, or absent."""
    with staged(files, force) as s, interrupts_deferred():
        s.publish()


@contextlib.contextmanager
def atomic_path(path: Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success move it to ``path`` atomically, else remove it."""
    path = Path(path)
    check_writable(path, force)
    sweep_stale_temps(path.parent)
    tmp = _temp_for(path)
    try:
        yield tmp
        _fsync_file(tmp)
        _move_into_place(tmp, path, force)
    finally:
        tmp.unlink(missing_ok=True)


CACHE_ENV = "MEDFORGET_CACHE_DIR"


def cache_dir() -> Path:
    """medforget's cache folder (created on first use): ``$MEDFORGET_CACHE_DIR``, else ``$XDG_CACHE_HOME/medforget``,
    else ``~/.cache/medforget``. What lives there is described in :mod:`medforget.cache`."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "medforget"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def md5_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_document(path: Path, what: str) -> Any:
    """Parse a JSON, TOML or YAML file (chosen by suffix; JSON otherwise).

    Any problem (unreadable file, syntax error) becomes one line naming ``what`` and the file.
    """
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise MedforgetError(f"cannot read {what} {path}: {why}") from None
    kind = {".toml": "TOML", ".yaml": "YAML", ".yml": "YAML"}.get(path.suffix.lower(), "JSON")
    try:
        if kind == "TOML":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            return tomllib.loads(text)
        if kind == "YAML":
            import yaml

            try:
                return yaml.safe_load(text)
            except yaml.YAMLError as exc:  # not a ValueError: normalise it
                raise ValueError(str(exc)) from None
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise MedforgetError(f"{what} {path} is not valid {kind}: {exc}".replace("\n", " ")) from None


__all__ = [
    "Staged",
    "atomic_path",
    "cache_dir",
    "check_outputs",
    "check_writable",
    "commit",
    "fault_point",
    "interrupts_deferred",
    "md5_file",
    "read_document",
    "sha256_file",
    "staged",
    "sweep_stale_temps",
]
