"""News images: lookup in an IM-MIND style folder, validation, and the missing-image policy.

About 56% of MIND-small news have no image, so a missing image is an ordinary case, not an error.
Two policies exist (``ImageConfig.missing``):

* ``render_title``: draw the news title on a blank canvas, as the study this project grew from did;
* ``mask``: produce no pixels and a False ``has_image`` flag, which encoders use to mask the image
  branch instead of feeding them blank pixels as if they were real.

Either way ``has_image`` tells the truth about the data, so a model can still tell the two apart.
"""

from __future__ import annotations

import logging
import os
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError
from tqdm.auto import tqdm

from mmnewsrec.config import MissingImagePolicy

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def find_images(news_ids: pa.Array | pa.ChunkedArray, image_dir: str | Path) -> pa.Array:
    """Path of each news id's image (``{news_id}.jpg``, ``.jpeg`` or ``.png``), null where absent.

    The folder is listed once, so lookups cost nothing per news.
    """
    by_stem: dict[str, str] = {}
    image_dir = Path(image_dir)
    with os.scandir(image_dir) as entries:
        for entry in entries:
            stem, suffix = os.path.splitext(entry.name)
            if suffix.lower() in IMAGE_SUFFIXES and entry.is_file():
                # Deterministic preference when several formats exist: the order of IMAGE_SUFFIXES.
                previous = by_stem.get(stem)
                if previous is None or IMAGE_SUFFIXES.index(suffix.lower()) < IMAGE_SUFFIXES.index(
                    os.path.splitext(previous)[1].lower()
                ):
                    by_stem[stem] = entry.path
    return pa.array([by_stem.get(news_id) for news_id in news_ids.to_pylist()], pa.string())


def attach_images(news: pa.Table, image_dir: str | Path) -> pa.Table:
    """Adds (or replaces) the ``image_path`` column of a news table."""
    paths = find_images(news["news_id"], image_dir)
    if "image_path" in news.column_names:
        news = news.drop_columns(["image_path"])
    return news.append_column("image_path", paths)


def image_coverage(news: pa.Table) -> float:
    """Fraction of news rows with an image file (0.0 when no image folder was attached)."""
    if "image_path" not in news.column_names or news.num_rows == 0:
        return 0.0
    return 1.0 - news["image_path"].null_count / news.num_rows


def find_unreadable_images(news: pa.Table, progress: bool = False) -> list[str]:
    """News ids whose image file exists but cannot be decoded."""
    if "image_path" not in news.column_names:
        return []
    present = news.filter(pc.is_valid(news["image_path"]))
    unreadable = []
    rows = zip(present["news_id"].to_pylist(), present["image_path"].to_pylist(), strict=True)
    for news_id, path in tqdm(rows, total=present.num_rows, desc="check images", disable=not progress):
        if _open_rgb(path) is None:
            unreadable.append(news_id)
    if unreadable:
        logger.warning("%d unreadable images, e.g. news %s", len(unreadable), unreadable[:5])
    return unreadable


def _open_rgb(path: str | Path) -> Image.Image | None:
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None


@dataclass(frozen=True)
class NewsImage:
    """A news image after the missing-image policy.

    Attributes:
        image: RGB image of ``size`` x ``size`` pixels, or None under the ``mask`` policy.
        has_image: True only when a real image file was read.
    """

    image: Image.Image | None
    has_image: bool


def load_news_image(
    path: str | Path | None,
    title: str,
    size: int,
    missing: MissingImagePolicy = "mask",
    resample: Image.Resampling = Image.Resampling.BICUBIC,
) -> NewsImage:
    """Loads a news image resized to ``size`` x ``size`` pixels (what the image processor that
    reads it wants), applying the ``missing`` policy if it is absent or unreadable."""
    if path is not None:
        image = _open_rgb(path)
        if image is not None:
            return NewsImage(image.resize((size, size), resample), True)
        logger.warning("unreadable image %s: treated as missing", path)
    if missing == "render_title":
        return NewsImage(render_title(title, size), False)
    return NewsImage(None, False)


def render_title(title: str, size: int) -> Image.Image:
    """Draws ``title`` in black on a white square canvas of ``size`` pixels, word-wrapped."""
    canvas = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(canvas)
    font_size = max(8, size // 14)
    font = _font(font_size)
    chars_per_line = max(4, int(size / (font_size * 0.55)))
    lines = textwrap.wrap(title, width=chars_per_line)[: max(1, size // (font_size + 4))]
    y = font_size // 2
    for line in lines:
        draw.text((font_size // 2, y), line, fill="black", font=font)
        y += font_size + 4
    return canvas


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)
