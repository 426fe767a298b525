"""`mmnewsrec inspect`: validate a dataset root or one split folder and describe it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from mmnewsrec.config import DataConfig, ImageConfig
from mmnewsrec.data.mind import DatasetLocation, check_news_agree, find_image_dir, is_split_dir, read_split
from mmnewsrec.data.schema import SPLITS
from mmnewsrec.data.stats import split_stats


def run_inspect(
    path: str | Path,
    on_unknown_news: str = "keep",
    images: str | Path | None = None,
    check_images: bool = True,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Statistics of each split of the dataset root ``path`` (or of the split folder ``path``),
    every line checked; raises on the first malformed one, naming file and line.

    A dataset root is read one split at a time (MIND-large's test split alone is 2.37M
    impressions); the news of each are kept to check that the splits agree on shared news.
    """
    path = Path(path)
    if is_split_dir(path):
        image_dir = Path(images) if images else find_image_dir(path)
        split = read_split(path, on_unknown_news=on_unknown_news, image_dir=image_dir)
        return [split_stats(split, check_images=check_images, progress=progress)]
    directory = None if images is None else str(images)
    config = DataConfig(root=str(path), on_unknown_news=on_unknown_news, images=ImageConfig(directory=directory))
    location = DatasetLocation.resolve(config)
    names = [name for name in SPLITS if location.split_dir(name).is_dir()]
    if not names:
        location.load()  # names what is missing, as train and evaluate would
    seen, stats = [], []
    for name in names:
        split = location.read_split(name)
        stats.append(split_stats(split, check_images=check_images, progress=progress))
        seen.append(replace(split, behaviors=split.behaviors.slice(0, 0)))
        del split
        pa.default_memory_pool().release_unused()  # hand the split's buffers back before the next
        check_news_agree(seen, config.on_conflicting_news)
    return stats
