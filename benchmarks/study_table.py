"""Tabulate the finished runs of a study folder (mean ± sd over seeds) and append the table to RESULTS.md.

For exploratory studies run with ``medforget study`` (for example the learning-rate sweep that chose the
paired methods' default, ``benchmarks/cra_lr.toml``): whatever runs are finished are tabulated, from their
run files, with the same columns as every study summary.

    python benchmarks/study_table.py runs/cra-lr --title "SalUn-CRA v2 learning rate (cra_lr.toml)"
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _results import append

from medforget.study import markdown_table, summarise
from medforget.study.runner import RunRecord
from medforget.study.tables import tidy_row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study", type=Path, help="a study output folder (holding runs/)")
    ap.add_argument("--title", required=True)
    ap.add_argument("--notes", default="")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    records = [RunRecord.model_validate_json(p.read_text()) for p in sorted((args.study / "runs").rglob("*.json"))]
    table = markdown_table(*summarise([tidy_row(r) for r in records]))
    append(args.title, table, args.notes, record=not args.no_record)


if __name__ == "__main__":
    main()
