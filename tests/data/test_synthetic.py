from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest
from PIL import Image

from mmnewsrec.data.mind import load_mind
from mmnewsrec.data.stats import split_stats
from mmnewsrec.data.synthetic import (
    CATEGORY_WORDS,
    HOOK_WORDS,
    ORACLE_FILE,
    SCALES,
    SUMMARY_FILE,
    generate_mind,
    read_oracle_probs,
)
from mmnewsrec.errors import MmnewsrecError


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_same_seed_same_bytes_other_seed_differs(tiny_mind: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate_mind(again, scale="tiny", seed=0)
    assert tree_digest(again) == tree_digest(tiny_mind)
    other = tmp_path / "other"
    generate_mind(other, scale="tiny", seed=1, images=False)
    assert tree_digest(other)["train/behaviors.tsv"] != tree_digest(tiny_mind)["train/behaviors.tsv"]
    assert not (other / "images").exists()


def test_round_trip_parses_with_zero_errors(tiny_mind: Path) -> None:
    dataset = load_mind(tiny_mind)  # on_unknown_news="error": every reference resolves
    summary = json.loads((tiny_mind / SUMMARY_FILE).read_text())
    scale = SCALES["tiny"]
    assert list(dataset.splits) == ["train", "dev", "test"]
    for name, split in dataset.splits.items():
        stats = split_stats(split)
        assert stats["impressions"] == summary["impressions"][name] == getattr(scale, f"{name}_impressions")
        assert stats["candidates"] == summary["candidates"][name]
        assert stats["unknown_news_refs"] == 0 and stats["unreadable_images"] == 0
        assert 2 <= stats["min_candidates"] and stats["max_candidates"] <= scale.max_candidates
        assert 0.35 < stats["image_coverage"] < 0.55
        assert 0.75 < stats["entity_coverage"] < 0.95 and stats["entity_vectors"] == stats["entities"] > 50
    assert dataset["train"].labelled and dataset["dev"].labelled and not dataset["test"].labelled


def test_click_statistics_match_mind(tiny_mind: Path) -> None:
    dataset = load_mind(tiny_mind, splits=("train", "dev"))
    for split in dataset.splits.values():
        stats = split_stats(split, check_images=False)
        assert 0.03 < stats["click_rate"] < 0.05
        clicks = np.add.reduceat(split.flat_labels(), split.candidate_offsets()[:-1])
        assert (clicks >= 1).all()  # every logged impression has a click, as in MIND
    assert split_stats(dataset["train"], check_images=False)["empty_histories"] > 0


def test_titles_carry_topic_and_hook_words(tiny_mind: Path) -> None:
    news = load_mind(tiny_mind, splits=("train",)).news
    hooks = set(HOOK_WORDS)
    on_topic, with_hook = 0, 0
    for category, title in zip(news["category"].to_pylist(), news["title"].to_pylist(), strict=True):
        words = set(title.lower().split())
        on_topic += bool(words & set(CATEGORY_WORDS[category]))
        with_hook += bool(words & hooks)
    assert on_topic == news.num_rows  # every title names its topic
    assert 0.25 < with_hook / news.num_rows < 0.55  # 40% of news carry 1-2 hooks


def test_history_interest_predicts_clicks(tiny_mind: Path) -> None:
    """Users click candidates of the subcategories they clicked before: the signal a model learns."""
    dataset = load_mind(tiny_mind, splits=("train",))
    split = dataset["train"]
    subcat = dict(zip(dataset.news["news_id"].to_pylist(), dataset.news["subcategory"].to_pylist(), strict=True))
    match = {0: [], 1: []}
    for history, cands, labels in zip(
        split.behaviors["history"].to_pylist(),
        split.behaviors["candidates"].to_pylist(),
        split.behaviors["labels"].to_pylist(),
        strict=True,
    ):
        seen = {subcat[n] for n in history}
        if seen:
            for news_id, label in zip(cands, labels, strict=True):
                match[label].append(subcat[news_id] in seen)
    assert np.mean(match[1]) > np.mean(match[0]) + 0.2


def test_images_encode_category(tiny_mind: Path) -> None:
    news = load_mind(tiny_mind, splits=("train",)).news
    with_image = news.filter(pc.is_valid(news["image_path"]))
    colours = np.array(
        [np.asarray(Image.open(p))[:4, :4].reshape(-1, 3).mean(0) for p in with_image["image_path"].to_pylist()]
    )
    cats = np.array(with_image["category"].to_pylist())
    centroids = {c: colours[cats == c].mean(0) for c in set(cats)}
    names = list(centroids)
    nearest = [names[np.argmin([np.linalg.norm(x - centroids[n]) for n in names])] for x in colours]
    assert np.mean(np.array(nearest) == cats) > 0.9  # background colour identifies the category


def test_oracle_file_aligns_with_candidates(tiny_mind: Path) -> None:
    split = load_mind(tiny_mind, splits=("dev",))["dev"]
    probs = read_oracle_probs(tiny_mind / "dev" / ORACLE_FILE)
    sizes = np.diff(split.candidate_offsets())
    ids = split.behaviors["impression_id"].to_pylist()
    assert [len(probs[i]) for i in ids] == sizes.tolist()
    flat = np.concatenate([probs[i] for i in ids])
    assert ((flat > 0) & (flat < 1)).all()
    assert flat[split.flat_labels() == 1].mean() > 3 * flat[split.flat_labels() == 0].mean()


def test_refuses_to_overwrite_and_leaves_no_partial_output(tiny_mind: Path, tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(MmnewsrecError, match="already exists"):
        generate_mind(tiny_mind, scale="tiny")
    with pytest.raises(MmnewsrecError, match="unknown scale"):
        generate_mind(tmp_path / "x", scale="huge")

    import mmnewsrec.data.synthetic.writer as writer

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(writer, "_write_images", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        generate_mind(tmp_path / "crashed", scale="tiny")
    assert list(tmp_path.iterdir()) == []  # neither the target nor the temporary folder remains


def test_interest_drift_moves_dev_clicks_away_from_the_history(tmp_path: Path) -> None:
    """With drift, dev clicks agree less with the user's history subcategories; without, the files do not change."""
    from mmnewsrec.data.mind import load_mind

    def agreement(root: Path) -> float:
        dataset = load_mind(root, splits=("dev",))
        sub = dict(zip(dataset.news["news_id"].to_pylist(), dataset.news["subcategory"].to_pylist(), strict=True))
        hits = total = 0
        for row in dataset["dev"].behaviors.to_pylist():
            liked = {sub[n] for n in row["history"] or []}
            for news_id, label in zip(row["candidates"], row["labels"], strict=True):
                if label and liked:
                    hits += sub[news_id] in liked
                    total += 1
        return hits / total

    generate_mind(tmp_path / "still", scale="tiny", seed=3, images=False)
    generate_mind(tmp_path / "zero", scale="tiny", seed=3, images=False, interest_drift=0.0)
    generate_mind(tmp_path / "moved", scale="tiny", seed=3, images=False, interest_drift=1.0)
    for split in ("train", "dev", "test"):
        for name in ("news.tsv", "behaviors.tsv"):
            assert (tmp_path / "still" / split / name).read_bytes() == (tmp_path / "zero" / split / name).read_bytes()
    assert (tmp_path / "moved" / "train" / "behaviors.tsv").read_bytes() == (
        tmp_path / "still" / "train" / "behaviors.tsv"
    ).read_bytes()
    assert agreement(tmp_path / "moved") < agreement(tmp_path / "still") - 0.05
    with pytest.raises(MmnewsrecError, match="interest_drift: must be between 0 and 1"):
        generate_mind(tmp_path / "bad", scale="tiny", interest_drift=1.5)


def test_entities_recur_across_news_and_follow_their_subcategory(tiny_mind: Path) -> None:
    """Knowledge entities as MIND ships them: JSON columns naming Wikidata-like ids that recur
    across news, mostly within one subcategory's beat, with a 100-d vector for each."""
    from collections import Counter

    from mmnewsrec.data.mind import parse_entities, read_entity_vectors

    split = load_mind(tiny_mind, splits=("train",))["train"]
    entities = parse_entities(split.news, tiny_mind / "train" / "news.tsv").ids.to_pylist()
    counts = Counter(entity for named in entities for entity in named)
    assert max(counts.values()) >= 10 and sum(c > 1 for c in counts.values()) > 0.5 * len(counts)
    subcategory = split.news["subcategory"].to_pylist()
    beats: dict[str, Counter] = {}
    for named, sub in zip(entities, subcategory, strict=True):
        for entity in named:
            beats.setdefault(entity, Counter())[sub] += 1
    in_beat = sum(beat.most_common(1)[0][1] for beat in beats.values()) / sum(counts.values())
    assert in_beat > 0.8  # an entity belongs to one subcategory's beat (10% are drawn from elsewhere)
    vectors = read_entity_vectors(tiny_mind / "train" / "entity_embedding.vec")
    assert vectors.dim == 100 and set(counts) <= set(vectors.ids)


def _favourite_click_lift(root: Path, preset: str) -> float:
    """Click rate of dev candidates naming an entity their user cares about, over that of
    candidates naming only other entities. The favourites are the generator's (rebuilt from the
    seed, as benchmarks/synthetic_ceilings.py does); only the entity world's clicks read them."""
    from mmnewsrec.data.mind import parse_entities
    from mmnewsrec.data.synthetic import PRESETS, attach_entities, build_world

    world, subcats = build_world(
        SCALES["tiny"], PRESETS[preset].click_model, np.random.default_rng(0), PRESETS[preset].params
    )
    entities = attach_entities(world, [name for _, name, _ in subcats], 1.0, seed=0)
    index = {entity: e for e, entity in enumerate(entities.ids)}
    dataset = load_mind(root, splits=("dev",))
    named = parse_entities(dataset.news, "news.tsv").ids.to_pylist()
    of_news = dict(zip(dataset.news["news_id"].to_pylist(), named, strict=True))
    favourite, other = [], []
    for row in dataset["dev"].behaviors.to_pylist():
        user = int(row["user_id"][1:]) - 1
        for candidate, label in zip(row["candidates"], row["labels"], strict=True):
            ids = [index[e] for e in of_news[candidate]]
            if ids:
                (favourite if world.favourite_entities[user, ids].any() else other).append(label)
    return float(np.mean(favourite) / np.mean(other))


def test_in_the_entity_world_clicks_follow_the_entities_a_user_cares_about(tiny_mind: Path, tmp_path: Path) -> None:
    entity_world = tmp_path / "entities"
    generate_mind(entity_world, scale="tiny", seed=0, images=False, preset="entities")
    default_lift = _favourite_click_lift(tiny_mind, "default")
    entity_lift = _favourite_click_lift(entity_world, "entities")
    assert entity_lift > 1.5 * default_lift, (default_lift, entity_lift)


def test_every_world_of_the_zoo_is_written_and_reads_back(tmp_path: Path) -> None:
    from mmnewsrec.data.synthetic import PRESETS

    assert len(PRESETS) >= 8
    for name in PRESETS:
        summary = generate_mind(tmp_path / name, scale="tiny", seed=1, images=False, preset=name)
        assert summary.preset == name and 0.02 < summary.click_rate["dev"] < 0.1, (name, summary.click_rate)
        load_mind(tmp_path / name)  # every reference resolves, every entity field parses
