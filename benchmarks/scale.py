"""MIND-large scale on one machine: every stage's wall time, throughput and peak memory.

On ``synth --scale large --no-images`` (161,013 news; 2,232,748 train, 376,471 dev and 2,370,727
unlabelled test impressions, MIND-large's sizes), each stage runs as the CLI command a user types,
in its own process, and is measured from outside: wall time, and peak resident memory of that
process (``ru_maxrss`` from ``wait4``; this script imports nothing heavy, so a forked child starts
small):

* ``synth``: generate the dataset (skipped when ``--data`` already holds it);
* ``inspect``: parse and validate every split, print statistics;
* ``featurize``: frozen MiniLM title vectors for every news (``configs/featurize_minilm.yaml``);
* ``train``: ``configs/text_minilm.yaml`` (frozen MiniLM + NRMS) for a fixed budget of optimiser
  steps of the first epoch, no evaluation during training;
* ``evaluate dev``: the whole labelled dev split, block by block;
* ``predict test``: the leaderboard file for the whole test split (zipped), block by block.

Evaluation and prediction stream, so their peak memory should not depend on the number of
impressions: dev (376k) and test (2.37M, 6.3x more) are the two sizes compared.

    .venv/bin/python benchmarks/scale.py [--work runs/scale] [--steps 300]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "mmnewsrec", "-q"]


def measure(name: str, command: list[str], log: Path) -> dict[str, object]:
    """Runs ``command``; returns its wall time and the child's peak RSS."""
    started = time.perf_counter()
    with log.open("ab") as sink:
        sink.write(f"\n$ {' '.join(command)}\n".encode())
        sink.flush()
        child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=sink)
        out = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name} failed (exit {os.waitstatus_to_exitcode(status)}); see {log}")
    child.returncode = os.waitstatus_to_exitcode(status)
    lines = [line for line in out.decode().splitlines() if line.startswith("{")]
    record = {"stage": name, "seconds": round(seconds, 1), "peak_rss_mib": round(usage.ru_maxrss / 1024)}
    if lines:
        record["output"] = json.loads(lines[-1])
    print(json.dumps(record), flush=True)
    return record


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 24), b""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "scale")
    parser.add_argument("--steps", type=int, default=300, help="training budget in optimiser steps")
    parser.add_argument("--skip", nargs="*", default=[], help="stages to skip (their outputs must exist)")
    args = parser.parse_args()
    work = args.work.resolve()
    data, features, run = work / "large", work / "features", work / "run"
    work.mkdir(parents=True, exist_ok=True)
    log = work / "scale.log"
    results = []

    def stage(name: str, command: list[str]) -> None:
        if name in args.skip:
            return
        results.append(measure(name, command, log))

    if not (data / "test" / "behaviors.tsv").is_file():
        stage("synth", [*CLI, "synth", "--scale", "large", "--no-images", "--out", str(data)])
    sizes = {split: count_lines(data / split / "behaviors.tsv") for split in ("train", "dev", "test")}
    sizes["news"] = count_lines(data / "train" / "news.tsv")
    print(json.dumps({"sizes": sizes}), flush=True)
    stage("inspect", [*CLI, "inspect", str(data)])
    stage(
        "featurize",
        [
            *CLI,
            "featurize",
            "--config",
            "configs/featurize_minilm.yaml",
            "--data",
            str(data),
            "--cache-dir",
            str(features),
        ],
    )
    stage(
        "train",
        [
            *CLI, "train", "--config", "configs/text_minilm.yaml", "--data", str(data), "--run-dir", str(run),
            "--cache-dir", str(features), "--overwrite",
            f"training.max_steps={args.steps}", "training.epochs=1", "training.dev_split=null",
        ],
    )  # fmt: skip
    stage("evaluate dev", [*CLI, "evaluate", "--run", str(run), "--split", "dev", "--cache-dir", str(features)])
    stage(
        "predict test",
        [*CLI, "evaluate", "--run", str(run), "--split", "test", "--cache-dir", str(features), "--zip", "--overwrite"],
    )
    throughput = {
        "inspect": sizes["train"] + sizes["dev"] + sizes["test"],
        "featurize": sizes["news"],
        "evaluate dev": sizes["dev"],
        "predict test": sizes["test"],
    }
    for record in results:
        if record["stage"] == "featurize" and "rows" in record.get("output", {}):
            throughput["featurize"] = record["output"]["rows"]  # every split's news, not only train's
        if record["stage"] in throughput:
            record["per_second"] = round(throughput[record["stage"]] / record["seconds"])
        if record["stage"] == "train":
            record["per_second"] = round(args.steps * 64 / record["seconds"], 1)  # samples/s, imports included
    (work / "scale.json").write_text(json.dumps({"sizes": sizes, "steps": args.steps, "stages": results}, indent=1))
    print("| stage | seconds | per second | peak RSS |")
    print("| --- | --- | --- | --- |")
    for record in results:
        rate = record.get("per_second", "")
        print(f"| {record['stage']} | {record['seconds']} | {rate} | {record['peak_rss_mib']} MiB |")


if __name__ == "__main__":
    main()
