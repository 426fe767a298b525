"""Knowledge entities for synthetic MIND: the entity columns of news.tsv and entity_embedding.vec.

Each subcategory has its own few entities (people, teams, places of its beat); a news names 0 to
3 of them in its title and sometimes more in its abstract, drawn with skewed weights, so that some
entities recur across many news, as they do in real news. An entity's vector (the stand-in for
MIND's 100-d TransE vectors) lies near its subcategory's direction: entities of one beat are
neighbours. The draws come from their own random stream, so a world's news, users and clicks are
the same with and without them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmnewsrec.data.mind.entities import ENTITY_EMBEDDING_FILE

#: Entities per subcategory, the size of their vectors (MIND's TransE: 100), and the entity types.
ENTITIES_PER_SUBCATEGORY = 6
ENTITY_DIM = 100
_TYPES = ("P", "O", "G", "C")  # person, organisation, place, creative work: MIND's type letters
_TITLE_COUNTS = (0.3, 0.4, 0.2, 0.1)  # P(0, 1, 2, 3 entities in a title)
_ABSTRACT_COUNTS = (0.5, 0.3, 0.2)  # P(0, 1, 2 more in the abstract)
_ELSEWHERE = 0.1  # chance an entity comes from another subcategory's beat


@dataclass(frozen=True)
class SyntheticEntities:
    """The entity universe of a synthetic world and the entities each news names.

    Attributes:
        ids: (E,) Wikidata-like ids (``Q1001`` ...).
        labels: (E,) their names.
        kinds: (E,) their type letters.
        subcategory: (E,) the subcategory whose beat each belongs to.
        vectors: (E, ENTITY_DIM) float32.
        title / abstract: per news, the entity indices its title (abstract) names.
        confidence: per news, one confidence per title entity, then per abstract entity.
    """

    ids: list[str]
    labels: list[str]
    kinds: list[str]
    subcategory: np.ndarray
    vectors: np.ndarray
    title: list[np.ndarray]
    abstract: list[np.ndarray]
    confidence: list[np.ndarray]

    def columns(self, news: int) -> tuple[str, str]:
        """The ``title_entities`` and ``abstract_entities`` fields of news ``news`` (JSON lists)."""
        scores = iter(self.confidence[news].tolist())
        fields = []
        for entities in (self.title[news], self.abstract[news]):
            objects = [
                {
                    "Label": self.labels[e],
                    "Type": self.kinds[e],
                    "WikidataId": self.ids[e],
                    "Confidence": round(next(scores), 3),
                    "OccurrenceOffsets": [],
                    "SurfaceForms": [],
                }
                for e in entities.tolist()
            ]
            fields.append(json.dumps(objects, separators=(", ", ": ")))
        return fields[0], fields[1]

    def write_vectors(self, folder: Path, news: np.ndarray) -> None:
        """``entity_embedding.vec`` of the entities that the news ``news`` (indices) name, as MIND
        writes it: the id, then the values, each followed by a tab."""
        named = sorted({int(e) for i in news.tolist() for e in (*self.title[i], *self.abstract[i])})
        lines = [self.ids[e] + "\t" + "".join(f"{v:.6f}\t" for v in self.vectors[e]) + "\n" for e in named]
        (folder / ENTITY_EMBEDDING_FILE).write_text("".join(lines), encoding="utf-8")

    def padded(self, width: int | None = None) -> np.ndarray:
        """(N, width) the entity indices each news names (title, then abstract), -1 = none."""
        named = [np.concatenate([t, a]) for t, a in zip(self.title, self.abstract, strict=True)]
        width = width or max((len(n) for n in named), default=1) or 1
        out = np.full((len(named), width), -1, dtype=np.int64)
        for i, entities in enumerate(named):
            out[i, : min(width, len(entities))] = entities[:width]
        return out

    def favourites(self, interest: np.ndarray, topic: np.ndarray, subcategory: np.ndarray, seed: int) -> np.ndarray:
        """(U, E) bool: 1 to 3 entities each user cares about, drawn from the beats of the
        subcategories nearest their interests (users with interests ``interest`` (U, d); news
        topics ``topic`` (N, d) of subcategories ``subcategory``), from their own stream."""
        rng = np.random.default_rng([seed, 0xFA7E])
        n_sub = int(self.subcategory.max()) + 1
        centres = np.zeros((n_sub, topic.shape[1]))
        np.add.at(centres, subcategory, topic)
        affinity = interest @ centres.T  # (U, S); unused subcategories have a zero centre
        nearest = np.argsort(-affinity, axis=1)[:, :2]  # (U, 2)
        favourite = np.zeros((len(interest), len(self.ids)), dtype=bool)
        counts = rng.integers(1, 4, size=len(interest))
        for user in range(len(interest)):
            beats = nearest[user, rng.integers(0, 2, size=counts[user])]
            picks = beats * ENTITIES_PER_SUBCATEGORY + rng.integers(0, ENTITIES_PER_SUBCATEGORY, size=counts[user])
            favourite[user, picks] = True
        return favourite


def draw_entities(subcategory: np.ndarray, subcategory_names: list[str], seed: int) -> SyntheticEntities:
    """The entities of a world whose news have subcategories ``subcategory`` (N,), drawn from
    their own stream of ``seed``."""
    rng = np.random.default_rng([seed, 0x5E17])
    n_sub = len(subcategory_names)
    owner = np.repeat(np.arange(n_sub), ENTITIES_PER_SUBCATEGORY)  # (E,)
    directions = rng.standard_normal((n_sub, ENTITY_DIM))
    vectors = directions[owner] + 0.6 * rng.standard_normal((len(owner), ENTITY_DIM))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"Q{1001 + e}" for e in range(len(owner))]
    labels = [f"{subcategory_names[s].title()} {k + 1}" for s in range(n_sub) for k in range(ENTITIES_PER_SUBCATEGORY)]
    kinds = [_TYPES[int(k)] for k in rng.integers(0, len(_TYPES), size=len(owner))]
    weights = 1.0 / np.arange(1, ENTITIES_PER_SUBCATEGORY + 1)  # Zipf: the first of a beat recurs most
    weights /= weights.sum()
    titles, abstracts, confidence = [], [], []
    for s in subcategory.tolist():
        chosen: list[int] = []  # a news names an entity once, in its title or its abstract
        parts = []
        for counts in (_TITLE_COUNTS, _ABSTRACT_COUNTS):
            part = []
            for _ in range(int(rng.choice(len(counts), p=counts))):
                beat = int(rng.integers(n_sub)) if rng.random() < _ELSEWHERE else int(s)
                entity = beat * ENTITIES_PER_SUBCATEGORY + int(rng.choice(ENTITIES_PER_SUBCATEGORY, p=weights))
                if entity not in chosen:
                    chosen.append(entity)
                    part.append(entity)
            parts.append(np.array(part, dtype=np.int64))
        titles.append(parts[0])
        abstracts.append(parts[1])
        confidence.append(np.round(rng.uniform(0.5, 1.0, size=len(chosen)), 3))
    return SyntheticEntities(ids, labels, kinds, owner, vectors.astype(np.float32), titles, abstracts, confidence)


def attach_entities(world, subcategory_names: list[str], entity_weight: float, seed: int) -> SyntheticEntities:
    """Draws the entities of ``world`` (a :class:`~mmnewsrec.data.synthetic.world.World`) and,
    where the click model weighs them (``entity_weight`` > 0), gives the world its news' entities
    and its users' favourites, so that its click logits read them. Every draw is from the entity
    streams of ``seed``: the rest of the world is the same either way."""
    entities = draw_entities(world.subcategory, subcategory_names, seed)
    if entity_weight:
        world.news_entities = entities.padded()
        world.favourite_entities = entities.favourites(world.user_interest, world.topic, world.subcategory, seed)
    return entities
