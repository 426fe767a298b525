"""What is computed once per news into the feature store: tokens, pixels, frozen-encoder vectors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from mmnewsrec.config.checks import check_choices
from mmnewsrec.errors import ConfigError

TextField = Literal["title", "abstract", "title_abstract"]


Modality = Literal["text", "image", "blip"]


Pooling = Literal["cls", "mean", "pooler", "tokens"]


@dataclass(frozen=True)
class TokensConfig:
    """Tokenised text kept in the feature store (what trainable text encoders read).

    Attributes:
        tokenizer: Hugging Face tokenizer name or local folder.
        revision: hub revision (pin a commit hash for exact reproducibility).
        title_len: max title tokens (the study used 30).
        abstract_len: max abstract tokens; 0 stores none.
        title_abstract_len: max tokens of the pair title [SEP] abstract; 0 stores none.
    """

    tokenizer: str = "bert-base-uncased"
    revision: str | None = None
    title_len: int = 30
    abstract_len: int = 0
    title_abstract_len: int = 0

    def __post_init__(self) -> None:
        for name in ("title_len", "abstract_len", "title_abstract_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0 or value == 1:
                raise ConfigError(f"features.tokens.{name}: must be 0 (off) or an integer >= 2, got {value!r}")
        if self.title_len == 0:
            raise ConfigError("features.tokens.title_len: titles are always tokenised; use a length >= 2")

    def lengths(self) -> dict[str, int]:
        return {"title": self.title_len, "abstract": self.abstract_len, "title_abstract": self.title_abstract_len}


@dataclass(frozen=True)
class PixelsConfig:
    """Resized news images kept in the feature store, sized for one image processor.

    The missing-image policy comes from ``data.images.missing``.

    Attributes:
        processor: the Hugging Face image processor (a model name or folder) whose size, crop and
            normalisation the stored pixels follow.
        revision: hub revision of that processor.
    """

    processor: str = "google/vit-base-patch16-224"
    revision: str | None = None


@dataclass(frozen=True)
class FrozenEncoderConfig:
    """A pretrained backbone run once over every news, its pooled vectors cached (frozen experiments).

    Attributes:
        name: label of this feature (e.g. ``bert_cls``), used by models that read it.
        model: Hugging Face model name or local folder (or, instead, ``vectors``).
        vectors: a Parquet file of precomputed vectors (an id column and a vector column, e.g.
            EB-NeRD's ``artifacts/Ekstra_Bladet_contrastive_vector/contrastive_vector.parquet``),
            relative to the dataset root; no backbone is run. With ``modality: image`` a news
            without a vector has no image.
        revision: hub revision (pin a commit hash for exact reproducibility).
        modality: ``text`` (any AutoModel text encoder), ``image`` (any AutoModel vision encoder) or
            ``blip`` (BLIP image-text retrieval model: the text encoder cross-attending the image).
        pooling: ``cls`` (first token), ``mean`` (masked mean), ``pooler`` (the model's pooler), or
            ``tokens``: keep every token's last hidden state, (max_length, D) per news with a
            ``mask``, for a trainable pooling on top (text only).
        text_field: which text is encoded (text and blip).
        max_length: token limit of that text.
        layer: with ``tokens``, keep the hidden states after transformer layer ``layer`` (0 = the
            embeddings) instead of the last layer's; only the layers up to it are run. A trainable
            text encoder with ``cache_frozen`` reads these as its frozen lower part.
        batch_size: news per forward pass (batches are sorted by length).
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1`` ...
    """

    _alias: ClassVar[str] = "features.frozen"  # how its messages name it; loaded from a file, its place

    name: str
    model: str | None = None
    vectors: str | None = None
    revision: str | None = None
    modality: Modality = "text"
    pooling: Pooling = "cls"
    text_field: TextField = "title"
    max_length: int = 30
    layer: int | None = None
    batch_size: int = 64
    device: str = "auto"

    def __post_init__(self) -> None:
        check_choices(self, "features.frozen")
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ConfigError(f"features.frozen.name: {self.name!r} must be letters, digits and underscores")
        if bool(self.model) == bool(self.vectors):
            raise ConfigError(
                f"features.frozen {self.name}: give a backbone (model: NAME) or a file of vectors (vectors: PATH), one"
            )
        if self.vectors and self.modality not in ("text", "image"):
            raise ConfigError(f"features.frozen.modality: a vectors file is text or image, not {self.modality!r}")
        if self.pooling == "tokens" and self.modality != "text":
            raise ConfigError("features.frozen.pooling: 'tokens' is for text models")
        if self.max_length < 2 or self.batch_size < 1:
            raise ConfigError("features.frozen: max_length must be >= 2 and batch_size >= 1")
        if self.layer is not None and (self.pooling != "tokens" or self.layer < 0):
            raise ConfigError("features.frozen.layer: a layer index >= 0, and only with pooling 'tokens'")


@dataclass(frozen=True)
class FeaturesConfig:
    """What the feature store holds for an experiment.

    Attributes:
        cache_dir: store root; None means ``~/.cache/mmnewsrec/features``.
        tokens: tokenised text that ``featurize`` builds besides what the model reads, and the
            tokenizer of the ``word`` encoder; None (default): only what the model reads.
        pixels: resized images, or None.
        frozen: frozen-backbone vectors, any number.
    """

    cache_dir: str | None = None
    tokens: TokensConfig | None = None
    pixels: PixelsConfig | None = None
    frozen: tuple[FrozenEncoderConfig, ...] = ()

    def __post_init__(self) -> None:
        names = [f.name for f in self.frozen]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"features.frozen: duplicate names {duplicates}")
