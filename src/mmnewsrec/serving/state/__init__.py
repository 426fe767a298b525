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

from urllib.parse import urlparse

from mmnewsrec.errors import ConfigError
from mmnewsrec.serving.state.base import Event, IdempotencyConflict, NewsRow, StateStore, StoreUnavailable
from mmnewsrec.serving.state.redis_store import RedisStore
from mmnewsrec.serving.state.sqlite import SQLiteStore

__all__ = [
    "Event",
    "IdempotencyConflict",
    "NewsRow",
    "RedisStore",
    "SQLiteStore",
    "StateStore",
    "StoreUnavailable",
    "open_store",
]


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
