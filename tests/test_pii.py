"""PII at rest: sealing, key rotation, keyed hashes, the embedded key file."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from loanflow.pii import (
    KEY_FILE_NAME,
    PiiCipher,
    PiiKeyError,
    derive_hash_key,
    load_cipher,
    new_key_text,
    parse_hash_key,
)
from tests.conftest import all_at_once

OLD = os.urandom(32)
NEW = os.urandom(32)
SSN = b"123456789"


def text(*keys: bytes) -> str:
    return ",".join(base64.b64encode(key).decode() for key in keys)


# -- sealing ------------------------------------------------------------------------------


def test_sealed_value_opens_back_to_the_plaintext() -> None:
    cipher = PiiCipher([NEW])

    assert cipher.open(cipher.seal(SSN)) == SSN


def test_sealed_value_does_not_contain_the_plaintext() -> None:
    assert SSN not in PiiCipher([NEW]).seal(SSN)


def test_sealing_twice_gives_different_ciphertexts() -> None:
    cipher = PiiCipher([NEW])

    assert cipher.seal(SSN) != cipher.seal(SSN)


def test_tampered_ciphertext_raises_pii_key_error() -> None:
    cipher = PiiCipher([NEW])
    sealed = bytearray(cipher.seal(SSN))
    sealed[-1] ^= 0x01

    with pytest.raises(PiiKeyError, match="integrity"):
        cipher.open(bytes(sealed))


def test_value_sealed_under_an_unknown_key_raises_pii_key_error() -> None:
    sealed = PiiCipher([OLD]).seal(SSN)

    with pytest.raises(PiiKeyError, match="no PII key"):
        PiiCipher([NEW]).open(sealed)


def test_cipher_refuses_a_key_of_the_wrong_length() -> None:
    with pytest.raises(PiiKeyError, match="32-byte"):
        PiiCipher([os.urandom(16)])


# -- rotation -----------------------------------------------------------------------------


def test_value_sealed_under_the_old_key_opens_after_rotation() -> None:
    sealed = PiiCipher([OLD]).seal(SSN)

    assert PiiCipher([NEW, OLD]).open(sealed) == SSN


def test_new_seals_after_rotation_carry_the_new_key_id() -> None:
    rotated = PiiCipher([NEW, OLD])

    sealed = rotated.seal(SSN)

    assert rotated.key_id == PiiCipher([NEW]).key_id
    assert sealed[:4].hex() == PiiCipher([NEW]).key_id
    assert PiiCipher([NEW]).open(sealed) == SSN


# -- keyed hash ---------------------------------------------------------------------------


def test_keyed_hash_is_stable_for_one_key() -> None:
    assert PiiCipher([NEW]).keyed_hash(SSN) == PiiCipher([NEW]).keyed_hash(SSN)


def test_keyed_hash_differs_across_keys() -> None:
    assert PiiCipher([NEW]).keyed_hash(SSN) != PiiCipher([OLD]).keyed_hash(SSN)


def test_keyed_hash_does_not_show_its_input() -> None:
    assert SSN.decode() not in PiiCipher([NEW]).keyed_hash(SSN)


def test_keyed_hash_survives_a_key_rotation() -> None:
    # The SSN hash (24 h duplicate flag) and the idempotency fingerprint (72 h replays)
    # are compared with values computed before the rotation.
    before = PiiCipher([OLD]).keyed_hash(SSN)

    after = PiiCipher([NEW, OLD]).keyed_hash(SSN)

    assert after == before


#: A key whose hashes were recorded before the hash key could be pinned: they must never
#: change, or every stored duplicate-SSN hash and idempotency fingerprint would.
KNOWN_KEY = bytes(range(32))
KNOWN_SSN_HASH = "c8de602028767ed2637577b18cafdc71a78c769ec8ad759020ba5da5dc27cf22"
KNOWN_VELOCITY_SUBKEY = "8b41a1c3687d6678ca993e0af37b4724190e8e52eb50f8ebeaa0724778636151"


def test_keyed_hashes_of_a_key_are_what_they_always_were() -> None:
    cipher = PiiCipher([os.urandom(32), KNOWN_KEY])

    assert cipher.keyed_hash(SSN) == KNOWN_SSN_HASH
    assert cipher.subkey("velocity").hex() == KNOWN_VELOCITY_SUBKEY


def test_dropping_the_oldest_key_unpinned_changes_every_hash() -> None:
    # Why the hash key is pinned before the oldest key goes.
    assert PiiCipher([NEW]).keyed_hash(SSN) != PiiCipher([NEW, OLD]).keyed_hash(SSN)


def test_the_pinned_hash_key_hashes_as_the_oldest_key_did() -> None:
    before = PiiCipher([NEW, OLD])

    pinned = PiiCipher([NEW], hash_key=parse_hash_key(before.hash_key_text()))

    assert pinned.keyed_hash(SSN) == before.keyed_hash(SSN) == PiiCipher([OLD]).keyed_hash(SSN)
    assert pinned.subkey("velocity") == before.subkey("velocity")
    assert pinned.hash_key_id == before.hash_key_id


def test_the_pinned_hash_key_of_the_known_key_keeps_its_known_hashes() -> None:
    pinned = PiiCipher([NEW], hash_key=derive_hash_key(KNOWN_KEY))

    assert pinned.keyed_hash(SSN) == KNOWN_SSN_HASH
    assert pinned.subkey("velocity").hex() == KNOWN_VELOCITY_SUBKEY


def test_an_empty_hash_key_setting_derives_from_the_oldest_key(tmp_path: Path) -> None:
    cipher = load_cipher(configured=text(NEW, KNOWN_KEY), data_dir=tmp_path, embedded=False,
                         hash_key="  ")

    assert not cipher.hash_key_pinned
    assert cipher.keyed_hash(SSN) == KNOWN_SSN_HASH


def test_the_hash_key_says_which_configured_key_it_derives_from() -> None:
    assert PiiCipher([NEW, OLD]).hash_key_derivable_from == [PiiCipher([OLD]).key_id]
    pinned_old = PiiCipher([NEW, OLD], hash_key=derive_hash_key(OLD))
    assert pinned_old.hash_key_pinned
    assert pinned_old.hash_key_derivable_from == [PiiCipher([OLD]).key_id]
    assert PiiCipher([NEW], hash_key=os.urandom(32)).hash_key_derivable_from == []


@pytest.mark.parametrize("spelling", [
    pytest.param(lambda key: base64.urlsafe_b64encode(key).decode(), id="url-safe"),
    pytest.param(lambda key: base64.b64encode(key).decode(), id="standard"),
    pytest.param(lambda key: base64.urlsafe_b64encode(key).decode().rstrip("="), id="unpadded"),
    pytest.param(lambda key: f"  {base64.b64encode(key).decode()}\n", id="spaced"),
])
def test_the_hash_key_setting_takes_base64_as_usually_written(spelling) -> None:
    key = os.urandom(32)

    assert parse_hash_key(spelling(key)) == key


@pytest.mark.parametrize(("value", "expected"), [
    ("not base64!", "not base64"),
    ("k3y,an0ther", "not base64"),
    (base64.b64encode(b"s3cret-16-bytes!").decode(), "got 16 bytes"),
    (base64.b64encode(b"x" * 33).decode(), "got 33 bytes"),
])
def test_a_bad_hash_key_setting_is_refused_without_showing_it(value, expected) -> None:
    with pytest.raises(PiiKeyError, match="LOANFLOW_PII_HASH_KEY") as refused:
        parse_hash_key(value)

    assert expected in str(refused.value)
    assert value not in str(refused.value)


def test_a_bad_hash_key_setting_stops_loading_before_a_key_file_is_made(tmp_path: Path) -> None:
    with pytest.raises(PiiKeyError, match="LOANFLOW_PII_HASH_KEY"):
        load_cipher(configured="", data_dir=tmp_path, embedded=True, hash_key="short")

    assert not (tmp_path / KEY_FILE_NAME).exists()


def test_cipher_refuses_a_hash_key_of_the_wrong_length() -> None:
    with pytest.raises(PiiKeyError, match="32-byte hash key"):
        PiiCipher([NEW], hash_key=os.urandom(31))


# -- re-sealing ---------------------------------------------------------------------------


def test_reseal_moves_a_value_to_the_current_key_with_its_length() -> None:
    rotated = PiiCipher([NEW, OLD])
    sealed = PiiCipher([OLD]).seal(SSN)

    resealed = rotated.reseal(sealed)

    assert not rotated.is_current(sealed) and rotated.is_current(resealed)
    assert len(resealed) == len(sealed)
    assert PiiCipher([NEW]).open(resealed) == SSN


def test_reseal_of_a_value_no_configured_key_opens_raises() -> None:
    with pytest.raises(PiiKeyError, match="no PII key"):
        PiiCipher([NEW]).reseal(PiiCipher([OLD]).seal(SSN))


# -- loading the key ----------------------------------------------------------------------


def test_embedded_mode_creates_a_private_key_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"

    load_cipher(configured="", data_dir=data_dir, embedded=True)

    key_file = data_dir / KEY_FILE_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_embedded_mode_reuses_the_key_file_on_the_next_start(tmp_path: Path) -> None:
    first = load_cipher(configured="", data_dir=tmp_path, embedded=True)
    sealed = first.seal(SSN)

    second = load_cipher(configured="", data_dir=tmp_path, embedded=True)

    assert second.key_id == first.key_id
    assert second.open(sealed) == SSN


def start_together(data_dir: Path, count: int) -> list[str | Exception]:
    """`count` first starts racing over one empty data dir: each one's key id or error."""
    def load() -> str:
        return load_cipher(configured="", data_dir=data_dir, embedded=True).key_id

    return all_at_once(count, load)


