"""A synthetic dataset in exact MIND format, drawn from a known click model.

Real MIND may not be redistributed, so this generator is the built-in default dataset. It exercises
what real MIND exercises and lets every model be compared against a ceiling:

* categories and subcategories; titles and abstracts whose *words* carry the topic (topic-specific
  vocabularies mixed with common words), so a text encoder has to read them;
* users whose latent interests drive their clicks (history and impressions), empty histories,
  impressions of 2 to 300 candidates with about 4% clicks, popularity that drifts as news age;
* images for about 44% of news, whose colour and shape follow the category and subcategory and
  whose brightness carries a "visual appeal" that raises clicks and appears nowhere in the text;
* "hook" words in titles of intrinsically popular news: most of a news item's popularity can be
  read from its title.

Ground truth. With user interest ``z_u`` and news topic ``e_i`` (unit vectors), base popularity
``q_i``, age ``a`` in days at impression time and visual appeal ``v_i`` (0 without an image)::

    logit p(click | u, i, t) = bias + 5.0 z_u.e_i + 0.8 (q_i - 0.1 a) + 0.7 v_i

``bias`` is calibrated so that about 4% of shown candidates are clicked. Every impression of the
logs has at least one click (as in MIND): labels are redrawn for click-less impressions, and after
a few tries one candidate is chosen in proportion to ``p``. The generator writes each dev and test
candidate's ``p`` to ``oracle_probs.tsv`` in the split folder, so an oracle baseline gives the
ceiling any model can reach on the data.
"""

from __future__ import annotations

import colorsys
import datetime as dt
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from mmnewsrec.atomic import atomic_directory
from mmnewsrec.data.schema import BEHAVIORS_FILE, IMAGES_DIR, NEWS_FILE
from mmnewsrec.errors import DataFormatError, MmnewsrecError

logger = logging.getLogger(__name__)

#: Bumped whenever the generator's output for a given (scale, seed) changes.
GENERATOR_VERSION = 1
ORACLE_FILE = "oracle_probs.tsv"
SUMMARY_FILE = "synthetic.json"


@dataclass(frozen=True)
class SynthScale:
    """Sizes of a synthetic dataset; ``small`` and ``large`` follow MIND-small and MIND-large."""

    news: int
    users: int
    train_impressions: int
    dev_impressions: int
    test_impressions: int
    max_candidates: int
    image_size: int


SCALES: dict[str, SynthScale] = {
    "tiny": SynthScale(1_000, 400, 2_000, 500, 200, 60, 32),
    "medium": SynthScale(8_000, 4_000, 20_000, 4_000, 1_000, 120, 32),
    "small": SynthScale(51_282, 50_000, 156_965, 73_152, 73_152, 300, 64),
    "large": SynthScale(161_013, 1_000_000, 2_232_748, 376_471, 2_370_727, 300, 64),
}


@dataclass(frozen=True)
class ClickModel:
    """Coefficients of the ground-truth click model (see the module docstring)."""

    affinity: float = 5.0
    popularity: float = 0.8
    age_decay_per_day: float = 0.1
    appeal: float = 0.7
    target_click_rate: float = 0.04
    image_fraction: float = 0.44
    empty_history_fraction: float = 0.04
    latent_dim: int = 16


