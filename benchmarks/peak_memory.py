"""Peak memory of a block of code, for the benchmarks: CUDA allocator peak, or sampled private RSS."""

from __future__ import annotations

import ctypes
import gc
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
