"""`mmnewsrec report` for two runs over a MIND-small-sized dev split: wall time and peak memory.

Both runs must have been trained on synthetic ``small`` (default: ``runs/small-text`` and
``runs/small-popularity``, from ``configs/text_minilm.yaml`` and ``configs/text_minilm_popularity.yaml``).
Their dev predictions are made first (``evaluate``, not timed); then the report runs in a fresh
process with 1,000 bootstrap resamples: wall time (imports included) and peak RSS (VmHWM).

    .venv/bin/python benchmarks/report_speed.py [--runs RUN RUN] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROBE = r"""
import json, sys, time
started = time.perf_counter()
from mmnewsrec.workflows.report import run_report
result = run_report(sys.argv[2:], out=sys.argv[1], samples=1000)
seconds = time.perf_counter() - started
peak = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
print(json.dumps({"seconds": seconds, "peak_rss_mib": peak, "figures": result["figures"]}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs=2, type=Path, default=[Path("runs/small-text"), Path("runs/small-popularity")])
    parser.add_argument("--out", type=Path, default=None, help="report folder (default: a temporary one)")
    args = parser.parse_args()
    for run in args.runs:
        if not (run / "dev" / "prediction.txt").is_file():
            subprocess.run([sys.executable, "-m", "mmnewsrec", "-q", "evaluate", "--run", str(run)], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "report"
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", PROBE, str(out), *map(str, args.runs)], capture_output=True, text=True, check=True
        )
        record = json.loads(result.stdout.splitlines()[-1])
        record["process_seconds"] = time.perf_counter() - started
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
