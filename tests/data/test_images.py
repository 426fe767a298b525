from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from mmnewsrec.data.images import (
    attach_images,
    find_unreadable_images,
    image_coverage,
    load_news_image,
    render_title,
)
from mmnewsrec.data.mind import load_mind


@pytest.fixture()
def image_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("RGB", (40, 20), (200, 10, 10)).save(folder / "N1.jpg")
    Image.new("RGB", (40, 20), (10, 200, 10)).save(folder / "N1.png")  # .jpg wins
    Image.new("RGB", (10, 10), (10, 10, 200)).save(folder / "N2.png")
    (folder / "N3.jpg").write_bytes(b"not an image")
    (folder / "notes.txt").write_text("ignored")
    return folder


def test_attach_images_and_coverage(image_dir: Path) -> None:
    news = pa.table({"news_id": ["N1", "N2", "N3", "N4"], "title": ["a", "b", "c", "d"]})
    attached = attach_images(news, image_dir)
    paths = attached["image_path"].to_pylist()
    assert paths[0].endswith("N1.jpg") and paths[1].endswith("N2.png") and paths[3] is None
    assert image_coverage(attached) == 0.75
    assert image_coverage(news) == 0.0
    assert find_unreadable_images(attached) == ["N3"]


def test_missing_image_policies(image_dir: Path) -> None:
    real = load_news_image(image_dir / "N1.jpg", "t", 16)
    assert real.has_image and real.image.size == (16, 16)
    assert np.asarray(real.image)[8, 8, 0] > 150  # the red jpg, not the green png

    masked = load_news_image(None, "Some title", 16, "mask")
    assert masked.image is None and not masked.has_image

    rendered = load_news_image(None, "Storm hits the east coast", 64, "render_title")
    assert not rendered.has_image and rendered.image.size == (64, 64)
    pixels = np.asarray(rendered.image)
    assert pixels.min() < 100 and np.median(pixels) == 255  # dark text on a white canvas

    unreadable = load_news_image(image_dir / "N3.jpg", "Broken", 32, "render_title")
    assert not unreadable.has_image and unreadable.image is not None


def test_rendered_titles_differ_by_title() -> None:
    a = np.asarray(render_title("Golf season ends", 48))
    b = np.asarray(render_title("Snow storm hits", 48))
    assert a.shape == (48, 48, 3) and (a != b).any()


def test_dataset_images_come_from_root_folder(mind_sample: Path) -> None:
    folder = mind_sample / "images"
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "N1.jpg")
    dataset = load_mind(mind_sample)
    assert dataset.image_dir == folder
    assert dataset["train"].news["image_path"][0].as_py().endswith("N1.jpg")
    assert image_coverage(dataset["train"].news) == 0.25
