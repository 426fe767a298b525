"""What every user-state store is: the events it keeps, its protocol, and its errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


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