def test_concurrent_first_starts_all_get_the_same_key(tmp_path: Path) -> None:
    # The window between creating the key file and writing it is short: try a few times.
    for trial in range(20):
        outcomes = start_together(tmp_path / f"data-{trial}", 8)

        assert [o for o in outcomes if isinstance(o, Exception)] == [], f"trial {trial}"
        assert len(set(outcomes)) == 1, f"trial {trial}: {sorted(set(map(str, outcomes)))}"


def test_configured_key_is_used_and_no_key_file_is_written(tmp_path: Path) -> None:
    cipher = load_cipher(configured=text(NEW), data_dir=tmp_path, embedded=True)

    assert cipher.key_id == PiiCipher([NEW]).key_id
    assert not (tmp_path / KEY_FILE_NAME).exists()


def test_configured_keys_name_the_new_key_first(tmp_path: Path) -> None:
    sealed = PiiCipher([OLD]).seal(SSN)

    cipher = load_cipher(configured=text(NEW, OLD), data_dir=tmp_path, embedded=False)

    assert cipher.key_id == PiiCipher([NEW]).key_id
    assert cipher.open(sealed) == SSN


def test_configured_key_may_be_url_safe_base64(tmp_path: Path) -> None:
    key_text = new_key_text()

    cipher = load_cipher(configured=key_text, data_dir=tmp_path, embedded=False)

    assert cipher.key_id == PiiCipher([base64.urlsafe_b64decode(key_text)]).key_id


def test_outside_embedded_mode_a_missing_key_raises_pii_key_error(tmp_path: Path) -> None:
    with pytest.raises(PiiKeyError, match="LOANFLOW_PII_KEY"):
        load_cipher(configured="", data_dir=tmp_path, embedded=False)

    assert not (tmp_path / KEY_FILE_NAME).exists()


def test_malformed_configured_key_raises_pii_key_error(tmp_path: Path) -> None:
    with pytest.raises(PiiKeyError):
        load_cipher(configured="not base64!", data_dir=tmp_path, embedded=False)


# -- secrecy ------------------------------------------------------------------------------


def test_repr_never_contains_a_key() -> None:
    hash_key = os.urandom(32)
    shown = repr(PiiCipher([NEW, OLD], hash_key=hash_key))

    for key in (NEW, OLD, hash_key, derive_hash_key(OLD)):
        for spelling in (
            key.hex(),
            repr(key),
            base64.b64encode(key).decode(),
            base64.urlsafe_b64encode(key).decode(),
        ):
            assert spelling not in shown
