"""`users:` in the config: API users with scrypt hashes, errors at their line."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.config import parse_config
from aggregator.errors import ConfigError
from aggregator.greader.passwords import hash_password, parse_hash, verify_password

PATH = Path("/etc/aggregator/feeds.yaml")
HASH = hash_password("pw", n=2**10)
GROUPS = "groups:\n  world:\n    feeds: []\n"


def test_users_are_read_with_their_hashes() -> None:
    text = (
        GROUPS + f"users:\n  alice:\n    password_hash: {HASH}\n  bob@example.org:\n"
        f"    password_hash: '{hash_password('other', n=2**10)}'\n"
    )
    config = parse_config(text, PATH)
    assert [user.name for user in config.users] == ["alice", "bob@example.org"]
    assert config.users[0].line == 5
    assert verify_password("pw", parse_hash(config.users[0].password_hash))


def test_no_users_is_no_api() -> None:
    assert parse_config(GROUPS, PATH).users == ()
    assert parse_config(GROUPS + "users:\n", PATH).users == ()


@pytest.mark.parametrize(
    ("users", "line", "message"),
    [
        ("users:\n  alice:\n    password: pw\n", 6, "unknown key 'password'"),
        ("users:\n  alice: {}\n", 5, "missing 'password_hash'"),
        ("users:\n  alice:\n    password_hash: pw\n", 6, "not a password hash"),
        ("users:\n  alice:\n    password_hash: 'scrypt$3$8$1$AAAAAAAAAAAAAAAAAAAAAA$"
         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'\n", 6, "power of two"),
        ("users:\n  'a:b':\n    password_hash: x\n", 5, "no colon"),
        ("users:\n  - alice\n", 5, "'users' must be a mapping"),
        (f"users:\n  alice:\n    password_hash: {HASH}\n  alice:\n    password_hash: {HASH}\n",
         7, "duplicate key 'alice'"),
    ],
)  # fmt: skip
def test_a_wrong_user_is_reported_at_its_line(users: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        parse_config(GROUPS + users, PATH)
    assert error.value.line == line
