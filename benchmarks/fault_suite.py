"""Run the fault-injection suite (tests/test_faults.py) and record what was tried and that nothing was lost.

Every case is a real process or real files: kill -9 and Ctrl-C at each write phase of ``unlearn`` and
``train``, unwritable folders, every output path equal to an input or the ledger, hostile request fields,
malformed and stripped signatures. Each case asserts that the input and the ledger are intact, that
``ledger verify`` and ``audit`` agree with what is on disk, that no temporary file survives a later run,
and the exit code. This script counts the cases per kind and appends the outcome to RESULTS.md.

    python benchmarks/fault_suite.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from _results import append, markdown_table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def main() -> None:
    from test_faults import EXPECTED, POINTS

    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "faults.xml"
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(REPO / "tests" / "test_faults.py"),
             f"--junitxml={xml}"],
            cwd=REPO, check=False,
        )  # fmt: skip
        cases = ET.parse(xml).getroot().iter("testcase")
        total, failed = Counter(), Counter()
        for case in cases:
            name = case.get("name", "").split("[")[0]
            total[name] += 1
            failed[name] += any(child.tag in ("failure", "error") for child in case)
    rows = [[name, n, n - failed[name], failed[name]] for name, n in total.items()]
    kills = sum(len(v) for v in EXPECTED.values())
    notes = (
        f"{kills} killed runs of `unlearn` ({len(EXPECTED)} signals x {len(POINTS)} write phases: "
        f"{', '.join(POINTS)}) are the first case; {sum(total.values())} cases in all, "
        f"{sum(failed.values())} failed. A passing case means: input and ledger intact, `ledger verify` and "
        "`audit` agree with the files on disk, no temporary file left after a later run, and the expected exit "
        "code (2 refused before work, 3 tampering)."
    )
    append("Fault injection (fault_suite.py)", markdown_table(["case", "runs", "held", "failed"], rows), notes)


if __name__ == "__main__":
    main()
