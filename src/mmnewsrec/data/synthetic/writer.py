"""Writing a synthetic dataset in exact MIND format: the splits, images, oracle and summary."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from mmnewsrec.atomic import atomic_directory
from mmnewsrec.data.schema import BEHAVIORS_FILE, IMAGES_DIR, NEWS_FILE
from mmnewsrec.data.synthetic.entities import SyntheticEntities, attach_entities
from mmnewsrec.data.synthetic.render import draw_image, news_texts
from mmnewsrec.data.synthetic.sampling import calibrate_bias, draw_labels, sample_histories, sample_impressions
from mmnewsrec.data.synthetic.world import (
    CATEGORY_WORDS,
    PRESETS,
    SCALES,
    SPLIT_DAYS,
    START,
    ClickModel,
    SynthScale,
    World,
    WorldParameters,
    build_world,
    sigmoid,
)
from mmnewsrec.errors import DataFormatError, MmnewsrecError

logger = logging.getLogger(__name__)

#: Bumped whenever the generator's output for a given (scale, seed) changes.
GENERATOR_VERSION = 2  # 2: news name knowledge entities (entity columns, entity_embedding.vec)
ORACLE_FILE = "oracle_probs.tsv"
SUMMARY_FILE = "synthetic.json"


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`generate_mind` wrote (also saved as ``synthetic.json`` in the dataset root)."""

    scale: str
    seed: int
    generator_version: int
    news: int
    users: int
    impressions: dict[str, int]
    candidates: dict[str, int]
    click_rate: dict[str, float]
    image_fraction: float
    bias: float
    click_model: dict[str, float]

    world: dict[str, object]
    preset: str = "default"


@dataclass(frozen=True)
class Content:
    """What every split's news.tsv is written from: the world, its subcategories and the texts."""

    world: World
    subcats: list
    titles: list[str]
    abstracts: list[str]
    entities: SyntheticEntities


def generate_mind(
    out: str | Path,
    scale: str = "tiny",
    seed: int = 0,
    images: bool = True,
    overwrite: bool = False,
    progress: bool = False,
    click_model: ClickModel | None = None,
    preset: str = "default",
    interest_drift: float | None = None,
) -> SynthSummary:
    """Writes a synthetic MIND-format dataset (``train/``, ``dev/``, ``test/``, ``images/``) to ``out``.

    The output is a pure function of ``scale``, ``seed``, ``preset`` (see :data:`PRESETS`),
    ``click_model`` (default: the preset's) and ``interest_drift`` (default: the preset's, 0: see
    :class:`WorldParameters`). Files are written to a
    temporary folder beside ``out`` and renamed into place, so an interrupted run leaves nothing
    that looks like a dataset.

    Raises:
        MmnewsrecError: unknown scale, a negative seed, or ``out`` exists and ``overwrite`` is False.
    """
    draw, size = prepare_draw(out, scale, seed, overwrite, preset, interest_drift, click_model)
    world = draw.world

    with atomic_directory(out) as tmp:
        counts: dict[str, int] = {}
        candidates: dict[str, int] = {}
        rates: dict[str, float] = {}
        for split, sample, probs, labels, user_history in draw_splits(draw, size):
            _write_split(tmp / split, split, sample, labels, probs, user_history, draw.content)
            counts[split] = len(sample["users"])
            candidates[split] = len(sample["owner"])
            rates[split] = float(labels.mean())
        if images:
            _write_images(tmp / IMAGES_DIR, world, size.image_size, draw.rng, progress)
        image_fraction = float(world.has_image.mean()) if images else 0.0
        summary = draw_summary(draw, scale, seed, preset, counts, candidates, rates, image_fraction)
        (tmp / SUMMARY_FILE).write_text(json.dumps(asdict(summary), indent=2) + "\n", encoding="utf-8")
    logger.info("wrote synthetic MIND (%s, seed %d) to %s", scale, seed, out)
    return summary


