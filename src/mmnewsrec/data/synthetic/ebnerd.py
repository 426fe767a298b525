"""The synthetic world written as EB-NeRD: ``articles.parquet``, per split ``behaviors.parquet``
and ``history.parquet`` (``train/``, ``validation/``, ``test/``), and the embedding artifacts that
EB-NeRD ships (``artifacts/*/*.parquet``: article id -> vector).

The world, its impressions and its clicks are those :func:`~mmnewsrec.data.synthetic.generate_mind`
writes for the same scale, seed and preset (news ``N{i}`` is article ``i``, user ``U{u}`` is user
``u``), so a model scores the same impressions in either format. The artifacts are drawn from the
world's latent state: the text vectors from each news's topic (what a text encoder would see),
the image vectors from its topic and its image's appeal, for news with an image only, each through
a fixed random projection plus noise.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mmnewsrec.atomic import atomic_directory
from mmnewsrec.data.ebnerd import ARTICLES_FILE, BEHAVIORS_PARQUET, HISTORY_PARQUET, SPLIT_FOLDERS
from mmnewsrec.data.synthetic.world import CATEGORY_WORDS, START
from mmnewsrec.data.synthetic.writer import (
    ORACLE_FILE,
    SUMMARY_FILE,
    SynthSummary,
    draw_splits,
    draw_summary,
    generate_mind,
    oracle_lines,
    prepare_draw,
)
from mmnewsrec.errors import MmnewsrecError

logger = logging.getLogger(__name__)

#: The artifacts, as EB-NeRD's archives unpack: folder, file, vector column.
TEXT_ARTIFACT = ("Ekstra_Bladet_contrastive_vector", "contrastive_vector.parquet", "contrastive_vector")
IMAGE_ARTIFACT = ("Ekstra_Bladet_image_embeddings", "image_embeddings.parquet", "image_embedding")
ARTIFACTS_DIR = "artifacts"
#: Widths of the synthetic artifacts (EB-NeRD's are 768 and 1024).
TEXT_DIM, IMAGE_DIM = 64, 64
SENTIMENTS = ("Negative", "Neutral", "Positive")


def _moment(day: float) -> dt.datetime:
    return START + dt.timedelta(seconds=int(day * 86400))


def _timestamps(days: np.ndarray) -> pa.Array:
    return pa.array([_moment(d) for d in days.tolist()], pa.timestamp("us"))


def generate_ebnerd(
    out: str | Path,
    scale: str = "tiny",
    seed: int = 0,
    overwrite: bool = False,
    preset: str = "default",
    interest_drift: float | None = None,
) -> SynthSummary:
    """Writes the synthetic world of (``scale``, ``seed``, ``preset``) as an EB-NeRD bundle to ``out``.

    Raises:
        MmnewsrecError: unknown scale or preset, a negative seed, or ``out`` exists and is not empty
            (without ``overwrite``).
    """
    draw, size = prepare_draw(out, scale, seed, overwrite, preset, interest_drift)
    world, content = draw.world, draw.content
    artifacts = np.random.default_rng([seed, 24])  # the extras' own stream: the world's draws are MIND's

    with atomic_directory(out) as tmp:
        counts, candidates, rates = {}, {}, {}
        for split, sample, probs, labels, histories in draw_splits(draw, size):
            folder = tmp / SPLIT_FOLDERS[split]
            folder.mkdir(parents=True)
            _write_behaviors(folder / BEHAVIORS_PARQUET, split, sample, labels, artifacts)
            _write_history(folder / HISTORY_PARQUET, sample, histories, split)
            if split != "train":
                (folder / ORACLE_FILE).write_text(oracle_lines(probs, sample["offsets"]), encoding="utf-8")
            counts[split], candidates[split] = len(sample["users"]), len(sample["owner"])
            rates[split] = float(labels.mean())
        _write_articles(tmp / ARTICLES_FILE, content, artifacts)
        _write_artifacts(tmp / ARTIFACTS_DIR, world, artifacts)
        image_fraction = float(world.has_image.mean())
        summary = draw_summary(draw, scale, seed, preset, counts, candidates, rates, image_fraction)
        record = {**asdict(summary), "format": "ebnerd"}
        (tmp / SUMMARY_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote synthetic EB-NeRD (%s, seed %d) to %s", scale, seed, out)
    return summary


def _write_articles(path: Path, content, rng: np.random.Generator) -> None:
    world, subcats = content.world, content.subcats
    n = len(world.subcategory)
    categories = list(CATEGORY_WORDS)
    ids = np.arange(1, n + 1, dtype=np.int32)
    published = _timestamps(world.publish_day)
    sentiment = rng.integers(0, len(SENTIMENTS), n)
    table = pa.table(
        {
            "article_id": pa.array(ids, pa.int32()),
            "title": pa.array(content.titles, pa.string()),
            "subtitle": pa.array(content.abstracts, pa.string()),
            "last_modified_time": published,
            "premium": pa.array(rng.random(n) < 0.2),
            "body": pa.array(content.abstracts, pa.string()),
            "published_time": published,
            "image_ids": pa.array(
                [[int(1_000_000 + i)] if world.has_image[i] else [] for i in range(n)], pa.list_(pa.int64())
            ),
            "article_type": pa.array(["article_default"] * n, pa.string()),
            "url": pa.array([f"https://ekstrabladet.dk/synthetic/{i}" for i in ids.tolist()], pa.string()),
            "ner_clusters": pa.array([[] for _ in range(n)], pa.list_(pa.string())),
            "entity_groups": pa.array([[] for _ in range(n)], pa.list_(pa.string())),
            "topics": pa.array([[subcats[s][1]] for s in world.subcategory.tolist()], pa.list_(pa.string())),
            "category": pa.array(world.category.astype(np.int16) + 100, pa.int16()),
            "subcategory": pa.array([[int(s) + 200] for s in world.subcategory.tolist()], pa.list_(pa.int16())),
            "category_str": pa.array([categories[c] for c in world.category.tolist()], pa.string()),
            "total_inviews": pa.nulls(n, pa.int32()),
            "total_pageviews": pa.nulls(n, pa.int32()),
            "total_read_time": pa.nulls(n, pa.float32()),
            "sentiment_score": pa.array(0.5 + 0.5 * rng.random(n), pa.float32()),
            "sentiment_label": pa.array([SENTIMENTS[s] for s in sentiment.tolist()], pa.string()),
        }
    )
    pq.write_table(table, path)


def _write_behaviors(path: Path, split: str, sample: dict, labels: np.ndarray, rng: np.random.Generator) -> None:
    offsets, news, users, days = sample["offsets"], sample["news"], sample["users"], sample["day"]
    m = len(users)
    inview = [(news[offsets[k] : offsets[k + 1]] + 1).tolist() for k in range(m)]
    columns = {
        "impression_id": pa.array(np.arange(1, m + 1), pa.uint32()),
        "article_id": pa.nulls(m, pa.int32()),  # every impression is the front page's
        "impression_time": _timestamps(days),
        "read_time": pa.array(rng.gamma(2.0, 15.0, m), pa.float32()),
        "scroll_percentage": pa.nulls(m, pa.float32()),
        "device_type": pa.array(rng.integers(1, 4, m), pa.int8()),
        "article_ids_inview": pa.array(inview, pa.list_(pa.int32())),
    }
    if split != "test":
        clicked = [
            (news[offsets[k] : offsets[k + 1]][labels[offsets[k] : offsets[k + 1]] == 1] + 1).tolist() for k in range(m)
        ]
        columns["article_ids_clicked"] = pa.array(clicked, pa.list_(pa.int32()))
    columns |= {
        "user_id": pa.array(users + 1, pa.uint32()),
        "is_sso_user": pa.array(rng.random(m) < 0.5),
        "gender": pa.nulls(m, pa.int8()),
        "postcode": pa.nulls(m, pa.int8()),
        "age": pa.nulls(m, pa.int8()),
        "is_subscriber": pa.array(rng.random(m) < 0.3),
        "session_id": pa.array(np.arange(1, m + 1), pa.uint32()),
        "next_read_time": pa.array(rng.gamma(2.0, 15.0, m), pa.float32()),
        "next_scroll_percentage": pa.array(100 * rng.random(m), pa.float32()),
    }
    if split == "test":
        columns["is_beyond_accuracy"] = pa.array(np.zeros(m, dtype=bool))
    pq.write_table(pa.table(columns), path, row_group_size=max(1, m // 3))


def _write_history(path: Path, sample: dict, histories: list, split: str) -> None:
    users = np.unique(sample["users"])
    start = START + dt.timedelta(days={"train": 0.0, "dev": 6.0, "test": 7.0}[split])
    clicks = [(np.asarray(histories[u]) + 1).tolist() for u in users.tolist()]
    times = [[start - dt.timedelta(minutes=len(c) - j) for j in range(len(c))] for c in clicks]
    table = pa.table(
        {
            "user_id": pa.array(users + 1, pa.uint32()),
            "impression_time_fixed": pa.array(times, pa.list_(pa.timestamp("us"))),
            "scroll_percentage_fixed": pa.array([[None] * len(c) for c in clicks], pa.list_(pa.float32())),
            "article_id_fixed": pa.array(clicks, pa.list_(pa.int32())),
            "read_time_fixed": pa.array([[10.0] * len(c) for c in clicks], pa.list_(pa.float32())),
        }
    )
    pq.write_table(table, path)


def _write_artifacts(folder: Path, world, rng: np.random.Generator) -> None:
    n, d = world.topic.shape
    text = world.topic @ rng.normal(size=(d, TEXT_DIM)) / np.sqrt(d) + 0.05 * rng.normal(size=(n, TEXT_DIM))
    appeal = np.asarray(world.appeal, dtype=np.float64)[:, None]
    image = (np.concatenate([world.topic, appeal], axis=1) @ rng.normal(size=(d + 1, IMAGE_DIM))) / np.sqrt(d + 1)
    image += 0.05 * rng.normal(size=(n, IMAGE_DIM))
    ids = np.arange(1, n + 1, dtype=np.int32)
    with_image = np.flatnonzero(world.has_image)
    for (name, file, column), vectors, rows in (
        (TEXT_ARTIFACT, text, np.arange(n)),
        (IMAGE_ARTIFACT, image, with_image),
    ):
        (folder / name).mkdir(parents=True)
        values = pa.array([v.astype(np.float32) for v in vectors[rows]], pa.list_(pa.float32()))
        pq.write_table(pa.table({"article_id": pa.array(ids[rows], pa.int32()), column: values}), folder / name / file)


#: What ``mmnewsrec synth --format`` writes.
FORMATS = ("mind", "ebnerd")


def generate(
    out: str | Path,
    scale: str = "tiny",
    seed: int = 0,
    images: bool = True,
    overwrite: bool = False,
    progress: bool = False,
    preset: str = "default",
    interest_drift: float | None = None,
    format: str = "mind",
) -> SynthSummary:
    """The synthetic world in MIND's format (:func:`~mmnewsrec.data.synthetic.generate_mind`, with
    image files) or EB-NeRD's (:func:`generate_ebnerd`: image embeddings instead of pixels, so
    ``images`` is not read)."""
    if format == "ebnerd":
        return generate_ebnerd(out, scale, seed, overwrite, preset, interest_drift)
    if format != "mind":
        raise MmnewsrecError(f"format: {format!r} is not one of {', '.join(FORMATS)}")
    return generate_mind(out, scale, seed, images, overwrite, progress, preset=preset, interest_drift=interest_drift)
