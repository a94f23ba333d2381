"""The disease (positive) class: defaults per dataset, names and abbreviations, binarisation.

Clinical risk is measured on the disease class, so every dataset must say which class (or
classes) means disease; the two unlearning studies' datasets have defaults.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from medforget.data.core import Dataset
from medforget.errors import DataError

# The disease class of each dataset named by the two studies. DermaMNIST's and
# PathMNIST's long label names have short clinical abbreviations, accepted by --positive.
DEFAULT_POSITIVE: dict[str, list[str]] = {
    "breastmnist": ["malignant"],
    "pneumoniamnist": ["pneumonia"],
    "dermamnist": ["akiec", "bcc", "mel"],
    "pathmnist": ["TUM"],
}
LABEL_ALIASES: dict[str, dict[str, int]] = {
    "dermamnist": {"akiec": 0, "bcc": 1, "bkl": 2, "df": 3, "mel": 4, "nv": 5, "vasc": 6},
    "pathmnist": {"adi": 0, "back": 1, "deb": 2, "lym": 3, "muc": 4, "mus": 5, "norm": 6, "str": 7, "tum": 8},
}


def resolve_positive(dataset_name: str, classes: Sequence[str], positive: Sequence[str] | None) -> list[int]:
    """Turn ``--positive`` (class names, indices or clinical abbreviations) into label indices."""
    given = list(positive) if positive else DEFAULT_POSITIVE.get(dataset_name, [])
    if not given:
        raise DataError(
            f"no default disease class for {dataset_name}; name it with --positive (classes: {list(classes)})"
        )
    aliases = LABEL_ALIASES.get(dataset_name, {})
    lowered = [c.lower() for c in classes]
    out: list[int] = []
    for item in given:
        for part in str(item).split(","):
            token = part.strip()
            if not token:
                continue
            if token.isdigit() and int(token) < len(classes):
                idx = int(token)
            elif token.lower() in lowered:
                idx = lowered.index(token.lower())
            elif token.lower() in aliases:
                idx = aliases[token.lower()]
            else:
                raise DataError(f"unknown positive class {token!r}; classes are {list(classes)}")
            if idx not in out:
                out.append(idx)
    if len(out) == len(classes):
        raise DataError("every class is marked positive; at least one class must mean 'no disease'")
    return sorted(out)


def maybe_binarise(ds: Dataset) -> Dataset:
    """Collapse a multi-class dataset to negative (0) vs positive (1), as the clinical-risk study does."""
    if not ds.spec.binary or len(ds.classes) == 2:
        return ds
    pos = torch.tensor(ds.positive)
    for split in ds.splits.values():
        split.labels = torch.isin(split.labels, pos).long()
    names = "+".join(ds.classes[i] for i in ds.positive)
    return Dataset(spec=ds.spec, classes=["negative", f"positive ({names})"], positive=[1], splits=ds.splits)
