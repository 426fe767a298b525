"""Token <-> index maps (users, categories, subcategories), fitted on the training split only."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PAD = "<pad>"
UNK = "<unk>"
PAD_INDEX = 0
UNK_INDEX = 1


@dataclass(frozen=True)
class Vocab:
    """An immutable vocabulary: index 0 is padding, 1 is unknown, then fitted tokens.

    Tokens are ordered by descending frequency, ties alphabetically, so fitting is deterministic.
    """

    tokens: tuple[str, ...]

    @classmethod
    def fit(cls, values: pa.Array | pa.ChunkedArray | Iterable[str]) -> Vocab:
        array = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(list(values), pa.string())
        counts = pc.value_counts(pc.drop_null(array))
        names = counts.field("values").to_pylist()
        freq = counts.field("counts").to_numpy()
        order = sorted(range(len(names)), key=lambda i: (-freq[i], names[i]))
        fitted = tuple(names[i] for i in order if names[i] not in (PAD, UNK))
        return cls((PAD, UNK, *fitted))

    def __len__(self) -> int:
        return len(self.tokens)

    def lookup(self, values: pa.Array | pa.ChunkedArray | Iterable[str]) -> np.ndarray:
        """Indices of ``values`` as int64; unknown (and null) values map to :data:`UNK_INDEX`."""
        array = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(list(values), pa.string())
        found = pc.index_in(array, value_set=pa.array(self.tokens, pa.string()))
        return pc.fill_null(found, UNK_INDEX).to_numpy(zero_copy_only=False).astype(np.int64)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(list(self.tokens), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        tokens = json.loads(Path(path).read_text(encoding="utf-8"))
        if tokens[:2] != [PAD, UNK]:
            raise ValueError(f"{path}: not a vocabulary file (must start with {PAD!r}, {UNK!r})")
        return cls(tuple(tokens))
