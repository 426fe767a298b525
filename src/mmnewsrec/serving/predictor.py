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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from mmnewsrec.evaluation.evaluate import encode_all_news
from mmnewsrec.runs.artifact import TrainedRun
from mmnewsrec.serving.catalogue import NewsCatalogue, meta_of
from mmnewsrec.serving.records import NewsRecord, RequestError, records_table

logger = logging.getLogger(__name__)


class Predictor:
    """A trained run ready to encode news and users and to score candidates (see the module docstring).

    News vectors are kept by id in :attr:`catalogue` once encoded; users are encoded from those ids.
    """

    def __init__(self, trained: TrainedRun):
        self.trained = trained
        self.config, self.info, self.model = trained.config, trained.info, trained.model
        self.history_len = self.config.training.history_len
        self.catalogue = NewsCatalogue(self.dim)

    @classmethod
    def load(cls, run: str | Path, checkpoint: str = "best", cache_dir: str | Path | None = None) -> Predictor:
        """Loads a run folder written by ``mmnewsrec train`` (the training data is not needed)."""
        return cls(TrainedRun.load(run, checkpoint, cache_dir))

    @property
    def dim(self) -> int:
        return self.model.news_encoder.dim

    @property
    def identity(self) -> str:
        """Names the run and weights that encode news: logged news vectors are reused only by the same."""
        return f"{self.trained.path}|{self.info.created}|{self.trained.checkpoint}"

    @property
    def news_ids(self) -> list[str]:
        return list(self.catalogue)

    @torch.inference_mode()
    def encode(
        self,
        records: Iterable[NewsRecord | Mapping[str, object]],
        batch_size: int = 256,
        progress: bool = False,
        cache: bool = False,
    ) -> torch.Tensor:
        """Encodes news records (keeping nothing). ``cache=True`` keeps their features in the run's
        feature store (content-keyed; worth it for a dataset's news that will be encoded again).

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
        features = self.trained.featurize(table, progress, cache=cache)
        by_length = encode_all_news(self.model, features, batch_size=batch_size, progress=progress).cpu()  # (N, D)
        vectors = torch.empty_like(by_length)
        vectors[torch.tensor(order)] = by_length  # back to the records' order
        return vectors

    def encode_news(
        self,
        records: Iterable[NewsRecord | Mapping[str, object]],
        batch_size: int = 256,
        progress: bool = False,
        cache: bool = False,
        published: int = 0,
    ) -> torch.Tensor:
        """:meth:`encode`, then keeps the vectors by id in :attr:`catalogue` (a known id is replaced).

        Shape:
            returns (N, D) in the records' order.
        """
        checked = [NewsRecord.of(record, i) for i, record in enumerate(records)]
        vectors = self.encode(checked, batch_size, progress, cache)
        metas = [meta_of(record, published) for record in checked]
        self.catalogue.add([r.news_id for r in checked], vectors.numpy(), metas)
        return vectors

    def news_vectors(self, news_ids: Sequence[str]) -> torch.Tensor:
        """Shape: (N,) ids -> (N, D). Raises RequestError naming the first id never encoded."""
        if not news_ids:
            return torch.zeros((0, self.dim))
        return torch.from_numpy(self.catalogue.vectors(news_ids, hint="encode it with encode_news first"))

    @torch.inference_mode()
    def encode_user(self, history: Sequence[str]) -> torch.Tensor:
        """The user state of a click history (news ids, oldest first; the last ``history_len`` count).

        Shape:
            returns (D,), a user vector (an empty history gives the model's empty-history vector),
            or (H, D + 1) for the ``sequence`` user encoder.
        """
        recent = list(history)[-self.history_len :] if self.history_len else []
        return self.encode_user_vectors(self.news_vectors(recent))

    @torch.inference_mode()
    def encode_user_vectors(self, history: torch.Tensor) -> torch.Tensor:
        """:meth:`encode_user` from the clicked news' vectors (oldest first; the last ``history_len``).

        Shape:
            history (H, D) -> (D,), or (H, D + 1) for the ``sequence`` user encoder.
        """
        recent = history[-self.history_len :] if self.history_len else history[:0]
        vectors = torch.zeros((1, max(len(recent), 1), self.dim))  # (1, H, D), one padded slot if empty
        mask = torch.zeros((1, vectors.shape[1]), dtype=torch.bool)  # (1, H)
        if len(recent):
            vectors[0] = recent
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
        return self.catalogue.knows(news_id)

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
        return self.score_vectors(user, self.news_vectors(candidates), cand_stats)

    @torch.inference_mode()
    def score_vectors(
        self, user: torch.Tensor, candidates: torch.Tensor, cand_stats: torch.Tensor | None = None
    ) -> np.ndarray:
        """:meth:`score` of candidates given by their vectors.

        Shape:
            user (D,), candidates (C, D), cand_stats (1, C, F) or None -> (C,) float64.
        """
        return self.model.score(user[None], candidates[None], cand_stats)[0].double().numpy()

    def rank(self, history: Sequence[str], candidates: Sequence[str]) -> list[tuple[str, float]]:
        """Candidates ordered by score for a click history (ties keep the candidates' order)."""
        scores = self.score(self.encode_user(history), candidates)
        order = np.argsort(-scores, kind="stable")
        return [(candidates[i], float(scores[i])) for i in order]


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op threads set to ``count`` for the block (the setting is process-wide)."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
