"""A MIND-format dataset: its splits, vocabularies and news catalogue, loaded from a root folder."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mmnewsrec.config import DataConfig, UnknownNewsPolicy
from mmnewsrec.data.ebnerd import ARTICLES_FILE, is_ebnerd_root, read_articles, read_split_tables, split_folder
from mmnewsrec.data.images import attach_images
from mmnewsrec.data.mind.behaviors import read_behaviors
from mmnewsrec.data.mind.news import (
    build_catalogue,
    catalogue_rows,
    check_news_agree,
    read_news,
    translate_news,
    translation_file,
)
from mmnewsrec.data.schema import (
    BEHAVIORS_FILE,
    BEHAVIORS_SCHEMA,
    IMAGES_DIR,
    NEWS_FILE,
    SPLITS,
)
from mmnewsrec.data.vocab import Vocab
from mmnewsrec.errors import DataFormatError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MindSplit:
    """One parsed MIND split.

    Attributes:
        name: ``train``, ``dev``, ``test`` or the folder name.
        directory: the split folder.
        news: news.tsv as a string table (:data:`NEWS_COLUMNS`, plus ``image_path`` when an image
            folder was attached: the file path, or null for news without an image).
        behaviors: one row per impression (:data:`BEHAVIORS_SCHEMA`).
        labelled: False for a test split whose impressions carry no labels.
        unknown_news_refs: behaviour references to news absent from this split's news.tsv.
    """

    name: str
    directory: Path
    news: pa.Table
    behaviors: pa.Table
    labelled: bool
    unknown_news_refs: int = 0
    dropped_impressions: int = 0

    @property
    def num_impressions(self) -> int:
        return self.behaviors.num_rows

    def candidate_offsets(self) -> np.ndarray:
        """(impressions + 1,) int64 offsets of each impression's candidates in the flat arrays."""
        return list_offsets(self.behaviors["candidates"])

    def flat_candidates(self) -> pa.Array:
        """(candidates,) news ids of all impressions, concatenated in impression order."""
        return pc.list_flatten(self.behaviors["candidates"].combine_chunks())

    def flat_labels(self) -> np.ndarray:
        """(candidates,) int8 labels aligned with :meth:`flat_candidates`.

        Raises:
            DataFormatError: for an unlabelled (test) split.
        """
        if not self.labelled:
            raise DataFormatError(self.directory / BEHAVIORS_FILE, None, "this split has no click labels")
        return pc.list_flatten(self.behaviors["labels"].combine_chunks()).to_numpy().astype(np.int8)

    def history_offsets(self) -> np.ndarray:
        return list_offsets(self.behaviors["history"])

    def flat_history(self) -> pa.Array:
        return pc.list_flatten(self.behaviors["history"].combine_chunks())


def entry_owner(offsets: np.ndarray) -> np.ndarray:
    """Shape: (M + 1,) offsets of a flat layout -> (N,) impression index of each flat entry."""
    return np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))


def list_offsets(column: pa.ChunkedArray) -> np.ndarray:
    """Shape: a list column of M rows -> (M + 1,) int64 offsets of its items in the flat layout."""
    lengths = pc.list_value_length(column.combine_chunks()).to_numpy(zero_copy_only=False)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def read_split(
    directory: str | Path,
    name: str | None = None,
    on_unknown_news: UnknownNewsPolicy = "error",
    image_dir: str | Path | None = None,
    translations: str | Path | None = None,
) -> MindSplit:
    """Reads one split folder (``news.tsv`` + ``behaviors.tsv``), attaching images if given, its
    titles and abstracts from ``translations`` (see ``DataConfig.translations``) if given."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataFormatError(directory, None, "split folder not found")
    news = _translated(read_news(directory / NEWS_FILE), translations, name or directory.name)
    result = read_behaviors(directory / BEHAVIORS_FILE, news["news_id"].combine_chunks(), on_unknown_news)
    if image_dir is not None:
        news = attach_images(news, image_dir)
    return MindSplit(
        name=name or directory.name,
        directory=directory,
        news=news,
        behaviors=result.table,
        labelled=result.labelled,
        unknown_news_refs=result.unknown_news_refs,
        dropped_impressions=result.dropped_impressions,
    )


def read_ebnerd_split(
    root: str | Path, name: str, on_unknown_news: UnknownNewsPolicy = "error", articles: pa.Table | None = None
) -> MindSplit:
    """One split of an EB-NeRD bundle (``dev`` is its ``validation/``), read onto MIND's tables
    (:mod:`mmnewsrec.data.ebnerd`); its news are the bundle's ``articles.parquet``."""
    root = Path(root)
    articles = articles if articles is not None else read_articles(root / ARTICLES_FILE)
    directory = split_folder(root, name)
    table, labelled, unknown, dropped = read_split_tables(directory, articles["news_id"], on_unknown_news)
    return MindSplit(name, directory, articles, table, labelled, unknown, dropped)


