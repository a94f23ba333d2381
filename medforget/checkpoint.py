"""Checkpoints: one ``.safetensors`` file holding the weights and a provenance record.

Pickled ``.pth`` files can run code when loaded and say nothing about their origin. A
medforget checkpoint is safetensors (data only) whose header carries
:class:`CheckpointMeta`: the architecture, the classes and the disease class, which data
it was trained on (a root-independent fingerprint), the full training config, the
forgotten samples as keyed hashes, and the parent checkpoint's hash (lineage).

Integrity: the metadata records a hash of the weights, and the header records a hash of
the metadata, so any changed byte (weights, metadata or header) is detected on load. The
model's own logits on its data (:mod:`medforget.outputs`) may be stored next to the weights,
under the same hash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, Field, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from medforget import __version__
from medforget import outputs as recorded
from medforget.config import TrainConfig
from medforget.data import Dataset, DataSpec
from medforget.errors import CheckpointError, TamperedError
from medforget.evaluation.calibration import OperatingPoint
from medforget.fileio import atomic_path
from medforget.keys import HashedIds, key_id
from medforget.models import create_model
from medforget.runtime import RuntimeRecord

FORMAT = "medforget-checkpoint/1"
META_KEY = "medforget"
DIGEST_KEY = "medforget_digest"
SIGNATURE_KEY = "medforget_signature"


class DatasetRecord(BaseModel):
    """What the model was trained on."""

    spec: DataSpec
    n_train: int = Field(description="Samples in the original training split")
    fingerprint: str = Field(description="SHA-256 over sorted training sample IDs, labels and image bytes")


class UnlearningRecord(BaseModel):
    """How this checkpoint was derived from its parent."""

    method: str
    params: dict[str, Any] = Field(default_factory=dict)
    request_ref: str | None = Field(
        None, description="Keyed digest of the request's reference (under the forgotten record's key or salt)"
    )
    request_id: str | None = Field(None, description="Legacy (before 0.2): the request's reference in clear")
    input_signature: Literal["verified", "unsigned, accepted", "not checked (no key)"] | None = Field(
        None, description="How the input checkpoint's signature was checked before unlearning"
    )
    n_forgotten_samples: int = 0
    n_forgotten_patients: int = 0
    seconds: float | None = None


class CheckpointMeta(BaseModel):
    """Provenance record stored in every checkpoint's safetensors header."""

    format: str = FORMAT
    medforget_version: str = __version__
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    arch: str
    num_classes: int
    in_channels: int
    image_size: int
    classes: list[str]
    positive: list[int] = Field(description="Label indices of the disease (positive) class(es)")
    dataset: DatasetRecord
    train_config: TrainConfig
    metrics: dict[str, float] = Field(default_factory=dict, description="Accuracies measured when saved")
    forgotten: HashedIds = Field(default_factory=HashedIds, description="Samples/patients removed so far")
    parent_sha256: str | None = Field(None, description="File hash of the checkpoint this one derives from")
    unlearning: UnlearningRecord | None = None
    weights_sha256: str = Field(
        "", description="Hash of the tensors (names, dtypes, shapes, bytes), the recorded outputs included"
    )
    recorded_outputs: list[str] = Field(
        default_factory=list,
        description="Splits whose logits by this model are stored next to the weights (outputs.<split>, NaN for "
        "forgotten rows), so later requests need not run the model on them again",
    )
    operating_point: OperatingPoint | None = Field(
        None, description="Decision threshold set after unlearning (already added to the output bias)"
    )
    runtime: RuntimeRecord | None = Field(
        None, description="How it was trained: device, precision, compile, determinism, processes (torchrun)"
    )
    signing_key_id: str | None = Field(
        None,
        description="Key id of the HMAC signature this file was written with (a signature missing later was stripped)",
    )

    @classmethod
    def for_dataset(cls, dataset: Dataset, cfg: TrainConfig, **extra: Any) -> CheckpointMeta:
        return cls(
            arch=cfg.arch,
            num_classes=len(dataset.classes),
            in_channels=dataset.n_channels,
            image_size=dataset.spec.size,
            classes=dataset.classes,
            positive=dataset.positive,
            dataset=DatasetRecord(spec=dataset.spec, n_train=len(dataset.train), fingerprint=dataset.fingerprint()),
            train_config=cfg,
            **extra,
        )


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """Canonical hash of a state dict, independent of file layout and memory format."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _sign(meta_json: str, key: bytes) -> str:
    return hmac.new(key, meta_json.encode(), hashlib.sha256).hexdigest()


def checkpoint_bytes(
    model_or_state: nn.Module | dict[str, torch.Tensor],
    meta: CheckpointMeta,
    key: bytes | None = None,
    outputs: dict[str, torch.Tensor] | None = None,
) -> bytes:
    """Serialise weights plus metadata (with integrity digest and, given a key, an HMAC signature).

    ``outputs``: the model's logits per split (:mod:`medforget.outputs`), stored with the weights and covered
    by the same digest.
    """
    state = model_or_state.state_dict() if isinstance(model_or_state, nn.Module) else model_or_state
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()} | recorded.pack(outputs or {})
    meta = meta.model_copy(
        update={
            "weights_sha256": weights_digest(state),
            "signing_key_id": key_id(key) if key is not None else None,
            "recorded_outputs": sorted(outputs or {}),
        }
    )
    meta_json = meta.model_dump_json()
    header = {META_KEY: meta_json, DIGEST_KEY: hashlib.sha256(meta_json.encode()).hexdigest()}
    if key is not None:
        header[SIGNATURE_KEY] = json.dumps({"key_id": key_id(key), "hmac": _sign(meta_json, key)})
    return st_save(state, metadata=header)


def save_checkpoint(
    path: str | Path,
    model_or_state: nn.Module | dict[str, torch.Tensor],
    meta: CheckpointMeta,
    force: bool = False,
    key: bytes | None = None,
    outputs: dict[str, torch.Tensor] | None = None,
) -> str:
    """Write atomically; never replace an existing file unless ``force``. Returns the file's SHA-256."""
    data = checkpoint_bytes(model_or_state, meta, key, outputs)
    with atomic_path(Path(path), force) as tmp:
        tmp.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def read_header(raw: bytes) -> dict[str, Any] | None:
    """The safetensors JSON header of ``raw`` as a dict, or None if it does not parse."""
    if len(raw) < 8:
        return None
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        return None
    try:
        header = json.loads(raw[8 : 8 + n])
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return header if isinstance(header, dict) else None


