"""Keyed hashing of sample and patient IDs, so no patient identifier is stored in clear.

Checkpoints (and the deletion ledger) record *which* samples were forgotten as
HMAC-SHA256 digests. With the hospital's secret (``MEDFORGET_KEY`` or a key file) the
digests cannot be reversed by enumerating IDs, yet anyone holding the key can check
that a given request was applied. Without a key, a random per-checkpoint salt is used
and recorded; that still keeps IDs out of plain sight but anyone can test a guess, so
medforget says so.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, Field

from medforget.errors import MedforgetError

log = logging.getLogger(__name__)

KEY_ENV = "MEDFORGET_KEY"
KEY_FILE_ENV = "MEDFORGET_KEY_FILE"


def load_key(key_file: str | os.PathLike[str] | None = None) -> bytes | None:
    """The secret from ``key_file``, else ``$MEDFORGET_KEY``, else ``$MEDFORGET_KEY_FILE``, else None.

    A key file that others may read is used, with a warning naming the ``chmod`` that fixes it.
    """
    path = key_file or os.environ.get(KEY_FILE_ENV)
    if key_file or (path and not os.environ.get(KEY_ENV)):
        try:
            key = Path(path).read_bytes().strip()  # type: ignore[arg-type]
            mode = Path(path).stat().st_mode  # type: ignore[arg-type]
        except OSError as exc:
            raise MedforgetError(f"cannot read key file {path}: {exc.strerror}") from None
        if len(key) < 16:
            raise MedforgetError(f"key file {path} holds fewer than 16 bytes; use a longer secret")
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("key file %s can be read by other users (mode %o); run: chmod 600 %s", path, mode & 0o777, path)
        return key
    env = os.environ.get(KEY_ENV)
    if env:
        if len(env) < 16:
            raise MedforgetError(f"${KEY_ENV} is shorter than 16 characters; use a longer secret")
        return env.encode()
    return None


def key_id(key: bytes) -> str:
    """A short public identifier of a key (not the key): tells which key a record needs."""
    return hashlib.sha256(b"medforget-key-id:" + key).hexdigest()[:16]


def new_key() -> str:
    """A fresh 256-bit secret, hex encoded, for ``medforget key new``."""
    return secrets.token_hex(32)


def write_new_key(path: Path) -> None:
    """Create ``path`` holding a fresh secret, readable by its owner only (0600 whatever the umask); never replaces."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise MedforgetError(
            f"{path} already exists; a key is never overwritten (delete it first if you mean to)"
        ) from None
    except OSError as exc:
        raise MedforgetError(f"cannot create key file {path}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (new_key() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


class HashedIds(BaseModel):
    """A set of IDs as keyed digests, with what is needed to test membership given the key."""

    scheme: str = Field("hmac-sha256", description="Digest function")
    key_id: str | None = Field(None, description="Identifier of the secret key used, if one was")
    salt: str | None = Field(None, description="Public salt used when no secret key was available")
    sample_hashes: list[str] = Field(default_factory=list, description="Sorted digests of sample IDs")
    patient_hashes: list[str] = Field(default_factory=list, description="Sorted digests of patient IDs")

    def hasher(self, key: bytes | None) -> IdHasher:
        """The hasher that produced these digests; ``key`` is required for keyed records."""
        if self.key_id:
            if key is None:
                raise MedforgetError(f"this record is keyed (key id {self.key_id}); set ${KEY_ENV} or --key-file")
            if key_id(key) != self.key_id:
                raise MedforgetError(f"wrong key: this record needs key id {self.key_id}, got {key_id(key)}")
            return IdHasher(key)
        return IdHasher(None, salt=self.salt)

    def contains_samples(self, ids: Iterable[str], key: bytes | None) -> list[bool]:
        h = self.hasher(key)
        known = set(self.sample_hashes)
        return [h(i) in known for i in ids]


class IdHasher:
    """HMAC-SHA256 of IDs under a secret key, or under a public salt when there is none."""

    def __init__(self, key: bytes | None, salt: str | None = None) -> None:
        if key is not None:
            self._key, self.key_id, self.salt = key, key_id(key), None
        else:
            self.salt = salt or secrets.token_hex(16)
            self._key, self.key_id = bytes.fromhex(self.salt), None

    def __call__(self, identifier: str) -> str:
        return hmac.new(self._key, identifier.encode(), hashlib.sha256).hexdigest()

    def request_ref(self, request_id: str | None) -> str | None:
        """A request's own reference as a digest (domain-separated from sample and patient IDs).

        People fill request IDs with names and dates of birth; what is stored for good (checkpoints, the
        ledger) is this digest, which anyone holding the key can match against a reference they know.
        """
        return None if request_id is None else self(f"request:{request_id}")

    def record(
        self, sample_ids: Iterable[str], patient_ids: Iterable[str], previous: HashedIds | None = None
    ) -> HashedIds:
        """Digest the IDs, merged with an earlier record made with the same key or salt."""
        samples = {self(i) for i in sample_ids} | set(previous.sample_hashes if previous else [])
        patients = {self(i) for i in patient_ids} | set(previous.patient_hashes if previous else [])
        return HashedIds(
            key_id=self.key_id, salt=self.salt, sample_hashes=sorted(samples), patient_hashes=sorted(patients)
        )
