"""Who may use the Google Reader API (pure but for the clock it is handed).

- Passwords: the config's scrypt hashes (`passwords`), checked at ClientLogin.
- Auth tokens (`Authorization: GoogleLogin auth=...`): signed, not stored. A token is
  `user.issued.signature`, the signature an HMAC of the user, the time it was issued and
  the user's password hash under a secret kept in the database (`meta`), so tokens
  survive a restart of `serve`, expire after `AUTH_TOKEN_LIFETIME`, and all die when the
  password (its hash in the config) changes. Nothing is written per login.
- Edit tokens (`T` on every POST): signed the same way over the auth token, valid for
  `EDIT_TOKEN_LIFETIME`; a bad one is answered 401 with `X-Reader-Google-Bad-Token`.
  Google's lasted 30 minutes; NetNewsWire fetches one per session and keeps it, so
  these live as long as the auth token they are bound to (they only add to it: a
  cross-site form can send neither).
- HTTP Basic for the pages when `serve` listens beyond loopback (`basic_login`): the
  same users and passwords, the same lockout.
- Lockout: after `MAX_FAILURES` failed logins for one user name within `FAILURE_WINDOW`,
  every login for that name is refused for `LOCKOUT` (before the password is even
  hashed, so a guesser costs no scrypt work either).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from aggregator.greader.passwords import (
    DEFAULT_N,
    DEFAULT_P,
    DEFAULT_R,
    PasswordHash,
    hash_password,
    parse_hash,
    verify_password,
)

AUTH_TOKEN_LIFETIME = timedelta(days=30)
EDIT_TOKEN_LIFETIME = AUTH_TOKEN_LIFETIME
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)
MAX_TRACKED_NAMES = 10_000  # failure records kept; the oldest go first
MAX_USER_CHARS = 128
BASIC_CHECK_MEMORY = timedelta(minutes=5)

_AUTH_TOKEN = re.compile(r"([A-Za-z0-9_-]{1,200})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})")
_EDIT_TOKEN = re.compile(r"([0-9]{1,12})\.([A-Za-z0-9_-]{43})")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


@dataclass(frozen=True, slots=True)
class Login:
    """The outcome of a ClientLogin: the token, or why there is none."""

    token: str | None = None
    locked_for: timedelta | None = None  # set when the name is locked out


class Authenticator:
    """Logins, token checks and the lockout for a set of users (name -> password hash)."""

    def __init__(
        self, users: Mapping[str, PasswordHash], secret: bytes, clock: Callable[[], datetime]
    ) -> None:
        self.users = dict(users)
        self.secret = secret
        self.clock = clock
        self._failures: OrderedDict[str, list[datetime]] = OrderedDict()
        self._checked: OrderedDict[bytes, datetime] = OrderedDict()
        self._dummy: PasswordHash | None = None
        self._lock = threading.Lock()

    # -- ClientLogin ---------------------------------------------------------------------

    def login(self, user: str, password: str) -> Login:
        """A token for the right password; a lockout after repeated failures."""
        now = self.clock()
        locked = self.check_password(user, password, now)
        if isinstance(locked, timedelta):
            return Login(locked_for=locked)
        return Login(token=self.issue_token(user, now) if locked else None)

    def check_password(self, user: str, password: str, now: datetime) -> bool | timedelta:
        """Whether the password is the user's, or how long the name is still locked out.
        A failure counts towards the lockout, a success clears it."""
        name = user[:MAX_USER_CHARS]
        locked = self._locked_for(name, now)
        if locked is not None:
            return locked
        stored = self.users.get(user)
        if stored is not None and verify_password(password, stored):
            with self._lock:
                self._failures.pop(name, None)
            return True
        if stored is None:
            # As slow as a real check: how fast a login fails does not tell who exists.
            verify_password(password, self._unknown_user())
        self._fail(name, now)
        return False

    def _unknown_user(self) -> PasswordHash:
        """A hash to check the passwords of unknown names against (made once, with the
        costs of the first user's hash, or the default ones)."""
        with self._lock:
            if self._dummy is None:
                model = next(iter(self.users.values()), None)
                costs = (model.n, model.r, model.p) if model else (DEFAULT_N, DEFAULT_R, DEFAULT_P)
                n, r, p = costs
                text = hash_password(secrets.token_urlsafe(16), n=n, r=r, p=p)
                self._dummy = parse_hash(text)
            return self._dummy

    def basic_login(self, user: str, password: str) -> bool | timedelta:
        """HTTP Basic on the pages (served beyond loopback): the browser sends the password
        with every request, so a checked pair is remembered (by its HMAC, never in clear)
        for a few minutes instead of paying scrypt on each."""
        now = self.clock()
        key = hmac.new(self.secret, f"basic\0{user}\0{password}".encode(), hashlib.sha256).digest()
        with self._lock:
            until = self._checked.get(key)
            if until is not None and now < until:
                return True
        result = self.check_password(user, password, now)
        if result is True:
            with self._lock:
                self._checked[key] = now + BASIC_CHECK_MEMORY
                while len(self._checked) > MAX_TRACKED_NAMES:
                    self._checked.popitem(last=False)
        return result

    def _locked_for(self, name: str, now: datetime) -> timedelta | None:
        with self._lock:
            recent = [t for t in self._failures.get(name, []) if now - t < FAILURE_WINDOW]
            if len(recent) < MAX_FAILURES:
                return None
            remaining = recent[-1] + LOCKOUT - now
        return remaining if remaining > timedelta(0) else None

    def _fail(self, name: str, now: datetime) -> None:
        with self._lock:
            times = [t for t in self._failures.pop(name, []) if now - t < FAILURE_WINDOW]
            self._failures[name] = [*times, now][-MAX_FAILURES:]
            while len(self._failures) > MAX_TRACKED_NAMES:
                self._failures.popitem(last=False)

    # -- auth tokens ---------------------------------------------------------------------

    def issue_token(self, user: str, now: datetime) -> str:
        name = _b64(user.encode("utf-8"))
        issued = str(int(now.timestamp()))
        return f"{name}.{issued}.{self._sign('auth', user, issued)}"

    def user_of(self, token: str) -> str | None:
        """The user a valid, unexpired auth token was issued to; None otherwise."""
        match = _AUTH_TOKEN.fullmatch(token.strip())
        if match is None:
            return None
        name, issued, signature = match.groups()
        try:
            user = base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode("utf-8")
        except (binascii.Error, ValueError):
            return None
        if user not in self.users or not self._fresh(int(issued), AUTH_TOKEN_LIFETIME):
            return None
        if not hmac.compare_digest(signature, self._sign("auth", user, issued)):
            return None
        return user

    # -- edit tokens ---------------------------------------------------------------------

    def edit_token(self, auth_token: str) -> str:
        issued = str(int(self.clock().timestamp()))
        return f"{issued}.{self._sign('edit', auth_token, issued)}"

    def edit_token_valid(self, auth_token: str, token: str) -> bool:
        match = _EDIT_TOKEN.fullmatch(token.strip())
        if match is None:
            return False
        issued, signature = match.groups()
        if not self._fresh(int(issued), EDIT_TOKEN_LIFETIME):
            return False
        return hmac.compare_digest(signature, self._sign("edit", auth_token, issued))

    # -- helpers -------------------------------------------------------------------------

    def _fresh(self, issued: int, lifetime: timedelta) -> bool:
        now = self.clock().timestamp()
        # A little clock skew forward is allowed; a token from the future is not.
        return issued - 60 <= now < issued + lifetime.total_seconds()

    def _sign(self, purpose: str, subject: str, issued: str) -> str:
        # An auth token signs the user's password hash too: a new password revokes it
        # (and with it every edit token made from it).
        stored = self.users.get(subject) if purpose == "auth" else None
        message = "\0".join((purpose, subject, issued, str(stored) if stored else ""))
        return _b64(hmac.new(self.secret, message.encode("utf-8"), hashlib.sha256).digest())
