"""News encoders: per-news inputs (tokens, pixels, frozen vectors) -> one vector per news.

Every encoder takes a dict of per-news tensors gathered by :class:`~mmnewsrec.batching.features.NewsFeatures`
and returns ``(U, dim)`` vectors. ``inputs()`` names the features it reads; ``pretrained_parameters()``
the parameters that came from a pretrained backbone (they get their own learning rate).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from mmnewsrec.config import BackboneConfig, NewsEncoderConfig
from mmnewsrec.errors import ConfigError
from mmnewsrec.features.backbones import from_pretrained, layer_pattern, transformer_layers
from mmnewsrec.features.frozen import pool
from mmnewsrec.features.image import PixelNormalizer, ProcessorGeometry
from mmnewsrec.models.layers import AdditiveAttention
from mmnewsrec.registry import Registry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelContext:
    """Facts derived from the data and feature store (never typed into configs).

    Attributes:
        num_categories / num_subcategories: sizes of the train-fitted vocabularies.
        feature_dims: last dimension of every available news feature (e.g. ``frozen:bert_cls``).
        vocab_size: the tokenizer's vocabulary size (word encoder).
    """

    num_categories: int = 2
    num_subcategories: int = 2
    feature_dims: dict[str, int] = field(default_factory=dict)
    vocab_size: int = 0


NEWS_ENCODERS: Registry = Registry("news encoder")


class NewsEncoder(nn.Module):
    """Base class: ``forward(inputs) -> (U, dim)``.

    ``forward`` is ``head(body(inputs), inputs)``: ``body`` is the expensive part (a backbone),
    ``head`` the cheap trainable part on top (projection, category embeddings), which reads only
    ``head_inputs()``. The history-vector cache keeps body outputs, so history news always get
    the current head. By default the body is the whole encoder and the head the identity.
    """

    dim: int

    def inputs(self) -> list[str]:
        raise NotImplementedError

    def head_inputs(self) -> list[str]:
        return []

    @property
    def body_dim(self) -> int:
        return self.dim

    def body(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Shape: -> (U, body_dim)."""
        return self(inputs)

    def head(self, body: torch.Tensor, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Shape: (U, body_dim) -> (U, dim)."""
        return body

    def pretrained_parameters(self) -> Iterator[nn.Parameter]:
        return iter(())


# ------------------------------------------------------------------------------------------ backbones


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
    _freeze(model, config.train_layers)
    return model


def _freeze(model: nn.Module, train_layers: int) -> None:
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


def _pretrained_weights(model: nn.Module) -> Iterator[nn.Parameter]:
    """The backbone's own weights; LoRA adapters are new weights (the new-parameter learning rate)."""
    return (p for name, p in model.named_parameters() if "lora_" not in name)


def cached_states_feature(text_field: str) -> str:
    """Name of the frozen feature holding the hidden states below a text backbone's trained top
    layers (``cache_frozen``); the workflow builds it with the matching layer index."""
    return f"lower_{text_field}"


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


class _Pool(nn.Module):
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


class _CategoryEmbedding(nn.Module):
    """Category + subcategory embeddings (train-fitted vocabularies), added to a text vector."""

    def __init__(self, dim: int, context: ModelContext):
        super().__init__()
        self.category = nn.Embedding(context.num_categories, dim)
        self.subcategory = nn.Embedding(context.num_subcategories, dim)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.category(inputs["category"]) + self.subcategory(inputs["subcategory"])  # (U, dim)


# ------------------------------------------------------------------------------------------ encoders


@NEWS_ENCODERS.register("text")
class TextEncoder(NewsEncoder):
    """A pretrained text model (BERT, MiniLM, ...) over one tokenised field, pooled and projected.

    With ``cache_frozen`` the encoder reads the cached hidden states below its ``train_layers``
    top layers (``frozen:lower_{field}``) and runs only those layers; the result is the same as
    running the whole backbone over the tokens (in eval mode), at a fraction of the cost.

    Shape:
        ``{field}_ids`` / ``{field}_mask`` (U, L) -> (U, dim); cached: ``frozen:lower_{field}``
        (U, L, h) with ``frozen:lower_{field}:mask`` (U, L) -> (U, dim).
    """

    def __init__(self, config: NewsEncoderConfig, context: ModelContext, backbone: BackboneConfig | None = None):
        super().__init__()
        backbone = backbone or config.text
        if backbone is None:
            raise ConfigError("model.news.text: a text encoder needs a backbone (model name)")
        self.field = config.text_field
        self.backbone = load_backbone(backbone)
        self.top_layers = backbone.train_layers if backbone.cache_frozen else 0
        if self.top_layers:
            layers = transformer_layers(self.backbone)
            if layers is None or self.top_layers > len(layers):
                raise ConfigError(
                    f"model.news.text.train_layers: {self.top_layers} top layers to run over cached states, "
                    f"but {backbone.model} has {0 if layers is None else len(layers)}"
                )
        # What the backbone reads: token ids, or (cache_frozen) the cached states entering the top layers.
        if self.top_layers:
            self.sequence = "frozen:" + cached_states_feature(self.field)
            self.sequence_mask = f"{self.sequence}:mask"
        else:
            self.sequence, self.sequence_mask = f"{self.field}_ids", f"{self.field}_mask"
        hidden = self.backbone.config.hidden_size
        self.pool = _Pool(backbone.pooling, hidden)
        self.project = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(hidden, config.dim))
        self.categories = _CategoryEmbedding(config.dim, context) if config.use_category else None
        self.dim = config.dim

    def inputs(self) -> list[str]:
        return [self.sequence, self.sequence_mask, *self.head_inputs()]

    def pretrained_parameters(self) -> Iterator[nn.Parameter]:
        return _pretrained_weights(self.backbone)

    def head_inputs(self) -> list[str]:
        return ["category", "subcategory"] if self.categories is not None else []

    @property
    def body_dim(self) -> int:
        return self.backbone.config.hidden_size

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.body(inputs), inputs)

    #: News per backbone call: rows are sorted by length and each chunk is cut to its longest row,
    #: so short titles do not pay for the padding of long ones.
    chunk_size: int = 64

    def body(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The pooled backbone output. Shape: -> (U, h)."""
        mask = inputs[self.sequence_mask]  # (U, L)
        if len(mask) <= self.chunk_size:
            return self._body(inputs, slice(None))
        order = torch.argsort(mask.sum(1), descending=True, stable=True)  # (U,)
        chunks = [self._body(inputs, order[i : i + self.chunk_size]) for i in range(0, len(order), self.chunk_size)]
        return torch.cat(chunks)[torch.argsort(order)]  # back to the input order

    def _body(self, inputs: dict[str, torch.Tensor], rows) -> torch.Tensor:
        sequence, mask = inputs[self.sequence][rows], inputs[self.sequence_mask][rows]  # (u, L[, h]), (u, L)
        width = max(int(mask.sum(1).max()), 1)  # drop columns that are padding in every row
        sequence, mask = sequence[:, :width], mask[:, :width]
        if self.top_layers:
            output = run_top_layers(self.backbone, sequence, mask, self.top_layers)
        else:
            output = self.backbone(input_ids=sequence, attention_mask=mask.long())
        return self.pool(output, mask)  # (u, h)

    def head(self, body: torch.Tensor, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        vectors = self.project(body)  # (U, dim)
        if self.categories is not None:
            vectors = vectors + self.categories(inputs)
        return vectors


@NEWS_ENCODERS.register("vision")
class VisionEncoder(NewsEncoder):
    """A vision model (ViT, ...) over the stored uint8 pixels, pooled and projected.

    News without an image get a learned "no image" vector instead of an encoding of blank pixels.

    Shape:
        ``pixels`` (U, 3, S, S) uint8, ``has_image`` (U,) bool -> (U, dim).
    """

    def __init__(self, config: NewsEncoderConfig, context: ModelContext, backbone: BackboneConfig | None = None):
        super().__init__()
        backbone = backbone or config.vision
        if backbone is None:
            raise ConfigError("model.news.vision: a vision encoder needs a backbone (model name)")
        if backbone.cache_frozen:
            raise ConfigError("model.news.vision.cache_frozen: hidden-state caching is for text backbones")
        self.backbone = load_backbone(backbone)
        self.normalize = PixelNormalizer(ProcessorGeometry.load(backbone.model, backbone.revision))
        hidden = self.backbone.config.hidden_size
        self.pool = _Pool(backbone.pooling, hidden)
        self.project = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(hidden, config.dim))
        self.no_image = nn.Parameter(torch.zeros(config.dim))
        self.dim = config.dim

    def inputs(self) -> list[str]:
        return ["pixels", "has_image"]

    def pretrained_parameters(self) -> Iterator[nn.Parameter]:
        return _pretrained_weights(self.backbone)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        has_image = inputs["has_image"]  # (U,)
        out = self.no_image.expand(len(has_image), -1).clone()  # (U, dim)
        if has_image.any():
            pixels = self.normalize(inputs["pixels"][has_image])  # only real images are encoded
            encoded = self.project(self.pool(self.backbone(pixel_values=pixels), None))
            out = out.to(encoded.dtype)
            out[has_image] = encoded
        return out


@NEWS_ENCODERS.register("precomputed")
class PrecomputedEncoder(NewsEncoder):
    """Frozen vectors from the feature store + a trainable projection (the study's frozen experiments).

    If the feature has a ``has_image`` flag (image or BLIP features), news without an image under
    the mask policy get a learned vector.

    Shape:
        ``frozen:{name}`` (U, F) -> (U, dim).
    """

    def __init__(self, config: NewsEncoderConfig, context: ModelContext, feature: str | None = None):
        super().__init__()
        feature = feature or (config.precomputed[0] if config.precomputed else "")
        key = f"frozen:{feature}"
        if key not in context.feature_dims:
            available = sorted(k.removeprefix("frozen:") for k in context.feature_dims if k.count(":") == 1)
            raise ConfigError(f"model.news.precomputed: no frozen feature {feature!r}; features.frozen has {available}")
        self.key = key
        self.flag = f"{key}:has_image" if f"{key}:has_image" in context.feature_dims else None
        # Token-level features (frozen pooling "tokens") are pooled here by additive attention,
        # which learns which words matter (a topic word, a hook word) instead of averaging them.
        self.token_mask = f"{key}:mask" if f"{key}:mask" in context.feature_dims else None
        self.token_pool = AdditiveAttention(context.feature_dims[key]) if self.token_mask else None
        in_dim = context.feature_dims[key]
        if config.projection == "mlp":
            self.project = nn.Sequential(
                nn.Dropout(config.dropout), nn.Linear(in_dim, config.dim), nn.GELU(), nn.Linear(config.dim, config.dim)
            )
        else:
            self.project = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(in_dim, config.dim))
        self.no_image = nn.Parameter(torch.zeros(config.dim)) if self.flag else None
        # Categories describe the text, so only a text feature (no image flag) adds them.
        self.categories = _CategoryEmbedding(config.dim, context) if config.use_category and not self.flag else None
        self.dim = config.dim

    def inputs(self) -> list[str]:
        names = [self.key] + [name for name in (self.flag, self.token_mask) if name]
        return names + (["category", "subcategory"] if self.categories is not None else [])

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        features = inputs[self.key]  # (U, F) or, token-level, (U, L, F)
        if self.token_pool is not None:
            features = self.token_pool(features, inputs[self.token_mask])  # (U, F)
        vectors = self.project(features)  # (U, dim)
        if self.categories is not None:
            vectors = vectors + self.categories(inputs)
        if self.flag:
            keep = inputs[self.flag].unsqueeze(-1)
            vectors = torch.where(keep, vectors, self.no_image.to(vectors.dtype).expand_as(vectors))
        return vectors


@NEWS_ENCODERS.register("word")
class WordEncoder(NewsEncoder):
    """Classic NRMS news encoder (Wu et al., 2019): word embeddings, multi-head self-attention,
    additive attention. No pretraining; token ids come from the configured tokenizer.

    Shape:
        ``{field}_ids`` / ``{field}_mask`` (U, L) -> (U, dim).
    """

    def __init__(self, config: NewsEncoderConfig, context: ModelContext):
        super().__init__()
        if context.vocab_size < 1:
            raise ConfigError("model.news.type word: the tokenizer's vocabulary size is unknown")
        if config.dim % config.heads:
            raise ConfigError(f"model.news.heads: {config.heads} must divide model.news.dim {config.dim}")
        self.field = config.text_field
        self.embed = nn.Embedding(context.vocab_size, config.word_dim, padding_idx=0)
        self.to_dim = nn.Linear(config.word_dim, config.dim)
        self.attention = nn.MultiheadAttention(config.dim, config.heads, dropout=config.dropout, batch_first=True)
        self.dropout = nn.Dropout(config.dropout)
        self.pool = AdditiveAttention(config.dim)
        self.dim = config.dim

    def inputs(self) -> list[str]:
        return [f"{self.field}_ids", f"{self.field}_mask"]

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        ids, mask = inputs[f"{self.field}_ids"], inputs[f"{self.field}_mask"]  # (U, L)
        words = self.to_dim(self.dropout(self.embed(ids)))  # (U, L, dim)
        safe = mask.clone()
        safe[:, 0] = True  # an empty title attends to its [CLS]/pad slot instead of nothing
        attended, _ = self.attention(words, words, words, key_padding_mask=~safe, need_weights=False)
        return self.pool(self.dropout(attended), safe)  # (U, dim)


@NEWS_ENCODERS.register("fusion")
class FusionEncoder(NewsEncoder):
    """A text branch and an image branch combined into one news vector.

    Branches: the text branch is a ``text`` backbone or a precomputed text feature; the image
    branch a ``vision`` backbone or a precomputed image feature (``precomputed: [text, image]``,
    "" for a backbone). Modes:

    * ``hadamard``: ``t * v`` (the study's choice); without an image the text vector alone;
    * ``concat``: ``W [t; v; has_image]``, the image part zeroed without an image;
    * ``gate``: ``t + g * v`` with ``g = sigmoid(W [t; v])``, g = 0 without an image.

    Missing images are masked through ``has_image``, never fed as if blank pixels were real.

    Shape:
        -> (U, dim).
    """

    def __init__(self, config: NewsEncoderConfig, context: ModelContext):
        super().__init__()
        names = [*config.precomputed, "", ""][:2]
        self.text = (
            PrecomputedEncoder(config, context, names[0]) if names[0] else TextEncoder(config, context, config.text)
        )
        self.image = (
            PrecomputedEncoder(config, context, names[1]) if names[1] else VisionEncoder(config, context, config.vision)
        )
        self.flag = self.image.flag if isinstance(self.image, PrecomputedEncoder) else "has_image"
        if self.flag is None:
            raise ConfigError(
                f"model.news.precomputed: {names[1]!r} is not an image feature (it has no has_image flag)"
            )
        self.mode = config.fusion
        dim = config.dim
        if self.mode == "concat":
            self.combine = nn.Linear(2 * dim + 1, dim)
        elif self.mode == "gate":
            self.combine = nn.Linear(2 * dim, dim)
        self.dim = dim

    def inputs(self) -> list[str]:
        return sorted(set(self.text.inputs()) | set(self.image.inputs()) | {self.flag})

    def pretrained_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.text.pretrained_parameters()
        yield from self.image.pretrained_parameters()

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        text = self.text(inputs)  # (U, dim)
        image = self.image(inputs).to(text.dtype)  # (U, dim)
        has_image = inputs[self.flag].unsqueeze(-1)  # (U, 1) bool
        if self.mode == "hadamard":
            return torch.where(has_image, text * image, text)
        if self.mode == "concat":
            image = image * has_image
            return self.combine(torch.cat([text, image, has_image.to(text.dtype)], dim=-1))
        gate = torch.sigmoid(self.combine(torch.cat([text, image], dim=-1))) * has_image
        return text + gate * image


@NEWS_ENCODERS.register("blip")
class BlipEncoder(NewsEncoder):
    """BLIP image-grounded text encoder (Li et al., 2022), frozen or trainable (``text.train_layers``).

    The BLIP text encoder reads the title and cross-attends the image patches of the BLIP vision
    model; the pooled result is projected. A news without an image is encoded by the text encoder
    alone (no cross-attention) under the mask policy.

    Shape:
        ``{field}_ids`` / ``{field}_mask`` (U, L), ``pixels`` (U, 3, S, S) uint8, ``has_image`` (U,) -> (U, dim).
    """

    def __init__(self, config: NewsEncoderConfig, context: ModelContext):
        super().__init__()
        from transformers import AutoConfig, BlipForImageTextRetrieval

        backbone = config.text
        if backbone is None:
            raise ConfigError("model.news.text: the blip encoder needs a BLIP model name (text.model)")
        if backbone.cache_frozen or backbone.lora is not None:
            raise ConfigError("model.news.text: cache_frozen and lora are not available for the blip encoder")
        if backbone.pretrained:
            blip = from_pretrained(BlipForImageTextRetrieval, backbone.model, backbone.revision)
        else:
            blip = BlipForImageTextRetrieval(from_pretrained(AutoConfig, backbone.model, backbone.revision))
        self.vision = blip.vision_model
        self.text = blip.text_encoder
        _freeze(self.text, backbone.train_layers)
        _freeze(self.vision, backbone.train_layers)
        self.normalize = PixelNormalizer(ProcessorGeometry.load(backbone.model, backbone.revision))
        hidden = self.text.config.hidden_size
        self.pool = _Pool(backbone.pooling, hidden)
        self.project = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(hidden, config.dim))
        self.field = config.text_field
        self.dim = config.dim

    def inputs(self) -> list[str]:
        return [f"{self.field}_ids", f"{self.field}_mask", "pixels", "has_image"]

    def pretrained_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.text.parameters()
        yield from self.vision.parameters()

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        ids, mask = inputs[f"{self.field}_ids"], inputs[f"{self.field}_mask"]
        width = max(int(mask.sum(1).max()), 1)
        ids, mask = ids[:, :width], mask[:, :width]
        has_image = inputs["has_image"]  # (U,)
        hidden = self.text.config.hidden_size
        pooled = torch.zeros((len(ids), hidden), device=ids.device)
        if has_image.any():
            patches = self.vision(pixel_values=self.normalize(inputs["pixels"][has_image])).last_hidden_state
            patch_mask = torch.ones(patches.shape[:2], dtype=torch.long, device=patches.device)
            fused = self.text(
                input_ids=ids[has_image],
                attention_mask=mask[has_image].long(),
                encoder_hidden_states=patches,
                encoder_attention_mask=patch_mask,
            )
            pooled = pooled.to(fused.last_hidden_state.dtype)
            pooled[has_image] = self.pool(fused, mask[has_image])
        if (~has_image).any():
            alone = self.text(input_ids=ids[~has_image], attention_mask=mask[~has_image].long())
            pooled = pooled.to(alone.last_hidden_state.dtype)
            pooled[~has_image] = self.pool(alone, mask[~has_image])
        return self.project(pooled)  # (U, dim)


def build_news_encoder(config: NewsEncoderConfig, context: ModelContext) -> NewsEncoder:
    return NEWS_ENCODERS.get(config.type)(config, context)