# Topic vocabularies: real words, so a pretrained text encoder starts with some knowledge of them.
CATEGORY_WORDS: dict[str, list[str]] = {
    "news": "police court officials election senate governor lawmakers investigation mayor county vote "
    "campaign president congress judge trial arrest federal policy protest bill law shooting prison".split(),
    "sports": "game team coach season playoff quarterback score win league championship player injury "
    "touchdown goal match tournament fans stadium draft trade rookie victory defense record".split(),
    "finance": "stocks market investors shares economy bank earnings dollar inflation rates profit fund "
    "billion retirement tax mortgage credit wall street crypto revenue debt budget salary".split(),
    "lifestyle": "home family kids holiday wedding fashion style beauty garden pets dog relationship "
    "parents tips decor shopping gifts design clean organize baby hair outfit friendship".split(),
    "foodanddrink": "recipe dinner chicken cheese pizza dessert cake restaurant chef cookies soup salad "
    "wine beer breakfast pasta turkey pie sauce baking grill coffee bread casserole".split(),
    "travel": "trip destination beach island hotel flight airport vacation cruise resort airline "
    "passport tourist road park europe mountains museum tour adventure luggage village castle lake".split(),
    "health": "doctors study cancer diet weight heart sleep disease vaccine hospital patients brain "
    "symptoms exercise flu medicine mental stress nutrition fitness blood treatment virus therapy".split(),
    "autos": "car truck ford tesla engine suv electric vehicle dealer recall driving speed sedan "
    "horsepower chevy toyota highway mileage garage tires crash motor pickup hybrid".split(),
    "tv": "show series episode star netflix finale cast premiere actor character network host drama "
    "comedy reality streaming ratings sitcom channel reboot spinoff contestant judges audition".split(),
    "movies": "film movie director oscar sequel hollywood actress studio marvel cinema screenplay "
    "theater blockbuster horror animated review role franchise remake festival villain superhero "
    "documentary thriller".split(),
    "music": "song album singer concert band rapper grammy chart lyrics guitar stage single pop "
    "country rock performance duet playlist hit vocal drummer orchestra anthem remix".split(),
    "weather": "storm snow rain forecast winter hurricane temperatures cold wind flooding tornado "
    "freeze heat clouds warning inches radar blizzard thunderstorms frost chill sunny drought fog".split(),
    "entertainment": "celebrity couple divorce instagram photos dating royal prince princess carpet "
    "gala scandal rumors engaged split birthday tribute interview memoir award spotted paparazzi "
    "influencer glamour".split(),
    "kids": "school teacher students classroom toys cartoon puzzle homework playground science "
    "crafts reading camp games zoo dinosaur animals lego robot coloring spelling recess picnic "
    "library".split(),
}

COMMON_WORDS = (
    "the a to of in and for on with after new says over how why what year first just more this from at "
    "its report amid could will may ahead week day people big top best here about all before back "
    "still now get make see know time way into out up down last next only other some than then "
    "these they their there when where who while your you we our us his her him she he it one two "
    "three four five many most much very well good great little long old right same small"
).split()

HOOK_WORDS = (
    "shocking stunning incredible unbelievable viral secret revealed jaw-dropping heartbreaking "
    "amazing surprising exclusive"
).split()

SHAPES = ("circle", "square", "triangle", "diamond", "cross", "ring", "bars")

START = dt.datetime(2019, 11, 9)
HISTORY_DAYS = 14
SPLIT_DAYS = {"train": (0.0, 6.0), "dev": (6.0, 7.0), "test": (7.0, 8.0)}
FRESH_WINDOW_DAYS = 2.0


@dataclass
class _World:
    """Latent state of a synthetic dataset (everything the click model needs)."""

    category: np.ndarray  # (N,) category index
    subcategory: np.ndarray  # (N,) global subcategory index
    topic: np.ndarray  # (N, d) unit topic vectors
    base_pop: np.ndarray  # (N,)
    hooks: np.ndarray  # (N,) number of hook words in the title
    appeal: np.ndarray  # (N,) 0 where no image
    has_image: np.ndarray  # (N,) bool
    publish_day: np.ndarray  # (N,) float, sorted ascending
    user_interest: np.ndarray  # (U, d) unit vectors
    user_activity: np.ndarray  # (U,) probabilities
    bias: float = 0.0

    def logits(self, users: np.ndarray, news: np.ndarray, day: np.ndarray, model: ClickModel) -> np.ndarray:
        affinity = np.einsum("nd,nd->n", self.user_interest[users], self.topic[news])
        age = np.maximum(day - self.publish_day[news], 0.0)
        return (
            self.bias
            + model.affinity * affinity
            + model.popularity * (self.base_pop[news] - model.age_decay_per_day * age)
            + model.appeal * self.appeal[news]
        ).astype(np.float32)


