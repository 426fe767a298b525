"""Where the MIND-format data is, how strictly it is read, and how images are found."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal

from mmnewsrec.config.checks import check_choices

MissingImagePolicy = Literal["render_title", "mask"]


UnknownNewsPolicy = Literal["error", "drop", "keep"]


ConflictingNewsPolicy = Literal["error", "first"]


@dataclass(frozen=True)
class ImageConfig:
    """How news images are found and what stands in for a missing one.

    Attributes:
        missing: ``render_title`` draws the news title on a blank canvas (the policy of the study this
            project grew from); ``mask`` yields no pixels and a False ``has_image`` flag that encoders
            mask out.
        directory: image folder; None means ``<dataset root>/images``.
    """

    _alias: ClassVar[str] = "images"  # how its messages name it; loaded from a file, its place

    missing: MissingImagePolicy = "mask"
    directory: str | None = None

    def __post_init__(self) -> None:
        check_choices(self, "images")

    @classmethod
    def unknown_key(cls, key: str, values: Mapping[str, Any], prefix: str) -> str:
        if key == "size":  # read by nothing: the model's image processor sizes the stored pixels
            return (
                f"{prefix}size: no longer a key (it was read by nothing): images are resized to what the image "
                "processor of the model that reads them wants (features.pixels.processor, or the vision backbone); "
                "remove it"
            )
        return f"{prefix}{key}: unknown key; valid keys under {prefix!r} are {sorted(f.name for f in fields(cls))}"


@dataclass(frozen=True)
class DataConfig:
    """Where the MIND-format data is and how strictly it is read.

    Attributes:
        root: dataset root holding ``train/``, ``dev/`` (and optionally ``test/``) split folders.
        on_unknown_news: what to do with behaviour references to news absent from news.tsv:
            ``error`` (raise, naming file and line), ``drop`` (remove them, logging the count) or
            ``keep`` (leave them, counted; only for inspection).
        on_conflicting_news: what to do when one news id has a different title, abstract, category
            or subcategory in two splits' news.tsv: ``error`` (raise, naming both files and lines)
            or ``first`` (keep the first split's version, train before dev before test; logged).
        images: image lookup and missing-image policy.
        translations: a folder of translated news (xMIND: one language's folder, holding
            ``xMINDsmall_train/news.tsv``, ``xMINDsmall_dev/news.tsv``...; or ``train/news.tsv``...):
            each split's titles and abstracts are read from it by news id, the rest (categories,
            entities, images, behaviours) from ``root``; None: the dataset's own text.
    """

    root: str = "data/synthetic"
    on_unknown_news: UnknownNewsPolicy = "error"
    on_conflicting_news: ConflictingNewsPolicy = "error"
    images: ImageConfig = field(default_factory=ImageConfig)
    translations: str | None = None

    def __post_init__(self) -> None:
        check_choices(self, "data")
