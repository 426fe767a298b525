"""Log counters: only events strictly before an impression count, from the prior log and the split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from mmnewsrec.data.mind import load_mind
from mmnewsrec.data.popularity import NEVER_SHOWN, STAT_NAMES, LogCounters


def counts(stats: np.ndarray, name: str) -> list[float]:
    values = stats[:, STAT_NAMES.index(name)]
    return (values if name == "smoothed_ctr" else np.expm1(values)).round(6).tolist()


def test_a_later_click_never_counts(mind_sample: Path) -> None:
    dataset = load_mind(mind_sample)
    # train: imp 1 (11/11 9:05) N3-1 N4-0 | imp 2 (11/12 12:30) N1-0 N2-0 N4-1 | imp 3 (11/13 23:59:59) N4-1 N2-0
    stats = LogCounters.empty().candidate_stats(dataset["train"])
    assert counts(stats, "clicks") == [0, 0, 0, 0, 0, 1, 0]  # N4's click at 12:30 counts only for imp 3
    assert counts(stats, "displays") == [0, 0, 0, 0, 1, 2, 1]
    assert counts(stats, "recent_clicks") == [0, 0, 0, 0, 0, 0, 0]  # 12:30 is over a day before 23:59:59
    age = counts(stats, "age_hours")
    first_n4 = (27 * 3600 + 24 * 60 + 2) / 3600  # N4 first shown 11/11 9:05:58, again 11/12 12:30:00
    assert age[:4] == [0, 0, 0, 0] and abs(age[4] - first_n4) < 1e-3


def test_the_prior_log_and_the_split_add_up(mind_sample: Path) -> None:
    dataset = load_mind(mind_sample)
    prior = LogCounters.of_split(dataset["train"])
    stats = prior.candidate_stats(dataset["dev"])
    # dev 10 (11/15 8:00): N5-0 N6-1 N4-0 | dev 11 (13:00): N5-1 N6-0. Train: N4 shown 3 times, clicked twice.
    assert counts(stats, "clicks") == [0, 0, 2, 0, 1]  # N6's 8:00 click counts at 13:00, N5's own never
    assert counts(stats, "displays") == [0, 0, 3, 1, 1]
    assert counts(stats, "recent_clicks") == [0, 0, 0, 0, 1]
    assert stats[0, STAT_NAMES.index("smoothed_ctr")] == np.float32(NEVER_SHOWN[-1])


def test_counters_survive_a_save_and_load(mind_sample: Path, tmp_path: Path) -> None:
    dataset = load_mind(mind_sample)
    prior = LogCounters.of_split(dataset["train"])
    prior.save(tmp_path / "c.npz")
    again = LogCounters.load(tmp_path / "c.npz")
    np.testing.assert_array_equal(again.candidate_stats(dataset["dev"]), prior.candidate_stats(dataset["dev"]))


def test_live_counters_fed_in_time_order_equal_the_split_counters(tiny_mind: Path) -> None:
    """What the live service counts click by click is what training and evaluation count."""
    from mmnewsrec.data.mind import read_split
    from mmnewsrec.data.popularity import LiveCounters

    prior = LogCounters.of_split(read_split(tiny_mind / "train"))
    dev = read_split(tiny_mind / "dev")
    expected = prior.candidate_stats(dev)  # (N, F), impression order
    offsets = dev.candidate_offsets()
    times = dev.behaviors["time"].cast(pa.int64()).to_numpy()
    candidates, labels = dev.behaviors["candidates"].to_pylist(), dev.behaviors["labels"].to_pylist()
    live = LiveCounters(prior)
    for time in np.unique(times):  # impressions at one second are all scored before any is counted
        rows = np.flatnonzero(times == time)
        for row in rows:
            got = live.stats(candidates[row], int(time))
            np.testing.assert_allclose(got, expected[offsets[row] : offsets[row + 1]], rtol=1e-6, atol=1e-6)
        for row in rows:
            for news_id, label in zip(candidates[row], labels[row], strict=True):
                live.observe(news_id, int(time), bool(label))


def test_a_click_posted_late_counts_as_recent_only_while_it_is() -> None:
    """A click dated two days back, posted after newer ones, is a click but not a recent one; one a
    little out of order is recent and leaves the window when its own time does."""
    from mmnewsrec.data.popularity import RECENT_SECONDS, STAT_NAMES, LiveCounters

    recent = STAT_NAMES.index("recent_clicks")
    clicks = STAT_NAMES.index("clicks")
    live = LiveCounters()
    now = 10 * RECENT_SECONDS
    live.observe("N1", now, True)
    live.observe("OLD", now - 2 * RECENT_SECONDS, True)
    live.observe("LATE", now - 600, True)  # ten minutes out of order
    stats = np.expm1(live.stats(["N1", "OLD", "LATE"], now))
    np.testing.assert_allclose(stats[:, clicks], [1, 1, 1], atol=1e-5)
    np.testing.assert_allclose(stats[:, recent], [1, 0, 1], atol=1e-5)
    later = np.expm1(live.stats(["N1", "OLD", "LATE"], now - 600 + RECENT_SECONDS + 1))
    np.testing.assert_allclose(later[:, recent], [1, 0, 0], atol=1e-5)
