"""Parse time of MIND-small-sized splits.

Generates the synthetic ``small`` dataset once (no images, ~30 s) into ``runs/bench/synthetic-small``
unless ``--data`` points at a dataset (real MIND-small works the same), then times the reader.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from mmnewsrec.data.mind import read_split
from mmnewsrec.data.stats import split_stats
from mmnewsrec.data.synthetic import SUMMARY_FILE, generate_mind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=None, help="dataset root (default: synthetic small)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    root = args.data
    if root is None:
        root = Path("runs/bench/synthetic-small")
        if not (root / SUMMARY_FILE).is_file():
            print(f"generating synthetic small into {root} ...")
            generate_mind(root, scale="small", seed=0, images=False, overwrite=True)
    for name in ("train", "dev"):
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            split = read_split(root / name, name)
            times.append(time.perf_counter() - start)
        stats = split_stats(split, check_images=False)
        tokens = stats["candidates"] + int(stats["mean_history"] * stats["impressions"])
        print(
            f"{name:5s}: {stats['news']:>7,} news  {stats['impressions']:>8,} impressions  "
            f"{stats['candidates']:>10,} impression tokens  {tokens:>11,} tokens with histories  "
            f"parse {min(times):6.2f} s (best of {args.repeats})  "
            f"{stats['candidates'] / min(times) / 1e6:5.2f} M impression tokens/s"
        )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
