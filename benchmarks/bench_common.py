"""Shared by the speed benchmarks: quiet logging, the synthetic small dataset, peak memory of a block."""

from __future__ import annotations

import ctypes
import gc
import logging
import threading
from pathlib import Path

import torch


def _rss_anon_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    return 0


class PeakMemory:
    """Peak memory added while the block runs: CUDA allocator peak, or sampled private RSS."""

    def __init__(self, cuda: bool):
        self.cuda = cuda
        self.peak_mib = 0.0

    def __enter__(self) -> PeakMemory:
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            return self
        try:  # hand freed heap pages back, so the baseline is today's level, not an old peak
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except OSError:
            pass
        self.base = _rss_anon_kib()
        self.samples = [self.base]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.stop.wait(0.02):
            self.samples.append(_rss_anon_kib())

    def __exit__(self, *exc) -> None:
        if self.cuda:
            self.peak_mib = torch.cuda.max_memory_allocated() / 2**20
            return
        self.stop.set()
        self.thread.join()
        self.peak_mib = (max(self.samples) - self.base) / 1024


def quiet() -> None:
    """Warnings only, and no Hugging Face progress bars, so the printed numbers stay readable."""
    from transformers.utils import logging as hf_logging

    logging.basicConfig(level=logging.WARNING)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def ensure_synthetic_small(root: Path) -> None:
    """Generates synthetic ``small`` (MIND-small sized, seed 0, no images) at ``root`` if absent."""
    from mmnewsrec.data.synthetic import generate_mind

    if not (root / "train" / "behaviors.tsv").is_file():
        print(f"generating synthetic small (no images) in {root} ...", flush=True)
        generate_mind(root, scale="small", seed=0, images=False)
