"""Dataset statistics for ``mmnewsrec inspect``."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

from mmnewsrec.data.images import find_unreadable_images, image_coverage
from mmnewsrec.data.mind import MindSplit


def split_stats(split: MindSplit, check_images: bool = True, progress: bool = False) -> dict[str, object]:
    """Counts describing one split (one JSON object of ``mmnewsrec inspect``).

    Keys: split, news, impressions, users, clicks (null for an unlabelled split), candidates,
    click_rate, mean_candidates, max_candidates, min_candidates, empty_histories, mean_history,
    unknown_news_refs, dropped_impressions, image_coverage, unreadable_images, labelled.
    """
    behaviors = split.behaviors
    sizes = np.diff(split.candidate_offsets())
    history_sizes = np.diff(split.history_offsets())
    clicks = int(split.flat_labels().sum()) if split.labelled else None
    unreadable = find_unreadable_images(split.news, progress) if check_images else None
    return {
        "split": split.name,
        "news": split.news.num_rows,
        "impressions": split.num_impressions,
        "users": pc.count_distinct(behaviors["user_id"]).as_py(),
        "clicks": clicks,
        "candidates": int(sizes.sum()),
        "click_rate": (clicks / int(sizes.sum())) if clicks is not None and sizes.sum() else None,
        "min_candidates": int(sizes.min()) if sizes.size else 0,
        "mean_candidates": float(sizes.mean()) if sizes.size else 0.0,
        "max_candidates": int(sizes.max()) if sizes.size else 0,
        "empty_histories": int((history_sizes == 0).sum()),
        "mean_history": float(history_sizes.mean()) if history_sizes.size else 0.0,
        "unknown_news_refs": split.unknown_news_refs,
        "dropped_impressions": split.dropped_impressions,
        "image_coverage": image_coverage(split.news),
        "unreadable_images": len(unreadable) if unreadable is not None else None,
        "labelled": split.labelled,
    }
