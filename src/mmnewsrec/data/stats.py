"""Dataset statistics for ``mmnewsrec inspect``."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

from mmnewsrec.data.images import find_unreadable_images, image_coverage
from mmnewsrec.data.mind import ENTITY_EMBEDDING_FILE, MindSplit, parse_entities, read_entity_vectors
from mmnewsrec.data.schema import NEWS_FILE


def split_stats(split: MindSplit, check_images: bool = True, progress: bool = False) -> dict[str, object]:
    """Counts describing one split (one JSON object of ``mmnewsrec inspect``).

    Keys: split, news, impressions, users, clicks (null for an unlabelled split), candidates,
    click_rate, mean_candidates, max_candidates, min_candidates, empty_histories, mean_history,
    unknown_news_refs, dropped_impressions, image_coverage, unreadable_images, entity_coverage
    (share of news naming at least one knowledge entity), entities (distinct ids named),
    entity_vectors (entities named that ``entity_embedding.vec`` holds a vector for; null without
    the file, which is read whole and checked), labelled.
    """
    behaviors = split.behaviors
    sizes = np.diff(split.candidate_offsets())
    history_sizes = np.diff(split.history_offsets())
    clicks = int(split.flat_labels().sum()) if split.labelled else None
    unreadable = find_unreadable_images(split.news, progress) if check_images else None
    entities = parse_entities(split.news, split.directory / NEWS_FILE)
    named = entities.distinct()
    vector_file = split.directory / ENTITY_EMBEDDING_FILE
    with_vectors = int((read_entity_vectors(vector_file).rows(named) >= 0).sum()) if vector_file.is_file() else None
    counts = np.diff(entities.ids.offsets.to_numpy())
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
        "entity_coverage": float((counts > 0).mean()) if counts.size else 0.0,
        "entities": len(named),
        "entity_vectors": with_vectors,
        "labelled": split.labelled,
    }
