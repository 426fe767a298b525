"""A synthetic dataset's world, rebuilt from its ``synthetic.json``, running on after its logs end:
the ground-truth click model as a callable, and fresh news published day after day.

:func:`load_world` replays the generator's draws (same scale, seed, click model, distributions)
without writing anything, so the world holds the news, users, click bias and interest moves of
the folder's logs. The click model a simulated reader follows, for a feed shown at time ``t``::

    P(click | u, i, t, rank r) = examination(r) * p(u, i, t)
    examination(r) = 1 / log2(1 + r)            (r = 1, 2, ...: the DCG discount)

where ``p`` is the generator's own click probability (module :mod:`mmnewsrec.data.synthetic`).
News published after the logs are drawn from the world's own distributions (subcategory shares,
topics, hook words, popularity, images) with titles and abstracts rendered as the generator does;
they name no knowledge entities.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from mmnewsrec.data.schema import IMAGES_DIR
from mmnewsrec.data.synthetic.render import draw_image, news_texts
from mmnewsrec.data.synthetic.world import (
    CATEGORY_WORDS,
    SCALES,
    SPLIT_DAYS,
    START,
    ClickModel,
    World,
    WorldParameters,
    hook_popularity,
    sigmoid,
    unit,
)
from mmnewsrec.data.synthetic.writer import GENERATOR_VERSION, SUMMARY_FILE, Draw, draw_splits, draw_world
from mmnewsrec.errors import ConfigError, MmnewsrecError

#: The first day after the logs (world days count from the first train day; test ends at day 8).
END_OF_LOGS = SPLIT_DAYS["test"][1]


def examination(ranks: np.ndarray) -> np.ndarray:
    """The probability that a reader looks at the card at rank ``ranks`` (1 = top): 1 / log2(1 + r)."""
    return 1.0 / np.log2(1.0 + np.asarray(ranks, dtype=np.float64))


def news_id(row: int) -> str:
    """The MIND id of the world's news ``row`` (``N1`` is row 0)."""
    return f"N{row + 1}"


def news_row(news_id: str) -> int | None:
    """The world's row of a synthetic news id, None for an id the generator never writes."""
    if len(news_id) < 2 or news_id[0] != "N" or not news_id[1:].isdigit():
        return None
    return int(news_id[1:]) - 1


def unix_time(day: float) -> int:
    """Unix seconds of a world day (the logs' clock: day 0 is the first train day)."""
    return int((START - dt.datetime(1970, 1, 1)).total_seconds() + day * 86400)