def hook_popularity(hooks: np.ndarray) -> np.ndarray:
    """The part of a news item's base popularity that its title's hook words show (the rest is noise)."""
    return 0.9 * (hooks - 0.5)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _subcategories(categories: list[str]) -> list[tuple[int, str, list[str]]]:
    """(category index, subcategory name, its words): each category's words split into groups."""
    result = []
    for cat_index, category in enumerate(categories):
        words = CATEGORY_WORDS[category]
        n_sub = 3 + cat_index % 3  # 3 to 5 subcategories per category
        for sub in range(n_sub):
            group = words[sub::n_sub]
            result.append((cat_index, f"{category}{group[0]}", group))
    return result


def _build_world(scale: SynthScale, model: ClickModel, rng: np.random.Generator) -> tuple[_World, list]:
    categories = list(CATEGORY_WORDS)
    subcats = _subcategories(categories)
    d = model.latent_dim
    cat_vecs = _unit(rng.standard_normal((len(categories), d)))
    sub_vecs = _unit(
        np.stack([cat_vecs[c] for c, _, _ in subcats]) + 0.6 * _unit(rng.standard_normal((len(subcats), d)))
    )
    # Subcategory sizes are skewed, as in MIND (a few dominate).
    sub_weights = rng.dirichlet(np.full(len(subcats), 1.5))
    n = scale.news
    subcategory = rng.choice(len(subcats), size=n, p=sub_weights)
    category = np.array([subcats[s][0] for s in range(len(subcats))])[subcategory]
    topic = _unit(sub_vecs[subcategory] + 0.05 * rng.standard_normal((n, d)))
    # Most of a news item's intrinsic popularity shows in its title as "hook" words (0 to 2 of them).
    hooks = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    base_pop = hook_popularity(hooks) + 0.35 * rng.standard_normal(n)
    has_image = rng.random(n) < model.image_fraction
    appeal = np.where(has_image, rng.standard_normal(n), 0.0)
    total_days = HISTORY_DAYS + SPLIT_DAYS["test"][1]
    publish_day = np.sort(rng.random(n) * total_days - HISTORY_DAYS)

    users = scale.users
    n_interests = rng.integers(1, 4, size=users)  # 1 to 3 favourite subcategories
    picks = rng.choice(len(subcats), size=(users, 3), p=sub_weights)
    weights = rng.dirichlet(np.ones(3), size=users) * (np.arange(3)[None, :] < n_interests[:, None])
    interest = _unit(np.einsum("uk,ukd->ud", weights, sub_vecs[picks]) + 0.1 * rng.standard_normal((users, d)))
    activity = rng.lognormal(0.0, 1.0, size=users)
    world = _World(
        category=category,
        subcategory=subcategory,
        topic=topic.astype(np.float32),
        base_pop=base_pop.astype(np.float32),
        hooks=hooks,
        appeal=appeal.astype(np.float32),
        has_image=has_image,
        publish_day=publish_day,
        user_interest=interest.astype(np.float32),
        user_activity=activity / activity.sum(),
    )
    return world, subcats


