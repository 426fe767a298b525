"""Tokenised news text: fixed-width token ids and attention masks per field, one row per news."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from mmnewsrec.data.mind import Vocabs
from mmnewsrec.features.backbones import load_tokenizer, model_fingerprint
from mmnewsrec.features.store import ArraySpec, CacheSpec, digest, row_batches

TEXT_FIELDS = ("title", "abstract", "title_abstract")


@dataclass
class TokenBuilder:
    """Builds ``{field}_ids`` (int32) and ``{field}_mask`` (bool, True = real token) arrays.

    Args:
        tokenizer: Hugging Face tokenizer name or local folder.
        lengths: max tokens per field (``title``, ``abstract``, ``title_abstract``); fields absent
            or 0 are not stored. ``title_abstract`` encodes the pair ``[CLS] title [SEP] abstract [SEP]``.
        revision: hub revision of the tokenizer.
        batch_size: news tokenised per call.
    """

    tokenizer: str
    lengths: dict[str, int]
    revision: str | None = None
    batch_size: int = 4096

    def __post_init__(self) -> None:
        unknown = set(self.lengths) - set(TEXT_FIELDS)
        if unknown:
            raise ValueError(f"unknown text fields {sorted(unknown)}; choose from {TEXT_FIELDS}")
        self.lengths = {f: int(n) for f, n in self.lengths.items() if n}
        if not self.lengths:
            raise ValueError("no text field has a positive length")
        self._tokenizer: Any = None

    def spec(self) -> CacheSpec:
        return CacheSpec(
            "tokens", {"tokenizer": model_fingerprint(self.tokenizer, self.revision), "lengths": self.lengths}
        )

    def _fields_read(self) -> tuple[str, ...]:
        read = set()
        for name in self.lengths:
            read.update(("title", "abstract") if name == "title_abstract" else (name,))
        return tuple(sorted(read))

    def row_hashes(self, news: pa.Table) -> list[str]:
        columns = [news[c].to_pylist() for c in self._fields_read()]
        return [digest(*values) for values in zip(*columns, strict=True)]

    def arrays(self) -> dict[str, ArraySpec]:
        specs = {}
        for name, length in self.lengths.items():
            specs[f"{name}_ids"] = ArraySpec((length,), "int32")
            specs[f"{name}_mask"] = ArraySpec((length,), "bool")
        return specs

    def batches(self, news: pa.Table) -> list[np.ndarray]:
        return row_batches(news.num_rows, self.batch_size)

    def compute(self, news: pa.Table, rows: np.ndarray) -> dict[str, np.ndarray]:
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.tokenizer, self.revision)
        subset = news.take(pa.array(rows))
        titles = subset["title"].to_pylist()
        abstracts = subset["abstract"].to_pylist()
        out = {}
        for name, length in self.lengths.items():
            if name == "title_abstract":
                encoded = self._tokenizer(
                    titles, abstracts, max_length=length, truncation="longest_first", padding="max_length"
                )
            else:
                texts = titles if name == "title" else abstracts
                encoded = self._tokenizer(texts, max_length=length, truncation=True, padding="max_length")
            out[f"{name}_ids"] = np.asarray(encoded["input_ids"], dtype=np.int32)  # (B, L)
            out[f"{name}_mask"] = np.asarray(encoded["attention_mask"], dtype=bool)  # (B, L)
        return out


def category_ids(vocabs: Vocabs, news: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Category and subcategory index of each news row (train-fitted vocabularies; unseen -> UNK).

    Shape:
        two (N,) int64 arrays for the N rows of ``news``.
    """
    return vocabs.categories.lookup(news["category"]), vocabs.subcategories.lookup(news["subcategory"])
