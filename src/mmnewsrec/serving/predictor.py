"""A trained run as a Python object: encode news from plain records, encode users, score candidates.

This is the public API for notebooks and services. It loads from the run folder alone (no dataset)
and goes through the same code as training and ``evaluate``: news records become the same features
(the run's feature store, content-keyed, so news seen before are reused), then the model's own
``encode_news``, ``encode_user`` and ``score``.

Example:
    >>> from mmnewsrec.serving import Predictor
    >>> predictor = Predictor.load("runs/text_minilm")
    >>> predictor.encode_news([{"news_id": "N1", "category": "sports", "subcategory": "golf",
    ...                         "title": "A hole in one", "abstract": ""}, ...])
    >>> user = predictor.encode_user(["N1", "N7"])           # the user's clicks, oldest first
    >>> predictor.score(user, ["N3", "N4"])                  # logits, higher = more likely clicked
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from mmnewsrec.data.schema import NEWS_COLUMNS
from mmnewsrec.errors import MmnewsrecError
from mmnewsrec.evaluation.evaluate import encode_all_news
from mmnewsrec.training.rundir import RunDir

logger = logging.getLogger(__name__)


class RequestError(MmnewsrecError, ValueError):
    """A request the predictor cannot answer: an unknown news id, a malformed record."""


@dataclass(frozen=True)
class NewsRecord:
    """One news article as plain values (a row of MIND's news.tsv, plus an optional image file)."""

    news_id: str
    category: str
    subcategory: str = ""
    title: str = ""
    abstract: str = ""
    image: str | None = None

    @classmethod
    def of(cls, value: NewsRecord | Mapping[str, object], position: int = 0) -> NewsRecord:
        """A record from a mapping with these keys (``image`` optional), checked."""
        if isinstance(value, NewsRecord):
            record = value
        else:
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(value) - known)
            if unknown:
                raise RequestError(f"news record {position}: unknown field {unknown[0]!r}; fields are {sorted(known)}")
            try:
                record = cls(**value)  # type: ignore[arg-type]
            except TypeError as exc:
                raise RequestError(f"news record {position}: {exc}") from None
        for name in ("news_id", "category", "subcategory", "title", "abstract"):
            if not isinstance(getattr(record, name), str):
                raise RequestError(f"news record {position}: {name} must be a string")
        if not record.news_id or any(c.isspace() for c in record.news_id):
            raise RequestError(f"news record {position}: news_id {record.news_id!r} must be non-empty, without spaces")
        if record.image is not None and not Path(record.image).is_file():
            raise RequestError(f"news record {position} ({record.news_id}): image file {record.image} not found")
        return record


def records_table(records: Sequence[NewsRecord]) -> pa.Table:
    """The news table (news.tsv columns + ``image_path``) the feature code reads."""
    columns = {name: [getattr(r, name, "") for r in records] for name in NEWS_COLUMNS}
    columns["image_path"] = [r.image for r in records]
    return pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})