def _sample_impressions(
    world: _World, scale: SynthScale, model: ClickModel, count: int, days: tuple[float, float], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Users, times and candidate news of ``count`` impressions (no labels yet)."""
    users = rng.choice(len(world.user_activity), size=count, p=world.user_activity)
    day = np.sort(rng.uniform(days[0], days[1], size=count))
    lo = np.searchsorted(world.publish_day, day - FRESH_WINDOW_DAYS)
    hi = np.searchsorted(world.publish_day, day)
    available = hi - lo
    sizes = np.clip(np.rint(rng.lognormal(np.log(28), 0.85, size=count)), 2, scale.max_candidates).astype(np.int64)
    sizes = np.minimum(sizes, available)
    if (sizes < 2).any():
        raise MmnewsrecError("too few news per day for the requested impressions; raise the news count")
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    owner = np.repeat(np.arange(count), sizes)
    news = lo[owner] + (rng.random(len(owner)) * available[owner]).astype(np.int64)
    # Candidates of one impression are distinct: redraw duplicates until none is left.
    for _ in range(50):
        key = owner * len(world.publish_day) + news
        _, first = np.unique(key, return_index=True)
        dup = np.ones(len(key), dtype=bool)
        dup[first] = False
        if not dup.any():
            break
        news[dup] = lo[owner[dup]] + (rng.random(dup.sum()) * available[owner[dup]]).astype(np.int64)
    else:
        raise MmnewsrecError("could not draw distinct candidates")
    return {"users": users, "day": day, "offsets": offsets, "owner": owner, "news": news}


def _calibrate_bias(world: _World, sample: dict[str, np.ndarray], model: ClickModel) -> float:
    """Bias such that the click rate of impressions conditioned on >= 1 click is the target."""
    owner = sample["owner"]
    world.bias = 0.0
    logits = world.logits(sample["users"][owner], sample["news"], sample["day"][owner], model)
    lo, hi = -20.0, 5.0
    for _ in range(40):
        mid = (lo + hi) / 2
        p = _sigmoid(logits + mid)
        expected = np.bincount(owner, weights=p)
        p_none = np.exp(np.bincount(owner, weights=np.log1p(-np.minimum(p, 1 - 1e-7))))
        rate = (expected / np.maximum(1 - p_none, 1e-12)).sum() / len(owner)
        lo, hi = (mid, hi) if rate < model.target_click_rate else (lo, mid)
    return (lo + hi) / 2


def _draw_labels(probs: np.ndarray, owner: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    labels = rng.random(len(probs)) < probs
    for _ in range(20):
        clicked = np.bincount(owner, weights=labels, minlength=count) > 0
        redo = ~clicked[owner]
        if not redo.any():
            return labels.astype(np.int8)
        labels[redo] = rng.random(redo.sum()) < probs[redo]
    # Rare click-less impressions left: one click chosen in proportion to p (Gumbel-max per impression).
    clicked = np.bincount(owner, weights=labels, minlength=count) > 0
    redo = ~clicked[owner]
    gumbel = np.log(probs) - np.log(-np.log(rng.random(len(probs))))
    gumbel[~redo] = -np.inf
    order = np.lexsort((-gumbel, owner))
    starts = np.searchsorted(owner[order], np.flatnonzero(~clicked))
    labels[order[starts]] = True
    return labels.astype(np.int8)


def _sample_histories(world: _World, model: ClickModel, max_len: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Base click history of every user: news published before the logs, drawn by the click model."""
    n_users = len(world.user_interest)
    # News older than the first impressions' candidate window, so base histories and train candidates
    # do not overlap.
    old = int(np.searchsorted(world.publish_day, -FRESH_WINDOW_DAYS))
    lengths = np.clip(np.rint(rng.lognormal(np.log(18), 0.9, size=n_users)), 1, max_len).astype(np.int64)
    lengths[rng.random(n_users) < model.empty_history_fraction] = 0
    lengths = np.minimum(lengths, old)
    pool_size = min(old, 512)
    histories: list[np.ndarray] = []
    chunk = 1024
    for start in range(0, n_users, chunk):
        users = np.arange(start, min(start + chunk, n_users))
        pool = rng.integers(0, old, size=(len(users), pool_size))  # (U, P)
        logits = world.logits(np.repeat(users, pool_size), pool.ravel(), np.zeros(pool.size), model)
        logits = logits.reshape(len(users), pool_size)  # (U, P)
        # Gumbel top-k: k draws without replacement in proportion to p; duplicates in the pool removed.
        keys = np.log(_sigmoid(logits)) - np.log(-np.log(rng.random(pool.shape)))
        order = np.argsort(-keys, axis=1)
        for row, user in enumerate(users):
            ranked = pool[row, order[row]]
            _, first = np.unique(ranked, return_index=True)
            chosen = ranked[np.sort(first)][: lengths[user]]
            histories.append(np.sort(chosen))  # chronological, as in MIND (ids follow publish time)
    return histories


def _format_time(days: np.ndarray) -> list[str]:
    out = []
    for value in days:
        moment = START + dt.timedelta(seconds=int(value * 86400))
        hour12 = moment.hour % 12 or 12
        half = "AM" if moment.hour < 12 else "PM"
        out.append(f"{moment.month}/{moment.day}/{moment.year} {hour12}:{moment.minute:02d}:{moment.second:02d} {half}")
    return out


def _news_texts(world: _World, subcats: list, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    titles, abstracts = [], []
    categories = list(CATEGORY_WORDS)
    for i in range(len(world.subcategory)):
        _, _, sub_words = subcats[world.subcategory[i]]
        cat_words = CATEGORY_WORDS[categories[world.category[i]]]
        title = list(rng.choice(sub_words, size=rng.integers(2, 4)))
        title += list(rng.choice(cat_words, size=rng.integers(0, 2)))
        title += list(rng.choice(COMMON_WORDS, size=rng.integers(3, 7)))
        title += list(rng.choice(HOOK_WORDS, size=world.hooks[i], replace=False))
        rng.shuffle(title)
        titles.append(" ".join(title).capitalize())
        if rng.random() < 0.07:  # some MIND abstracts are empty
            abstracts.append("")
            continue
        abstract = list(rng.choice(sub_words, size=rng.integers(2, 5)))
        abstract += list(rng.choice(cat_words, size=rng.integers(1, 4)))
        abstract += list(rng.choice(COMMON_WORDS, size=rng.integers(8, 18)))
        rng.shuffle(abstract)
        abstracts.append(" ".join(abstract).capitalize() + ".")
    return titles, abstracts


def _draw_image(world: _World, i: int, n_categories: int, size: int, rng: np.random.Generator) -> Image.Image:
    hue = world.category[i] / n_categories
    background = tuple(int(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.55, 0.85))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    brightness = float(_sigmoid(1.5 * world.appeal[i]))  # visual appeal shows as a brighter motif
    tone = int(40 + 215 * brightness)
    colour = (tone, tone, int(tone * 0.8))
    shape = SHAPES[world.subcategory[i] % len(SHAPES)]
    jitter = rng.integers(-size // 10, size // 10 + 1, size=2)
    cx, cy = size // 2 + jitter[0], size // 2 + jitter[1]
    r = size // 3
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    elif shape == "diamond":
        draw.polygon([(cx, cy - r), (cx - r, cy), (cx, cy + r), (cx + r, cy)], fill=colour)
    elif shape == "cross":
        draw.rectangle((cx - r, cy - r // 3, cx + r, cy + r // 3), fill=colour)
        draw.rectangle((cx - r // 3, cy - r, cx + r // 3, cy + r), fill=colour)
    elif shape == "ring":
        draw.ellipse(box, outline=colour, width=max(2, r // 3))
    else:
        for k in range(-1, 2):
            draw.rectangle((cx - r, cy + k * r // 2 - r // 8, cx + r, cy + k * r // 2 + r // 8), fill=colour)
    return image


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


def generate_mind(
    out: str | Path,
    scale: str = "tiny",
    seed: int = 0,
    images: bool = True,
    overwrite: bool = False,
    progress: bool = False,
    click_model: ClickModel | None = None,
) -> SynthSummary:
    """Writes a synthetic MIND-format dataset (``train/``, ``dev/``, ``test/``, ``images/``) to ``out``.

    The output is a pure function of ``scale``, ``seed`` and ``click_model``. Files are written to a
    temporary folder beside ``out`` and renamed into place, so an interrupted run leaves nothing
    that looks like a dataset.

    Raises:
        MmnewsrecError: unknown scale, a negative seed, or ``out`` exists and ``overwrite`` is False.
    """
    if scale not in SCALES:
        raise MmnewsrecError(f"unknown scale {scale!r}; choose one of {sorted(SCALES)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise MmnewsrecError(f"seed: must be an integer >= 0, got {seed!r}")
    out = Path(out)
    occupied = out.is_file() or (out.is_dir() and any(out.iterdir()))
    if occupied and not overwrite:
        raise MmnewsrecError(f"{out} already exists and is not empty (pass overwrite=True / --overwrite)")
    size = SCALES[scale]
    model = click_model or ClickModel()
    rng = np.random.default_rng(seed)
    world, subcats = _build_world(size, model, rng)
    max_history = 60 if scale == "tiny" else 300

    calibration = _sample_impressions(world, size, model, min(4000, size.train_impressions), SPLIT_DAYS["train"], rng)
    world.bias = _calibrate_bias(world, calibration, model)
    logger.info("calibrated click bias %.3f", world.bias)

    histories = _sample_histories(world, model, max_history, rng)
    titles, abstracts = _news_texts(world, subcats, rng)

    with atomic_directory(out) as tmp:
        counts: dict[str, int] = {}
        candidates: dict[str, int] = {}
        rates: dict[str, float] = {}
        train_clicks: list[list[int]] = [[] for _ in range(size.users)]
        for split in ("train", "dev", "test"):
            n_imp = getattr(size, f"{split}_impressions")
            sample = _sample_impressions(world, size, model, n_imp, SPLIT_DAYS[split], rng)
            owner = sample["owner"]
            probs = _sigmoid(world.logits(sample["users"][owner], sample["news"], sample["day"][owner], model))
            labels = _draw_labels(probs, owner, n_imp, rng)
            if split == "train":
                for user, news in zip(sample["users"][owner[labels == 1]], sample["news"][labels == 1], strict=True):
                    train_clicks[user].append(int(news))
                user_history = histories
            else:
                # Dev and test histories hold the train-period clicks too (MIND's histories run up to
                # the split's first day).
                user_history = [
                    np.concatenate([h, np.unique(c)]) if c else h for h, c in zip(histories, train_clicks, strict=True)
                ]
            _write_split(tmp / split, split, sample, labels, probs, user_history, world, subcats, titles, abstracts)
            counts[split] = n_imp
            candidates[split] = len(owner)
            rates[split] = float(labels.mean())
        if images:
            _write_images(tmp / IMAGES_DIR, world, size.image_size, rng, progress)
        summary = SynthSummary(
            scale=scale,
            seed=seed,
            generator_version=GENERATOR_VERSION,
            news=size.news,
            users=size.users,
            impressions=counts,
            candidates=candidates,
            click_rate=rates,
            image_fraction=float(world.has_image.mean()) if images else 0.0,
            bias=float(world.bias),
            click_model=asdict(model),
        )
        (tmp / SUMMARY_FILE).write_text(json.dumps(asdict(summary), indent=2) + "\n", encoding="utf-8")
    logger.info("wrote synthetic MIND (%s, seed %d) to %s", scale, seed, out)
    return summary


def _news_id(i: int) -> str:
    return f"N{i + 1}"


def _write_split(
    folder: Path,
    split: str,
    sample: dict[str, np.ndarray],
    labels: np.ndarray,
    probs: np.ndarray,
    histories: list[np.ndarray],
    world: _World,
    subcats: list,
    titles: list[str],
    abstracts: list[str],
) -> None:
    folder.mkdir(parents=True)
    offsets, news, users = sample["offsets"], sample["news"], sample["users"]
    times = _format_time(sample["day"])
    with_labels = split != "test"
    names = [_news_id(i) for i in range(len(world.subcategory))]
    token = [[f"{n}-0" for n in names], [f"{n}-1" for n in names]] if with_labels else None
    referenced = np.zeros(len(names), dtype=bool)
    referenced[news] = True
    lines = []
    oracle_lines = []
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
        if split != "train":
            oracle_lines.append(f"{k + 1}\t" + " ".join(f"{p:.6g}" for p in probs[lo:hi]) + "\n")
    (folder / BEHAVIORS_FILE).write_text("".join(lines), encoding="utf-8")
    if oracle_lines:
        (folder / ORACLE_FILE).write_text("".join(oracle_lines), encoding="utf-8")
    categories = list(CATEGORY_WORDS)
    news_lines = []
    for i in np.flatnonzero(referenced):
        news_lines.append(
            "\t".join(
                [
                    names[i],
                    categories[world.category[i]],
                    subcats[world.subcategory[i]][1],
                    titles[i],
                    abstracts[i],
                    f"https://assets.msn.com/labs/mind/synthetic/{names[i]}.html",
                    "[]",
                    "[]",
                ]
            )
            + "\n"
        )
    (folder / NEWS_FILE).write_text("".join(news_lines), encoding="utf-8")


def _write_images(folder: Path, world: _World, size: int, rng: np.random.Generator, progress: bool) -> None:
    folder.mkdir(parents=True)
    n_categories = len(CATEGORY_WORDS)
    with_image = np.flatnonzero(world.has_image)
    for i in tqdm(with_image, desc="images", disable=not progress):
        _draw_image(world, int(i), n_categories, size, rng).save(folder / f"{_news_id(int(i))}.jpg", quality=90)


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