def _translated(news: pa.Table, translations: str | Path | None, split: str) -> pa.Table:
    return news if translations is None else translate_news(news, translation_file(translations, split))


def read_split_news(
    directory: str | Path, image_dir: str | Path | None = None, translations: str | Path | None = None
) -> pa.Table:
    """A split folder's ``news.tsv`` alone (with images attached if given, translated if asked):
    the catalogue that block-by-block scoring needs, without reading ``behaviors.tsv`` into memory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataFormatError(directory, None, "split folder not found")
    news = _translated(read_news(directory / NEWS_FILE), translations, directory.name)
    return attach_images(news, image_dir) if image_dir is not None else news


@dataclass(frozen=True)
class Vocabs:
    """Id maps fitted on the training split only (dev/test values unseen in train map to UNK)."""

    users: Vocab
    categories: Vocab
    subcategories: Vocab


@dataclass(frozen=True)
class MindDataset:
    """A MIND-format dataset root: its splits, the news catalogue and train-fitted vocabularies.

    Attributes:
        news: every news of every split once, in a stable row order (train news.tsv order, then news
            first seen in dev, then in test); later layers address news by row in this table.
        vocabs: users, categories, subcategories fitted on ``train``.
    """

    root: Path
    splits: dict[str, MindSplit]
    news: pa.Table
    vocabs: Vocabs | None
    image_dir: Path | None = None

    def __getitem__(self, split: str) -> MindSplit:
        try:
            return self.splits[split]
        except KeyError:
            raise DataFormatError(
                self.root / split, None, f"split {split!r} not loaded; have {sorted(self.splits)}"
            ) from None

    def news_rows(self, news_ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Catalogue row of each news id (int64); every id read through this dataset is present."""
        return catalogue_rows(self.news, news_ids, self.root)


def dataset_image_dir(root: Path, config: DataConfig) -> Path | None:
    """The image folder of a dataset root: ``data.images.directory``, else the one found beside it."""
    return Path(config.images.directory) if config.images.directory else find_image_dir(root)


def find_image_dir(path: Path) -> Path | None:
    """The IM-MIND style ``images/`` folder inside ``path`` or its parent, if any."""
    for candidate in (path / IMAGES_DIR, path.parent / IMAGES_DIR):
        if candidate.is_dir():
            return candidate
    return None


def dataset_split_dir(root: str | Path, name: str) -> Path:
    """The folder of split ``name`` under a dataset root (EB-NeRD's ``dev`` is ``validation/``)."""
    return split_folder(root, name) if is_ebnerd_root(root) else Path(root) / name


def is_split_dir(path: str | Path) -> bool:
    path = Path(path)
    return (path / NEWS_FILE).is_file() or (path / BEHAVIORS_FILE).is_file()


