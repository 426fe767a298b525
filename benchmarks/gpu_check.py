"""The steps of the GPU check (run it through ``benchmarks/gpu_check.sh OUT_DIR [--tiny]``).

On an accelerator machine, within 8 minutes in all, each step capped in time:

1. ``environment``: python, torch, the device and whether it does bf16;
2. ``synthetic``: synthetic ``small`` without images (MIND-small sized: 51k news, 157k train and
   73k dev impressions);
3. ``backbone``: BERT-base sizes with random weights, saved once as a local model folder;
4. ``train-<set-up>-<precision>``: ``benchmarks/train_throughput.py`` for ``naive``,
   ``top2_cached_hist`` and ``lora_top2_cached_hist``, each under ``training.mixed_precision: auto``
   (bf16 there) and ``no`` (fp32): samples/s, peak memory, dev AUC after the same samples;
5. ``eval``: ``benchmarks/eval_throughput.py`` over the whole dev split;
6. ``index``: ``benchmarks/index_search.py``, top-10 search at 100k news on the GPU and the CPU.

Each step writes ``OUT_DIR/<step>.json`` (status, seconds, the command, its results, the end of its
log) as soon as it ends, so a step that fails or runs out of time leaves the others' results;
``OUT_DIR/summary.json`` and a printed table (ratios to naive, bf16 against fp32, the projected
MIND-small epoch) come last. ``--tiny`` rehearses every step on a CPU in about a minute: tiny data, a
4-layer BERT of hidden size 32, 4 steps; there "auto" runs bf16 autocast on the CPU, so autocast
goes through the same code as on a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETUPS = ("naive", "top2_cached_hist", "lora_top2_cached_hist")
#: Clicked samples in one epoch of MIND-small's training split (its behaviours' clicks).
MIND_SMALL_EPOCH_SAMPLES = 236_344
#: The study's reported cost: 3 epochs of BERT-NRMS on MIND-small took 28.5 GPU-hours.
STUDY_HOURS_3_EPOCHS = 28.5

FULL = dict(
    scale="small", backbone="random-bert-base", steps=48, batch_size=32, eval_impressions=2000,
    batch1_impressions=100, index_news=100_000, index_queries=500,
)  # fmt: skip
TINY = dict(
    scale="tiny", backbone="random-bert-tiny", steps=4, batch_size=8, eval_impressions=100,
    batch1_impressions=10, index_news=5_000, index_queries=50,
)  # fmt: skip


def write_json(path: Path, value: object) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(value, indent=1) + "\n")
    partial.replace(path)


class Steps:
    """Runs each step as its own process group, capped by its own limit and by the overall deadline."""

    def __init__(self, out: Path, budget_s: float):
        self.out = out
        self.deadline = time.monotonic() + budget_s
        self.records: dict[str, dict] = {}

    def run(self, name: str, cap_s: float, command: list[str], result_file: Path | None = None) -> dict:
        cap = min(cap_s, self.deadline - time.monotonic())
        record: dict[str, object] = {"step": name, "cap_s": round(cap, 1), "command": command}
        if cap < 10:
            record.update(status="skipped", reason="the check's 8-minute budget was spent")
            return self._finish(name, record)
        log = self.out / f"{name}.log"
        started = time.monotonic()
        print(f"[{time.strftime('%H:%M:%S')}] {name} (at most {cap:.0f} s)", flush=True)
        with log.open("w") as sink:
            process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                rc = process.wait(timeout=cap)
                status = "ok" if rc == 0 else "failed"
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                rc = process.wait()
                status = "timeout"
        record.update(status=status, rc=rc, seconds=round(time.monotonic() - started, 1))
        if result_file is not None and result_file.is_file():
            record["result"] = json.loads(result_file.read_text())
            result_file.unlink()
        record["log_tail"] = log.read_text(errors="replace")[-3000:]
        return self._finish(name, record)

    def _finish(self, name: str, record: dict) -> dict:
        self.records[name] = record
        write_json(self.out / f"{name}.json", record)
        print(f"    {record['status']}" + (f" in {record['seconds']} s" if "seconds" in record else ""), flush=True)
        return record


def environment() -> dict:
    import torch

    cuda = torch.cuda.is_available()
    info = {
        "step": "environment",
        "status": "ok",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": cuda,
    }
    if cuda:
        props = torch.cuda.get_device_properties(0)
        info.update(
            device=torch.cuda.get_device_name(0),
            memory_gib=round(props.total_memory / 2**30, 1),
            multiprocessors=props.multi_processor_count,
            bf16=torch.cuda.is_bf16_supported(),
            cuda_version=torch.version.cuda,
        )
    for name in ("transformers", "accelerate", "peft", "tokenizers", "numpy", "pyarrow"):
        info[name] = __import__(name).__version__
    return info


def summarise(records: dict[str, dict], info: dict) -> dict:
    """Ratios to naive (same precision), bf16 against fp32, the projected MIND-small epoch."""
    rows = []
    for name, record in records.items():
        if name.startswith("train-") and record.get("status") == "ok" and record.get("result"):
            rows.append(record["result"][0] | {"step": name})
    naive = {r["mixed_precision"]: r["samples_per_s"] for r in rows if r["setup"] == "naive"}
    by_key = {(r["setup"], r["mixed_precision"]): r for r in rows}
    for r in rows:
        base = naive.get(r["mixed_precision"])
        r["x_naive"] = r["samples_per_s"] / base if base else None
        fp32 = by_key.get((r["setup"], "fp32"))
        r["x_fp32"] = r["samples_per_s"] / fp32["samples_per_s"] if fp32 and r["mixed_precision"] != "fp32" else None
        r["epoch_minutes"] = MIND_SMALL_EPOCH_SAMPLES / r["samples_per_s"] / 60
    summary: dict[str, object] = {"environment": info, "backbone": records.get("backbone", {}).get("result")}
    summary["train"] = rows
    if rows:
        fastest = max(rows, key=lambda r: r["samples_per_s"])
        slowest_naive = [r for r in rows if r["setup"] == "naive"]
        summary["projection"] = {
            "mind_small_epoch_samples": MIND_SMALL_EPOCH_SAMPLES,
            "study_hours_per_epoch": STUDY_HOURS_3_EPOCHS / 3,
            "naive": {r["mixed_precision"]: r["epoch_minutes"] for r in slowest_naive},
            "fastest": {"setup": fastest["setup"], "precision": fastest["mixed_precision"],
                        "epoch_minutes": fastest["epoch_minutes"]},
        }  # fmt: skip
    evaluation = records.get("eval", {}).get("result")
    if evaluation:
        summary["eval"] = evaluation
    index = records.get("index", {}).get("result")
    if index:
        summary["index"] = index
    summary["steps"] = {name: r["status"] for name, r in records.items()}
    return summary


def print_summary(summary: dict) -> None:
    print("\n| set-up | precision | samples/s | x naive | x fp32 | peak memory | dev AUC | MIND-small epoch |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in summary.get("train", []):
        ratio = f"{r['x_naive']:.1f}x" if r["x_naive"] else "-"
        fp32 = f"{r['x_fp32']:.2f}x" if r["x_fp32"] else "-"
        print(
            f"| {r['setup']} | {r['mixed_precision']} | {r['samples_per_s']:.1f} | {ratio} | {fp32} "
            f"| {r['peak_mib']:.0f} MiB | {r['dev_auc']:.4f} | {r['epoch_minutes']:.1f} min |"
        )
    for r in summary.get("eval", []):
        print(f"eval {r['path']}: {r['impressions']:,} impressions, {r['impressions_per_s']:.1f} impressions/s")
    for r in summary.get("index", []):
        print(f"index {r['index']} (batch {r['batch']}, {r['device']}): {r['ms_per_query']:.3f} ms per query")
    if "projection" in summary:
        p = summary["projection"]
        print(
            f"one MIND-small epoch ({p['mind_small_epoch_samples']:,} samples): naive "
            + ", ".join(f"{m:.1f} min ({k})" for k, m in p["naive"].items())
            + f"; {p['fastest']['setup']} ({p['fastest']['precision']}) {p['fastest']['epoch_minutes']:.1f} min; "
            f"the study: {p['study_hours_per_epoch']:.1f} h per epoch"
        )
    print("steps: " + ", ".join(f"{k} {v}" for k, v in summary["steps"].items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder for the results (created)")
    parser.add_argument("--tiny", action="store_true", help="the CPU rehearsal: tiny data and model")
    parser.add_argument("--budget", type=float, default=470.0, help="seconds for the whole check")
    args = parser.parse_args()
    sizes = TINY if args.tiny else FULL
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"  # data, model folder and feature cache: large, and left out of what comes back
    steps = Steps(out, args.budget)
    python = sys.executable

    info = environment()
    write_json(out / "environment.json", info)
    steps.records["environment"] = info
    print(json.dumps(info), flush=True)
    gpu = bool(info["cuda"])
    if not gpu and not args.tiny:
        print("warning: no CUDA device: the full check runs on the CPU and will be cut by its budget", flush=True)

    data, cache, model = work / "data", work / "features", work / "backbone"
    make_data = (
        "import sys; from pathlib import Path; from mmnewsrec.data.synthetic import generate_mind; "
        "root = Path(sys.argv[1]); (root / 'train' / 'behaviors.tsv').is_file() or "
        "generate_mind(root, scale=sys.argv[2], seed=0, images=False)"
    )
    steps.run("synthetic", 150, [python, "-c", make_data, str(data), sizes["scale"]])
    make_model = (
        "import json, sys; from pathlib import Path; from bench_common import random_bert; "
        "Path(sys.argv[4]).write_text(json.dumps(random_bert(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))))"
    )
    result = out / "backbone.result.json"
    command = [python, "-c", make_model, sizes["backbone"], str(model), str(data), str(result)]
    steps.run("backbone", 60, command, result)

    # bf16 ("auto" on a GPU) on a CPU rehearsal too: CPU autocast runs the same code paths.
    mixed = "auto" if gpu else "bf16"
    common = ["--data", str(data), "--cache", str(cache), "--backbone", str(model)]
    common += ["--steps", str(sizes["steps"]), "--batch-size", str(sizes["batch_size"])]
    common += ["--eval-impressions", str(sizes["eval_impressions"])]

    def train(setup: str, precision: str, cap: float) -> None:
        label = "fp32" if precision == "no" else "bf16"
        result = out / f"train-{setup}-{label}.result.json"
        command = [python, str(HERE / "train_throughput.py"), *common, "--setups", setup]
        command += ["--mixed-precision", precision, "--json", str(result)]
        steps.run(f"train-{setup}-{label}", cap, command, result)

    for setup in SETUPS:
        train(setup, mixed, 90 if setup == "naive" else 60)
    result = out / "eval.result.json"
    command = [python, str(HERE / "eval_throughput.py"), "--data", str(data), "--cache", str(cache)]
    command += ["--backbone", str(model), "--batch1-impressions", str(sizes["batch1_impressions"])]
    steps.run("eval", 100, [*command, "--json", str(result)], result)
    result = out / "index.result.json"
    command = [python, str(HERE / "index_search.py"), "--news", str(sizes["index_news"])]
    command += ["--queries", str(sizes["index_queries"]), "--json", str(result)]
    steps.run("index", 45, command, result)
    for setup in reversed(SETUPS):  # naive fp32 last: the slowest, and the first to give up if time runs out
        train(setup, "no", 90 if setup == "naive" else 60)

    summary = summarise(steps.records, info)
    write_json(out / "summary.json", summary)
    print_summary(summary)
    failed = [name for name, status in summary["steps"].items() if status != "ok"]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
