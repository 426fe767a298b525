from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest
import torch
from PIL import Image

from mmnewsrec.data.mind import load_mind
from mmnewsrec.features.image import PixelBuilder, PixelNormalizer, ProcessorGeometry
from mmnewsrec.features.store import FeatureStore


def test_pixels_with_both_missing_policies(tiny_mind: Path, tmp_path: Path, tiny_vit: Path) -> None:
    news = load_mind(tiny_mind, splits=("dev",)).news.slice(0, 40)
    geometry = ProcessorGeometry.load(str(tiny_vit))
    assert geometry.size == 32
    store = FeatureStore(tmp_path)
    masked = store.features(PixelBuilder(geometry, "mask"), news)
    pixels, has_image = masked["pixels"][:], masked["has_image"][:]
    assert pixels.shape == (40, 3, 32, 32) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(has_image, pc.is_valid(news["image_path"]).to_numpy(zero_copy_only=False))
    assert 5 < has_image.sum() < 35
    assert (pixels[~has_image] == 0).all() and (pixels[has_image].reshape(has_image.sum(), -1).max(1) > 0).all()

    rendered = store.features(PixelBuilder(geometry, "render_title"), news)
    assert rendered.path != masked.path
    np.testing.assert_array_equal(rendered["has_image"][:], has_image)  # the flag tells the truth
    canvases = rendered["pixels"][:][~has_image]
    assert (canvases.reshape(len(canvases), -1).max(1) == 255).all()  # white canvas with dark text
    np.testing.assert_array_equal(rendered["pixels"][:][has_image], pixels[has_image])


def test_normaliser_matches_the_hf_processor(tiny_vit: Path, tmp_path: Path) -> None:
    from transformers import AutoImageProcessor

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, size=(50, 70, 3), dtype=np.uint8))
    processor = AutoImageProcessor.from_pretrained(tiny_vit)
    expected = processor(images=image, return_tensors="pt")["pixel_values"]  # (1, 3, 32, 32)
    geometry = ProcessorGeometry.from_processor(processor)
    resized = np.asarray(image.resize((32, 32), Image.Resampling(geometry.resample))).transpose(2, 0, 1)
    got = PixelNormalizer(geometry)(torch.from_numpy(resized[None].copy()))
    torch.testing.assert_close(got, expected, atol=2 / 255 / 0.5, rtol=0)  # within a rounding step


def test_image_file_change_invalidates_only_that_row(tiny_vit: Path, mind_sample: Path, tmp_path: Path) -> None:
    folder = mind_sample / "images"
    folder.mkdir()
    Image.new("RGB", (10, 10), (255, 0, 0)).save(folder / "N1.png")
    Image.new("RGB", (10, 10), (0, 0, 255)).save(folder / "N2.png")
    geometry = ProcessorGeometry.load(str(tiny_vit))
    store = FeatureStore(tmp_path)
    news = load_mind(mind_sample).news
    first = store.features(PixelBuilder(geometry), news)
    assert first["has_image"][:].tolist() == [True, True, False, False, False, False]
    Image.new("RGB", (10, 10), (0, 255, 0)).save(folder / "N1.png")
    import os

    os.utime(folder / "N1.png", ns=(1, 1))  # a different mtime, whatever the clock resolution
    news = load_mind(mind_sample).news
    second = store.features(PixelBuilder(geometry), news)
    assert second.status == "extended"
    assert second["pixels"][0][:, 5, 5].tolist() == [0, 255, 0]
    assert second["pixels"][1][:, 5, 5].tolist() == [0, 0, 255]


def test_non_square_processor_is_refused() -> None:
    class Processor:
        size = {"height": 32, "width": 48}
        image_mean = image_std = (0.5, 0.5, 0.5)

    with pytest.raises(Exception, match="only square inputs"):
        ProcessorGeometry.from_processor(Processor())
