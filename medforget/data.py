"""Datasets, stable sample and patient IDs, manifests, and the disease (positive) class.

Everything downstream (training, deletion requests, checkpoints, audits) speaks in
*sample IDs* ``<split>-<index>`` (``train-000123``, index = row in the official
file) and *patient IDs*. A deletion request names patients; the data layer
resolves them to rows. Without a manifest every sample is its own patient.

Two sources share one in-memory form (:class:`Dataset` of :class:`Split`):

* MedMNIST 2D datasets, read by the ``medmnist`` package's own classes and
  ``INFO`` (no copy of its loading code), optionally enriched by a manifest CSV
  with ``sample_id, patient_id`` and attribute columns (``sex``, ``age``, ``site``...).
* The owner's own images: a CSV with ``sample_id, path, label, split, patient_id``
  (+ attributes) and PNG/JPEG files, read once with Pillow.

Whole splits are held as uint8 tensors and normalised per batch on the device,
so the training loop runs no per-sample Python and no PIL.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, Field

from medforget.errors import DataError
from medforget.fileio import cache_dir, md5_file, sha256_file

SPLITS = ("train", "val", "test")
SAMPLE_ID_RE = re.compile(r"^(train|val|test)-(\d{6})$")
MEDMNIST_SIZES = (28, 64, 128, 224)
DATA_ROOT_ENV = "MEDFORGET_DATA_ROOT"

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


def sample_id(split: str, index: int) -> str:
    """The stable ID of row ``index`` of ``split`` in the official file."""
    return f"{split}-{index:06d}"


def parse_sample_id(sid: str) -> tuple[str, int]:
    """Inverse of :func:`sample_id`; raises :class:`DataError` on a malformed ID."""
    m = SAMPLE_ID_RE.match(sid)
    if not m:
        raise DataError(f"malformed sample ID {sid!r}: expected <split>-<6 digits>, e.g. train-000123")
    return m.group(1), int(m.group(2))


class DataSpec(BaseModel):
    """How to rebuild a dataset: recorded in every checkpoint, independent of where the files live."""

    name: str = Field(description="MedMNIST flag (e.g. breastmnist) or 'csv:<manifest file name>'")
    source: str = Field(description="'medmnist' or 'csv'")
    size: int = Field(description="Image side in pixels")
    binary: bool = Field(False, description="Multi-class labels collapsed to negative (0) / positive (1)")
    positive: list[str] = Field(default_factory=list, description="Positive (disease) classes as given")
    manifest_sha256: str | None = Field(None, description="SHA-256 of the manifest CSV, if one was used")


@dataclass
class Split:
    """One split held in memory: uint8 images ``[N, C, H, W]`` and int64 labels ``[N]``."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    sample_ids: list[str]
    patient_ids: list[str]
    attributes: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sample_ids)

    def subset(self, indices: Sequence[int] | torch.Tensor) -> Split:
        """The rows ``indices`` as a new split (tensors are indexed, not copied per sample)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        rows = idx.tolist()
        return Split(
            name=self.name,
            images=self.images[idx],
            labels=self.labels[idx],
            sample_ids=[self.sample_ids[i] for i in rows],
            patient_ids=[self.patient_ids[i] for i in rows],
            attributes={k: [v[i] for i in rows] for k, v in self.attributes.items()},
        )

    def fingerprint(self) -> str:
        """SHA-256 over the sorted sample IDs with each sample's label and image bytes.

        Independent of the data root and of row order, so the same data found in another
        folder (or another hospital's copy) gives the same fingerprint, while any changed
        pixel, label or ID changes it.
        """
        h = hashlib.sha256()
        images = self.images.contiguous().numpy()
        labels = self.labels.numpy()
        for i in sorted(range(len(self)), key=self.sample_ids.__getitem__):
            h.update(self.sample_ids[i].encode())
            h.update(int(labels[i]).to_bytes(4, "little"))
            h.update(images[i].tobytes())
        return h.hexdigest()


@dataclass
class Dataset:
    """A dataset in memory: its splits, class names and which classes mean disease."""

    spec: DataSpec
    classes: list[str]
    positive: list[int]
    splits: dict[str, Split]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def n_channels(self) -> int:
        return int(self.splits["train"].images.shape[1])

    @property
    def train(self) -> Split:
        return self.splits["train"]

    @property
    def val(self) -> Split:
        return self.splits["val"]

    @property
    def test(self) -> Split:
        return self.splits["test"]

    def fingerprint(self) -> str:
        """Fingerprint of the training split: what a checkpoint was trained on."""
        return self.train.fingerprint()

    def locate(self) -> dict[str, tuple[str, int]]:
        """Map every sample ID to ``(split, row)``."""
        return {sid: (s.name, i) for s in self.splits.values() for i, sid in enumerate(s.sample_ids)}


# --------------------------------------------------------------------------- data root


def resolve_data_root(data_root: str | os.PathLike[str] | None) -> Path:
    """``--data-root``, else ``$MEDFORGET_DATA_ROOT``, else medmnist's default (``~/.medmnist``)."""
    if data_root:
        return Path(data_root).expanduser()
    if os.environ.get(DATA_ROOT_ENV):
        return Path(os.environ[DATA_ROOT_ENV]).expanduser()
    from medmnist.info import DEFAULT_ROOT

    return Path(DEFAULT_ROOT)


def _medmnist_info(name: str) -> dict:
    from medmnist import INFO

    if name not in INFO:
        known = ", ".join(sorted(k for k, v in INFO.items() if "3d" not in k))
        raise DataError(f"unknown MedMNIST dataset {name!r}; known: {known}")
    info = INFO[name]
    if name.endswith("3d") or "multi-label" in info["task"] or "ordinal" in info["task"]:
        raise DataError(f"{name} is a {info['task']} task; medforget supports 2D single-label classification")
    return info


def _verify_md5_once(path: Path, expected: str) -> None:
    """Check a MedMNIST file's MD5 against ``INFO`` and remember the fact.

    Hashing a large file on every run is wasteful, so a verified (path, size, mtime) is
    cached in the user cache folder; the data folder itself may be read-only.
    """
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    cache_file = cache_dir() / "verified-md5.json"
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    if cache.get(key) == expected:
        return
    actual = md5_file(path)
    if actual != expected:
        raise DataError(f"{path} is corrupted: MD5 {actual} does not match MedMNIST's {expected}")
    cache[key] = expected
    tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(cache, indent=0))
    os.replace(tmp, cache_file)


