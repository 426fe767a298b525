"""State of the live service: an append-only log of clicks and displays, and a log of the news
posted or retired through the service, in a real store.

Every replica of the service reads and writes the same store, so a click posted to one replica is
in the history the next replica reads. Two stores pass the same contract:

- :class:`SQLiteStore` (``sqlite:///path/state.db``): one file in WAL mode, the embedded default.
  Each write is one transaction, committed before the request is acknowledged (``synchronous=FULL``
  by default: an acknowledged click survives a crash of the process and of the machine).
- :class:`RedisStore` (``redis://host:port/db``): for several replicas behind one load balancer.
  Each write is one Lua script (atomic on the server): the user's click list, the global event
  stream and the idempotency keys change together or not at all.

An event may carry a client-chosen ``event_id``: recording it twice is a no-op, so a client that
retries after a timeout never duplicates a click.

The news log holds :class:`~mmnewsrec.serving.catalogue.NewsEvent` fields (kind, news id, time,
metadata JSON, the vector as float32 bytes, the run that encoded it), committed together per call:
every worker and every restart replays it in order (see :mod:`mmnewsrec.serving.catalogue`).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from mmnewsrec.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """One display of a news to a user; ``clicked`` when the user clicked it. ``time``: Unix seconds."""

    user_id: str
    news_id: str
    time: int
    clicked: bool = True
    event_id: str | None = None


#: One news event as stored: kind, news_id, time, metadata JSON, vector bytes, model.
NewsRow = tuple[str, str, int, str, bytes, str]


class IdempotencyConflict(ValueError):
    """An event id the user already used for another event (another news, or a display vs a click)."""

    def __init__(self, event: Event, recorded_news: str):
        self.event, self.recorded_news = event, recorded_news
        super().__init__(
            f"id {event.event_id!r} of user {event.user_id!r} was already used for news {recorded_news!r}, "
            f"not {event.news_id!r}; use a new id for another event"
        )


class StateStore(Protocol):
    """What the service needs from a user-state store."""

    url: str

    def record(self, events: Sequence[Event]) -> int:
        """Appends the events in order, atomically; returns how many were new. An ``event_id`` is unique
        per user: one seen before with the same news and kind is skipped (a retry), one seen with
        another news or kind raises :class:`IdempotencyConflict` and nothing is written."""
        ...

    def history(self, user_id: str, limit: int) -> list[tuple[str, int]]:
        """The user's last ``limit`` clicks as (news_id, time), oldest first."""
        ...

    def events_since(self, cursor: str, limit: int = 10_000) -> tuple[list[Event], str]:
        """Events of every user recorded after ``cursor`` ("" = the start), and the new cursor."""
        ...

    def count_clicks(self) -> int:
        """How many clicks the store holds (every user)."""
        ...

    def recent_users(self, limit: int) -> list[str]:
        """Up to ``limit`` users who clicked lately (for the demo page)."""
        ...

    def record_news(self, events: Sequence[NewsRow]) -> None:
        """Appends news events (kind, news_id, time, meta JSON, vector bytes, model) in order, atomically."""
        ...

    def news_since(self, cursor: str, limit: int = 5_000) -> tuple[list[NewsRow], str]:
        """News events recorded after ``cursor`` ("" = the start), and the new cursor."""
        ...

    def ping(self) -> None:
        """Raises :class:`StoreUnavailable` when the store cannot be read and written now."""
        ...

    def durability_problem(self) -> str | None:
        """Why a write the store acknowledged might not survive a crash of its server; None if none."""
        ...

    def close(self) -> None: ...


class StoreUnavailable(ConnectionError):
    """The state store does not answer (Redis down, the SQLite file locked or gone)."""


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


# KEYS: the user's click list, the event stream. ARGV: user_id, idempotency-key prefix (per user), clicks
# kept, then (news_id, time, clicked, event_id or "") per event. Every id is checked first: a reused one
# with another news or kind fails the call before anything is written; a replayed one changes nothing.
_RECORD_SCRIPT = """
local user_id, prefix, keep = ARGV[1], ARGV[2], tonumber(ARGV[3])
for i = 4, #ARGV, 4 do
  local id = ARGV[i + 3]
  if id ~= '' then
    local seen = redis.call('GET', prefix .. id)
    if seen and seen ~= ARGV[i] .. '\\t' .. ARGV[i + 2] then
      return redis.error_reply('CONFLICT ' .. id .. '\\t' .. seen)
    end
  end
end
local new = 0
for i = 4, #ARGV, 4 do
  local id = ARGV[i + 3]
  local fresh = 1
  if id ~= '' then
    fresh = redis.call('SET', prefix .. id, ARGV[i] .. '\\t' .. ARGV[i + 2], 'NX') and 1 or 0
  end
  if fresh == 1 then
    new = new + 1
    if ARGV[i + 2] == '1' then
      redis.call('RPUSH', KEYS[1], ARGV[i] .. '\\t' .. ARGV[i + 1])
    end
    redis.call('XADD', KEYS[2], '*', 'u', user_id, 'n', ARGV[i], 't', ARGV[i + 1], 'c', ARGV[i + 2], 'e', id)
  end
end
if keep > 0 then redis.call('LTRIM', KEYS[1], -keep, -1) end
return new
"""


