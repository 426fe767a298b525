"""Frozen-backbone news vectors, computed once and cached (experiments 1 and 2 of the study).

A :class:`FrozenBuilder` runs a pretrained model over every news in inference mode and stores one
pooled vector per news in float16:

* ``text``: any Hugging Face text encoder (BERT, MiniLM, ...) over the tokenised title (or
  abstract, or title + abstract), pooled by ``cls``, masked ``mean`` or the model's ``pooler``,
  or every token's state (``tokens``), optionally taken below the top layers (``layer``) for a
  text encoder that fine-tunes only those top layers;
* ``image``: any Hugging Face vision encoder (ViT, ...) over the stored pixels, pooled likewise;
* ``blip``: a BLIP image-text retrieval model: its text encoder cross-attends the image patches
  and the multimodal [CLS] vector is stored (BLIP's image-grounded text features). News without
  an image are encoded as text alone under the ``mask`` policy, or against their rendered-title
  canvas under ``render_title``.

Text batches are sorted by length and cut to their longest row, so short titles do not pay for the
padding of long ones. Inputs come from the token and pixel caches (read through memory maps), so
tokenising and image decoding are not repeated per model.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from mmnewsrec.config import FrozenEncoderConfig
from mmnewsrec.features.backbones import (
    from_pretrained,
    keep_bottom_layers,
    load_config,
    model_fingerprint,
    resolve_device,
)
from mmnewsrec.features.encoding import blip_text_output, masked_mean, pool, trim_to_longest
from mmnewsrec.features.image import PixelBuilder, PixelNormalizer
from mmnewsrec.features.store import (
    ArraySpec,
    CacheSpec,
    FeatureSet,
    FeatureStore,
    FeatureStoreError,
    digest,
    row_batches,
)
from mmnewsrec.features.text import TokenBuilder

logger = logging.getLogger(__name__)

#: Frozen encoders already loaded in this process, by (model, revision, modality, layer, device):
#: a live service encodes fresh news batch after batch, and loading MiniLM again each time cost
#: more than encoding 100 titles. Frozen weights never change, so sharing them is safe.
_LOADED: dict[tuple, Any] = {}
_KEEP_LOADED = 2

__all__ = ["FrozenBuilder", "masked_mean", "pool"]  # pooling itself lives in features.encoding, shared with models


@dataclass
class FrozenBuilder:
    """Builds ``vectors`` (float16, (D,)) and, for image and blip, ``has_image`` (bool).

    Args:
        config: which backbone, modality, pooling and text.
        store: where the upstream token and pixel caches are read (built first if needed).
        tokens: the token builder for this backbone's tokenizer (text and blip).
        pixels: the pixel builder for this backbone's image size (image and blip).
    """

    config: FrozenEncoderConfig
    store: FeatureStore
    tokens: TokenBuilder | None = None
    pixels: PixelBuilder | None = None
    _model: Any = field(default=None, init=False, repr=False)
    _upstream: dict[str, FeatureSet] = field(default_factory=dict, init=False, repr=False)
    _hidden: int | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        modality = self.config.modality
        if modality in ("text", "blip") and self.tokens is None:
            raise ValueError(f"{modality} features need a token builder")
        if modality in ("image", "blip") and self.pixels is None:
            raise ValueError(f"{modality} features need a pixel builder")

    # ------------------------------------------------------------------------------ cache identity
    def spec(self) -> CacheSpec:
        c = self.config
        params: dict[str, Any] = {
            "model": model_fingerprint(c.model, c.revision),
            "modality": c.modality,
            "pooling": c.pooling,
            "dtype": "float16",
        }
        if c.layer is not None:  # hidden states below the top layers (absent: the last layer, as before)
            params["layer"] = c.layer
        if self.tokens is not None:
            params["tokens"] = self.tokens.spec().params
            params["text_field"] = c.text_field
        if self.pixels is not None:
            params["pixels"] = self.pixels.spec().params
        return CacheSpec("frozen", params)

    def row_hashes(self, news: pa.Table) -> list[str]:
        parts = []
        if self.tokens is not None:
            parts.append(self.tokens.row_hashes(news))
        if self.pixels is not None:
            parts.append(self.pixels.row_hashes(news))
        return [digest(*row) for row in zip(*parts, strict=True)]

    def hidden_size(self) -> int:
        if self._hidden is None:
            config = load_config(self.config.model, self.config.revision)
            text_config = config.text_config if self.config.modality == "blip" else config
            self._hidden = int(text_config.hidden_size)
        return self._hidden

    def arrays(self) -> dict[str, ArraySpec]:
        if self.config.pooling == "tokens":  # every token's state, for a trainable pooling later
            length = self.config.max_length
            return {"vectors": ArraySpec((length, self.hidden_size()), "float16"), "mask": ArraySpec((length,), "bool")}
        specs = {"vectors": ArraySpec((self.hidden_size(),), "float16")}
        if self.pixels is not None:
            specs["has_image"] = ArraySpec((), "bool")
        return specs

    # ------------------------------------------------------------------------------ computation
    def _prepare(self, news: pa.Table) -> None:
        self._upstream = {}
        if self.tokens is not None:
            self._upstream["tokens"] = self.store.features(self.tokens, news)
        if self.pixels is not None:
            self._upstream["pixels"] = self.store.features(self.pixels, news)

    def batches(self, news: pa.Table) -> list[np.ndarray]:
        self._prepare(news)
        size = self.config.batch_size
        if self.tokens is not None:
            mask = self._upstream["tokens"][f"{self.config.text_field}_mask"]
            lengths = np.asarray(mask).sum(axis=1)
            order = np.argsort(-lengths, kind="stable")  # longest first: memory peaks at the start
        else:
            order = np.arange(news.num_rows)
        return row_batches(order, size)

    def _load_model(self) -> None:
        from transformers import AutoModel, BlipForImageTextRetrieval

        c = self.config
        cls = BlipForImageTextRetrieval if c.modality == "blip" else AutoModel
        device = resolve_device(c.device)
        key = (c.model, c.revision, c.modality, c.layer, str(device))
        model = _LOADED.pop(key, None)
        if model is None:
            logger.info("loading %s (%s) on %s", c.model, c.modality, device)
            model = from_pretrained(cls, c.model, c.revision)
            if c.layer is not None:
                keep_bottom_layers(model, c.layer)  # the layers above are never run
            model = model.eval().requires_grad_(False).to(device)
        _LOADED[key] = model  # most recent last
        while len(_LOADED) > _KEEP_LOADED:
            _LOADED.pop(next(iter(_LOADED)))
        self._model = model
        self._device = device
        if self.pixels is not None:
            self._normalizer = PixelNormalizer(self.pixels.geometry).to(device)

    def _autocast(self) -> Any:
        if self._device.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        return nullcontext()

    @torch.inference_mode()
    def compute(self, news: pa.Table, rows: np.ndarray) -> dict[str, np.ndarray]:
        if self._model is None:
            self._load_model()
        sorted_rows = np.sort(rows)  # memory maps read fastest in file order
        inverse = np.searchsorted(sorted_rows, rows)
        out: dict[str, np.ndarray] = {}
        text = pixel_values = has_image = None
        if self.tokens is not None:
            field_name = self.config.text_field
            ids = self._upstream["tokens"][f"{field_name}_ids"][sorted_rows][inverse]  # (B, L)
            mask = self._upstream["tokens"][f"{field_name}_mask"][sorted_rows][inverse]  # (B, L)
            mask_t, ids_t = trim_to_longest(torch.from_numpy(mask), torch.from_numpy(ids.astype(np.int64)))
            text = (ids_t.to(self._device), mask_t.to(self._device))
        if self.pixels is not None:
            pixels = self._upstream["pixels"]["pixels"][sorted_rows][inverse]  # (B, 3, S, S) uint8
            has_image = self._upstream["pixels"]["has_image"][sorted_rows][inverse]  # (B,)
            pixel_values = self._normalizer(torch.from_numpy(pixels).to(self._device))
            out["has_image"] = has_image
        with self._autocast():
            vectors = self._encode(text, pixel_values, has_image)
        if self.config.pooling == "tokens":  # (B, width, D): pad back to max_length
            padded = torch.zeros((len(rows), self.config.max_length, vectors.shape[-1]), dtype=vectors.dtype)
            padded[:, : vectors.shape[1]] = vectors.cpu()
            vectors = padded
            out["mask"] = mask  # the full-width mask read from the token cache
        out["vectors"] = vectors.float().cpu().numpy().astype(np.float16)
        return out

    def _encode(
        self, text: tuple[torch.Tensor, torch.Tensor] | None, pixel_values: torch.Tensor | None, has_image: Any
    ) -> torch.Tensor:
        c = self.config
        if c.modality == "text":
            ids, mask = text
            return pool(self._model(input_ids=ids, attention_mask=mask.long()), c.pooling, mask)
        if c.modality == "image":
            vectors = pool(self._model(pixel_values=pixel_values), c.pooling, None)
            if self.pixels.missing == "mask":
                keep = torch.from_numpy(np.asarray(has_image)).to(vectors.device).unsqueeze(-1)
                vectors = vectors * keep  # no image under the mask policy: a zero vector, flagged
            return vectors
        return self._encode_blip(text, pixel_values, has_image)

    def _encode_blip(self, text: tuple[torch.Tensor, torch.Tensor], pixel_values: torch.Tensor, has_image: Any):
        ids, mask = text
        if self.config.pooling == "pooler":
            raise FeatureStoreError("blip features: use pooling 'cls' or 'mean'")
        # Under render_title every news has pixels to attend to (its drawn title); under mask only real images.
        use_image = torch.from_numpy(np.asarray(has_image, dtype=bool)).to(ids.device)
        if self.pixels.missing != "mask":
            use_image = torch.ones_like(use_image)
        output = blip_text_output(
            self._model.text_encoder, self._model.vision_model, ids, mask, pixel_values, use_image
        )
        return pool(output, self.config.pooling, mask)  # (B, D)