def load_mind(
    root: str | Path,
    config: DataConfig | None = None,
    splits: tuple[str, ...] | None = None,
) -> MindDataset:
    """Loads a MIND-format dataset root (``train/``, ``dev/``, optionally ``test/``).

    Args:
        root: the dataset root; splits that are absent are skipped unless named in ``splits``.
        config: reading policy (unknown news references, image folder); defaults to DataConfig().
        splits: which splits to read; None reads whichever of train/dev/test exist.

    Raises:
        DataFormatError: a named split is missing, or any file is malformed.
    """
    root = Path(root)
    config = config or DataConfig(root=str(root))
    if not root.is_dir():
        raise DataFormatError(root, None, "dataset folder not found")
    names = splits if splits is not None else tuple(s for s in SPLITS if dataset_split_dir(root, s).is_dir())
    if not names:
        raise DataFormatError(root, None, f"no split folders found (expected some of {list(SPLITS)})")
    if is_ebnerd_root(root):  # one article table for every split
        articles = read_articles(root / ARTICLES_FILE)
        loaded = {name: read_ebnerd_split(root, name, config.on_unknown_news, articles) for name in names}
        image_dir, news = None, articles
    else:
        image_dir = dataset_image_dir(root, config)
        loaded = {
            name: read_split(root / name, name, config.on_unknown_news, image_dir, config.translations)
            for name in names
        }
        check_news_agree(list(loaded.values()), config.on_conflicting_news)
        news = build_catalogue([split.news for split in loaded.values()])
    vocabs = None
    if "train" in loaded:
        train = loaded["train"]
        vocabs = Vocabs(
            users=Vocab.fit(train.behaviors["user_id"]),
            categories=Vocab.fit(train.news["category"]),
            subcategories=Vocab.fit(train.news["subcategory"]),
        )
    return MindDataset(root=root, splits=loaded, news=news, vocabs=vocabs, image_dir=image_dir)


def load_news_catalogue(root: str | Path, config: DataConfig | None = None) -> pa.Table:
    """Every split's ``news.tsv`` of a dataset root as one catalogue (first occurrence of each id,
    images attached), checked like :func:`load_mind` checks it, without reading any
    ``behaviors.tsv``: what featurising needs, at the memory of the news alone."""
    root = Path(root)
    config = config or DataConfig(root=str(root))
    if not root.is_dir():
        raise DataFormatError(root, None, "dataset folder not found")
    if is_ebnerd_root(root):
        return read_articles(root / ARTICLES_FILE)
    names = tuple(s for s in SPLITS if (root / s).is_dir())
    if not names:
        raise DataFormatError(root, None, f"no split folders found (expected some of {list(SPLITS)})")
    image_dir = dataset_image_dir(root, config)
    splits = [
        MindSplit(
            name,
            root / name,
            read_split_news(root / name, image_dir, config.translations),
            BEHAVIORS_SCHEMA.empty_table(),
            False,
        )
        for name in names
    ]
    check_news_agree(splits, config.on_conflicting_news)
    return build_catalogue([split.news for split in splits])


@dataclass(frozen=True)
class DatasetLocation:
    """Where a dataset is and how it is read: its root, its image folder (``data.images.directory``,
    else the ``images/`` found beside it) and the unknown- and conflicting-news policies, resolved
    once from the config and the command line. Every job reads its dataset through one, so a run's
    policies hold wherever its data is read (train, evaluate, replay, report, featurize)."""

    root: Path
    config: DataConfig

    @classmethod
    def resolve(cls, config: DataConfig, root: str | Path | None = None) -> DatasetLocation:
        """``root`` (``--data``) when given, else ``config.root``."""
        return cls(Path(root or config.root), config)

    @property
    def is_ebnerd(self) -> bool:
        """An EB-NeRD bundle (``articles.parquet``, Parquet splits) rather than MIND's TSV files."""
        return is_ebnerd_root(self.root)

    @property
    def image_dir(self) -> Path | None:
        return None if self.is_ebnerd else dataset_image_dir(self.root, self.config)

    def split_dir(self, name: str) -> Path:
        return dataset_split_dir(self.root, name)

    def read_split(self, name: str) -> MindSplit:
        """One split folder, read with the config's unknown-news policy and image folder."""
        if self.is_ebnerd:
            return read_ebnerd_split(self.root, name, self.config.on_unknown_news)
        return read_split(
            self.split_dir(name), name, self.config.on_unknown_news, self.image_dir, self.config.translations
        )

    def read_split_news(self, name: str) -> pa.Table:
        if self.is_ebnerd:
            return read_articles(self.root / ARTICLES_FILE)
        return read_split_news(self.split_dir(name), self.image_dir, self.config.translations)

    def load(self, splits: tuple[str, ...] | None = None) -> MindDataset:
        return load_mind(self.root, self.config, splits)

    def news_catalogue(self) -> pa.Table:
        return load_news_catalogue(self.root, self.config)
