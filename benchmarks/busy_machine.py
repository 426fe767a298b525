"""Training beside a CPU-bound process: the demo's text model with OpenMP's waiting threads spinning
(``OMP_WAIT_POLICY=ACTIVE``, the OpenMP default) against sleeping (``PASSIVE``, what importing
mmnewsrec sets), each on an idle machine and beside one busy process.

Makes the demo's data and features first (``mmnewsrec demo --no-train`` in the work folder), then
times ``mmnewsrec train --config configs/demo_text_minilm.yaml`` four times in fresh processes
(after one untimed run that builds the frozen features).

    .venv/bin/python benchmarks/busy_machine.py [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "demo_text_minilm.yaml"


def train_seconds(workdir: Path, run: Path, policy: str) -> tuple[float, float]:
    """Wall seconds of one training run in a fresh process, and its dev AUC."""
    command = [
        sys.executable,
        "-m",
        "mmnewsrec",
        "-q",
        "train",
        "--config",
        str(CONFIG),
        "--data",
        str(workdir / "data"),
    ]
    command += ["--run-dir", str(run), f"features.cache_dir={workdir / 'features'}"]
    started = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, "OMP_WAIT_POLICY": policy}, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    return seconds, json.loads((run / "metrics.json").read_text())["auc"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="demo work folder (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp) / "demo"
        if not (workdir / "data").is_dir():
            subprocess.run([sys.executable, "-m", "mmnewsrec", "-q", "demo", "--workdir", str(workdir), "--no-train"])
        train_seconds(workdir, Path(tmp) / "warm-up", "PASSIVE")  # builds the frozen features once, untimed
        rows = []
        for busy in (False, True):
            burner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
            try:
                for policy in ("ACTIVE", "PASSIVE"):
                    seconds, auc = train_seconds(workdir, Path(tmp) / f"run-{busy}-{policy}", policy)
                    rows.append(
                        {"busy_process": busy, "OMP_WAIT_POLICY": policy, "seconds": round(seconds, 1), "auc": auc}
                    )
                    print(json.dumps(rows[-1]), flush=True)
            finally:
                if burner is not None:
                    burner.kill()
        spin, sleep = (
            next(r["seconds"] for r in rows if r["busy_process"] and r["OMP_WAIT_POLICY"] == p)
            for p in ("ACTIVE", "PASSIVE")
        )
        print(json.dumps({"busy_machine_ratio_active_over_passive": round(spin / sleep, 2)}))


if __name__ == "__main__":
    main()