class RedisStore:
    """User state in Redis: a click list per user and one event stream, written by one Lua script.

    Args:
        url: ``redis://host:port/db``.
        keep: clicks kept per user (older ones are trimmed; the model reads the last ``history_len``).
        prefix: key prefix, so several services can share one Redis.
    """

    def __init__(self, url: str, keep: int = 1000, prefix: str = "mmnewsrec"):
        try:
            import redis
        except ImportError:
            raise ConfigError(
                "a redis:// state store needs the redis package: pip install 'mmnewsrec[serve]'"
            ) from None
        self.url = url
        self.keep = keep
        self.prefix = prefix
        try:
            self._redis = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
            self._redis.ping()
        except (redis.RedisError, ValueError) as exc:
            raise ConfigError(f"state store {url}: {exc}") from None
        self._script = self._redis.register_script(_RECORD_SCRIPT)

    def _user_key(self, user_id: str) -> str:
        return f"{self.prefix}:user:{user_id}:clicks"

    @property
    def _stream(self) -> str:
        return f"{self.prefix}:events"

    def record(self, events: Sequence[Event]) -> int:
        # One script call per user keeps each call's keys on one user (what a Redis cluster needs).
        new = 0
        by_user: dict[str, list[Event]] = {}
        for event in events:
            by_user.setdefault(event.user_id, []).append(event)
        import redis

        for user_id, own in by_user.items():
            args: list[str] = [user_id, f"{self.prefix}:event:{user_id}:", str(self.keep)]
            for e in own:
                args += [e.news_id, str(int(e.time)), "1" if e.clicked else "0", e.event_id or ""]
            try:
                new += int(self._script(keys=[self._user_key(user_id), self._stream], args=args))
            except redis.ResponseError as exc:
                if not str(exc).startswith("CONFLICT "):
                    raise
                event_id, _, seen = str(exc).removeprefix("CONFLICT ").partition("\t")
                event = next(e for e in own if e.event_id == event_id)
                raise IdempotencyConflict(event, seen.partition("\t")[0]) from None
        return new

    def history(self, user_id: str, limit: int) -> list[tuple[str, int]]:
        if limit <= 0:
            return []
        entries = self._redis.lrange(self._user_key(user_id), -limit, -1)
        history = []
        for entry in entries:
            news_id, _, time = entry.decode().partition("\t")
            history.append((news_id, int(time)))
        return history

    def events_since(self, cursor: str, limit: int = 10_000) -> tuple[list[Event], str]:
        start = f"({cursor}" if cursor else "-"
        entries = self._redis.xrange(self._stream, min=start, max="+", count=limit)
        events = []
        for entry_id, fields in entries:
            values = {k.decode(): v.decode() for k, v in fields.items()}
            events.append(Event(values["u"], values["n"], int(values["t"]), values["c"] == "1", values["e"] or None))
            cursor = entry_id.decode()
        return events, cursor

    def count_clicks(self) -> int:
        total = 0
        for key in self._redis.scan_iter(match=self._user_key("*"), count=1000):
            total += int(self._redis.llen(key))
        return total

    def recent_users(self, limit: int) -> list[str]:
        users: list[str] = []
        start, end = len(f"{self.prefix}:user:"), -len(":clicks")
        for key in self._redis.scan_iter(match=self._user_key("*"), count=1000):
            users.append(key.decode()[start:end])
            if len(users) == limit:
                break
        return users

    @property
    def _news_stream(self) -> str:
        return f"{self.prefix}:news"

    def record_news(self, events: Sequence[NewsRow]) -> None:
        # One MULTI/EXEC transaction: the events enter the stream together, in order, or not at all.
        with self._redis.pipeline(transaction=True) as pipe:
            for kind, news_id, time, meta, vector, model in events:
                fields = {"k": kind, "n": news_id, "t": str(int(time)), "m": meta, "v": vector, "r": model}
                pipe.xadd(self._news_stream, fields)
            pipe.execute()

    def news_since(self, cursor: str, limit: int = 5_000) -> tuple[list[NewsRow], str]:
        start = f"({cursor}" if cursor else "-"
        entries = self._redis.xrange(self._news_stream, min=start, max="+", count=limit)
        rows = []
        for entry_id, fields in entries:
            values = {k.decode(): v for k, v in fields.items()}
            rows.append(
                (
                    values["k"].decode(),
                    values["n"].decode(),
                    int(values["t"]),
                    values["m"].decode(),
                    bytes(values["v"]),
                    values["r"].decode(),
                )
            )
            cursor = entry_id.decode()
        return rows, cursor

    def ping(self) -> None:
        import redis

        try:
            self._redis.ping()
        except redis.RedisError as exc:
            raise StoreUnavailable(f"state store {self.url}: {exc}") from None

    def durability_problem(self) -> str | None:
        """Redis acknowledges a write once it is in memory; only its append-only file (``appendonly
        yes``, written before the reply) keeps it through a crash or ``kill -9`` of the server.
        RDB snapshots (``save``) lose what came after the last one."""
        import redis

        try:
            settings = self._redis.config_get("appendonly")
        except redis.ResponseError as exc:  # CONFIG is renamed or disabled (some managed Redis)
            return f"its persistence settings cannot be read (CONFIG GET appendonly: {exc})"
        value = settings.get("appendonly", settings.get(b"appendonly", b""))
        if (value.decode() if isinstance(value, bytes) else str(value)) != "yes":
            return "appendonly is off: Redis keeps no append-only file, so a crash loses acknowledged clicks"
        return None

    def close(self) -> None:
        self._redis.close()


def open_store(url: str, keep: int = 1000) -> StateStore:
    """A store from its URL: ``sqlite:///path/to/state.db`` or ``redis://host:port/db``.

    Raises:
        ConfigError: an unknown scheme, a missing folder, an unreachable Redis.
    """
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path:
            raise ConfigError(f"state store {url!r}: write sqlite:///path/to/state.db")
        # sqlite:////abs/path keeps its leading slash; sqlite:///rel/path is relative.
        return SQLiteStore(path)
    if parsed.scheme in ("redis", "rediss", "unix"):
        return RedisStore(url, keep=keep)
    raise ConfigError(f"state store {url!r}: the scheme must be sqlite:/// or redis://")
