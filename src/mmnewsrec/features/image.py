"""News images as a compact uint8 pixel array, normalised on the fly for a model.

Pixels are stored resized (to the model's image processor size, with its resampling filter) but
not normalised: uint8 is 4x smaller than float32, and rescale + normalise is a per-channel affine
map that :class:`PixelNormalizer` applies to each batch. Images shared by models with the same
input size share one cache.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from PIL import Image

from mmnewsrec.config import MissingImagePolicy
from mmnewsrec.data.images import load_news_image
from mmnewsrec.features.backbones import load_image_processor
from mmnewsrec.features.store import ArraySpec, CacheSpec, FeatureStoreError, digest, row_batches


@dataclass(frozen=True)
class ProcessorGeometry:
    """What an image processor does to pixels: resize to ``size``, then (x * rescale - mean) / std."""

    size: int
    resample: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    rescale: float = 1 / 255

    @classmethod
    def from_processor(cls, processor: Any) -> ProcessorGeometry:
        size = processor.size
        get = size.get if isinstance(size, dict) else lambda key: getattr(size, key, None)
        height, width = get("height"), get("width")
        if height is None:
            height = width = get("shortest_edge")
        if height is None or height != width:
            raise FeatureStoreError(f"image processor size {size!r}: only square inputs are supported")
        resample = int(getattr(processor, "resample", Image.Resampling.BICUBIC))
        rescale = float(getattr(processor, "rescale_factor", 1 / 255) or 1 / 255)
        return cls(int(height), resample, tuple(processor.image_mean), tuple(processor.image_std), rescale)

    @classmethod
    def load(cls, name: str, revision: str | None = None) -> ProcessorGeometry:
        return cls.from_processor(load_image_processor(name, revision))


class PixelNormalizer(torch.nn.Module):
    """uint8 pixels (B, 3, S, S) -> the float input the model's image processor would produce."""

    def __init__(self, geometry: ProcessorGeometry):
        super().__init__()
        mean = torch.tensor(geometry.mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(geometry.std, dtype=torch.float32).view(1, 3, 1, 1)
        self.register_buffer("scale", geometry.rescale / std, persistent=False)
        self.register_buffer("shift", -mean / std, persistent=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels.float() * self.scale + self.shift  # (B, 3, S, S)


@dataclass
class PixelBuilder:
    """Builds ``pixels`` (uint8, (3, S, S)) and ``has_image`` (bool) for every news.

    Missing or unreadable images follow ``missing``: ``render_title`` stores the title drawn on a
    white canvas, ``mask`` stores zeros; ``has_image`` is False for both, so encoders can mask them.
    """

    geometry: ProcessorGeometry
    missing: MissingImagePolicy = "mask"
    batch_size: int = 64
    workers: int = min(8, os.cpu_count() or 1)

    def spec(self) -> CacheSpec:
        g = self.geometry
        return CacheSpec("pixels", {"size": g.size, "resample": g.resample, "missing": self.missing})

    def row_hashes(self, news: pa.Table) -> list[str]:
        paths = news["image_path"].to_pylist() if "image_path" in news.column_names else [None] * news.num_rows
        titles = news["title"].to_pylist()
        hashes = []
        for path, title in zip(paths, titles, strict=True):
            if path is not None:
                try:
                    stat = os.stat(path)
                    hashes.append(digest("file", Path(path).name, str(stat.st_size), str(stat.st_mtime_ns)))
                    continue
                except OSError:
                    pass
            hashes.append(digest("render", title) if self.missing == "render_title" else digest("none"))
        return hashes

    def arrays(self) -> dict[str, ArraySpec]:
        s = self.geometry.size
        return {"pixels": ArraySpec((3, s, s), "uint8"), "has_image": ArraySpec((), "bool")}

    def batches(self, news: pa.Table) -> list[np.ndarray]:
        return row_batches(news.num_rows, self.batch_size)

    def compute(self, news: pa.Table, rows: np.ndarray) -> dict[str, np.ndarray]:
        subset = news.take(pa.array(rows))
        paths = subset["image_path"].to_pylist() if "image_path" in subset.column_names else [None] * len(rows)
        titles = subset["title"].to_pylist()
        resample = Image.Resampling(self.geometry.resample)
        s = self.geometry.size
        pixels = np.zeros((len(rows), 3, s, s), dtype=np.uint8)  # (B, 3, S, S)
        has_image = np.zeros(len(rows), dtype=bool)

        def load(k: int) -> None:
            loaded = load_news_image(paths[k], titles[k], s, self.missing, resample)
            has_image[k] = loaded.has_image
            if loaded.image is not None:
                pixels[k] = np.asarray(loaded.image, dtype=np.uint8).transpose(2, 0, 1)  # (S, S, 3) -> (3, S, S)

        # PIL releases the GIL while decoding and resizing: threads overlap the file work.
        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(load, range(len(rows))))
        return {"pixels": pixels, "has_image": has_image}
