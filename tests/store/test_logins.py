"""The store contract for dashboard logins (store/logins.py), on every backend."""

from __future__ import annotations

import asyncio
import time

import msgspec

from loanflow.apikeys import Scope
from loanflow.logins import (
    LOGIN_CODE_TTL_S,
    Redeemed,
    Session,
    hash_secret,
    new_login_code,
)
from loanflow.store.base import Store
from tests.store import test_contract as contract
from tests.store.test_contract import StoreFactory, run

# The contract suite's fixtures: every backend, a fresh store and event loop per test.
event_loop_runner = contract.event_loop_runner
postgres_database = contract.postgres_database
store_factory = contract.store_factory
store = contract.store

SECOND_NS = 1_000_000_000


def session(**changes: object) -> Session:
    now_ns = time.time_ns()
    base = Session(id="s1", actor="login-abc", label="printed by serve",
                   scopes=frozenset({Scope.READ, Scope.OPERATE}),
                   created_at_ns=now_ns, expires_at_ns=now_ns + 3600 * SECOND_NS)
    return msgspec.structs.replace(base, **changes)


def test_a_login_code_is_redeemed_once(store: Store) -> None:
    code, secret = new_login_code(label="printed by serve", now_ns=time.time_ns())
    run(store.create_login_code(code, hash_secret(secret)))

    first = run(store.redeem_login_code(hash_secret(secret), time.time_ns()))
    second = run(store.redeem_login_code(hash_secret(secret), time.time_ns()))

    assert first[0] is Redeemed.OK and first[1] is not None
    assert (first[1].id, first[1].label, first[1].scopes) == (code.id, code.label, code.scopes)
    assert second == (Redeemed.USED, None)


def test_a_login_code_presented_at_once_on_two_stores_is_redeemed_once(
    store_factory: StoreFactory,
) -> None:
    one, other = store_factory(), store_factory()
    code, secret = new_login_code(label="", now_ns=time.time_ns())
    run(one.create_login_code(code, hash_secret(secret)))

    async def race() -> list[Redeemed]:
        now_ns = time.time_ns()
        outcomes = await asyncio.gather(*(
            s.redeem_login_code(hash_secret(secret), now_ns) for s in (one, other) * 5
        ))
        return [outcome for outcome, _ in outcomes]

    outcomes = run(race())

    assert sorted(outcomes) == sorted([Redeemed.OK] + [Redeemed.USED] * 9)


def test_an_expired_login_code_is_refused_and_says_so(store: Store) -> None:
    made_ns = time.time_ns()
    code, secret = new_login_code(label="", now_ns=made_ns)
    run(store.create_login_code(code, hash_secret(secret)))

    late = run(store.redeem_login_code(hash_secret(secret),
                                       made_ns + LOGIN_CODE_TTL_S * SECOND_NS))

    assert late == (Redeemed.EXPIRED, None)


def test_an_unknown_login_code_is_refused(store: Store) -> None:
    assert run(store.redeem_login_code(hash_secret("lc_nope"), time.time_ns())) == (
        Redeemed.UNKNOWN, None)


def test_login_codes_a_day_past_expiry_are_forgotten_when_a_new_one_is_made(
    store: Store,
) -> None:
    old, old_secret = new_login_code(label="", now_ns=0)
    run(store.create_login_code(old, hash_secret(old_secret)))
    new, new_secret = new_login_code(label="", now_ns=time.time_ns())
    run(store.create_login_code(new, hash_secret(new_secret)))

    assert run(store.redeem_login_code(hash_secret(old_secret), time.time_ns()))[0] is (
        Redeemed.UNKNOWN)


def test_a_session_is_found_by_the_hash_of_its_token_only(store: Store) -> None:
    kept = session(key_hash="ab" * 32)
    run(store.create_session(kept, hash_secret("token")))

    assert run(store.find_session(hash_secret("token"))) == kept
    assert run(store.find_session("token")) is None


def test_a_revoked_session_is_found_but_not_usable(store: Store) -> None:
    run(store.create_session(session(), hash_secret("token")))
    at_ns = time.time_ns()

    revoked = run(store.revoke_session(hash_secret("token"), at_ns))
    again = run(store.revoke_session(hash_secret("token"), at_ns + 1))

    found = run(store.find_session(hash_secret("token")))
    assert revoked and not again
    assert found is not None and found.revoked_at_ns == at_ns
    assert not found.usable(at_ns + 1)


def test_a_session_is_usable_until_it_expires(store: Store) -> None:
    kept = session()
    run(store.create_session(kept, hash_secret("token")))

    found = run(store.find_session(hash_secret("token")))

    assert found is not None
    assert found.usable(kept.expires_at_ns - 1) and not found.usable(kept.expires_at_ns)


def test_the_session_secret_is_the_first_one_offered_on_every_store(
    store_factory: StoreFactory,
) -> None:
    one, other = store_factory(), store_factory()

    first = run(one.session_secret(b"a" * 32, time.time_ns()))
    second = run(other.session_secret(b"b" * 32, time.time_ns()))

    assert first == second == b"a" * 32
