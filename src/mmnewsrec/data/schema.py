"""Column layout of the MIND files (https://msnews.github.io) and of the tables this package builds."""

from __future__ import annotations

import pyarrow as pa

NEWS_FILE = "news.tsv"
BEHAVIORS_FILE = "behaviors.tsv"
IMAGES_DIR = "images"
SPLITS = ("train", "dev", "test")

#: news.tsv columns, in file order. abstract and the two entity columns may be empty.
NEWS_COLUMNS = (
    "news_id",
    "category",
    "subcategory",
    "title",
    "abstract",
    "url",
    "title_entities",
    "abstract_entities",
)

#: behaviors.tsv columns, in file order. history may be empty; impressions is "N1-1 N2-0" (train/dev)
#: or "N1 N2" (test, no labels).
BEHAVIOR_COLUMNS = ("impression_id", "user_id", "time", "history", "impressions")

#: timestamp format of behaviors.tsv, e.g. "11/11/2019 9:05:58 AM".
TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"

NEWS_SCHEMA = pa.schema([(name, pa.string()) for name in NEWS_COLUMNS])

#: The parsed behaviours table: one row per impression, candidates and labels aligned.
BEHAVIORS_SCHEMA = pa.schema(
    [
        ("impression_id", pa.int64()),
        ("user_id", pa.string()),
        ("time", pa.timestamp("s")),
        ("history", pa.list_(pa.string())),
        ("candidates", pa.list_(pa.string())),
        ("labels", pa.list_(pa.int8())),  # null rows in an unlabelled (test) split
    ]
)
