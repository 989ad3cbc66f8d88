"""PII at rest: AES-GCM sealing, keyed hashes for duplicate checks, masking.

A sealed value is `key_id (4 bytes) | nonce (12 bytes) | ciphertext+tag`, so
old data stays readable after a rotation: `LOANFLOW_PII_KEY="NEW,OLD"` seals
with NEW and opens with whichever key id a value carries (`loanflow pii reseal`
brings stored values to NEW, so OLD can be retired: rotation/).

Keyed hashes (the duplicate-SSN hash, idempotency fingerprints, the velocity
subkeys) derive from one hash key: the one pinned in `LOANFLOW_PII_HASH_KEY`, or
else the one derived from the last (oldest) PII key listed, so they keep matching
across a rotation. A pinned hash key is used as it is: pinning the value `loanflow
pii hash-key` prints changes no hash, and the oldest PII key may then be dropped.
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
#: Prefix of the hash key's derivation from a PII key. Never to change: stored hashes
#: (and pinned hash keys) were made with it.
HASH_KEY_LABEL = b"loanflow/pii-hash/v1"


class PiiKeyError(ValueError):
    """The PII key is missing, malformed, or does not open a sealed value."""


class PiiCipher:
    """Seals and opens PII; derives the keyed hash. Never shows its keys."""

    def __init__(self, keys: list[bytes], *, hash_key: bytes | None = None) -> None:
        """`keys`: the current key first, then older ones. `hash_key`: the pinned hash
        key (LOANFLOW_PII_HASH_KEY), used as it is; None derives it from the oldest key."""
        if not keys:
            raise PiiKeyError("expected at least one PII key, got none")
        for key in keys:
            if len(key) != KEY_BYTES:
                raise PiiKeyError(f"expected a {KEY_BYTES}-byte PII key, got {len(key)} bytes")
        if hash_key is not None and len(hash_key) != KEY_BYTES:
            raise PiiKeyError(f"expected a {KEY_BYTES}-byte hash key, got {len(hash_key)} bytes")
        self._key_ids = list(dict.fromkeys(_key_id(key) for key in keys))
        self._aeads = {_key_id(key): AESGCM(key) for key in keys}
        self._current_id = self._key_ids[0]
        self._current = self._aeads[self._current_id]
        # A separate key for hashing, so a hash never helps attack the cipher; from the
        # oldest key (or pinned), so hashes made before a rotation still compare equal.
        self._hash_pinned = hash_key is not None
        self._hash_key = hash_key if hash_key is not None else derive_hash_key(keys[-1])
        #: The configured keys whose derived hash key is the one in force: a pinned hash
        #: key is recognised as the oldest key's, which may then be dropped.
        self._hash_matches = [key_id for key, key_id in ((k, _key_id(k)) for k in keys)
                              if hmac.compare_digest(derive_hash_key(key), self._hash_key)]
        self._keyed = hmac.new(self._hash_key, digestmod="sha256")

    def __repr__(self) -> str:
        return f"PiiCipher(key_id={self._current_id.hex()})"

    @property
    def key_id(self) -> str:
        """The current key's id: what `seal` marks values with."""
        return self._current_id.hex()

    @property
    def key_ids(self) -> list[str]:
        """Every configured key's id, the current one first, as listed."""
        return [key_id.hex() for key_id in self._key_ids]

    @property
    def hash_key_pinned(self) -> bool:
        """Whether the hash key is LOANFLOW_PII_HASH_KEY's, rather than derived."""
        return self._hash_pinned

    @property
    def hash_key_derivable_from(self) -> list[str]:
        """Ids of the configured keys from which the hash key in force derives: the
        oldest when not pinned; when pinned, those (if any) it was pinned from."""
        return list(dict.fromkeys(key_id.hex() for key_id in self._hash_matches))

    @property
    def hash_key_id(self) -> str:
        """A fingerprint of the hash key (not the key): equal ids, equal hashes."""
        return hashlib.sha256(b"loanflow/pii-hash-key-id/v1" + self._hash_key).hexdigest()[:8]

    def hash_key_text(self) -> str:
        """The hash key in base64, to pin as LOANFLOW_PII_HASH_KEY. A secret."""
        return base64.urlsafe_b64encode(self._hash_key).decode()

    def is_current(self, sealed: bytes) -> bool:
        """Whether `sealed` carries the current key's id (it is not opened)."""
        return sealed[:KEY_ID_BYTES] == self._current_id

    def reseal(self, sealed: bytes) -> bytes:
        """The same plaintext sealed under the current key; PiiKeyError if it does not
        open. The result has the same length (same layout, same plaintext)."""
        return self.seal(self.open(sealed))

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


def derive_hash_key(key: bytes) -> bytes:
    """The hash key an unpinned cipher derives from its oldest PII key."""
    return hashlib.sha256(HASH_KEY_LABEL + key).digest()


def sealed_key_id(sealed: bytes) -> str:
    """The id of the key a sealed value says it was sealed with (hex; not verified)."""
    return sealed[:KEY_ID_BYTES].hex()


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


def parse_hash_key(text: str) -> bytes | None:
    """`LOANFLOW_PII_HASH_KEY`: standard or URL-safe base64 of 32 bytes, as `loanflow pii
    hash-key` prints it; None when empty. Errors never show the value."""
    text = text.strip()
    if not text:
        return None
    expected = ("LOANFLOW_PII_HASH_KEY: expected the base64 of 32 bytes that `loanflow pii"
                " hash-key` prints")
    normalised = text.replace("+", "-").replace("/", "_")
    try:
        key = base64.b64decode(normalised + "=" * (-len(normalised) % 4), altchars=b"-_",
                               validate=True)
    except ValueError as exc:  # binascii.Error
        raise PiiKeyError(f"{expected}, got text that is not base64") from exc
    if len(key) != KEY_BYTES:
        raise PiiKeyError(f"{expected}, got {len(key)} bytes")
    return key


def load_cipher(
    *, configured: str, data_dir: Path, embedded: bool, hash_key: str = ""
) -> PiiCipher:
    """The configured keys; in embedded mode without one, a key file made on first start.
    `hash_key`: LOANFLOW_PII_HASH_KEY (empty: derived from the oldest key)."""
    pinned = parse_hash_key(hash_key)
    if configured:
        return PiiCipher(parse_keys(configured), hash_key=pinned)
    if not embedded:
        raise PiiKeyError("LOANFLOW_PII_KEY is required outside the embedded mode")
    path = data_dir / KEY_FILE_NAME
    if not path.exists():
        _create_key_file(path)
    return PiiCipher(parse_keys(path.read_text()), hash_key=pinned)


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