def prepare_draw(
    out: str | Path,
    scale: str,
    seed: int,
    overwrite: bool,
    preset: str,
    interest_drift: float | None,
    click_model: ClickModel | None = None,
) -> tuple[Draw, SynthScale]:
    """The checked arguments of a generator, and the world they draw (see :func:`generate_mind`).

    Raises:
        MmnewsrecError: unknown scale or preset, a negative seed, a drift outside [0, 1], or ``out``
            exists and is not empty (without ``overwrite``).
    """
    if scale not in SCALES:
        raise MmnewsrecError(f"unknown scale {scale!r}; choose one of {sorted(SCALES)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise MmnewsrecError(f"seed: must be an integer >= 0, got {seed!r}")
    out = Path(out)
    occupied = out.is_file() or (out.is_dir() and any(out.iterdir()))
    if occupied and not overwrite:
        raise MmnewsrecError(f"{out} already exists and is not empty (pass overwrite=True / --overwrite)")
    if preset not in PRESETS:
        raise MmnewsrecError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    model = click_model or PRESETS[preset].click_model
    params = PRESETS[preset].params
    if interest_drift is not None:
        if not 0.0 <= interest_drift <= 1.0:
            raise MmnewsrecError(f"interest_drift: must be between 0 and 1, got {interest_drift}")
        params = replace(params, interest_drift=interest_drift)
    return draw_world(scale, model, params, seed), SCALES[scale]


def draw_summary(
    draw: Draw,
    scale: str,
    seed: int,
    preset: str,
    counts: dict[str, int],
    candidates: dict[str, int],
    rates: dict[str, float],
    image_fraction: float,
) -> SynthSummary:
    """``synthetic.json``'s record of a drawn and written dataset."""
    size = SCALES[scale]
    return SynthSummary(
        scale=scale,
        seed=seed,
        generator_version=GENERATOR_VERSION,
        news=size.news,
        users=size.users,
        impressions=counts,
        candidates=candidates,
        click_rate=rates,
        image_fraction=image_fraction,
        bias=float(draw.world.bias),
        click_model=asdict(draw.model),
        world=asdict(draw.params),
        preset=preset,
    )


def oracle_lines(probs: np.ndarray, offsets: np.ndarray) -> str:
    """``oracle_probs.tsv``: each impression's number (from 1) and its candidates' true click probabilities."""
    return "".join(
        f"{k + 1}\t" + " ".join(f"{p:.6g}" for p in probs[offsets[k] : offsets[k + 1]]) + "\n"
        for k in range(len(offsets) - 1)
    )


@dataclass
class Draw:
    """Everything :func:`generate_mind` draws, in the order it draws it (so that the world can be
    rebuilt from a dataset's ``synthetic.json`` without writing it again).

    Attributes:
        histories: each user's base history (news rows, chronological).
        latest_history: filled by :func:`draw_splits`: each user's history as the dev and test
            splits show it (base history and the train period's clicks).
        movers: filled by :func:`draw_splits`: the users whose interests moved after the train period.
        moved_from: their interests before the move, (len(movers), d).
    """

    world: World
    model: ClickModel
    params: WorldParameters
    content: Content
    histories: list[np.ndarray]
    rng: np.random.Generator
    latest_history: list[np.ndarray] = field(default_factory=list)
    movers: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    moved_from: np.ndarray | None = None


def draw_world(scale: str, model: ClickModel, params: WorldParameters, seed: int) -> Draw:
    """The world of a dataset of ``scale`` (news, users, entities, click bias, base histories, texts)."""
    size = SCALES[scale]
    rng = np.random.default_rng(seed)
    world, subcats = build_world(size, model, rng, params)
    entities = attach_entities(world, [name for _, name, _ in subcats], model.entity, seed)  # own streams
    max_history = params.max_history_tiny if scale == "tiny" else params.max_history

    calibration_count = min(params.calibration_impressions, size.train_impressions)
    calibration = sample_impressions(world, size, model, calibration_count, SPLIT_DAYS["train"], rng, params)
    world.bias = calibrate_bias(world, calibration, model)
    logger.info("calibrated click bias %.3f", world.bias)

    histories = sample_histories(world, model, max_history, rng, params)
    titles, abstracts = news_texts(world, subcats, rng, params)
    return Draw(world, model, params, Content(world, subcats, titles, abstracts, entities), histories, rng)


def draw_splits(draw: Draw, size: SynthScale) -> Iterator[tuple[str, dict, np.ndarray, np.ndarray, list]]:
    """The train, dev and test logs, in order: (split, sample, probabilities, labels, histories).
    Interests move (``params.interest_drift``) before the dev split is drawn."""
    world, model, params, rng = draw.world, draw.model, draw.params, draw.rng
    train_clicks: list[list[int]] = [[] for _ in range(size.users)]
    for split in ("train", "dev", "test"):
        if split == "dev" and params.interest_drift > 0:
            movers = np.flatnonzero(rng.random(size.users) < params.interest_drift)
            draw.movers, draw.moved_from = movers, world.user_interest[movers].copy()
            world.user_interest[movers] = world.user_interest[rng.permutation(movers)]
        n_imp = getattr(size, f"{split}_impressions")
        sample = sample_impressions(world, size, model, n_imp, SPLIT_DAYS[split], rng, params)
        owner = sample["owner"]
        probs = sigmoid(world.logits(sample["users"][owner], sample["news"], sample["day"][owner], model))
        labels = draw_labels(probs, owner, n_imp, rng)
        if split == "train":
            for user, news in zip(sample["users"][owner[labels == 1]], sample["news"][labels == 1], strict=True):
                train_clicks[user].append(int(news))
            user_history = draw.histories
        else:
            # Dev and test histories hold the train-period clicks too (MIND's histories run up to
            # the split's first day).
            user_history = [
                np.concatenate([h, np.unique(c)]) if c else h for h, c in zip(draw.histories, train_clicks, strict=True)
            ]
            draw.latest_history = user_history
        yield split, sample, probs, labels, user_history


def _format_time(days: np.ndarray) -> list[str]:
    out = []
    for value in days:
        moment = START + dt.timedelta(seconds=int(value * 86400))
        hour12 = moment.hour % 12 or 12
        half = "AM" if moment.hour < 12 else "PM"
        out.append(f"{moment.month}/{moment.day}/{moment.year} {hour12}:{moment.minute:02d}:{moment.second:02d} {half}")
    return out


def _news_id(i: int) -> str:
    return f"N{i + 1}"


def _write_split(
    folder: Path,
    split: str,
    sample: dict[str, np.ndarray],
    labels: np.ndarray,
    probs: np.ndarray,
    histories: list[np.ndarray],
    content: Content,
) -> None:
    """One split folder: behaviors.tsv, news.tsv (the news it references) and, for dev and test,
    each candidate's true click probability."""
    world, subcats, titles, abstracts = content.world, content.subcats, content.titles, content.abstracts
    folder.mkdir(parents=True)
    offsets, news, users = sample["offsets"], sample["news"], sample["users"]
    times = _format_time(sample["day"])
    with_labels = split != "test"
    names = [_news_id(i) for i in range(len(world.subcategory))]
    token = [[f"{n}-0" for n in names], [f"{n}-1" for n in names]] if with_labels else None
    referenced = np.zeros(len(names), dtype=bool)
    referenced[news] = True
    lines = []
    for k in range(len(users)):
        lo, hi = offsets[k], offsets[k + 1]
        history = histories[users[k]]
        referenced[history] = True
        hist_text = " ".join(names[i] for i in history)
        if with_labels:
            imp_text = " ".join(token[lab][i] for i, lab in zip(news[lo:hi], labels[lo:hi], strict=True))
        else:
            imp_text = " ".join(names[i] for i in news[lo:hi])
        lines.append(f"{k + 1}\tU{users[k] + 1}\t{times[k]}\t{hist_text}\t{imp_text}\n")
    (folder / BEHAVIORS_FILE).write_text("".join(lines), encoding="utf-8")
    if split != "train":
        (folder / ORACLE_FILE).write_text(oracle_lines(probs, offsets), encoding="utf-8")
    categories = list(CATEGORY_WORDS)
    news_lines = []
    for i in np.flatnonzero(referenced):
        title_entities, abstract_entities = content.entities.columns(int(i))
        news_lines.append(
            "\t".join(
                [
                    names[i],
                    categories[world.category[i]],
                    subcats[world.subcategory[i]][1],
                    titles[i],
                    abstracts[i],
                    f"https://assets.msn.com/labs/mind/synthetic/{names[i]}.html",
                    title_entities,
                    abstract_entities,
                ]
            )
            + "\n"
        )
    (folder / NEWS_FILE).write_text("".join(news_lines), encoding="utf-8")
    content.entities.write_vectors(folder, np.flatnonzero(referenced))


def _write_images(folder: Path, world: World, size: int, rng: np.random.Generator, progress: bool) -> None:
    folder.mkdir(parents=True)
    n_categories = len(CATEGORY_WORDS)
    with_image = np.flatnonzero(world.has_image)
    for i in tqdm(with_image, desc="images", disable=not progress):
        draw_image(world, int(i), n_categories, size, rng).save(folder / f"{_news_id(int(i))}.jpg", quality=90)


def read_oracle_probs(path: str | Path) -> dict[int, np.ndarray]:
    """Reads ``oracle_probs.tsv``: impression id -> true click probability of each candidate."""
    result = {}
    path = Path(path)
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            head, sep, tail = line.rstrip("\n").partition("\t")
            try:
                result[int(head)] = np.array(tail.split(), dtype=np.float64)
            except ValueError:
                raise DataFormatError(path, number, "expected 'impression_id<TAB>p1 p2 ...'") from None
    return result
