"""Logins, signed tokens and the lockout (pure, with a clock handed in)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aggregator.greader.auth import (
    AUTH_TOKEN_LIFETIME,
    FAILURE_WINDOW,
    LOCKOUT,
    MAX_FAILURES,
    Authenticator,
)
from aggregator.greader.passwords import hash_password, parse_hash

SECRET = b"x" * 32


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


# One hash per password, as a config keeps it (each new hash has a new salt).
HASHES = {password: hash_password(password, n=2**10) for password in ("pw", "new")}


def authenticator(clock: Clock, password: str = "pw", secret: bytes = SECRET) -> Authenticator:
    return Authenticator({"alice": parse_hash(HASHES[password])}, secret, clock)


def test_the_right_password_gets_a_token_that_names_its_user(clock: Clock) -> None:
    auth = authenticator(clock)
    login = auth.login("alice", "pw")
    assert login.token is not None and "=" not in login.token  # NetNewsWire splits on "="
    assert auth.user_of(login.token) == "alice"
    assert auth.login("alice", "wrong").token is None
    assert auth.login("bob", "pw").token is None


def test_a_token_survives_a_restart_and_dies_with_its_secret_or_password(clock: Clock) -> None:
    """Signed, not stored: a new Authenticator on the same secret (the database's) accepts
    it; another secret, or a changed password hash, does not."""
    token = authenticator(clock).login("alice", "pw").token
    assert token is not None
    assert authenticator(clock).user_of(token) == "alice"
    assert authenticator(clock, secret=b"y" * 32).user_of(token) is None
    assert authenticator(clock, password="new").user_of(token) is None
    # The same password hashed again (a new salt: `aggregator passwd` run again) revokes too.
    rehashed = {"alice": parse_hash(hash_password("pw", n=2**10))}
    assert Authenticator(rehashed, SECRET, clock).user_of(token) is None


def test_tokens_expire(clock: Clock) -> None:
    auth = authenticator(clock)
    token = auth.login("alice", "pw").token
    assert token is not None
    clock.now += AUTH_TOKEN_LIFETIME - timedelta(seconds=1)
    assert auth.user_of(token) == "alice"
    clock.now += timedelta(seconds=2)
    assert auth.user_of(token) is None


@pytest.mark.parametrize("mangle", [
    lambda t: t + "x", lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), lambda t: "",
    lambda t: "Ym9i." + t.split(".", 1)[1],  # another user's name on alice's signature
    lambda t: t.split(".")[0] + ".9999999999." + t.split(".")[2],  # another time
])  # fmt: skip
def test_a_forged_token_is_refused(clock: Clock, mangle) -> None:  # type: ignore[no-untyped-def]
    auth = authenticator(clock)
    token = auth.login("alice", "pw").token
    assert token is not None
    assert auth.user_of(mangle(token)) is None


def test_an_edit_token_is_bound_to_its_auth_token(clock: Clock) -> None:
    auth = authenticator(clock)
    first, second = (
        auth.issue_token("alice", clock.now),
        auth.issue_token("alice", clock.now - timedelta(hours=1)),
    )
    edit = auth.edit_token(first)
    assert auth.edit_token_valid(first, edit)
    assert not auth.edit_token_valid(second, edit)
    assert not auth.edit_token_valid(first, edit + "x")
    assert not auth.edit_token_valid(first, "")
    clock.now += AUTH_TOKEN_LIFETIME + timedelta(seconds=1)
    assert not auth.edit_token_valid(first, edit)


def test_repeated_failures_lock_the_name_out_even_for_the_right_password(clock: Clock) -> None:
    auth = authenticator(clock)
    for _ in range(MAX_FAILURES):
        assert auth.login("alice", "guess").locked_for is None
    locked = auth.login("alice", "pw")
    assert locked.token is None and locked.locked_for is not None
    assert timedelta(0) < locked.locked_for <= LOCKOUT
    assert auth.login("bob", "x").locked_for is None  # another name is not locked
    clock.now += LOCKOUT + timedelta(seconds=1)
    assert auth.login("alice", "pw").token is not None


def test_failures_spread_beyond_the_window_do_not_lock(clock: Clock) -> None:
    auth = authenticator(clock)
    for _ in range(MAX_FAILURES * 2):
        assert auth.login("alice", "guess").locked_for is None
        clock.now += FAILURE_WINDOW / (MAX_FAILURES - 1)
    assert auth.login("alice", "pw").token is not None


def test_a_success_clears_the_failures(clock: Clock) -> None:
    auth = authenticator(clock)
    for _ in range(MAX_FAILURES - 1):
        auth.login("alice", "guess")
    assert auth.login("alice", "pw").token is not None
    for _ in range(MAX_FAILURES - 1):
        assert auth.login("alice", "guess").locked_for is None
    assert auth.login("alice", "pw").token is not None


def test_basic_logins_for_the_pages_share_the_lockout(clock: Clock) -> None:
    auth = authenticator(clock)
    assert auth.basic_login("alice", "pw") is True
    assert auth.basic_login("alice", "pw") is True  # remembered
    assert auth.basic_login("alice", "wrong") is False  # the pair, not the name, is kept
    for _ in range(MAX_FAILURES - 1):
        assert auth.basic_login("alice", "wrong") is False
    assert isinstance(auth.basic_login("alice", "other guess"), timedelta)
    assert auth.login("alice", "pw").locked_for is not None
