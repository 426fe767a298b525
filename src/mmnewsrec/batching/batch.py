"""Impressions as arrays of catalogue rows, and the batches models consume.

Masks are bool with True marking a real position. Histories keep the most recent ``history_len``
clicks (MIND histories are chronological, oldest first) and are right-padded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from mmnewsrec.data.mind import MindDataset, list_offsets


@dataclass(frozen=True)
class ImpressionArrays:
    """One split in the flat layout, news addressed by catalogue row.

    Shape:
        hist_rows: (total history entries,); hist_offsets: (M + 1,);
        cand_rows, labels: (total candidates,); cand_offsets: (M + 1,); impression_ids: (M,);
        cand_stats: (total candidates, F) log counters of each shown candidate, or None
        (see :mod:`mmnewsrec.data.popularity`).
    """

    impression_ids: np.ndarray
    hist_rows: np.ndarray
    hist_offsets: np.ndarray
    cand_rows: np.ndarray
    cand_offsets: np.ndarray
    labels: np.ndarray | None
    cand_stats: np.ndarray | None = None

    @classmethod
    def from_split(cls, dataset: MindDataset, split: str) -> ImpressionArrays:
        data = dataset[split]
        return cls.from_behaviors(data.behaviors, data.labelled, dataset.news_rows)

    @classmethod
    def from_behaviors(
        cls, behaviors: pa.Table, labelled: bool, news_rows: Callable[[pa.Array], np.ndarray]
    ) -> ImpressionArrays:
        """Impressions of a behaviours table (:data:`~mmnewsrec.data.schema.BEHAVIORS_SCHEMA`: a
        split, or one block of it), news ids mapped to catalogue rows by ``news_rows``."""

        def flat(column: str) -> pa.Array:
            return pc.list_flatten(behaviors[column].combine_chunks())

        return cls(
            impression_ids=behaviors["impression_id"].to_numpy(),
            hist_rows=news_rows(flat("history")),
            hist_offsets=list_offsets(behaviors["history"]),
            cand_rows=news_rows(flat("candidates")),
            cand_offsets=list_offsets(behaviors["candidates"]),
            labels=flat("labels").to_numpy(zero_copy_only=False).astype(np.int8) if labelled else None,
        )

    def __len__(self) -> int:
        return len(self.impression_ids)

    def subset(self, impressions: np.ndarray) -> ImpressionArrays:
        """The given impressions (sorted positions), re-packed."""
        impressions = np.asarray(impressions, dtype=np.int64)
        hist_rows, hist_offsets = _take_ragged(self.hist_rows, self.hist_offsets, impressions)
        cand_index, cand_offsets = _take_ragged(np.arange(len(self.cand_rows)), self.cand_offsets, impressions)
        return ImpressionArrays(
            self.impression_ids[impressions],
            hist_rows,
            hist_offsets,
            self.cand_rows[cand_index],
            cand_offsets,
            None if self.labels is None else self.labels[cand_index],
            None if self.cand_stats is None else self.cand_stats[cand_index],
        )


def _take_ragged(values: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sizes = offsets[rows + 1] - offsets[rows]
    new_offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    index = np.repeat(offsets[rows] - new_offsets[:-1], sizes) + np.arange(new_offsets[-1])
    return values[index], new_offsets


def recent_histories(
    arrays: ImpressionArrays, impressions: np.ndarray, history_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """The last ``history_len`` history rows of each impression, right-padded with row 0.

    Shape:
        returns rows (B, H) int64 and mask (B, H) bool, H = history_len.
    """
    starts = arrays.hist_offsets[impressions]
    ends = arrays.hist_offsets[impressions + 1]
    lengths = np.minimum(ends - starts, history_len)
    position = np.arange(history_len)[None, :]  # (1, H)
    mask = position < lengths[:, None]  # (B, H)
    index = np.where(mask, (ends - lengths)[:, None] + position, 0)
    rows = np.where(mask, arrays.hist_rows[np.minimum(index, max(len(arrays.hist_rows) - 1, 0))], 0)
    return rows.astype(np.int64), mask


@dataclass
class Batch:
    """What one model step reads; all tensors on one device.

    Shape:
        hist_rows, hist_mask: (B, H); cand_rows, cand_mask: (B, C); targets: (B,) index of the
        clicked candidate (training) or None; cand_stats: (B, C, F) log counters, or None.
    """

    hist_rows: torch.Tensor
    hist_mask: torch.Tensor
    cand_rows: torch.Tensor
    cand_mask: torch.Tensor
    targets: torch.Tensor | None = None
    cand_stats: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            **{
                f.name: None if getattr(self, f.name) is None else getattr(self, f.name).to(device)
                for f in fields(self)
            }
        )

    def __len__(self) -> int:
        return self.cand_rows.shape[0]


class TrainSampler:
    """Training samples: each click of an impression with K non-clicks sampled from the same impression.

    Negatives are drawn uniformly with replacement from the impression's non-clicked candidates
    (when it has fewer than K, some repeat; with none, the slots are masked out). The clicked
    candidate is always at position 0, so the softmax cross-entropy target is 0. Draws are a pure
    function of (seed, epoch), which makes an interrupted epoch resumable batch for batch.
    """

    def __init__(self, arrays: ImpressionArrays, negatives: int = 4, history_len: int = 50, seed: int = 0):
        if arrays.labels is None:
            raise ValueError("training needs a labelled split")
        self.arrays = arrays
        self.negatives = negatives
        self.history_len = history_len
        self.seed = seed
        labels = arrays.labels.astype(bool)
        owner = np.repeat(np.arange(len(arrays)), np.diff(arrays.cand_offsets))  # (N,) impression per candidate
        self.pos_index = np.flatnonzero(labels)  # (S,) one sample per click
        self.pos_owner = owner[self.pos_index]
        neg_index = np.flatnonzero(~labels)
        neg_owner = owner[neg_index]
        self.neg_index = neg_index  # grouped by impression (owner is sorted)
        self.neg_start = np.searchsorted(neg_owner, np.arange(len(arrays)))
        self.neg_count = np.bincount(neg_owner, minlength=len(arrays))

    def __len__(self) -> int:
        return len(self.pos_index)

    def num_batches(self, batch_size: int) -> int:
        return (len(self) + batch_size - 1) // batch_size

    def epoch_batches(self, epoch: int, batch_size: int, start_batch: int = 0) -> Iterator[Batch]:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self))
        draws = rng.random((len(self), self.negatives))  # (S, K)
        for b in range(start_batch, self.num_batches(batch_size)):
            samples = order[b * batch_size : (b + 1) * batch_size]
            yield self._batch(samples, draws[samples])

    def _batch(self, samples: np.ndarray, draws: np.ndarray) -> Batch:
        owner = self.pos_owner[samples]  # (B,)
        count = self.neg_count[owner]  # (B,)
        pick = np.minimum((draws * np.maximum(count, 1)[:, None]).astype(np.int64), np.maximum(count - 1, 0)[:, None])
        neg_cands = self.neg_index[np.minimum(self.neg_start[owner][:, None] + pick, len(self.neg_index) - 1)]
        flat = np.concatenate([self.pos_index[samples][:, None], neg_cands], axis=1)  # (B, 1 + K) candidate index
        cand_rows = self.arrays.cand_rows[flat]  # (B, 1 + K)
        cand_mask = np.ones_like(cand_rows, dtype=bool)
        cand_mask[:, 1:] = count[:, None] > 0
        hist_rows, hist_mask = recent_histories(self.arrays, owner, self.history_len)
        return Batch(
            hist_rows=torch.from_numpy(hist_rows),
            hist_mask=torch.from_numpy(hist_mask),
            cand_rows=torch.from_numpy(np.where(cand_mask, cand_rows, 0)),
            cand_mask=torch.from_numpy(cand_mask),
            targets=torch.zeros(len(samples), dtype=torch.long),
            cand_stats=_stats(self.arrays, flat, cand_mask),
        )


def impression_batches(
    arrays: ImpressionArrays, batch_size: int, history_len: int
) -> Iterator[tuple[np.ndarray, Batch]]:
    """Whole impressions, padded to the longest in each batch: (impression positions, Batch)."""
    sizes = np.diff(arrays.cand_offsets)
    for start in range(0, len(arrays), batch_size):
        impressions = np.arange(start, min(start + batch_size, len(arrays)))
        width = int(sizes[impressions].max())
        position = np.arange(width)[None, :]
        cand_mask = position < sizes[impressions][:, None]  # (B, C)
        index = np.where(cand_mask, arrays.cand_offsets[impressions][:, None] + position, 0)
        cand_rows = np.where(cand_mask, arrays.cand_rows[index], 0)
        hist_rows, hist_mask = recent_histories(arrays, impressions, history_len)
        yield (
            impressions,
            Batch(
                torch.from_numpy(hist_rows),
                torch.from_numpy(hist_mask),
                torch.from_numpy(cand_rows),
                torch.from_numpy(cand_mask),
                cand_stats=_stats(arrays, index, cand_mask),
            ),
        )


def _stats(arrays: ImpressionArrays, flat: np.ndarray, mask: np.ndarray) -> torch.Tensor | None:
    """Shape: (B, C) flat candidate indices -> (B, C, F) counters (padding: zeros), or None."""
    if arrays.cand_stats is None:
        return None
    return torch.from_numpy(np.where(mask[..., None], arrays.cand_stats[flat], 0).astype(np.float32))
