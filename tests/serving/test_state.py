"""The user-state stores: SQLite and Redis pass one contract table."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mmnewsrec.errors import ConfigError
from mmnewsrec.serving.state import Event, open_store


def test_clicks_come_back_oldest_first_and_limited(open_fresh_store) -> None:
    store = open_fresh_store()
    store.record([Event("U1", f"N{i}", 100 + i) for i in range(5)])
    store.record([Event("U2", "N9", 50)])
    assert store.history("U1", 3) == [("N2", 102), ("N3", 103), ("N4", 104)]
    assert store.history("U1", 10) == [(f"N{i}", 100 + i) for i in range(5)]
    assert store.history("U2", 10) == [("N9", 50)]
    assert store.history("U3", 10) == []
    assert store.history("U1", 0) == []
    assert store.count_clicks() == 6


def test_displays_without_click_are_logged_but_not_in_the_history(open_fresh_store) -> None:
    store = open_fresh_store()
    assert store.record([Event("U1", "N1", 10, clicked=False), Event("U1", "N2", 10, clicked=True)]) == 2
    assert store.history("U1", 10) == [("N2", 10)]
    events, cursor = store.events_since("")
    assert [(e.news_id, e.clicked) for e in events] == [("N1", False), ("N2", True)]
    store.record([Event("U2", "N3", 11)])
    later, cursor2 = store.events_since(cursor)
    assert [(e.user_id, e.news_id, e.time) for e in later] == [("U2", "N3", 11)]
    assert store.events_since(cursor2) == ([], cursor2)


def test_an_event_id_recorded_twice_counts_once(open_fresh_store) -> None:
    store = open_fresh_store()
    assert store.record([Event("U1", "N1", 10, event_id="c1")]) == 1
    assert store.record([Event("U1", "N1", 10, event_id="c1")]) == 0
    assert store.record([Event("U1", "N1", 12)]) == 1  # no id: a second, real click
    assert store.history("U1", 10) == [("N1", 10), ("N1", 12)]
    assert len(store.events_since("")[0]) == 2


def test_state_survives_reopening_and_is_shared_between_clients(open_fresh_store) -> None:
    first, second = open_fresh_store(), open_fresh_store()
    first.record([Event("U1", "N1", 10)])
    assert second.history("U1", 5) == [("N1", 10)]  # another replica reads it at once
    first.close()
    assert open_fresh_store().history("U1", 5) == [("N1", 10)]


def test_concurrent_writers_lose_nothing(open_fresh_store) -> None:
    store = open_fresh_store()

    def write(user: str) -> None:
        for i in range(100):
            store.record([Event(user, f"N{i}", i, event_id=f"{user}-{i}")])

    threads = [threading.Thread(target=write, args=(f"U{t}",)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.count_clicks() == 400
    assert all(store.history(f"U{t}", 1000) == [(f"N{i}", i) for i in range(100)] for t in range(4))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://x", "the scheme must be sqlite:/// or redis://"),
        ("sqlite://", "write sqlite:///path/to/state.db"),
        ("redis://127.0.0.1:1/0", "state store redis://127.0.0.1:1/0"),
    ],
)
def test_bad_store_urls_are_named(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        open_store(url)


def test_a_sqlite_store_in_a_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        open_store(f"sqlite:///{tmp_path / 'nope' / 'state.db'}")


def test_a_sqlite_file_that_is_no_database_is_named(tmp_path: Path) -> None:
    (tmp_path / "state.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(ConfigError, match="state store"):
        open_store(f"sqlite:///{tmp_path / 'state.db'}")
