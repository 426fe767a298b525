"""The synthetic world rebuilt from a dataset's synthetic.json, and its click model as a callable."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mmnewsrec.data.synthetic import generate_mind
from mmnewsrec.data.synthetic.live import END_OF_LOGS, examination, load_world, news_id, news_row
from mmnewsrec.errors import ConfigError


def test_the_rebuilt_world_is_the_one_the_files_were_written_from(tiny_mind: Path) -> None:
    world = load_world(tiny_mind)
    lines = (tiny_mind / "dev" / "news.tsv").read_text(encoding="utf-8").splitlines()
    for line in lines[:200]:
        fields = line.split("\t")
        record = world.record(news_row(fields[0]))
        assert [record["news_id"], record["category"], record["subcategory"], record["title"], record["abstract"]] == [
            fields[0],
            *fields[1:5],
        ]
    # The oracle's probabilities of the dev split are the callable's, at each impression's time.
    oracle = (tiny_mind / "dev" / "oracle_probs.tsv").read_text().splitlines()[0].split("\t")[1].split()
    behaviors = (tiny_mind / "dev" / "behaviors.tsv").read_text().splitlines()[0].split("\t")
    user = int(behaviors[1][1:]) - 1
    news = np.array([news_row(token.rsplit("-", 1)[0]) for token in behaviors[4].split()])
    probs = world.click_probability(np.full(len(news), user), news, _day(world, behaviors[2]))
    np.testing.assert_allclose(probs, np.array(oracle, dtype=float), rtol=2e-3)


def _day(world, text: str) -> float:
    import datetime as dt

    from mmnewsrec.data.synthetic.world import START

    moment = dt.datetime.strptime(text, "%m/%d/%Y %I:%M:%S %p")
    return (moment - START).total_seconds() / 86400


def test_a_fixed_feed_is_clicked_as_the_click_model_says_within_binomial_error(tiny_mind: Path) -> None:
    world = load_world(tiny_mind)
    rng = np.random.default_rng(7)
    feed = np.flatnonzero(world.world.publish_day >= END_OF_LOGS - 1.0)[:10]
    user, day, draws = 3, END_OF_LOGS + 0.2, 20_000
    probs = world.feed_probability(user, feed, day)  # (10,)
    np.testing.assert_allclose(probs, examination(np.arange(1, 11)) * world.click_probability([user] * 10, feed, day))
    assert examination(np.array([1]))[0] == 1.0 and np.all(np.diff(examination(np.arange(1, 11))) < 0)
    clicks = (rng.random((draws, len(feed))) < probs).sum(axis=0)  # what the simulator draws per card
    sigma = np.sqrt(draws * probs * (1 - probs))
    assert np.all(np.abs(clicks - draws * probs) <= 4 * sigma + 1)


def test_published_news_follow_the_world_and_come_after_it(tiny_mind: Path) -> None:
    world = load_world(tiny_mind)
    before = world.news_count
    rows = world.publish(500, (END_OF_LOGS, END_OF_LOGS + 1), np.random.default_rng(0))
    assert rows.tolist() == list(range(before, before + 500))
    days = world.world.publish_day[rows]
    assert np.all(np.diff(days) >= 0) and days.min() >= END_OF_LOGS and days.max() < END_OF_LOGS + 1
    record = world.record(int(rows[0]))
    assert record["news_id"] == news_id(int(rows[0])) and record["title"]
    # Their subcategories follow the world's shares: the most frequent new one is among its five largest.
    weights = world.world.subcategory_weight
    assert np.argmax(np.bincount(world.world.subcategory[rows], minlength=len(weights))) in np.argsort(-weights)[:5]
    assert np.all(np.linalg.norm(world.world.topic[rows], axis=1) == pytest.approx(1.0, abs=1e-5))
    with pytest.raises(ValueError, match="published after"):
        world.publish(1, (END_OF_LOGS, END_OF_LOGS + 1), np.random.default_rng(1))


def test_drifted_readers_are_known_and_a_folder_synth_did_not_write_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "drift"
    generate_mind(root, scale="tiny", seed=1, images=False, interest_drift=0.5)
    world = load_world(root)
    assert 100 < len(world.draw.movers) < 300  # about half of 400 readers
    assert not world.images
    with pytest.raises(ConfigError, match="not a synthetic dataset"):
        load_world(tmp_path)
    summary = json.loads((root / "synthetic.json").read_text(encoding="utf-8"))
    (root / "synthetic.json").write_text("{oops", encoding="utf-8")
    with pytest.raises(ConfigError, match="synthetic.json: unreadable"):
        load_world(root)
    summary["seed"] = 5  # another world than the files'
    (root / "synthetic.json").write_text(json.dumps(summary), encoding="utf-8")
    with pytest.raises(ConfigError, match="click bias"):
        load_world(root)
    summary["world"]["no_such_knob"] = 1
    (root / "synthetic.json").write_text(json.dumps(summary), encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown field 'no_such_knob'"):
        load_world(root)
    shutil.rmtree(root)
