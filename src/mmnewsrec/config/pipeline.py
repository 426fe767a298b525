"""A feed pipeline of the live service (``serve --pipeline FILE``, ``?pipeline=NAME``): which pool of
candidates the model scores and which stages then make the list (``serving.stages``).

    # configs/pipelines/mmr.yaml
    name: mmr
    pool: 200
    diversifier: mmr
    theta: 0.7

A stage's trade-off is set only with its stage (``theta`` with ``mmr``, ``calibration_lambda``
with ``calibration``, ``temperature`` with ``softmax``, ``epsilon`` with ``epsilon``,
``prior_strength`` with ``thompson``); one set without it is refused, naming the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from mmnewsrec.config.checks import check_choices
from mmnewsrec.errors import ConfigError

Diversifier = Literal["mmr", "calibration"]
Sampler = Literal["softmax", "epsilon", "thompson"]

#: Each stage parameter and the stage that reads it.
_READ_BY = {
    "theta": ("diversifier", "mmr"),
    "calibration_lambda": ("diversifier", "calibration"),
    "temperature": ("sampler", "softmax"),
    "epsilon": ("sampler", "epsilon"),
    "prior_strength": ("sampler", "thompson"),
}
_DEFAULTS = {"theta": 0.7, "calibration_lambda": 0.5, "temperature": 1.0, "epsilon": 0.1, "prior_strength": 10.0}


@dataclass(frozen=True)
class PipelineConfig:
    """A feed pipeline: filters -> the model's scores of a pool -> diversifier -> sampler -> fill.

    Attributes:
        name: what requests choose it by (``?pipeline=NAME``) and what a served card names.
        pool: candidates retrieved (the index's best for the user, joined by the most clicked fresh
            news) and scored before the stages; the list is the best ``k`` of them after the stages.
        max_age_hours: only news published within this many hours (none: any age).
        diversifier: ``mmr`` (maximal marginal relevance over the news vectors' cosine similarity)
            or ``calibration`` (the list's category distribution kept close to the history's by KL,
            Steck 2018); none: the ranking by score.
        theta: MMR's trade-off: 1 is relevance alone, 0 diversity alone (default 0.7).
        calibration_lambda: calibration's trade-off: 0 is relevance alone (default 0.5).
        sampler: exploration (instead of a diversifier): ``softmax`` (a Plackett-Luce draw at
            ``temperature``), ``epsilon`` (each slot a random candidate with probability
            ``epsilon``) or ``thompson`` (a draw from each news' click-through posterior, whose
            prior is the model's click probability); none: deterministic.
        temperature: the softmax sampler's temperature over the model's logits (default 1).
        epsilon: the epsilon-greedy sampler's exploration probability (default 0.1).
        prior_strength: Thompson's prior, in pseudo-impressions (default 10).
        seed: the samplers' random seed (none: fresh entropy at start).
    """

    name: str = "top-k"
    pool: int = 200
    max_age_hours: float | None = None
    diversifier: Diversifier | None = None
    theta: float | None = None
    calibration_lambda: float | None = None
    sampler: Sampler | None = None
    temperature: float | None = None
    epsilon: float | None = None
    prior_strength: float | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][\w.-]{0,63}", self.name):
            raise ConfigError(f"name: {self.name!r} must be 1-64 letters, digits, '.', '_' or '-'")
        check_choices(self, "pipeline")
        if self.pool < 1:
            raise ConfigError(f"pool: must be an integer >= 1, got {self.pool}")
        if self.max_age_hours is not None and self.max_age_hours <= 0:
            raise ConfigError(f"max_age_hours: must be > 0 hours, got {self.max_age_hours}")
        if self.diversifier is not None and self.sampler is not None:
            raise ConfigError(
                f"sampler: a pipeline has a diversifier or a sampler, not both (this one has {self.diversifier} "
                f"and {self.sampler})"
            )
        for key, (stage, kind) in _READ_BY.items():
            if getattr(self, key) is not None and getattr(self, stage) != kind:
                raise ConfigError(
                    f"{key}: read only with {stage}: {kind} (this pipeline's {stage} is {getattr(self, stage)})"
                )
        for key in ("theta", "calibration_lambda", "epsilon"):
            value = getattr(self, key)
            if value is not None and not 0 <= value <= 1:
                raise ConfigError(f"{key}: must lie in [0, 1], got {value}")
        for key in ("temperature", "prior_strength"):
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise ConfigError(f"{key}: must be > 0, got {value}")

    def trade_off(self) -> tuple[str, str, float] | None:
        """The stage that diversifies or explores, the one parameter it reads and that parameter's
        value (``("mmr", "theta", 0.7)``); None for the model's ranking alone."""
        stage = self.diversifier or self.sampler
        if stage is None:
            return None
        key = next(key for key, (_, kind) in _READ_BY.items() if kind == stage)
        return stage, key, self.value(key)

    def value(self, key: str) -> float:
        """A stage parameter, or its default when the YAML leaves it out."""
        value = getattr(self, key)
        return _DEFAULTS[key] if value is None else float(value)
