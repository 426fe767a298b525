"""Waiting threads sleep: importing mmnewsrec sets OMP_WAIT_POLICY=PASSIVE unless it is set."""

from __future__ import annotations

import os
import subprocess
import sys


def policy_after_import(env: dict[str, str]) -> str:
    code = "import mmnewsrec, os; print(os.environ['OMP_WAIT_POLICY'])"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return result.stdout.strip()


def test_openmp_threads_wait_passively_unless_told_otherwise() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert policy_after_import(env) == "PASSIVE"
    assert policy_after_import({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"
