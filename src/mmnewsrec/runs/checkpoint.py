"""Checkpoints of a run (``checkpoints/last``): the loop position, weights, optimiser, RNG and history cache.

A checkpoint is written to a temporary folder and renamed, so an interrupted save (a kill, a full
disk) never replaces a good checkpoint with a half one; a save that fails is one :class:`RunError`
naming the folder and the disk. A resume reads the whole checkpoint first (:func:`read_checkpoint`)
and only then lets anything be written, so a damaged checkpoint changes nothing in the run.
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from pickle import UnpicklingError
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mmnewsrec.atomic import atomic_directory, free_space
from mmnewsrec.errors import MmnewsrecError
from mmnewsrec.models.build import load_weights, save_weights
from mmnewsrec.models.recommender import NewsRecommender, NewsVectorCache
from mmnewsrec.runs.layout import HISTORY_CACHE_FILE, OPTIMIZER_FILE, RNG_FILE, STATE_FILE, RunError


@dataclass
class LoopState:
    """Where training is; saved with every checkpoint."""

    epoch: int = 0
    batch_in_epoch: int = 0  # micro-batches of this epoch already consumed (all processes)
    step: int = 0  # optimiser steps
    best_auc: float = -1.0
    best_step: int = -1
    evals_without_gain: int = 0
    stopped_early: bool = False
    processes: int = 1
    history: list[dict] = field(default_factory=list)
    elapsed_s: float = 0.0  # wall-clock seconds of training (evaluations included), across resumes


@dataclass
class Checkpoint:
    """A checkpoint read whole into memory (its weights already loaded into the model it was read for)."""

    folder: Path
    state: LoopState
    optimizer: dict[str, Any]  # {"optimizer": state dict, "scheduler": state dict}
    rng: torch.Tensor
    history_cache: dict[str, torch.Tensor] | None

    def restore(self, optimizer, scheduler, history_cache: NewsVectorCache | None) -> LoopState:
        """Puts the optimiser, scheduler, history cache and RNG back; returns the loop position."""
        optimizer.load_state_dict(self.optimizer["optimizer"])
        scheduler.load_state_dict(self.optimizer["scheduler"])
        if history_cache is not None and self.history_cache is not None:
            history_cache.load_state_tensors(self.history_cache, step=self.state.step)
        torch.set_rng_state(self.rng)
        return self.state


def has_checkpoint(folder: Path) -> bool:
    return (folder / STATE_FILE).is_file()


def read_checkpoint(folder: Path, model: NewsRecommender, history_cache: bool) -> Checkpoint:
    """Reads every file of the checkpoint in ``folder`` and loads its weights into ``model``.

    Raises:
        RunError: a file is missing or damaged, naming it (nothing of the run is changed).
    """
    path = folder / STATE_FILE
    try:
        state = LoopState(**json.loads(path.read_text()))
        load_weights(model, folder)
        path = folder / OPTIMIZER_FILE
        saved = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(saved, dict) or not {"optimizer", "scheduler"} <= set(saved):
            raise ValueError("not an optimiser and scheduler state")
        path = folder / RNG_FILE
        rng = torch.load(path, weights_only=False)["torch"]
        cache = None
        if history_cache:
            path = folder / HISTORY_CACHE_FILE
            cache = load_file(str(path))
    except RunError:
        raise
    except MmnewsrecError as exc:
        raise RunError(f"{exc}; the checkpoint in {folder} cannot be resumed") from None
    except FileNotFoundError:
        raise RunError(
            f"{path}: missing from the checkpoint; it cannot be resumed (train again with --overwrite)"
        ) from None
    except (OSError, EOFError, RuntimeError, ValueError, TypeError, KeyError, SafetensorError, UnpicklingError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunError(
            f"{path}: damaged checkpoint file ({reason}); it cannot be resumed (train again with --overwrite)"
        ) from None
    return Checkpoint(folder, state, saved, rng, cache)


def write_checkpoint(
    folder: Path, model, optimizer, scheduler, state: LoopState, history_cache: NewsVectorCache | None
) -> None:
    """Saves a resumable checkpoint whole, or leaves the previous one as it was.

    Raises:
        RunError: the save failed (a full disk, say), naming the folder and the space left on its disk.
    """
    try:
        with atomic_directory(folder) as tmp:
            save_weights(model, tmp)
            payload = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
            torch.save(payload, tmp / OPTIMIZER_FILE)
            torch.save({"torch": torch.get_rng_state()}, tmp / RNG_FILE)
            if history_cache is not None:
                save_file(history_cache.state_tensors(), str(tmp / HISTORY_CACHE_FILE))
            (tmp / STATE_FILE).write_text(json.dumps(state.__dict__, indent=1))
    except (OSError, RuntimeError, SafetensorError) as exc:
        raise CheckpointWriteError(save_failure(folder, exc)) from None


def write_weights(folder: Path, model: NewsRecommender) -> None:
    """Saves the model's weights alone (``checkpoints/best``) whole, or leaves the previous ones.

    Raises:
        RunError: the save failed (a full disk, say), naming the folder and its disk.
    """
    try:
        with atomic_directory(folder) as tmp:
            save_weights(model, tmp)
    except (OSError, RuntimeError, SafetensorError) as exc:
        raise CheckpointWriteError(save_failure(folder, exc, what="the weights")) from None


class CheckpointWriteError(RunError, OSError):
    """A checkpoint or weights that could not be written; the previous ones are intact.

    Also an :class:`OSError` (its cause is the disk), with the whole message as its text.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def save_failure(
    folder: Path, exc: BaseException, what: str = "the checkpoint", then: str = "continue with --resume"
) -> str:
    """One line for a failed write of ``what`` into ``folder``: the disk and its free space, whether
    the previous checkpoint is intact, and what to do ``then``."""
    free, where = free_space(folder)
    full = getattr(exc, "errno", None) == errno.ENOSPC or "unexpected pos" in str(exc) or 0 <= free < 1 << 20
    reason = os.strerror(errno.ENOSPC) if full else (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    previous = "the previous checkpoint is intact" if (folder / STATE_FILE).is_file() else "no earlier checkpoint"
    return f"{folder}: {what} could not be written ({reason}; {where}); {previous}. Free some space, then {then}"
