"""PII at rest: AES-GCM sealing, keyed hashes for duplicate checks, masking.

A sealed value is `key_id (4 bytes) | nonce (12 bytes) | ciphertext+tag`, so
old data stays readable after a rotation: `LOANFLOW_PII_KEY="NEW,OLD"` seals
with NEW and opens with whichever key id a value carries. Keyed hashes derive
from the last (oldest) key listed, so duplicate checks and idempotency
fingerprints keep matching across a rotation.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
KEY_ID_BYTES = 4
KEY_FILE_NAME = "pii.key"


class PiiKeyError(ValueError):
    """The PII key is missing, malformed, or does not open a sealed value."""


class PiiCipher:
    """Seals and opens PII; derives the keyed hash. Never shows its keys."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise PiiKeyError("expected at least one PII key, got none")
        for key in keys:
            if len(key) != KEY_BYTES:
                raise PiiKeyError(f"expected a {KEY_BYTES}-byte PII key, got {len(key)} bytes")
        self._aeads = {_key_id(key): AESGCM(key) for key in keys}
        self._current_id = _key_id(keys[0])
        self._current = self._aeads[self._current_id]
        # A separate key for hashing, so a hash never helps attack the cipher; from the
        # oldest key, so hashes made before a rotation still compare equal after it.
        self._hash_key = hashlib.sha256(b"loanflow/pii-hash/v1" + keys[-1]).digest()
        self._keyed = hmac.new(self._hash_key, digestmod="sha256")

    def __repr__(self) -> str:
        return f"PiiCipher(key_id={self._current_id.hex()})"

    @property
    def key_id(self) -> str:
        return self._current_id.hex()

    def seal(self, plaintext: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return self._current_id + nonce + self._current.encrypt(nonce, plaintext, None)

    def open(self, sealed: bytes) -> bytes:
        key_id, nonce = sealed[:KEY_ID_BYTES], sealed[KEY_ID_BYTES : KEY_ID_BYTES + NONCE_BYTES]
        aead = self._aeads.get(key_id)
        if aead is None:
            raise PiiKeyError(f"no PII key with id {key_id.hex()} is configured")
        try:
            return aead.decrypt(nonce, sealed[KEY_ID_BYTES + NONCE_BYTES :], None)
        except InvalidTag as exc:
            raise PiiKeyError("sealed PII failed its integrity check") from exc

    def subkey(self, purpose: str) -> bytes:
        """A 32-byte key for another purpose (e.g. the velocity hashes), stable across
        rotations like the keyed hash, and useless for opening PII."""
        return hmac.new(self._hash_key, b"loanflow/subkey/" + purpose.encode(), "sha256").digest()

    def keyed_hash(self, data: bytes) -> str:
        """HMAC-SHA256 as hex: equal inputs compare equal, the input cannot be read back."""
        # A copy of the keyed state skips hashing the key again: a third cheaper than
        # hmac.digest's one-shot path, which looks the digest up and keys it each call.
        keyed = self._keyed.copy()
        keyed.update(data)
        return keyed.hexdigest()


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"loanflow/pii-key-id/v1" + key).digest()[:KEY_ID_BYTES]


def parse_keys(text: str) -> list[bytes]:
    """`"NEW,OLD,..."`, each standard or URL-safe base64 of 32 bytes."""
    keys = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            keys.append(base64.urlsafe_b64decode(part.replace("+", "-").replace("/", "_")))
        except ValueError as exc:
            raise PiiKeyError("LOANFLOW_PII_KEY: expected base64 keys separated by commas") from exc
    return keys


def load_cipher(*, configured: str, data_dir: Path, embedded: bool) -> PiiCipher:
    """The configured keys; in embedded mode without one, a key file made on first start."""
    if configured:
        return PiiCipher(parse_keys(configured))
    if not embedded:
        raise PiiKeyError("LOANFLOW_PII_KEY is required outside the embedded mode")
    path = data_dir / KEY_FILE_NAME
    if not path.exists():
        _create_key_file(path)
    return PiiCipher(parse_keys(path.read_text()))


def _create_key_file(path: Path) -> None:
    """Write a new key so the file only ever appears whole, and only once.

    Processes starting together each write their own temporary file; the first
    hard link wins and the others read the winner's key.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(base64.urlsafe_b64encode(os.urandom(KEY_BYTES)) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # another process won: use its key
            os.link(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        tmp.unlink()


def new_key_text() -> str:
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode()


def mask_ssn(ssn: str) -> str:
    return "***-**-" + ssn[-4:]


MASKED_DATE = "****-**-**"
