"""One exception tree for everything the aggregator reports on purpose.

    AggregatorError
    ├── ConfigError          the YAML feed list is wrong (names file, line and key)
    ├── UsageError           a bad command-line value or query parameter (exit 2, HTTP 400)
    ├── OpmlError            an OPML document cannot be read
    ├── JudgedSetError       a judged-pairs file is malformed (names its line)
    ├── ModelFileError       the event model's parameter file cannot be read
    ├── StartupError         the environment cannot run the aggregator safely
    ├── AlreadyRunning       another process holds the database's writer lock
    ├── LeadershipLost       a writer's lock on a shared database is gone: it stops writing
    ├── FetchError           a feed could not be fetched (carries a short reason code)
    │   ├── HTTPStatusError  the server answered neither 200, 304 nor a redirect
    │   └── RetiredFeedError not fetched at all: the feed is retired
    ├── ParseError           fetched bytes are not a usable feed (carries a reason code)
    ├── ApiError             a Google Reader API request refused (HTTP status, headers)
    └── StoreError           the database cannot be used (locked, read-only, full, wrong schema)

Per-feed failures (FetchError, ParseError) are caught by the pipeline and stored on
the feed as values; they never stop a run. Only the CLI turns errors into exit codes,
and only the web server turns UsageError into a 400.
"""

from __future__ import annotations

from pathlib import Path


class AggregatorError(Exception):
    """Base class for every error the aggregator raises deliberately."""


class ConfigError(AggregatorError):
    """The feed list is invalid. `str()` gives one line: file:line: key: problem."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.path = Path(path) if path is not None else None
        self.line = line
        self.key = key
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = str(self.path) if self.path is not None else "<config>"
        if self.line is not None:
            where += f":{self.line}"
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.message}"


class UsageError(AggregatorError):
    """A bad command-line value or query parameter; the message names it (exit 2, HTTP 400)."""


class OpmlError(AggregatorError):
    """The OPML document cannot be read (one line, for the CLI)."""


class JudgedSetError(AggregatorError, ValueError):
    """A judged-pairs file of the evaluation is malformed: `path:line: reason`."""


class ModelFileError(AggregatorError, ValueError):
    """The event model's parameter file is missing, of another version, or malformed."""


class StartupError(AggregatorError):
    """The environment cannot run the aggregator safely (too old SQLite or expat, no FTS5)."""


class AlreadyRunning(AggregatorError):
    """Another process holds the database's writer lock."""


class LeadershipLost(AggregatorError):
    """The writer lock of a shared database was lost (its session ended): the process that
    held it must write nothing more; a standby has taken or will take over."""


class FetchError(AggregatorError):
    """A feed could not be fetched. `reason` is a short stable code stored on the feed
    (`timeout`, `too_large`, `connection_refused`, `http_404`, `too_many_redirects`, ...)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class HTTPStatusError(FetchError):
    """The server answered with a status that is neither 200, 304 nor a redirect.

    `reason` is `http_<status>`; `detail` the reason phrase. `retry_after` is the raw
    `Retry-After` header (delta-seconds or an HTTP date) for the feed policy to interpret.
    """

    def __init__(self, status: int, phrase: str = "", *, retry_after: str | None = None) -> None:
        self.status = status
        self.retry_after = retry_after
        super().__init__(f"http_{status}", phrase)


class RetiredFeedError(FetchError):
    """Raised instead of fetching a retired feed (`update --all`): no request is made."""


class ParseError(AggregatorError):
    """Fetched bytes are not a usable feed (`not_a_feed`, `empty_body`, `parser_crash:X`)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class ApiError(AggregatorError):
    """A Google Reader API request answered with an error status (`aggregator.greader`):
    the status, a one-line message and the headers the protocol wants with it."""

    def __init__(
        self, status: int, message: str, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        self.status = status
        self.message = message
        self.headers = headers
        super().__init__(message)


class StoreError(AggregatorError):
    """The database cannot be opened or written (locked, read-only, disk full, newer schema)."""