def _medmnist_file(name: str, size: int, root: Path, download: bool) -> Path:
    import medmnist

    info = _medmnist_info(name)
    if size not in MEDMNIST_SIZES:
        raise DataError(f"MedMNIST size must be one of {MEDMNIST_SIZES}, got {size}")
    flag = "" if size == 28 else f"_{size}"
    path = root / f"{name}{flag}.npz"
    if not path.exists():
        if download and root.is_dir():  # never create folders as a side effect of a failed lookup
            try:
                cls = getattr(medmnist, info["python_class"])
                cls(split="train", root=str(root), download=True, size=size)
            except Exception:  # any network or filesystem failure: one clear message below
                pass
        if not path.exists():
            raise DataError(
                f"{path.name} not found in {root} and could not be downloaded; "
                f"put it there or set --data-root / {DATA_ROOT_ENV}"
            )
    _verify_md5_once(path, info[f"MD5{flag}"])
    return path


# --------------------------------------------------------------------------- positive class


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


# --------------------------------------------------------------------------- manifests


def _read_csv(path: Path) -> list[dict[str, str]]:
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


def _require_columns(path: Path, rows: list[dict[str, str]], required: Sequence[str]) -> None:
    if not rows:
        raise DataError(f"manifest {path} has a header but no rows")
    missing = [c for c in required if c not in rows[0]]
    if missing:
        raise DataError(f"manifest {path} lacks column(s) {', '.join(missing)}")


def _check_unique_ids(path: Path, rows: list[dict[str, str]]) -> None:
    seen: dict[str, str] = {}
    for r in rows:
        sid = r["sample_id"]
        if not sid:
            raise DataError(f"{path}:{r['__line__']}: empty sample_id")
        if sid in seen:
            raise DataError(f"{path}:{r['__line__']}: duplicate sample_id {sid!r} (first on line {seen[sid]})")
        seen[sid] = r["__line__"]


def _check_patient_splits(path: Path, patient_split: Iterator[tuple[str, str, str]]) -> None:
    """A patient's images must all sit in one split, or test results leak training data."""
    first: dict[str, str] = {}
    for pid, split, sid in patient_split:
        if first.setdefault(pid, split) != split:
            raise DataError(
                f"{path}: patient {pid!r} appears in splits {first[pid]} and {split} (e.g. {sid}); "
                "a patient's images must all be in one split"
            )