@dataclass
class LiveWorld:
    """A synthetic dataset's world after its logs (see the module docstring).

    Attributes:
        draw: what the generator drew (world, click model, distributions, texts, histories).
        folder: the dataset's root.
        images: whether the dataset has images (new news then get theirs, in ``image_dir``).
    """

    draw: Draw
    folder: Path
    images: bool
    image_size: int

    @property
    def world(self) -> World:
        return self.draw.world

    @property
    def model(self) -> ClickModel:
        return self.draw.model

    @property
    def news_count(self) -> int:
        return len(self.world.publish_day)

    def click_probability(self, users: np.ndarray, news: np.ndarray, day: np.ndarray | float) -> np.ndarray:
        """The ground truth ``p(u, i, t)`` of each (user, news) pair at world day ``day`` (no
        position bias). Shapes: (P,), (P,), (P,) or scalar -> (P,) float64."""
        users, news = np.asarray(users, dtype=np.int64), np.asarray(news, dtype=np.int64)
        day = np.broadcast_to(np.asarray(day, dtype=np.float64), users.shape)
        return sigmoid(self.world.logits(users, news, day, self.model).astype(np.float64))

    def feed_probability(self, user: int, news: np.ndarray, day: float) -> np.ndarray:
        """Each card's click probability in a feed of ``news`` (top first) shown to ``user``:
        examination of its rank times ``p``. Shape: (k,) -> (k,)."""
        news = np.asarray(news, dtype=np.int64)
        p = self.click_probability(np.full(len(news), user), news, day)
        return examination(np.arange(1, len(news) + 1)) * p

    def best_feed_clicks(self, user: int, candidates: np.ndarray, k: int, day: float) -> float:
        """The expected clicks of the best feed of ``k`` from ``candidates`` (the oracle's: the
        most likely clicks, top first, which maximises the examination-weighted sum)."""
        if len(candidates) == 0:
            return 0.0
        p = self.click_probability(np.full(len(candidates), user), candidates, day)
        best = -np.sort(-p)[:k]
        return float((examination(np.arange(1, len(best) + 1)) * best).sum())

    def move_interests(self, share: float, rng: np.random.Generator) -> np.ndarray:
        """Moves the interests of ``share`` of the users (each takes another mover's, as the
        generator's drift does); returns the movers, who join those the logs moved."""
        users = len(self.world.user_interest)
        movers = np.flatnonzero(rng.random(users) < share)
        self.world.user_interest[movers] = self.world.user_interest[rng.permutation(movers)]
        self.draw.movers = np.union1d(self.draw.movers, movers)
        return movers

    def publish(self, count: int, days: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
        """Draws ``count`` new news published uniformly in ``days`` (world days, after every news
        the world has) and appends them to the world; returns their rows, by publication time."""
        world, params = self.world, self.draw.params
        if count <= 0:
            return np.zeros(0, dtype=np.int64)
        if days[0] < world.publish_day[-1]:
            raise ValueError(f"news must be published after day {world.publish_day[-1]:.3f}, got {days[0]}")
        subcats = self.draw.content.subcats
        subcategory = rng.choice(len(subcats), size=count, p=world.subcategory_weight)
        category = np.array([subcats[s][0] for s in subcategory], dtype=world.category.dtype)
        d = world.topic.shape[1]
        topic = unit(world.subcategory_topic[subcategory] + params.topic_noise * rng.standard_normal((count, d)))
        hooks = rng.choice(3, size=count, p=list(params.hook_count_probs))
        base_pop = hook_popularity(hooks, params) + params.popularity_noise * rng.standard_normal(count)
        has_image = (rng.random(count) < self.model.image_fraction) & self.images
        appeal = np.where(has_image, rng.standard_normal(count), 0.0)
        publish_day = np.sort(rng.uniform(days[0], days[1], size=count))
        first = self.news_count
        world.category = np.concatenate([world.category, category])
        world.subcategory = np.concatenate([world.subcategory, subcategory])
        world.topic = np.concatenate([world.topic, topic.astype(np.float32)])
        world.base_pop = np.concatenate([world.base_pop, base_pop.astype(np.float32)])
        world.hooks = np.concatenate([world.hooks, hooks])
        world.appeal = np.concatenate([world.appeal, appeal.astype(np.float32)])
        world.has_image = np.concatenate([world.has_image, has_image])
        world.publish_day = np.concatenate([world.publish_day, publish_day])
        if world.news_entities is not None:  # new news name no entities
            world.news_entities = np.concatenate(
                [world.news_entities, np.full((count, world.news_entities.shape[1]), -1, dtype=np.int64)]
            )
        rows = np.arange(first, first + count)
        view = World(
            category=category,
            subcategory=subcategory,
            topic=topic,
            base_pop=base_pop,
            hooks=hooks,
            appeal=appeal,
            has_image=has_image,
            publish_day=publish_day,
            user_interest=world.user_interest,
            user_activity=world.user_activity,
        )
        titles, abstracts = news_texts(view, subcats, rng, params)
        self.draw.content.titles.extend(titles)
        self.draw.content.abstracts.extend(abstracts)
        return rows

    def record(self, row: int, image_dir: Path | None = None, rng: np.random.Generator | None = None) -> dict:
        """The news ``row`` as a news record (the fields ``POST /news`` takes); its image is drawn
        into ``image_dir`` when it has one and a folder is given (else the dataset's own, if any)."""
        world, content = self.world, self.draw.content
        record: dict[str, object] = {
            "news_id": news_id(row),
            "category": list(CATEGORY_WORDS)[int(world.category[row])],
            "subcategory": content.subcats[int(world.subcategory[row])][1],
            "title": content.titles[row],
            "abstract": content.abstracts[row],
        }
        if world.has_image[row]:
            path = self.folder / IMAGES_DIR / f"{news_id(row)}.jpg"
            if image_dir is not None and not path.exists():
                path = image_dir / f"{news_id(row)}.jpg"
                if not path.exists():
                    image = draw_image(
                        world, row, len(CATEGORY_WORDS), self.image_size, rng or np.random.default_rng(row)
                    )
                    image.save(path, quality=90)
            if path.exists():
                record["image"] = str(path)
        return record


def read_summary(folder: str | Path) -> dict:
    """The ``synthetic.json`` of a dataset written by ``mmnewsrec synth``.

    Raises:
        ConfigError: the folder has none (it was not written by ``synth``), or it is unreadable or
            from another generator version.
    """
    path = Path(folder) / SUMMARY_FILE
    if not path.is_file():
        raise ConfigError(
            f"{folder}: not a synthetic dataset (no {SUMMARY_FILE}); the simulator needs the generator's "
            "click model, which only a folder written by `mmnewsrec synth` has"
        )
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc})") from None
    if not isinstance(summary, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    for key in ("scale", "seed", "generator_version", "click_model", "world", "bias"):
        if key not in summary:
            raise ConfigError(f"{path}: field {key!r} is missing; write the dataset again with `mmnewsrec synth`")
    if summary["generator_version"] != GENERATOR_VERSION:
        raise ConfigError(
            f"{path}: generator_version {summary['generator_version']} is not this generator's "
            f"({GENERATOR_VERSION}); write the dataset again with `mmnewsrec synth`"
        )
    if summary["scale"] not in SCALES:
        raise ConfigError(f"{path}: scale {summary['scale']!r} is unknown; the scales are {sorted(SCALES)}")
    return summary


def _dataclass_of(cls, values: dict, path: Path):
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown field {unknown[0]!r} in {cls.__name__}")

    # JSON writes tuples as lists: turned back, nested ones too.
    def tupled(value):
        return tuple(tupled(v) for v in value) if isinstance(value, list) else value

    return cls(**{key: tupled(value) for key, value in values.items()})


def load_world(folder: str | Path) -> LiveWorld:
    """The world of a dataset written by ``mmnewsrec synth``, as its logs leave it (interests moved).

    Raises:
        ConfigError: the folder was not written by ``synth`` (see :func:`read_summary`), or the
            world rebuilt does not match it (another version of the generator wrote it).
    """
    folder = Path(folder)
    summary = read_summary(folder)
    path = folder / SUMMARY_FILE
    model = _dataclass_of(ClickModel, summary["click_model"], path)
    params = _dataclass_of(WorldParameters, summary["world"], path)
    try:
        draw = draw_world(summary["scale"], model, params, int(summary["seed"]))
        for _ in draw_splits(draw, SCALES[summary["scale"]]):  # the logs' draws: what follows them starts here
            pass
    except MmnewsrecError as exc:
        raise ConfigError(f"{path}: its world cannot be drawn again ({exc})") from None
    if abs(draw.world.bias - float(summary["bias"])) > 1e-6:
        raise ConfigError(
            f"{path}: the rebuilt world's click bias {draw.world.bias:.6f} is not the dataset's "
            f"{float(summary['bias']):.6f}; write the dataset again with this version's `mmnewsrec synth`"
        )
    images = (folder / IMAGES_DIR).is_dir()
    return LiveWorld(draw, folder, images, SCALES[summary["scale"]].image_size)
