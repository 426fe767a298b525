"""Per-news model inputs addressed by catalogue row, gathered for the news of one batch."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch

from mmnewsrec.features.store import FeatureArray, FeatureSet


class NewsFeatures:
    """Everything news encoders read, one row per catalogue news.

    Small arrays (token ids, masks, frozen vectors, category ids) are held in memory as tensors;
    pixel arrays stay memory-mapped and only the rows of a batch are read.

    Keys: ``{field}_ids`` / ``{field}_mask`` (tokens), ``pixels`` / ``has_image`` (images),
    ``frozen:{name}`` and ``frozen:{name}:has_image`` (frozen vectors), ``category`` /
    ``subcategory``.
    """

    def __init__(self, tensors: Mapping[str, torch.Tensor], mapped: Mapping[str, FeatureArray] | None = None):
        self.tensors = dict(tensors)
        self.mapped = dict(mapped or {})
        sizes = {len(v) for v in self.tensors.values()} | {len(v) for v in self.mapped.values()}
        if len(sizes) > 1:
            raise ValueError(f"news features disagree on the number of news: {sorted(sizes)}")
        self.num_news = sizes.pop() if sizes else 0

    @classmethod
    def from_sets(
        cls,
        sets: Mapping[str, FeatureSet],
        extra: Mapping[str, np.ndarray] | None = None,
        keep_mapped: Iterable[str] = ("pixels",),
    ) -> NewsFeatures:
        """Flattens feature sets into named inputs; ``frozen`` sets are prefixed ``frozen:{name}``.

        ``keep_mapped`` names arrays (``pixels``) or whole sets (``frozen:lower_title``) that stay
        memory-mapped instead of being copied into RAM.
        """
        keep_mapped = set(keep_mapped)
        tensors: dict[str, torch.Tensor] = {}
        mapped: dict[str, FeatureArray] = {}
        for set_name, features in sets.items():
            prefix = f"{set_name}:" if set_name.startswith("frozen:") else ""
            for array_name, array in features.arrays.items():
                key = set_name if (prefix and array_name == "vectors") else prefix + array_name
                if array_name in keep_mapped or set_name in keep_mapped:
                    mapped[key] = array
                else:
                    tensors[key] = torch.from_numpy(np.array(array[:], copy=True))  # private, writable, in RAM
        for name, values in (extra or {}).items():
            tensors[name] = torch.from_numpy(np.asarray(values))
        return cls(tensors, mapped)

    def names(self) -> list[str]:
        return sorted([*self.tensors, *self.mapped])

    def dim(self, name: str) -> int:
        """Size of the last per-news dimension; 1 for a per-news scalar (a flag, an id)."""
        source = self.tensors[name] if name in self.tensors else self.mapped[name]
        row_shape = tuple(source.shape[1:])
        return int(row_shape[-1]) if row_shape else 1

    def gather(
        self, rows: torch.Tensor, names: Iterable[str], device: torch.device | str = "cpu"
    ) -> dict[str, torch.Tensor]:
        """Inputs of the news at catalogue ``rows`` (U,), converted for models (ids long, vectors float)."""
        out = {}
        index = rows.cpu()
        for name in names:
            if name in self.tensors:
                value = self.tensors[name][index]
            elif name in self.mapped:
                order = np.argsort(index.numpy(), kind="stable")  # memory maps read fastest in file order
                values = self.mapped[name][index.numpy()[order]]
                value = torch.empty((len(index), *values.shape[1:]), dtype=torch.from_numpy(values[:0]).dtype)
                value[torch.from_numpy(order)] = torch.from_numpy(values)
            else:
                raise KeyError(f"news feature {name!r} was not built; available: {self.names()}")
            if value.dtype == torch.int32:
                value = value.long()
            elif value.dtype == torch.float16:
                value = value.float()
            out[name] = value.to(device, non_blocking=True)
        return out
