"""What an edit-tag asks for -> a Mark (pure)."""

from __future__ import annotations

import pytest

from aggregator.greader.api import edit_tag_mark
from aggregator.models import Mark

S = "user/-/state/com.google/"


@pytest.mark.parametrize(
    ("added", "removed", "mark"),
    [
        ([S + "read"], [S + "kept-unread"], Mark(read=True)),  # newsboat, read
        ([S + "kept-unread", S + "tracking-kept-unread"], [S + "read"], Mark(read=False)),
        ([S + "read"], [], Mark(read=True)),  # NetNewsWire
        ([], [S + "read"], Mark(read=False)),
        ([S + "starred"], [], Mark(starred=True)),
        ([], [S + "starred"], Mark(starred=False)),
        (["user/1234/state/com.google/read", S + "starred"], [], Mark(read=True, starred=True)),
        ([S + "tracking-kept-unread"], [], Mark()),
    ],
)
def test_the_states_clients_send(added: list[str], removed: list[str], mark: Mark) -> None:
    assert edit_tag_mark(added, removed) == mark


@pytest.mark.parametrize(
    ("added", "removed", "message"),
    [
        ([], [], "at least one tag"),
        ([S + "read"], [S + "read"], "both read and unread"),
        ([S + "read", S + "kept-unread"], [], "both read and unread"),
        ([S + "starred"], [S + "starred"], "both starred"),
        (["user/-/label/world"], [], "labels are the config's groups"),
        ([S + "broadcast"], [], "unknown state"),
        ([S + "reading-list"], [], "cannot be added"),
        (["feed/3"], [], "cannot be added"),
        (["nonsense"], [], "a: unknown stream id"),
    ],
)
def test_what_this_server_does_not_keep_is_refused(
    added: list[str], removed: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        edit_tag_mark(added, removed)
