"""The latent world of the synthetic data: sizes, click model, vocabularies, news and users.

Every distribution the generator draws from is named in :class:`WorldParameters` (recorded in each
dataset's ``synthetic.json``); the click model's coefficients in :class:`ClickModel`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np


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
    # A small training log (12k impressions), the size where models overfit and simple profiles win.
    "log12k": SynthScale(2_000, 3_000, 12_000, 3_000, 1_000, 100, 32),
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
    entity: float = 0.0  # logit per entity of the news among the user's favourite entities


@dataclass(frozen=True)
class WorldParameters:
    """The distributions behind news, users, impressions and texts (the generator's constants).

    Attributes:
        subcategory_spread: weight of a subcategory's own direction against its category's.
        subcategory_size_concentration: Dirichlet concentration of subcategory sizes (skewed, as in MIND).
        topic_noise: spread of a news item's topic around its subcategory.
        hook_count_probs: probabilities of 0, 1, 2 hook words in a title.
        hook_lift: base popularity per hook word (centred at ``hook_centre``).
        hook_centre: hook count of zero lift.
        popularity_noise: base popularity not shown by hook words.
        max_interests: most favourite subcategories per user (1 to this many).
        interest_noise: spread of a user's interest around their favourites.
        activity_sigma: log-normal spread of users' activity.
        candidates_median / candidates_sigma: log-normal impression sizes (before the cap).
        history_median / history_sigma: log-normal base history lengths.
        history_pool: news drawn per user to choose a base history from.
        max_history: longest base history (``tiny``: ``max_history_tiny``).
        fresh_window_days: an impression shows news published in this many days before it.
        max_candidate_share: an impression shows at most this share of those news.
        calibration_impressions: impressions drawn to calibrate the click bias.
        empty_abstract_fraction: news without an abstract.
        title_words / abstract_words: (low, high) word counts drawn per part, high exclusive:
            subcategory words, category words, common words.
        interest_drift: share of users whose interests move when the train period ends: their dev
            and test clicks follow another user's interests, while their histories show the old ones
            (what real-time updating from clicks can catch up with; 0 = interests never move).
    """

    subcategory_spread: float = 0.6
    subcategory_size_concentration: float = 1.5
    topic_noise: float = 0.05
    hook_count_probs: tuple[float, float, float] = (0.6, 0.3, 0.1)
    hook_lift: float = 0.9
    hook_centre: float = 0.5
    popularity_noise: float = 0.35
    max_interests: int = 3
    interest_noise: float = 0.1
    activity_sigma: float = 1.0
    candidates_median: float = 28.0
    candidates_sigma: float = 0.85
    history_median: float = 18.0
    history_sigma: float = 0.9
    history_pool: int = 512
    max_history: int = 300
    max_history_tiny: int = 60
    fresh_window_days: float = 2.0
    max_candidate_share: float = 1.0
    calibration_impressions: int = 4000
    empty_abstract_fraction: float = 0.07
    title_words: tuple[tuple[int, int], ...] = ((2, 4), (0, 2), (3, 7))
    abstract_words: tuple[tuple[int, int], ...] = ((2, 5), (1, 4), (8, 18))
    interest_drift: float = 0.0


PARAMETERS = WorldParameters()


@dataclass(frozen=True)
class Preset:
    """A named kind of synthetic world: its click model and its distributions."""

    click_model: ClickModel
    params: WorldParameters
    description: str


PRESETS: dict[str, Preset] = {
    "default": Preset(ClickModel(), PARAMETERS, "the world the demo and the benchmarks use"),
    # Closer to real MIND: titles reveal less (weaker topic signal, few telling hook words), news
    # carry an appeal only clicks reveal, interests are narrower, histories shorter and more often
    # empty, and impressions show only the last day's news (most dev candidates never shown in train).
    "realistic": Preset(
        ClickModel(affinity=3.5, popularity=1.0, empty_history_fraction=0.10),
        WorldParameters(
            hook_lift=0.3,
            popularity_noise=0.7,
            max_interests=2,
            interest_noise=0.2,
            history_median=6.0,
            history_sigma=1.0,
            fresh_window_days=1.0,
            max_candidate_share=0.5,
        ),
        "weak title signal, hidden appeal, narrow interests, short histories, one-day-fresh candidates",
    ),
    # The zoo: worlds that differ in what drives a click, for judging set-ups on more than one.
    "entities": Preset(
        ClickModel(affinity=3.5, entity=1.5),
        PARAMETERS,
        "clicks also follow the knowledge entities a user cares about (a team, a person), beyond the topic",
    ),
    "appeal": Preset(
        ClickModel(affinity=2.5, popularity=1.4, appeal=1.5),
        WorldParameters(hook_lift=0.3, popularity_noise=0.8),
        "hidden appeal and popularity that only clicks reveal drive clicks more than topic",
    ),
    "fresh": Preset(
        ClickModel(age_decay_per_day=0.8),
        WorldParameters(fresh_window_days=1.0, max_candidate_share=0.5),
        "recency: a news loses most of its clicks within a day; impressions show the last day's news",
    ),
    "drift": Preset(
        ClickModel(),
        WorldParameters(interest_drift=0.4),
        "40% of users' interests move after the train period (their histories show the old ones)",
    ),
    "short": Preset(
        ClickModel(empty_history_fraction=0.25),
        WorldParameters(history_median=3.0, history_sigma=0.8),
        "short histories: a median of 3 clicks, a quarter of users with none",
    ),
    "cold": Preset(
        ClickModel(),
        WorldParameters(fresh_window_days=0.75, max_candidate_share=0.5),
        "cold candidates: impressions show news of the last 18 hours, most never shown in training",
    ),
}


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


@dataclass
class World:
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
    news_entities: np.ndarray | None = None  # (N, M) entity indices a news names, -1 = none
    favourite_entities: np.ndarray | None = None  # (U, E) bool: the entities a user cares about
    subcategory_topic: np.ndarray | None = None  # (S, d) each subcategory's direction
    subcategory_weight: np.ndarray | None = None  # (S,) each subcategory's share of the news

    def logits(self, users: np.ndarray, news: np.ndarray, day: np.ndarray, model: ClickModel) -> np.ndarray:
        affinity = np.einsum("nd,nd->n", self.user_interest[users], self.topic[news])
        age = np.maximum(day - self.publish_day[news], 0.0)
        logits = (
            self.bias
            + model.affinity * affinity
            + model.popularity * (self.base_pop[news] - model.age_decay_per_day * age)
            + model.appeal * self.appeal[news]
        )
        if model.entity and self.news_entities is not None and self.favourite_entities is not None:
            logits = logits + model.entity * self.favourite_count(users, news)
        return logits.astype(np.float32)

    def favourite_count(self, users: np.ndarray, news: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
        """How many of each news' entities its user cares about. Shape: (P,), (P,) -> (P,)."""
        out = np.zeros(len(users), dtype=np.float64)
        for start in range(0, len(users), chunk):
            named = self.news_entities[news[start : start + chunk]]  # (p, M)
            cares = self.favourite_entities[users[start : start + chunk, None], np.maximum(named, 0)]  # (p, M)
            out[start : start + chunk] = (cares & (named >= 0)).sum(axis=1)
        return out


def hook_popularity(hooks: np.ndarray, params: WorldParameters = PARAMETERS) -> np.ndarray:
    """The part of a news item's base popularity that its title's hook words show (the rest is noise)."""
    return params.hook_lift * (hooks - params.hook_centre)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def subcategories(categories: list[str]) -> list[tuple[int, str, list[str]]]:
    """(category index, subcategory name, its words): each category's words split into groups."""
    result = []
    for cat_index, category in enumerate(categories):
        words = CATEGORY_WORDS[category]
        n_sub = 3 + cat_index % 3  # 3 to 5 subcategories per category
        for sub in range(n_sub):
            group = words[sub::n_sub]
            result.append((cat_index, f"{category}{group[0]}", group))
    return result


def build_world(
    scale: SynthScale, model: ClickModel, rng: np.random.Generator, params: WorldParameters = PARAMETERS
) -> tuple[World, list]:
    """News and users of a dataset of ``scale``; returns the world and its subcategories."""
    categories = list(CATEGORY_WORDS)
    subcats = subcategories(categories)
    d = model.latent_dim
    cat_vecs = unit(rng.standard_normal((len(categories), d)))
    sub_vecs = unit(
        np.stack([cat_vecs[c] for c, _, _ in subcats])
        + params.subcategory_spread * unit(rng.standard_normal((len(subcats), d)))
    )
    # Subcategory sizes are skewed, as in MIND (a few dominate).
    sub_weights = rng.dirichlet(np.full(len(subcats), params.subcategory_size_concentration))
    n = scale.news
    subcategory = rng.choice(len(subcats), size=n, p=sub_weights)
    category = np.array([subcats[s][0] for s in range(len(subcats))])[subcategory]
    topic = unit(sub_vecs[subcategory] + params.topic_noise * rng.standard_normal((n, d)))
    # Most of a news item's intrinsic popularity shows in its title as "hook" words (0 to 2 of them).
    hooks = rng.choice(3, size=n, p=list(params.hook_count_probs))
    base_pop = hook_popularity(hooks, params) + params.popularity_noise * rng.standard_normal(n)
    has_image = rng.random(n) < model.image_fraction
    appeal = np.where(has_image, rng.standard_normal(n), 0.0)
    total_days = HISTORY_DAYS + SPLIT_DAYS["test"][1]
    publish_day = np.sort(rng.random(n) * total_days - HISTORY_DAYS)

    users = scale.users
    n_interests = rng.integers(1, params.max_interests + 1, size=users)  # favourite subcategories
    picks = rng.choice(len(subcats), size=(users, params.max_interests), p=sub_weights)
    weights = rng.dirichlet(np.ones(params.max_interests), size=users)
    weights = weights * (np.arange(params.max_interests)[None, :] < n_interests[:, None])
    interest = unit(
        np.einsum("uk,ukd->ud", weights, sub_vecs[picks]) + params.interest_noise * rng.standard_normal((users, d))
    )
    activity = rng.lognormal(0.0, params.activity_sigma, size=users)
    world = World(
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
        subcategory_topic=sub_vecs.astype(np.float32),
        subcategory_weight=sub_weights,
    )
    return world, subcats
