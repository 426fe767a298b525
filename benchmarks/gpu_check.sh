#!/usr/bin/env bash
# The GPU check: the headline speed of BERT-base NRMS on an accelerator machine, within 8 minutes.
#
#   benchmarks/gpu_check.sh OUT_DIR [--tiny]
#
# Uses the machine's own python3 (override with PYTHON=...) with src/ on PYTHONPATH: nothing is
# installed or downloaded. It first checks every import it needs and prints what is missing, then
# runs the steps of benchmarks/gpu_check.py, each capped in time, writing OUT_DIR/<step>.json as it
# goes and OUT_DIR/summary.json at the end. --tiny is the CPU rehearsal (tiny data and model).
set -u
if [ $# -lt 1 ]; then
  echo "usage: benchmarks/gpu_check.sh OUT_DIR [--tiny]" >&2
  exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
export PYTHONPATH="$root/src:$root/benchmarks${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
missing=$("$python" - <<'PY'
import importlib
names = ["torch", "transformers", "tokenizers", "accelerate", "peft", "safetensors", "pyarrow", "numpy", "yaml", "tqdm", "PIL", "mmnewsrec"]
missing = []
for name in names:
    try:
        importlib.import_module(name)
    except Exception as error:  # noqa: BLE001
        missing.append(f"{name} ({type(error).__name__}: {error})")
print("; ".join(missing))
PY
) || { echo "error: $python does not run" >&2; exit 2; }
if [ -n "$missing" ]; then
  echo "error: $python lacks what the GPU check imports: $missing" >&2
  exit 2
fi
exec "$python" "$root/benchmarks/gpu_check.py" "$@"
