"""The user-state stores: SQLite and Redis pass one contract table."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mmnewsrec.errors import ConfigError
from mmnewsrec.serving.state import Event, SQLiteStore, open_store


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


def test_event_ids_are_each_users_own_and_a_conflicting_reuse_writes_nothing(open_fresh_store) -> None:
    from mmnewsrec.serving.state import IdempotencyConflict

    store = open_fresh_store()
    assert store.record([Event("D1", "N1", 10, event_id="k1:0")]) == 1
    assert store.record([Event("D2", "N1", 11, event_id="k1:0")]) == 1  # another user's k1 is not D1's
    assert store.record([Event("D1", "N1", 12, event_id="k1:0")]) == 0  # a retry: same news, same kind
    with pytest.raises(IdempotencyConflict, match=r"id 'k1:0' of user 'D1' was already used for news 'N1'"):
        store.record([Event("D1", "N9", 13, event_id="k1:0")])
    with pytest.raises(IdempotencyConflict):  # a display is not the click it reuses the id of
        store.record([Event("D1", "N1", 14, clicked=False, event_id="k1:0")])
    assert store.history("D1", 10) == [("N1", 10)] and store.history("D2", 10) == [("N1", 11)]


def test_a_store_with_global_event_ids_is_upgraded_in_place(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the layout before ids were scoped per user
        db.executescript(
            "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, "
            "news_id TEXT NOT NULL, time INTEGER NOT NULL, clicked INTEGER NOT NULL, event_id TEXT UNIQUE);"
            "INSERT INTO events (user_id, news_id, time, clicked, event_id) VALUES ('D1', 'N1', 5, 1, 'k1:0');"
        )
    store = SQLiteStore(path)
    assert store.history("D1", 10) == [("N1", 5)]
    assert (
        store.record([Event("D2", "N2", 6, event_id="k1:0")]) == 1
        and store.record([Event("D1", "N1", 7, event_id="k1:0")]) == 0
    )
    store.close()
