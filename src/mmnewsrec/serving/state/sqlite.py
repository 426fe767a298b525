"""User state in one SQLite file (WAL mode), shared by threads and processes on one machine."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from mmnewsrec.errors import ConfigError
from mmnewsrec.serving.state.base import Event, IdempotencyConflict, NewsRow, StoreUnavailable

logger = logging.getLogger(__name__)


class SQLiteStore:
    """User state in one SQLite file (WAL mode); safe to share between threads and processes."""

    def __init__(self, path: str | Path, synchronous: str = "FULL"):
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ConfigError(f"sqlite synchronous must be OFF, NORMAL, FULL or EXTRA, got {synchronous!r}")
        self.path = Path(path)
        self.synchronous = synchronous.upper()
        self.url = f"sqlite:///{self.path}"
        if not self.path.parent.is_dir():
            raise ConfigError(f"state store {self.url}: folder {self.path.parent} does not exist")
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self._db.executescript(
                """
                CREATE TABLE IF NOT EXISTS events (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    user_id TEXT NOT NULL,
                    news_id TEXT NOT NULL,
                    time INTEGER NOT NULL,
                    clicked INTEGER NOT NULL,
                    event_id TEXT,
                    UNIQUE (user_id, event_id)
                );
                CREATE INDEX IF NOT EXISTS events_user_clicks ON events (user_id, clicked, seq);
                CREATE TABLE IF NOT EXISTS news_events (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    kind TEXT NOT NULL,
                    news_id TEXT NOT NULL,
                    time INTEGER NOT NULL,
                    meta TEXT NOT NULL,
                    vector BLOB NOT NULL,
                    model TEXT NOT NULL
                );
                """
            )
            # The logs are followed on every request: a second connection reads them, so a reader
            # never waits for a writer's commit (WAL lets readers see the last committed state).
            self._reader = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._read_lock = threading.Lock()
            self._scope_event_ids_per_user()
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"state store {self.url}: {exc}") from None

    def _scope_event_ids_per_user(self) -> None:
        """Stores made before event ids were scoped per user (``event_id TEXT UNIQUE``) are rebuilt
        with the per-user key, in one transaction."""
        (schema,) = self._db.execute("SELECT sql FROM sqlite_master WHERE name = 'events'").fetchone()
        if "UNIQUE (user_id, event_id)" in schema:
            return
        self._db.executescript(
            """
            BEGIN IMMEDIATE;
            ALTER TABLE events RENAME TO events_global_ids;
            DROP INDEX IF EXISTS events_user_clicks;
            CREATE TABLE events (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, news_id TEXT NOT NULL,
                time INTEGER NOT NULL, clicked INTEGER NOT NULL, event_id TEXT, UNIQUE (user_id, event_id)
            );
            INSERT INTO events SELECT * FROM events_global_ids;
            DROP TABLE events_global_ids;
            CREATE INDEX events_user_clicks ON events (user_id, clicked, seq);
            COMMIT;
            """
        )
        logger.info("%s: event ids are now unique per user", self.url)

    def record(self, events: Sequence[Event]) -> int:
        rows = [(e.user_id, e.news_id, int(e.time), int(e.clicked), e.event_id) for e in events]
        keyed = [e for e in events if e.event_id is not None]
        with self._lock:
            before = self._db.total_changes
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for event in keyed:  # a reused id must name the same event, else nothing is written
                    found = self._db.execute(
                        "SELECT news_id, clicked FROM events WHERE user_id = ? AND event_id = ?",
                        (event.user_id, event.event_id),
                    ).fetchone()
                    if found is not None and (found[0], bool(found[1])) != (event.news_id, event.clicked):
                        raise IdempotencyConflict(event, found[0])
                self._db.executemany(
                    "INSERT OR IGNORE INTO events (user_id, news_id, time, clicked, event_id) VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return self._db.total_changes - before

    def history(self, user_id: str, limit: int) -> list[tuple[str, int]]:
        if limit <= 0:
            return []
        with self._lock:
            rows = self._db.execute(
                "SELECT news_id, time FROM events WHERE user_id = ? AND clicked = 1 ORDER BY seq DESC LIMIT ?",
                (user_id, limit),
            ).fetchall()
        return [(news_id, time) for news_id, time in reversed(rows)]

    def events_since(self, cursor: str, limit: int = 10_000) -> tuple[list[Event], str]:
        after = int(cursor or 0)
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT seq, user_id, news_id, time, clicked, event_id FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
        if not rows:
            return [], str(after)
        events = [Event(user, news, time, bool(clicked), event_id) for _, user, news, time, clicked, event_id in rows]
        return events, str(rows[-1][0])

    def count_clicks(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM events WHERE clicked = 1").fetchone()[0])

    def recent_users(self, limit: int) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT user_id FROM (SELECT user_id, seq FROM events WHERE clicked = 1 ORDER BY seq DESC LIMIT 1000) "
                "GROUP BY user_id ORDER BY MAX(seq) DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [user for (user,) in rows]

    def record_news(self, events: Sequence[NewsRow]) -> None:
        rows = [
            (kind, news_id, int(time), meta, sqlite3.Binary(vector), model)
            for kind, news_id, time, meta, vector, model in events
        ]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO news_events (kind, news_id, time, meta, vector, model) VALUES (?, ?, ?, ?, ?, ?)", rows
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def news_since(self, cursor: str, limit: int = 5_000) -> tuple[list[NewsRow], str]:
        after = int(cursor or 0)
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT seq, kind, news_id, time, meta, vector, model FROM news_events "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
        if not rows:
            return [], str(after)
        return [(k, n, t, m, bytes(v), model) for _, k, n, t, m, v, model in rows], str(rows[-1][0])

    def ping(self) -> None:
        try:
            with self._read_lock:
                self._reader.execute("SELECT seq FROM events LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"state store {self.url}: {exc}") from None

    def durability_problem(self) -> str | None:
        if self.synchronous == "OFF":
            return "PRAGMA synchronous=OFF: a commit may be lost when the machine stops"
        return None  # a commit is in the WAL file before it is acknowledged

    def close(self) -> None:
        with self._lock, self._read_lock:
            self._db.close()
            self._reader.close()
