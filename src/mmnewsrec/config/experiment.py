"""Training, and the experiment config that holds every part (one YAML file in configs/)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mmnewsrec.config.checks import _check_positive, check_choices
from mmnewsrec.config.data import DataConfig
from mmnewsrec.config.features import FeaturesConfig
from mmnewsrec.config.model import ModelConfig
from mmnewsrec.errors import ConfigError

Loss = Literal["listwise", "pointwise_weighted_ce"]


MixedPrecision = Literal["auto", "no", "fp16", "bf16"]


@dataclass(frozen=True)
class TrainingConfig:
    """The training set-up. Defaults follow the study: K = 4, history 50, 16 x 8 accumulation, lr 1e-4.

    Attributes:
        negatives: non-clicked candidates sampled per click (K).
        history_len: most recent clicks kept per user.
        batch_size: samples per step and process; the effective batch is
            batch_size x grad_accum x processes.
        grad_accum: steps whose gradients are summed before each optimiser step.
        epochs: passes over the training impressions.
        lr: learning rate of new (randomly initialised) parameters.
        pretrained_lr: learning rate of pretrained backbone parameters (None: ``lr``).
        blend_lr: learning rate of the few weights that blend the baselines' signals into the score
            (the category profile's scales and smoothing, the content part's scale, the entity
            profile's, the recent-popularity weight), without weight decay; None: ``lr``, in the
            ``new`` group. A few scalars can move much faster than the encoders' weights, so the
            blend fits the data within the first epoch.
        weight_decay: AdamW weight decay (0: off).
        max_grad_norm: gradients are clipped to this total norm (0: off).
        warmup_ratio: share of optimiser steps with linear warm-up, then linear decay to 0.
        max_steps: stop after this many optimiser steps (0: run every epoch).
        eval_every: evaluate on dev every this many optimiser steps (0: after each epoch).
        eval_impressions: dev impressions used by periodic evaluation (0: all).
        eval_batch_size: impressions scored at a time in evaluation.
        dev_split: the labelled split that evaluation, early stopping and the best checkpoint use;
            a run refuses to start when it is missing. None trains without evaluation: the final
            weights are then the run's model.
        patience: evaluations without AUC improvement before stopping early (0: never).
        eval_at_start: also evaluate the initial weights, before the first step, as a candidate
            for the best checkpoint: a model whose initial ranking is a baseline's (the profile and
            popularity terms start so) then ends no worse on dev than that baseline, training moves
            away from it only where dev says it helps.
        mixed_precision: ``auto`` uses bf16 (or fp16) autocast on a GPU and fp32 on the CPU.
        dedup_news: encode each distinct news of a batch once.
        history_cache_steps: 0 encodes every history news with the current weights (and
            gradients). k > 0 keeps each news's backbone output (the encoder's expensive "body"),
            recomputed without gradients once it is k optimiser steps old; history slots put the
            current projection and category embeddings (the "head") on top of it, with gradients.
            Candidates are always encoded in full, with gradients, and refresh the cache. This is
            the staleness trade: the backbone learns from candidates only, and a history vector's
            backbone part may come from weights up to k steps old (backbones move slowly at their
            small learning rate), in exchange for running the backbone on about 1 + K news per
            sample instead of H + 1 + K.
        seed: seeds the model's initial weights, the sampling of negatives and the batch order.
        log_every: optimiser steps between training-loss records.
        loss: ``listwise``: softmax cross-entropy of each click against its K sampled non-clicks
            (NRMS); ``pointwise_weighted_ce``: every sampled candidate is its own click / no-click
            example, with two-class cross-entropy weighted by ``class_weights`` (the study's).
        class_weights: weights of the no-click and click classes of ``pointwise_weighted_ce``;
            the loss is the weighted mean over candidates, as ``torch.nn.CrossEntropyLoss(weight=...)``.
    """

    negatives: int = 4
    history_len: int = 50
    batch_size: int = 16
    grad_accum: int = 8
    epochs: int = 3
    max_steps: int = 0
    lr: float = 1e-4
    pretrained_lr: float | None = None
    blend_lr: float | None = None
    weight_decay: float = 0.0
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    eval_every: int = 0
    eval_impressions: int = 0
    eval_batch_size: int = 128
    dev_split: str | None = "dev"
    patience: int = 2
    eval_at_start: bool = False
    mixed_precision: MixedPrecision = "auto"
    dedup_news: bool = True
    history_cache_steps: int = 0
    seed: int = 42
    log_every: int = 10
    loss: Loss = "listwise"
    class_weights: tuple[float, float] = (1.0, 25.0)

    def __post_init__(self) -> None:
        check_choices(self, "training")
        if len(self.class_weights) != 2 or not all(0 < w < float("inf") for w in self.class_weights):
            raise ConfigError(
                f"training.class_weights: two numbers > 0 (no-click, click), got {list(self.class_weights)}"
            )
        _check_positive(
            "training",
            self,
            ("negatives", "history_len", "batch_size", "grad_accum", "epochs", "eval_batch_size", "log_every"),
        )
        for name in ("max_steps", "eval_every", "eval_impressions", "patience", "history_cache_steps", "seed"):
            value = getattr(self, name)
            if value < 0:
                raise ConfigError(f"training.{name}: must be >= 0 (0 = off or all, see its doc), got {value}")
        for name in ("lr", "pretrained_lr", "blend_lr"):
            value = getattr(self, name)
            if value is not None and not 0 < value < float("inf"):
                raise ConfigError(f"training.{name}: must be a number > 0 (e.g. 1e-4), got {value}")
        if not 0 <= self.warmup_ratio <= 1:
            raise ConfigError(f"training.warmup_ratio: must lie in [0, 1], got {self.warmup_ratio}")
        for name in ("weight_decay", "max_grad_norm"):
            if not 0 <= getattr(self, name) < float("inf"):
                raise ConfigError(f"training.{name}: must be >= 0 (0 = off), got {getattr(self, name)}")
        if self.dev_split is not None and not self.dev_split:
            raise ConfigError("training.dev_split: a split folder name such as 'dev', or null to train without one")


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment, as one YAML file in ``configs/``.

    Attributes:
        name: the run's name (its folder under ``run_dir``).
        run_dir: the folder that holds the runs (``train --run`` chooses one folder instead).
        baseline: ``random``, ``popularity`` or ``oracle`` to score a baseline instead of training.
        data: where the dataset is and how strictly it is read.
        features: what the feature store holds.
        model: the recommender's parts.
        training: the training set-up.
    """

    name: str = "experiment"
    run_dir: str = "runs"
    baseline: str | None = None
    data: DataConfig = field(default_factory=DataConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
