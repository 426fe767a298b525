"""What the click log says about each candidate when it is shown: popularity and recency counters.

For a candidate news ``n`` in an impression at time ``t`` the counters count only log events
strictly before ``t`` (no leakage: a click at or after ``t`` never counts, the impression's own
labels included): clicks and displays of ``n`` so far, its clicks in the last ``window`` seconds,
and the hours since ``n`` was first displayed (0 the first time). Events come from a prior log
(:class:`LogCounters`, e.g. the training split, summarised) and from the scored split's own earlier
impressions. The same summary is what a live service updates on every click.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from mmnewsrec.data.mind import MindSplit, entry_owner

#: The recency window: clicks in the last day count as recent.
RECENT_SECONDS = 24 * 3600
#: Features per candidate, in order (all log1p-scaled but the smoothed click rate).
STAT_NAMES = ("clicks", "displays", "recent_clicks", "age_hours", "smoothed_ctr")
#: A click rate that counts with the weight of this many displays when a news has few.
PRIOR_DISPLAYS, PRIOR_CTR = 10, 0.04
#: The counters of a news that has never been shown.
NEVER_SHOWN = (0.0, 0.0, 0.0, 0.0, PRIOR_CTR)


def _split_events(split: MindSplit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every display of the split: news ids (N,), times in seconds (N,), clicked (N,) bool."""
    times = split.behaviors["time"].cast(pa.int64()).to_numpy()[entry_owner(split.candidate_offsets())]
    news = np.asarray(split.flat_candidates().to_numpy(zero_copy_only=False), dtype=object)
    clicked = split.flat_labels() == 1 if split.labelled else np.zeros(len(news), dtype=bool)
    return news, times, clicked