def header_metadata(raw: bytes) -> dict[str, Any] | None:
    """The header's ``__metadata__`` table (string to string), or None if the header does not parse."""
    header = read_header(raw)
    meta = header.get("__metadata__") if header is not None else None
    return meta if isinstance(meta, dict) else None


def _parse_header(raw: bytes, path: Path) -> dict[str, Any]:
    """Read the safetensors header ourselves to reject trailing or missing bytes and bad offsets."""
    if len(raw) < 8:
        raise CheckpointError(f"{path} is not a safetensors file (too short)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise CheckpointError(f"{path} is not a valid safetensors file (header length {n} exceeds file)")
    header = read_header(raw)
    if header is None:
        raise CheckpointError(f"{path} has a corrupted safetensors header")
    try:
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (KeyError, IndexError, TypeError, ValueError):
        raise CheckpointError(f"{path} has a corrupted safetensors header") from None
    extra = len(raw) - 8 - n - max(ends, default=0)
    if extra > 0:
        raise CheckpointError(f"{path} has {extra} bytes of extra payload after its tensors")
    if extra < 0:
        raise CheckpointError(f"{path} is truncated: {-extra} bytes of its tensors are missing")
    return header


class CheckpointInfo(BaseModel):
    """What ``medforget info --json`` prints: the file, how far it was verified, and its record."""

    path: str
    sha256: str
    signed: bool = Field(description="The header carries an HMAC signature")
    signature_verified: bool = Field(description="The signature was checked under the given key")
    metadata: CheckpointMeta


class LoadedCheckpoint(BaseModel):
    """A verified checkpoint: its metadata, file hash and whether a signature was checked."""

    model_config = {"arbitrary_types_allowed": True}

    path: str
    sha256: str
    meta: CheckpointMeta
    state: dict[str, torch.Tensor]
    outputs: dict[str, torch.Tensor] = Field(
        default_factory=dict, description="The model's recorded logits per split (medforget.outputs)"
    )
    signed: bool = False
    signature_verified: bool = False

    def info(self) -> CheckpointInfo:
        """The file, how far it was verified, and its record."""
        return CheckpointInfo(
            path=self.path,
            sha256=self.sha256,
            signed=self.signed,
            signature_verified=self.signature_verified,
            metadata=self.meta,
        )

    def build_model(self, device: torch.device | str = "cpu") -> nn.Module:
        """The network with these weights, on ``device`` in channels_last."""
        m = self.meta
        model = create_model(m.arch, num_classes=m.num_classes, in_channels=m.in_channels, image_size=m.image_size)
        try:
            model.load_state_dict(self.state, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
            raise CheckpointError(f"{self.path}: weights do not fit {m.arch}: {first}") from None
        return model.to(device=torch.device(device), memory_format=torch.channels_last).eval()


def looks_like_checkpoint(raw: bytes) -> bool:
    """Whether the bytes were written as a medforget checkpoint, even if damaged since.

    A readable header decides by its metadata keys (``medforget``, ``medforget_digest``, ...); an
    unreadable one by whether "medforget" appears in the file at all (the metadata names it many
    times), so a flipped byte in the header is tampering, while a JPEG or an unrelated
    ``.safetensors`` file passed by mistake is bad input.
    """
    meta = header_metadata(raw)
    if meta is not None:
        return any(str(k).startswith(META_KEY) for k in meta)
    return META_KEY.encode() in raw


def parse_signature(metadata: dict[str, Any]) -> dict[str, str] | None:
    """The header's signature as ``{"key_id", "hmac"}``, None if absent; anything malformed is tampering."""
    if SIGNATURE_KEY not in metadata:
        return None
    try:
        sig = json.loads(metadata[SIGNATURE_KEY])
    except (TypeError, ValueError, RecursionError):
        sig = None
    if (
        not isinstance(sig, dict)
        or not isinstance(sig.get("key_id"), str)
        or not isinstance(sig.get("hmac"), str)
        or len(sig["hmac"]) != 64
    ):
        raise TamperedError("its signature field is malformed (the file was edited)")
    return {"key_id": sig["key_id"], "hmac": sig["hmac"]}


def _verified(raw: bytes, path: Path) -> tuple[CheckpointMeta, dict[str, Any], dict[str, torch.Tensor]]:
    """Parse and check the digest, the record and the weights hash; raises on any damage."""
    header = _parse_header(raw, path)
    metadata = header.get("__metadata__") or {}
    if META_KEY not in metadata:
        raise CheckpointError(f"{path} is a safetensors file but not a medforget checkpoint (no metadata)")
    meta_json = metadata[META_KEY]
    if hashlib.sha256(meta_json.encode()).hexdigest() != metadata.get(DIGEST_KEY):
        raise TamperedError(f"{path}: metadata digest mismatch (the file was modified or corrupted)")
    try:
        meta = CheckpointMeta.model_validate_json(meta_json)
    except ValidationError as exc:
        raise TamperedError(f"{path}: invalid metadata: {exc.errors()[0]['msg']}") from None
    try:
        state = st_load(raw)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise TamperedError(f"{path}: unreadable tensors: {exc}") from None
    if weights_digest(state) != meta.weights_sha256:
        raise TamperedError(f"{path}: weights hash mismatch (the weights were modified or corrupted)")
    return meta, metadata, state


def load_checkpoint(path: str | Path, key: bytes | None = None) -> LoadedCheckpoint:
    """Read and verify a checkpoint.

    Args:
        path: the ``.safetensors`` file.
        key: the hospital's secret; a signed checkpoint must then verify under it.

    Returns:
        The verified checkpoint (with whether it was signed, and whether the signature was checked).

    Raises:
        CheckpointError: the file is missing or is not a medforget checkpoint (exit 2).
        TamperedError: it was one but no longer verifies: edited, truncated, extended, re-signed, or its
            signature was stripped or is malformed (exit 3).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} not found") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror}") from None
    try:
        meta, metadata, state = _verified(raw, path)
        sig = parse_signature(metadata)
    except CheckpointError as exc:
        if isinstance(exc, TamperedError) or looks_like_checkpoint(raw):
            msg = str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}"
            raise TamperedError(msg) from None
        raise
    if meta.format != FORMAT:
        raise CheckpointError(f"{path}: unsupported checkpoint format {meta.format!r}")
    if sig is None and meta.signing_key_id is not None:
        raise TamperedError(f"{path}: its record says it was signed (key id {meta.signing_key_id}) but the signature "
                            "was removed")  # fmt: skip
    verified = False
    if sig is not None and key is not None:
        meta_json = metadata[META_KEY]
        if sig["key_id"] != key_id(key) or not hmac.compare_digest(sig["hmac"], _sign(meta_json, key)):
            raise TamperedError(f"{path}: signature does not verify under the given key (key id {key_id(key)})")
        verified = True
    weights, outputs = recorded.unpack(state)
    return LoadedCheckpoint(
        path=str(path),
        sha256=hashlib.sha256(raw).hexdigest(),
        meta=meta,
        state=weights,
        outputs=outputs,
        signed=sig is not None,
        signature_verified=verified,
    )


def check_dataset(ckpt: LoadedCheckpoint, dataset: Dataset) -> None:
    """Refuse to use a checkpoint with data other than what it was trained on."""
    rec = ckpt.meta.dataset
    if dataset.spec.name != rec.spec.name:
        raise CheckpointError(f"{ckpt.path} was trained on {rec.spec.name}, not {dataset.spec.name}")
    fp = dataset.fingerprint()
    if fp != rec.fingerprint:
        raise CheckpointError(
            f"{ckpt.path}: dataset fingerprint mismatch: the {dataset.spec.name} training data found here "
            f"({fp[:12]}) is not what this model was trained on ({rec.fingerprint[:12]})"
        )


def checkpoint_schema() -> dict[str, Any]:
    """JSON Schema of the checkpoint metadata (published for programs that read it)."""
    return CheckpointMeta.model_json_schema()