def _attribute_columns(rows: list[dict[str, str]], core: Sequence[str]) -> list[str]:
    return [c for c in rows[0] if c not in core and c != "__line__"]


def _apply_manifest(ds: Dataset, path: Path) -> None:
    """Attach patient IDs and attributes from a manifest to a MedMNIST dataset (in place)."""
    rows = _read_csv(path)
    _require_columns(path, rows, ["sample_id", "patient_id"])
    _check_unique_ids(path, rows)
    where = ds.locate()
    attrs = _attribute_columns(rows, ["sample_id", "patient_id"])
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
    _check_patient_splits(
        path, ((pid, s.name, s.sample_ids[i]) for s in ds.splits.values() for i, pid in enumerate(s.patient_ids))
    )


def _load_image(path: Path, mode: str, size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert(mode)
            if im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.BICUBIC)
            arr = np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"image {path} not found") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def load_csv_dataset(
    manifest: str | os.PathLike[str],
    size: int = 28,
    positive: Sequence[str] | None = None,
    classes: Sequence[str] | None = None,
    binary: bool = False,
) -> Dataset:
    """The owner's own images, listed in a CSV: ``sample_id,path,label,split,patient_id`` (+ attributes).

    Paths are relative to the CSV's folder. Classes are ``classes`` if given, else the sorted
    labels of the training split; a val/test label outside them is an error, as are missing
    files, duplicate IDs and a patient in two splits. Images are converted to the mode of
    the first image (grayscale stays one channel) and resized to ``size``.
    """
    path = Path(manifest)
    rows = _read_csv(path)
    core = ["sample_id", "path", "label", "split", "patient_id"]
    _require_columns(path, rows, core)
    _check_unique_ids(path, rows)
    for r in rows:
        if r["split"] not in SPLITS:
            raise DataError(f"{path}:{r['__line__']}: split {r['split']!r} is not one of {', '.join(SPLITS)}")
        if not r["label"]:
            raise DataError(f"{path}:{r['__line__']}: empty label for {r['sample_id']}")
    _check_patient_splits(path, ((r["patient_id"] or r["sample_id"], r["split"], r["sample_id"]) for r in rows))
    class_names = list(classes) if classes else sorted({r["label"] for r in rows if r["split"] == "train"})
    for r in rows:
        if r["label"] not in class_names:
            raise DataError(
                f"{path}:{r['__line__']}: unknown label {r['label']!r} for {r['sample_id']}; "
                f"known labels: {class_names}"
            )
    missing_splits = [s for s in SPLITS if not any(r["split"] == s for r in rows)]
    if missing_splits:
        raise DataError(f"{path}: no samples in split(s) {', '.join(missing_splits)}")
    if not positive:
        raise DataError("a CSV dataset needs --positive to name its disease class(es)")
    pos = resolve_positive(f"csv:{path.name}", class_names, positive)
    base = path.parent
    for r in rows:
        if not (base / r["path"]).is_file():
            raise DataError(f"{path}:{r['__line__']}: image {base / r['path']} not found")

    from PIL import Image

    with Image.open(base / rows[0]["path"]) as first:
        mode = "L" if first.mode in ("L", "LA", "I", "I;16", "1") else "RGB"
    attrs = _attribute_columns(rows, core)
    splits: dict[str, Split] = {}
    for s in SPLITS:
        srows = [r for r in rows if r["split"] == s]
        images = np.stack([_load_image(base / r["path"], mode, size) for r in srows])
        splits[s] = Split(
            name=s,
            images=torch.from_numpy(images),
            labels=torch.tensor([class_names.index(r["label"]) for r in srows], dtype=torch.long),
            sample_ids=[r["sample_id"] for r in srows],
            patient_ids=[r["patient_id"] or r["sample_id"] for r in srows],
            attributes={a: [r[a] for r in srows] for a in attrs},
        )
    spec = DataSpec(
        name=f"csv:{path.name}",
        source="csv",
        size=size,
        binary=binary,
        positive=[str(p) for p in (positive or [])],
        manifest_sha256=sha256_file(path),
    )
    return _maybe_binarise(Dataset(spec=spec, classes=class_names, positive=pos, splits=splits))


def _maybe_binarise(ds: Dataset) -> Dataset:
    """Collapse a multi-class dataset to negative (0) vs positive (1), as the clinical-risk study does."""
    if not ds.spec.binary or len(ds.classes) == 2:
        return ds
    pos = torch.tensor(ds.positive)
    for split in ds.splits.values():
        split.labels = torch.isin(split.labels, pos).long()
    names = "+".join(ds.classes[i] for i in ds.positive)
    return Dataset(spec=ds.spec, classes=["negative", f"positive ({names})"], positive=[1], splits=ds.splits)


