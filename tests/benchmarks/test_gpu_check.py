"""The GPU check's CPU rehearsal: every step of ``benchmarks/gpu_check.sh --tiny`` runs and reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRAIN_STEPS = [
    f"train-{s}-{p}" for s in ("naive", "top2_cached_hist", "lora_top2_cached_hist") for p in ("bf16", "fp32")
]


@pytest.mark.slow
def test_tiny_check_writes_every_step(tmp_path: Path) -> None:
    out = tmp_path / "gpu-check"
    env = os.environ | {"PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(out), "--tiny"],
        env=env, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    steps = ["environment", "synthetic", "backbone", *TRAIN_STEPS, "eval", "index"]
    records = {name: json.loads((out / f"{name}.json").read_text()) for name in steps}
    assert {name: r["status"] for name, r in records.items()} == dict.fromkeys(steps, "ok")
    assert records["environment"]["cuda"] is False and records["environment"]["torch"]
    assert (
        "WordPiece" in records["backbone"]["result"]["tokenizer"]
        or "bert-base" in records["backbone"]["result"]["tokenizer"]
    )

    for name in TRAIN_STEPS:
        (result,) = records[name]["result"]
        setup, precision = name.removeprefix("train-").rsplit("-", 1)
        assert result["setup"] == setup and result["mixed_precision"] == precision
        assert result["samples_per_s"] > 0 and 0.0 <= result["dev_auc"] <= 1.0
        assert result["steps"] == 4 and result["batch_size"] == 8
    # Same samples, same order, same initial weights: both precisions train the same model.
    for setup in ("naive", "top2_cached_hist", "lora_top2_cached_hist"):
        bf16 = records[f"train-{setup}-bf16"]["result"][0]["dev_auc"]
        fp32 = records[f"train-{setup}-fp32"]["result"][0]["dev_auc"]
        assert abs(bf16 - fp32) < 0.05

    paths = {r["path"]: r for r in records["eval"]["result"]}
    assert set(paths) == {"batch1", "fast", "fast_cached"}
    assert paths["fast"]["impressions"] == 500 and paths["fast"]["max_score_difference"] < 1e-3
    assert {(r["index"], r["batch"]) for r in records["index"]["result"]} >= {
        ("numpy exact (used)", 1),
        ("numpy exact (used)", 32),
    }

    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == dict.fromkeys(steps, "ok")
    rows = {(r["setup"], r["mixed_precision"]): r for r in summary["train"]}
    assert rows[("naive", "fp32")]["x_naive"] == pytest.approx(1.0)
    assert rows[("naive", "bf16")]["x_fp32"] == pytest.approx(
        rows[("naive", "bf16")]["samples_per_s"] / rows[("naive", "fp32")]["samples_per_s"]
    )
    assert summary["projection"]["naive"]["fp32"] == pytest.approx(
        236_344 / rows[("naive", "fp32")]["samples_per_s"] / 60
    )
    assert "| naive | fp32 |" in done.stdout


def test_usage_and_missing_imports(tmp_path: Path) -> None:
    script = str(ROOT / "benchmarks" / "gpu_check.sh")
    done = subprocess.run(["bash", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "usage: benchmarks/gpu_check.sh OUT_DIR" in done.stderr
    fake = tmp_path / "python3"  # a Python without the packages: each missing import is named
    fake.write_text(f'#!/bin/sh\nexec {sys.executable} -S -I "$@"\n')
    fake.chmod(0o755)
    done = subprocess.run(
        ["bash", script, str(tmp_path / "out")], env=os.environ | {"PYTHON": str(fake)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "error:" in done.stderr and "torch (ModuleNotFoundError" in done.stderr
    assert not (tmp_path / "out").exists()
