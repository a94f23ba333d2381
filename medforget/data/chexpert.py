"""CheXpert's own layout as a manifest preset: ``train.csv`` and ``valid.csv`` read as published.

CheXpert (Irvin et al., AAAI 2019) ships a folder with ``train.csv`` and ``valid.csv`` whose ``Path``
column reads ``CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg``, with ``Sex``,
``Age``, ``Frontal/Lateral``, ``AP/PA`` and 14 finding columns valued ``1.0`` (present), ``0.0``
(absent), ``-1.0`` (uncertain) or blank (not mentioned). This module turns them into the rows of
a plain medforget image CSV (:mod:`medforget.data.images`), under a stated policy:

* **disease**: one finding column, named by ``--positive`` (``"Pleural Effusion"``); classes are
  ``no <finding>`` (0) and ``<finding>`` (1);
* **uncertain (-1)**: present (U-Ones, the default: an uncertain finding is followed up, so calling it
  absent would hide disease), absent (U-Zeros) or the image is left out (``drop``);
* **blank**: absent (the report does not mention it);
* **views**: frontal only by default (``Frontal/Lateral`` = Frontal), or all;
* **patients**: the ``patientNNNNN`` folder of the path; **sample ID**: the path below the dataset
  folder (``train/patient00001/study1/view1_frontal.jpg``), stable whatever the row order;
* **splits**: ``valid.csv`` (radiologist-labelled, 200 patients) is the test split; the validation
  split is the 5% of ``train.csv``'s patients with the smallest SHA-256 of their ID (order-independent,
  whole patients), the rest is the training split;
* **attributes**: ``sex``, ``age``, ``age_band`` (decades in 20-year bands, for group slices) and ``view`` (AP/PA).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from medforget.config import CsvLayout
from medforget.data.manifest import read_csv, require_columns
from medforget.errors import DataError

VAL_FRACTION = 0.05
PATIENT_RE = re.compile(r"(patient\d+)")
FINDINGS = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
POSITIVE_VALUES = {"1", "1.0"}
NEGATIVE_VALUES = {"0", "0.0", ""}
UNCERTAIN_VALUES = {"-1", "-1.0"}


def chexpert_finding(header: list[str], positive: list[str] | None) -> str:
    """The one finding column ``--positive`` names (case-insensitive)."""
    findings = [c for c in header if c in FINDINGS]
    if not positive or len(positive) != 1 or "," in positive[0]:
        raise DataError(
            "a CheXpert manifest trains one finding as the disease: name it with --positive "
            f"(one of {', '.join(findings or FINDINGS)})"
        )
    wanted = positive[0].strip().lower()
    for c in findings:
        if c.lower() == wanted:
            return c
    raise DataError(f"unknown CheXpert finding {positive[0]!r}; findings: {', '.join(findings)}")


def _band(age: str) -> str:
    try:
        years = int(float(age))
    except ValueError:
        return ""
    low = min(years // 20 * 20, 80)
    return "80+" if low == 80 else f"{low}-{low + 19}"


def _image_base(csv_path: Path, first: str) -> tuple[Path, str]:
    """Where the ``Path`` column is relative to: the CSV's folder's parent when it starts with that folder's name."""
    head = Path(first).parts[0] if Path(first).parts else ""
    if head == csv_path.parent.name:
        return csv_path.parent.parent, head + "/"
    return csv_path.parent, ""


def _label(value: str, policy: str, where: str) -> str | None:
    """``"1"``, ``"0"`` or None (leave the image out) for one finding value under the uncertainty policy."""
    if value in POSITIVE_VALUES:
        return "1"
    if value in NEGATIVE_VALUES:
        return "0"
    if value in UNCERTAIN_VALUES:
        return {"positive": "1", "negative": "0", "drop": None}[policy]
    raise DataError(f"{where}: finding value {value!r} is not 1, 0, -1 or blank")


def _rows_of(csv_path: Path, rows: list[dict[str, str]], split: str, finding: str, layout: CsvLayout, base: Path):
    """Normalised rows of one CheXpert CSV; paths relative to ``base`` become relative to the train CSV's folder."""
    require_columns(csv_path, rows, ["Path", "Sex", "Age", "Frontal/Lateral", finding])
    _, prefix = _image_base(csv_path, rows[0]["Path"])
    classes = [f"no {finding}", finding]
    tag = "" if split == "train" else f" ({csv_path.name})"
    out = []
    for r in rows:
        if layout.views == "frontal" and r["Frontal/Lateral"].lower() != "frontal":
            continue
        label = _label(r[finding], layout.uncertain, f"{csv_path}:{r['__line__']}")
        if label is None:
            continue
        m = PATIENT_RE.search(r["Path"])
        if not m:
            raise DataError(f"{csv_path}:{r['__line__']}: no patient folder (patientNNNNN) in path {r['Path']!r}")
        out.append(
            {
                "__line__": f"{r['__line__']}{tag}",
                "sample_id": r["Path"][len(prefix) :] if prefix and r["Path"].startswith(prefix) else r["Path"],
                "path": os.path.relpath(base / r["Path"], csv_path.parent),
                "label": classes[int(label)],
                "split": split,
                "patient_id": m.group(1),
                "sex": r["Sex"],
                "age": r["Age"],
                "age_band": _band(r["Age"]),
                "view": r.get("AP/PA", ""),
            }
        )
    return out


def chexpert_rows(
    train_csv: Path, positive: list[str] | None, layout: CsvLayout
) -> tuple[list[dict[str, str]], list[str]]:
    """CheXpert's ``train.csv`` (and the ``valid.csv`` beside it) as plain manifest rows, and the class names.

    Paths in the rows are relative to ``train_csv``'s folder, as a plain manifest's are.
    """
    valid_csv = train_csv.with_name("valid.csv")
    if not valid_csv.is_file():
        raise DataError(f"{valid_csv} not found: a CheXpert folder holds train.csv and valid.csv side by side")
    train_rows, valid_rows = read_csv(train_csv), read_csv(valid_csv)
    require_columns(train_csv, train_rows, ["Path"])
    finding = chexpert_finding(list(train_rows[0]), positive)
    base, _ = _image_base(train_csv, train_rows[0]["Path"])
    train = _rows_of(train_csv, train_rows, "train", finding, layout, base)
    test = _rows_of(valid_csv, valid_rows, "test", finding, layout, base)
    patients = sorted({r["patient_id"] for r in train}, key=lambda p: hashlib.sha256(p.encode()).hexdigest())
    val_patients = set(patients[: max(1, round(VAL_FRACTION * len(patients)))])
    for r in train:
        if r["patient_id"] in val_patients:
            r["split"] = "val"
    return train + test, [f"no {finding}", finding]


def manifest_digest(train_csv: Path) -> str:
    """SHA-256 over ``train.csv`` and ``valid.csv``: both decide what a CheXpert model is trained and tested on."""
    h = hashlib.sha256()
    for p in (train_csv, train_csv.with_name("valid.csv")):
        h.update(hashlib.sha256(p.read_bytes()).hexdigest().encode())
    return h.hexdigest()


__all__ = ["FINDINGS", "VAL_FRACTION", "chexpert_finding", "chexpert_rows", "manifest_digest"]
