"""Shared by the benchmark scripts: describe the machine and append a table to RESULTS.md."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

from medforget.study import markdown_table

__all__ = ["append", "machine", "markdown_table"]

RESULTS = Path(__file__).with_name("RESULTS.md")


def machine() -> str:
    """The CPU (with its family, model and the kernels torch picks: one model name covers CPU generations whose
    trained weights differ), cores, GPU, torch and threads."""
    cpu = platform.processor() or platform.machine()
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    cpu = info.get("model name", cpu)
    if "cpu family" in info:
        cpu += f" (family {info['cpu family']} model {info.get('model', '?')})"
    cpu += f", {torch.backends.cpu.get_cpu_capability()}"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores, {gpu}, torch {torch.__version__}, {torch.get_num_threads()} threads"


def append(title: str, table: str, notes: str = "", record: bool = True) -> None:
    """Print the table and append it with date, machine and the exact command to RESULTS.md.

    ``record=False`` (a script's ``--no-record``: a worker, a trial run) prints the table and notes only.
    """
    if not record:
        print(table + (f"\n\n{notes}" if notes else ""))
        return
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    block = f"\n## {title}\n\n- date: {stamp}\n- machine: {machine()}\n- command: `{command}`\n\n{table}\n"
    if notes:
        block += f"\n{notes}\n"
    print(table)
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nAppended by the scripts in this folder; newest last.\n")
    with open(RESULTS, "a") as fh:
        fh.write(block)
