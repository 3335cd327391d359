"""API passwords as scrypt hashes (pure)."""

from __future__ import annotations

import pytest

from aggregator.greader.passwords import DEFAULT_N, hash_password, parse_hash, verify_password


def test_a_hash_verifies_its_password_and_no_other() -> None:
    stored = parse_hash(hash_password("correct horse", n=2**10))
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horse ", stored)
    assert not verify_password("", stored)
    assert not verify_password("x" * 5000, stored)


def test_the_default_cost_and_a_fresh_salt_each_time() -> None:
    first, second = hash_password("pw"), hash_password("pw")
    assert first.startswith(f"scrypt${DEFAULT_N}$8$1$") and first != second
    assert "pw" not in first.split("$", 4)[-1]
    assert verify_password("pw", parse_hash(first)) and verify_password("pw", parse_hash(second))


def test_a_hash_reads_back_as_written() -> None:
    text = hash_password("pw", n=2**10, salt=b"0123456789abcdef")
    assert str(parse_hash(text)) == text
    assert hash_password("pw", n=2**10, salt=b"0123456789abcdef") == text


@pytest.mark.parametrize(
    "text",
    ["", "pw", "scrypt$16384$8$1$short$short", "bcrypt$16384$8$1$" + "A" * 22 + "$" + "A" * 43,
     "scrypt$1000$8$1$" + "A" * 22 + "$" + "A" * 43,  # N not a power of two
     "scrypt$2097152$8$1$" + "A" * 22 + "$" + "A" * 43,  # N too large: the server's memory
     "scrypt$16384$0$1$" + "A" * 22 + "$" + "A" * 43,
     "scrypt$16384$8$99$" + "A" * 22 + "$" + "A" * 43,
     "scrypt$16384$8$1$" + "A" * 22 + "$" + "A=" * 20],
)  # fmt: skip
def test_what_is_not_a_usable_hash_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_hash(text)


def test_an_empty_or_huge_password_gets_no_hash() -> None:
    with pytest.raises(ValueError):
        hash_password("")
    with pytest.raises(ValueError):
        hash_password("x" * 2000)
