"""The resume policy: which config changes a resumed run may take, checked before anything is written."""

from __future__ import annotations

from typing import Any

from mmnewsrec.config import ExperimentConfig, to_dict
from mmnewsrec.runs.layout import RunDir, RunError

#: Settings a resumed run may change: they steer the rest of training without invalidating the
#: checkpoint or the order of samples. Any other change is refused before anything is written.
RESUMABLE_CHANGES = frozenset(
    {
        "name",
        "run_dir",
        "data.root",
        "features.cache_dir",
        "training.epochs",
        "training.max_steps",
        "training.lr",
        "training.pretrained_lr",
        "training.weight_decay",
        "training.warmup_ratio",
        "training.max_grad_norm",
        "training.eval_every",
        "training.eval_impressions",
        "training.eval_batch_size",
        "training.patience",
        "training.eval_at_start",  # only a fresh run evaluates its initial weights
        "training.mixed_precision",
        "training.log_every",
    }
)


def config_changes(old: ExperimentConfig, new: ExperimentConfig) -> dict[str, list[Any]]:
    """Dotted field -> [old, new] for every leaf setting that differs."""
    changes: dict[str, list[Any]] = {}

    def walk(a: Any, b: Any, prefix: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                walk(a.get(key), b.get(key), f"{prefix}{key}.")
        elif a != b:
            changes[prefix[:-1]] = [a, b]

    walk(to_dict(old), to_dict(new), "")
    return changes


def check_resumable(stored: ExperimentConfig, new: ExperimentConfig, run: RunDir) -> dict[str, list[Any]]:
    """The changes a resume would apply; raises when any of them breaks the checkpoint.

    Raises:
        RunError: naming every refused field with its stored and new value.
    """
    changes = config_changes(stored, new)
    refused = {key: values for key, values in changes.items() if key not in RESUMABLE_CHANGES}
    if refused:
        listed = "; ".join(f"{key}: {old!r} -> {new!r}" for key, (old, new) in refused.items())
        raise RunError(
            f"{run.path}: --resume with changed settings the checkpoint cannot follow ({listed}). Undo them, or "
            f"start a new run (--overwrite or another --run-dir). A resume may change: {sorted(RESUMABLE_CHANGES)}"
        )
    return changes