def _count_between(keys: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """How many of the sorted ``keys`` lie in [lower, upper)."""
    return np.searchsorted(keys, upper, "left") - np.searchsorted(keys, lower, "left")


@dataclass(frozen=True)
class LogCounters:
    """A summary of a click log that later impressions are counted against.

    Attributes:
        news_ids: (M,) news seen in the log; clicks / displays / first_seen: (M,) per news.
        recent_ids / recent_times: the log's clicks of its last :data:`RECENT_SECONDS` (news, time).
    """

    news_ids: np.ndarray
    clicks: np.ndarray
    displays: np.ndarray
    first_seen: np.ndarray
    recent_ids: np.ndarray
    recent_times: np.ndarray

    @classmethod
    def empty(cls) -> LogCounters:
        none = np.zeros(0, dtype=np.int64)
        return cls(np.zeros(0, dtype=object), none, none, none, np.zeros(0, dtype=object), none)

    @classmethod
    def of_split(cls, split: MindSplit) -> LogCounters:
        """The summary of a whole split's log (what scoring a later split counts against)."""
        news, times, clicked = _split_events(split)
        ids, index = np.unique(news.astype(str), return_inverse=True)
        first = np.full(len(ids), np.iinfo(np.int64).max)
        np.minimum.at(first, index, times)
        end = int(times.max()) if len(times) else 0
        recent = clicked & (times >= end - RECENT_SECONDS)
        return cls(
            news_ids=ids.astype(object),
            clicks=np.bincount(index, weights=clicked, minlength=len(ids)).astype(np.int64),
            displays=np.bincount(index, minlength=len(ids)).astype(np.int64),
            first_seen=first,
            recent_ids=news[recent].astype(object),
            recent_times=times[recent],
        )

    def save(self, path: str | Path) -> None:
        np.savez(
            path,
            news_ids=self.news_ids.astype(str),
            clicks=self.clicks,
            displays=self.displays,
            first_seen=self.first_seen,
            recent_ids=self.recent_ids.astype(str),
            recent_times=self.recent_times,
        )

    @classmethod
    def load(cls, path: str | Path) -> LogCounters:
        with np.load(path, allow_pickle=False) as data:
            return cls(
                data["news_ids"].astype(object),
                data["clicks"],
                data["displays"],
                data["first_seen"],
                data["recent_ids"].astype(object),
                data["recent_times"],
            )

    def candidate_stats(self, split: MindSplit) -> np.ndarray:
        """The counters of every candidate of ``split`` (flat, impression order), over this prior
        log plus the split's own impressions strictly before each one.

        Shape:
            returns (N, len(STAT_NAMES)) float32.
        """
        news, times, clicked = _split_events(split)
        everything = np.concatenate([self.news_ids, self.recent_ids, news]).astype(str)
        codes_all, inverse = np.unique(everything, return_inverse=True)
        n_prior, n_recent = len(self.news_ids), len(self.recent_ids)
        prior_code, recent_code, code = (
            inverse[:n_prior],
            inverse[n_prior : n_prior + n_recent],
            inverse[n_prior + n_recent :],
        )
        width = int(max(times.max(initial=0), self.recent_times.max(initial=0))) + RECENT_SECONDS + 1
        base = int(min(times.min(initial=0), self.recent_times.min(initial=0))) - RECENT_SECONDS
        # Keys are (news code, time) in one integer: one news's events are a contiguous range.
        news_start = code * width
        query, window_start = news_start + (times - base), news_start + (times - RECENT_SECONDS - base)
        own_displays = np.sort(code * width + (times - base))
        own_clicks = np.sort(code[clicked] * width + (times[clicked] - base))
        prior_recent = np.sort(recent_code * width + (self.recent_times - base))
        # Per-news totals of the prior log, looked up by code.
        totals = np.zeros((len(codes_all), 2), dtype=np.int64)
        totals[prior_code] = np.stack([self.clicks, self.displays], axis=1)
        first = np.full(len(codes_all), np.iinfo(np.int64).max)
        first[prior_code] = self.first_seen
        np.minimum.at(first, code, times)  # the split's own first display (never after the candidate's own time)
        clicks = totals[code, 0] + _count_between(own_clicks, news_start, query)
        displays = totals[code, 1] + _count_between(own_displays, news_start, query)
        recent = _count_between(own_clicks, window_start, query) + _count_between(prior_recent, window_start, query)
        age_hours = np.maximum(times - first[code], 0) / 3600.0
        return stats_from_counts(clicks, displays, recent, age_hours)


def stats_from_counts(
    clicks: np.ndarray, displays: np.ndarray, recent: np.ndarray, age_hours: np.ndarray
) -> np.ndarray:
    """The model's counter features (:data:`STAT_NAMES`) from raw counts.

    Shape:
        four (N,) arrays -> (N, len(STAT_NAMES)) float32.
    """
    ctr = (clicks + PRIOR_CTR * PRIOR_DISPLAYS) / (displays + PRIOR_DISPLAYS)  # shrunk towards 4%
    stats = np.stack([np.log1p(clicks), np.log1p(displays), np.log1p(recent), np.log1p(age_hours), ctr], axis=1)
    return stats.astype(np.float32)


class LiveCounters:
    """The same counters kept up to date event by event (the live service's copy).

    Starts from a :class:`LogCounters` summary (the training log) and counts every display and click
    it is told about. :meth:`stats` at time ``now`` gives exactly what :meth:`LogCounters.candidate_stats`
    gives for an impression at ``now`` when the events arrive in time order: recent clicks are those
    in the :data:`RECENT_SECONDS` before the latest event or ``now``, whichever is later.
    """

    def __init__(self, prior: LogCounters | None = None):
        prior = prior or LogCounters.empty()
        ids = prior.news_ids.astype(str).tolist()
        self.clicks: dict[str, int] = dict(zip(ids, prior.clicks.tolist(), strict=True))
        self.displays: dict[str, int] = dict(zip(ids, prior.displays.tolist(), strict=True))
        self.first_seen: dict[str, int] = dict(zip(ids, prior.first_seen.tolist(), strict=True))
        order = np.argsort(prior.recent_times, kind="stable")
        self._recent: deque[tuple[int, str]] = deque(
            zip(prior.recent_times[order].tolist(), prior.recent_ids[order].astype(str).tolist(), strict=True)
        )
        self.recent: dict[str, int] = {}
        for _, news_id in self._recent:
            self.recent[news_id] = self.recent.get(news_id, 0) + 1
        self.latest = int(prior.recent_times.max(initial=0))

    def observe(self, news_id: str, time: int, clicked: bool) -> None:
        """One display of ``news_id`` at ``time`` (Unix seconds), clicked or not."""
        self.displays[news_id] = self.displays.get(news_id, 0) + 1
        if time < self.first_seen.get(news_id, time + 1):
            self.first_seen[news_id] = time
        if clicked:
            self.clicks[news_id] = self.clicks.get(news_id, 0) + 1
            if time >= self.latest - RECENT_SECONDS:  # a click that arrives late is recent only if it still is
                if self._recent and time < self._recent[-1][0]:  # out of order: kept sorted by time
                    self._recent.insert(bisect.bisect_right(self._recent, (time, news_id)), (time, news_id))
                else:
                    self._recent.append((time, news_id))
                self.recent[news_id] = self.recent.get(news_id, 0) + 1
        self._advance(time)

    def _advance(self, now: int) -> None:
        self.latest = max(self.latest, now)
        while self._recent and self._recent[0][0] < self.latest - RECENT_SECONDS:
            _, news_id = self._recent.popleft()
            left = self.recent[news_id] - 1
            if left:
                self.recent[news_id] = left
            else:
                del self.recent[news_id]

    def stats(self, news_ids: list[str], now: int) -> np.ndarray:
        """Shape: (N,) ids -> (N, len(STAT_NAMES)) float32; a news never shown gets :data:`NEVER_SHOWN`."""
        self._advance(now)
        clicks = np.array([self.clicks.get(i, 0) for i in news_ids], dtype=np.float64)
        displays = np.array([self.displays.get(i, 0) for i in news_ids], dtype=np.float64)
        recent = np.array([self.recent.get(i, 0) for i in news_ids], dtype=np.float64)
        first = np.array([self.first_seen.get(i, now) for i in news_ids], dtype=np.float64)
        return stats_from_counts(clicks, displays, recent, np.maximum(now - first, 0) / 3600.0)


def recent_clicks(prior: LogCounters, split: MindSplit) -> np.ndarray:
    """Shape: (N,) clicks of each candidate in the day before its impression (the baseline's score)."""
    return np.expm1(prior.candidate_stats(split)[:, STAT_NAMES.index("recent_clicks")]).round()
