"""User state in Redis, for replicas on several machines."""

from __future__ import annotations

from collections.abc import Sequence

from mmnewsrec.errors import ConfigError
from mmnewsrec.serving.state.base import Event, IdempotencyConflict, NewsRow, StoreUnavailable

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
