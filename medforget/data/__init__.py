"""Datasets, stable sample and patient IDs, manifests, and the disease (positive) class.

Two sources share one in-memory form (:class:`Dataset` of :class:`Split`, in :mod:`.core`):

* MedMNIST 2D datasets (:mod:`.medmnist`), optionally enriched by a manifest CSV with
  ``sample_id, patient_id`` and attribute columns (``sex``, ``age``, ``site``...) (:mod:`.manifest`);
* the owner's own images, listed in a CSV (:mod:`.images`), or a published dataset's own CSVs
  (CheXpert, :mod:`.chexpert`).

Images too large for memory are decoded once into an on-disk uint8 cache (:mod:`.imagecache`)
and read a batch at a time (:mod:`.lazy`), with the same IDs and fingerprints.

:func:`load_dataset` reads either; :func:`load_from_spec` rebuilds what a checkpoint records.
"""

from medforget.data.batches import batches, to_float
from medforget.data.core import (
    SPLITS,
    Dataset,
    DataSource,
    DataSpec,
    Split,
    concat_splits,
    parse_sample_id,
    sample_id,
)
from medforget.data.imagecache import current_reading, reading
from medforget.data.images import load_csv_dataset
from medforget.data.labels import DEFAULT_POSITIVE, resolve_positive
from medforget.data.lazy import LazyImages
from medforget.data.load import DataPaths, load_dataset, load_from_spec
from medforget.data.medmnist import DATA_ROOT_ENV, MEDMNIST_SIZES, load_medmnist, resolve_data_root

__all__ = [
    "DATA_ROOT_ENV",
    "DEFAULT_POSITIVE",
    "MEDMNIST_SIZES",
    "SPLITS",
    "DataPaths",
    "DataSource",
    "DataSpec",
    "Dataset",
    "LazyImages",
    "Split",
    "batches",
    "concat_splits",
    "current_reading",
    "load_csv_dataset",
    "load_dataset",
    "load_from_spec",
    "load_medmnist",
    "parse_sample_id",
    "reading",
    "resolve_data_root",
    "resolve_positive",
    "sample_id",
    "to_float",
]
