"""A feed pipeline at serving time: its config (``config.pipeline``) and the stages
(``serving.stages``) applied to the model's scores of a pool of candidates."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from mmnewsrec.config.pipeline import PipelineConfig
from mmnewsrec.serving import stages

#: The pipeline a service runs when none is chosen: the model's ranking, as before pipelines.
TOP_K = PipelineConfig()


class Pipeline:
    """Orders a scored pool with the pipeline's stages (thread-unsafe: the service's lock holds)."""

    def __init__(self, config: PipelineConfig):
        self.config = config
        self.rng = np.random.default_rng(config.seed)

    def order(
        self,
        scores: np.ndarray,
        k: int,
        vectors: Callable[[], np.ndarray],
        categories: Callable[[], tuple[np.ndarray, np.ndarray]],
        counts: Callable[[], tuple[np.ndarray, np.ndarray]],
    ) -> np.ndarray:
        """Positions into the pool, best first, ``min(k, pool)`` of them.

        What a stage needs is asked for only when it runs: ``vectors()`` the pool's news vectors
        (P, D); ``categories()`` the pool's category codes (P,) and the history's distribution over
        them (K,); ``counts()`` the pool's impressions and clicks (P,), (P,).
        """
        config = self.config
        if config.diversifier == "mmr":
            chosen = stages.mmr(scores, vectors(), k, config.value("theta"))
        elif config.diversifier == "calibration":
            codes, target = categories()
            chosen = stages.calibrate(scores, codes, target, k, config.value("calibration_lambda"))
        elif config.sampler == "softmax":
            chosen = stages.softmax_sample(scores, k, config.value("temperature"), self.rng)
        elif config.sampler == "epsilon":
            chosen = stages.epsilon_greedy(scores, k, config.value("epsilon"), self.rng)
        elif config.sampler == "thompson":
            shown, clicked = counts()
            prior = 1 / (1 + np.exp(-np.asarray(scores, dtype=np.float64)))  # the model's click probability
            chosen = stages.thompson(prior, shown, clicked, k, self.rng, config.value("prior_strength"))
        else:
            chosen = stages.top_k(scores, k)
        return stages.fill(chosen, scores, min(k, len(scores)))


def category_codes(pool: Sequence[str], history: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The pool's categories as codes (P,) and the history's distribution over the same codes (K,),
    for calibration (a history category absent from the pool gets a code too)."""
    names = {name: code for code, name in enumerate(dict.fromkeys([*pool, *history]))}
    codes = np.array([names[c] for c in pool], dtype=np.int64)
    target = stages.category_distribution(np.array([names[c] for c in history], dtype=np.int64), len(names))
    return codes, target