def load_medmnist(
    name: str,
    size: int = 28,
    data_root: str | os.PathLike[str] | None = None,
    positive: Sequence[str] | None = None,
    binary: bool = False,
    manifest: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> Dataset:
    """A MedMNIST 2D dataset through the ``medmnist`` package, with stable IDs.

    The file's MD5 is checked against ``medmnist.INFO`` (once per file version). A
    manifest may attach patient IDs and attributes; without one each sample is its own patient.
    """
    import medmnist

    name = name.lower()
    info = _medmnist_info(name)
    root = resolve_data_root(data_root)
    _medmnist_file(name, size, root, download)
    cls = getattr(medmnist, info["python_class"])
    classes = [info["label"][str(i)] for i in range(len(info["label"]))]
    splits: dict[str, Split] = {}
    for s in SPLITS:
        raw = cls(split=s, root=str(root), download=False, size=size)
        imgs = np.asarray(raw.imgs)
        imgs = imgs[:, None] if imgs.ndim == 3 else imgs.transpose(0, 3, 1, 2)
        ids = [sample_id(s, i) for i in range(len(imgs))]
        splits[s] = Split(
            name=s,
            images=torch.from_numpy(np.ascontiguousarray(imgs)),
            labels=torch.from_numpy(np.asarray(raw.labels).reshape(-1).astype(np.int64)),
            sample_ids=ids,
            patient_ids=list(ids),
        )
    spec = DataSpec(
        name=name,
        source="medmnist",
        size=size,
        binary=binary,
        positive=[str(p) for p in (positive or DEFAULT_POSITIVE.get(name, []))],
        manifest_sha256=sha256_file(Path(manifest)) if manifest else None,
    )
    ds = Dataset(spec=spec, classes=classes, positive=resolve_positive(name, classes, positive), splits=splits)
    if manifest:
        _apply_manifest(ds, Path(manifest))
    return _maybe_binarise(ds)


def load_dataset(
    dataset: str,
    size: int = 28,
    data_root: str | os.PathLike[str] | None = None,
    positive: Sequence[str] | None = None,
    binary: bool = False,
    manifest: str | os.PathLike[str] | None = None,
    classes: Sequence[str] | None = None,
) -> Dataset:
    """One entry point: ``dataset`` is a MedMNIST flag, or ``csv`` to read the owner's own ``manifest``."""
    if dataset.lower() in ("csv", "custom") or dataset.lower().startswith("csv:"):
        if not manifest:
            raise DataError("a CSV dataset needs --manifest pointing to its sample_id,path,label,split CSV")
        return load_csv_dataset(manifest, size=size, positive=positive, classes=classes, binary=binary)
    return load_medmnist(dataset, size, data_root, positive, binary, manifest)


def load_from_spec(
    spec: DataSpec,
    data_root: str | os.PathLike[str] | None = None,
    manifest: str | os.PathLike[str] | None = None,
    classes: Sequence[str] | None = None,
) -> Dataset:
    """Rebuild the dataset a checkpoint records, checking the manifest is the one it used."""
    if spec.manifest_sha256 and not manifest:
        raise DataError(f"this model was trained with a manifest ({spec.name}); pass it with --manifest")
    if manifest and spec.manifest_sha256 and sha256_file(Path(manifest)) != spec.manifest_sha256:
        raise DataError(f"manifest {manifest} differs from the one this model was trained with")
    name = "csv" if spec.source == "csv" else spec.name
    return load_dataset(name, spec.size, data_root, spec.positive or None, spec.binary, manifest, classes)


# --------------------------------------------------------------------------- batches


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[0, 255]`` to float ``[-1, 1]``, MedMNIST's reference normalisation (mean = std = 0.5)."""
    return images.float().div_(127.5).sub_(1.0)


def batches(
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    channels_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y, rows)`` minibatches from tensors already on the target device.

    Indexing whole tensors and normalising per batch keeps the loop free of Python per
    sample; ``rows`` lets callers map a batch back to sample IDs.
    """
    n = len(labels)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    order = order.to(images.device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for start in range(0, n, batch_size):
        rows = order[start : start + batch_size]
        x = to_float(images.index_select(0, rows)).contiguous(memory_format=fmt)
        yield x, labels.index_select(0, rows), rows
