"""API passwords as salted scrypt hashes (pure): made by `aggregator passwd`, kept in the
config, checked at ClientLogin. A plain password is never stored or compared.

The format is one string, `scrypt$N$r$p$SALT$KEY` (salt and key in unpadded base64url),
so that the cost can be raised later and old hashes still verify.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

SCHEME = "scrypt"
# 2^14 x 8 x 128 bytes = 16 MiB of memory and about 50 ms a check: what OWASP lists as
# the minimum for scrypt, and cheap enough for a login now and then.
DEFAULT_N = 2**14
DEFAULT_R = 8
DEFAULT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
# Costs a config may ask for: a hash with a huge N would make every login (and every
# attacker's guess) take the server's memory.
MAX_N = 2**20
MAX_R = 32
MAX_P = 16
MAX_PASSWORD_CHARS = 1024  # a ClientLogin password longer than this is not one

_FORMAT = re.compile(
    r"scrypt\$(?P<n>\d{1,8})\$(?P<r>\d{1,3})\$(?P<p>\d{1,3})"
    r"\$(?P<salt>[A-Za-z0-9_-]{16,128})\$(?P<key>[A-Za-z0-9_-]{16,128})"
)


@dataclass(frozen=True, slots=True)
class PasswordHash:
    """A parsed hash: the scrypt parameters, the salt and the derived key."""

    n: int
    r: int
    p: int
    salt: bytes
    key: bytes

    def __str__(self) -> str:
        return f"{SCHEME}${self.n}${self.r}${self.p}${_b64(self.salt)}${_b64(self.key)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_hash(text: str) -> PasswordHash:
    """The hash in `text`; ValueError saying what is wrong (never the text itself)."""
    match = _FORMAT.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            "not a password hash of the form scrypt$N$r$p$SALT$KEY"
            " (make one with `aggregator passwd`)"
        )
    n, r, p = int(match["n"]), int(match["r"]), int(match["p"])
    if n < 2 or n & (n - 1) or n > MAX_N:
        raise ValueError(f"scrypt N must be a power of two from 2 to {MAX_N}")
    if not 1 <= r <= MAX_R or not 1 <= p <= MAX_P:
        raise ValueError(f"scrypt r must be 1 to {MAX_R} and p 1 to {MAX_P}")
    try:
        salt, key = _unb64(match["salt"]), _unb64(match["key"])
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the salt or key is not base64url") from exc
    return PasswordHash(n, r, p, salt, key)


def _derive(password: str, n: int, r: int, p: int, salt: bytes, length: int) -> bytes:
    # maxmem: what N and r need (128 * N * r bytes) and some room, not OpenSSL's 32 MiB.
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length,
        maxmem=129 * n * r + 1024 * 1024,
    )  # fmt: skip


def hash_password(
    password: str, *, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P,
    salt: bytes | None = None,
) -> str:  # fmt: skip
    """The config string for `password`, with a fresh random salt unless one is given."""
    if not password:
        raise ValueError("the password is empty")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(f"the password is longer than {MAX_PASSWORD_CHARS} characters")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    return str(PasswordHash(n, r, p, salt, _derive(password, n, r, p, salt, KEY_BYTES)))


def verify_password(password: str, stored: PasswordHash) -> bool:
    """Whether `password` gives the stored key (compared in constant time)."""
    if not password or len(password) > MAX_PASSWORD_CHARS:
        return False
    derived = _derive(password, stored.n, stored.r, stored.p, stored.salt, len(stored.key))
    return hmac.compare_digest(derived, stored.key)
