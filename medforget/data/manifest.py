"""Manifests: CSV files that attach patients and attributes to samples, read with line-precise errors."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path

from medforget.data.core import Dataset, parse_sample_id
from medforget.errors import DataError


def read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
            header = [h.strip() for h in (reader.fieldnames or [])]
    except FileNotFoundError:
        raise DataError(f"manifest {path} not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read manifest {path}: {exc}") from None
    if not header:
        raise DataError(f"manifest {path} is empty")
    return [{"__line__": str(n), **r} for n, r in enumerate(rows, start=2)] if rows else []


def require_columns(path: Path, rows: list[dict[str, str]], required: Sequence[str]) -> None:
    if not rows:
        raise DataError(f"manifest {path} has a header but no rows")
    missing = [c for c in required if c not in rows[0]]
    if missing:
        raise DataError(f"manifest {path} lacks column(s) {', '.join(missing)}")


def check_unique_ids(path: Path, rows: list[dict[str, str]]) -> None:
    seen: dict[str, str] = {}
    for r in rows:
        sid = r["sample_id"]
        if not sid:
            raise DataError(f"{path}:{r['__line__']}: empty sample_id")
        if sid in seen:
            raise DataError(f"{path}:{r['__line__']}: duplicate sample_id {sid!r} (first on line {seen[sid]})")
        seen[sid] = r["__line__"]


def check_patient_splits(path: Path, patient_split: Iterator[tuple[str, str, str]]) -> None:
    """A patient's images must all sit in one split, or test results leak training data."""
    first: dict[str, str] = {}
    for pid, split, sid in patient_split:
        if first.setdefault(pid, split) != split:
            raise DataError(
                f"{path}: patient {pid!r} appears in splits {first[pid]} and {split} (e.g. {sid}); "
                "a patient's images must all be in one split"
            )


def attribute_columns(rows: list[dict[str, str]], core: Sequence[str]) -> list[str]:
    return [c for c in rows[0] if c not in core and c != "__line__"]


def apply_manifest(ds: Dataset, path: Path) -> None:
    """Attach patient IDs and attributes from a manifest to a MedMNIST dataset (in place)."""
    rows = read_csv(path)
    require_columns(path, rows, ["sample_id", "patient_id"])
    check_unique_ids(path, rows)
    where = ds.locate()
    attrs = attribute_columns(rows, ["sample_id", "patient_id"])
    for split in ds.splits.values():
        split.attributes = {a: [""] * len(split) for a in attrs}
    for r in rows:
        sid = r["sample_id"]
        if sid not in where:
            parse_sample_id(sid)  # a malformed ID gets the more precise message
            raise DataError(f"{path}:{r['__line__']}: sample_id {sid!r} is not in {ds.name}")
        split_name, i = where[sid]
        split = ds.splits[split_name]
        if r["patient_id"]:
            split.patient_ids[i] = r["patient_id"]
        for a in attrs:
            split.attributes[a][i] = r[a]
    check_patient_splits(
        path, ((pid, s.name, s.sample_ids[i]) for s in ds.splits.values() for i, pid in enumerate(s.patient_ids))
    )