class Predictor:
    """A trained run ready to encode news and users and to score candidates (see the module docstring).

    News vectors are kept by id once encoded; users are encoded from those ids.
    """

    def __init__(self, run: RunDir, checkpoint: str = "best", cache_dir: str | Path | None = None):
        self.run = run
        self.config, self.info, self.model = run.load_model(checkpoint)
        self.cache_dir = cache_dir
        self.history_len = self.config.training.history_len
        self._rows: dict[str, int] = {}
        self._vectors = torch.zeros((0, self.model.news_encoder.dim))

    @classmethod
    def load(cls, run: str | Path, checkpoint: str = "best", cache_dir: str | Path | None = None) -> Predictor:
        """Loads a run folder written by ``mmnewsrec train`` (the training data is not needed)."""
        return cls(RunDir(run), checkpoint, cache_dir)

    @property
    def dim(self) -> int:
        return self.model.news_encoder.dim

    @property
    def news_ids(self) -> list[str]:
        return list(self._rows)

    @torch.inference_mode()
    def encode_news(
        self, records: Iterable[NewsRecord | Mapping[str, object]], batch_size: int = 256, progress: bool = False
    ) -> torch.Tensor:
        """Encodes news records and keeps their vectors by id (a known id is replaced).

        Shape:
            returns (N, D) in the records' order.

        Raises:
            RequestError: a malformed record, a duplicate id among the records, a missing image file.
        """
        checked = [NewsRecord.of(record, i) for i, record in enumerate(records)]
        ids = [r.news_id for r in checked]
        if len(set(ids)) != len(ids):
            duplicate = next(i for i in ids if ids.count(i) > 1)
            raise RequestError(f"news id {duplicate!r} appears twice among the records")
        if not checked:
            return torch.zeros((0, self.dim))
        # Similar lengths side by side: each encoder batch is cut to its longest text, so less padding.
        order = sorted(range(len(checked)), key=lambda i: len(checked[i].title) + len(checked[i].abstract))
        table = records_table([checked[i] for i in order])
        features = self.run.news_features(self.config, self.info, table, self.cache_dir, progress)
        by_length = encode_all_news(self.model, features, batch_size=batch_size, progress=progress).cpu()  # (N, D)
        vectors = torch.empty_like(by_length)
        vectors[torch.tensor(order)] = by_length  # back to the records' order
        fresh = [i for i in ids if i not in self._rows]
        for i in fresh:
            self._rows[i] = len(self._rows)
        self._vectors = torch.cat([self._vectors, torch.zeros((len(fresh), self.dim))])
        self._vectors[torch.tensor([self._rows[i] for i in ids])] = vectors
        return vectors

    def news_vectors(self, news_ids: Sequence[str]) -> torch.Tensor:
        """Shape: (N,) ids -> (N, D). Raises RequestError naming the first id never encoded."""
        try:
            rows = [self._rows[i] for i in news_ids]
        except KeyError as exc:
            raise RequestError(f"news id {exc.args[0]!r} is unknown: encode it with encode_news first") from None
        return self._vectors[torch.tensor(rows, dtype=torch.long)] if rows else torch.zeros((0, self.dim))

    @torch.inference_mode()
    def encode_user(self, history: Sequence[str]) -> torch.Tensor:
        """The user state of a click history (news ids, oldest first; the last ``history_len`` count).

        Shape:
            returns (D,), a user vector (an empty history gives the model's empty-history vector),
            or (H, D + 1) for the ``sequence`` user encoder.
        """
        recent = list(history)[-self.history_len :] if self.history_len else []
        vectors = torch.zeros((1, max(len(recent), 1), self.dim))  # (1, H, D), one padded slot if empty
        mask = torch.zeros((1, vectors.shape[1]), dtype=torch.bool)  # (1, H)
        if recent:
            vectors[0] = self.news_vectors(recent)
            mask[:] = True
        return self.model.encode_user(vectors, mask)[0]

    @torch.inference_mode()
    def retrieval_query(self, user: torch.Tensor) -> np.ndarray:
        """What the news index is searched with to pre-select candidates for a user state (see
        :meth:`NewsRecommender.retrieval_query`). Shape: user state -> (D,) float32."""
        return self.model.retrieval_query(user[None])[0].float().numpy()

    @torch.inference_mode()
    def explain(self, history: Sequence[str], news_id: str) -> list[tuple[str, float, float]]:
        """Why a news suits a click history: each clicked news with its weight in the user vector
        (the user encoder's additive attention) and its cosine similarity to ``news_id``, heaviest first.

        Returns [] for an empty history or a user encoder without weights.
        """
        recent = list(history)[-self.history_len :] if self.history_len else []
        if not recent:
            return []
        hist_vecs = self.news_vectors(recent)[None]  # (1, H, D)
        weights = self.model.history_weights(hist_vecs, torch.ones((1, len(recent)), dtype=torch.bool))
        if weights is None:
            return []
        similarity = torch.nn.functional.cosine_similarity(hist_vecs[0], self.news_vectors([news_id]), dim=-1)  # (H,)
        rows = zip(recent, weights[0].tolist(), similarity.tolist(), strict=True)
        return sorted(rows, key=lambda row: -row[1])

    def knows(self, news_id: str) -> bool:
        """Whether the news has been encoded."""
        return news_id in self._rows

    @torch.inference_mode()
    def score(
        self, user: torch.Tensor, candidates: Sequence[str], cand_stats: torch.Tensor | None = None
    ) -> np.ndarray:
        """Logits of the candidates for a user vector (higher: more likely clicked).

        ``cand_stats``: the candidates' log counters (``data.popularity.STAT_NAMES``) for a model
        whose scorer reads them; without them every candidate counts as never shown.

        Shape:
            user (D,), candidates (C,) ids, cand_stats (1, C, F) or None -> (C,) float64.
        """
        cand = self.news_vectors(candidates)[None]  # (1, C, D)
        return self.model.score(user[None], cand, cand_stats)[0].double().numpy()

    def rank(self, history: Sequence[str], candidates: Sequence[str]) -> list[tuple[str, float]]:
        """Candidates ordered by score for a click history (ties keep the candidates' order)."""
        scores = self.score(self.encode_user(history), candidates)
        order = np.argsort(-scores, kind="stable")
        return [(candidates[i], float(scores[i])) for i in order]
