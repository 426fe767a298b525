"""The training loop, on Hugging Face Accelerate (mixed precision, accumulation, DDP via ``accelerate launch``).

One optimiser step = ``grad_accum`` micro-batches of ``batch_size`` samples on every process. Each
sample is a click with K sampled non-clicks of the same impression; the loss is softmax
cross-entropy over the 1 + K logits, or the study's class-weighted pointwise loss
(``training.loss``, :mod:`mmnewsrec.training.losses`). Under several processes, micro-batch
``b`` of an epoch goes to process ``b % world_size``; every process runs the same number of steps.

Checkpoints (``run/checkpoints/last``) hold the model parts in safetensors, the optimiser and
scheduler state, the RNG state, the history-vector cache and the loop position; they are written to
a temporary folder and renamed, so an interrupted save never replaces a good checkpoint with a half
one. ``resume=True`` continues from the last checkpoint: same samples, same order, same result as
an uninterrupted run. Learning-rate settings given on resume replace the saved ones.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from mmnewsrec.batching.batch import ImpressionArrays, TrainSampler
from mmnewsrec.batching.features import NewsFeatures
from mmnewsrec.config import TrainingConfig
from mmnewsrec.evaluation.evaluate import evaluate
from mmnewsrec.models.recommender import NewsRecommender, NewsVectorCache
from mmnewsrec.runs.checkpoint import (
    Checkpoint,
    LoopState,
    has_checkpoint,
    read_checkpoint,
    write_checkpoint,
    write_weights,
)
from mmnewsrec.runs.distributed import distributed_state
from mmnewsrec.runs.layout import RunDir, RunError
from mmnewsrec.runs.metrics_log import MetricsLog
from mmnewsrec.training.losses import training_loss

logger = logging.getLogger(__name__)


def learning_rates(config: TrainingConfig) -> dict[str, float]:
    """Base learning rate of each named parameter group of :func:`build_optimizer`."""
    return {"new": config.lr, "pretrained": config.pretrained_lr or config.lr, "blend": config.blend_lr or config.lr}


def weight_decay(config: TrainingConfig, group: str) -> float:
    """AdamW weight decay of the named parameter group: none for the ``blend`` weights."""
    return 0.0 if group == "blend" else config.weight_decay


def blend_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The few weights that blend the baselines' signals into the score (the profile's scales and
    smoothing, the content part's scale, the recent-popularity weight), as each module names them
    in its ``blend_parameters()``."""
    found: dict[int, torch.nn.Parameter] = {}
    for module in model.modules():
        names = getattr(module, "blend_parameters", None)
        if names is not None:
            found.update((id(p), p) for p in names() if p.requires_grad)
    return list(found.values())


def build_optimizer(model: NewsRecommender, config: TrainingConfig) -> torch.optim.Optimizer:
    """AdamW with parameter groups named in the group (and so in saved optimiser state): ``new``
    weights, ``pretrained`` backbone weights (absent when none train) and, with
    ``training.blend_lr``, the ``blend`` weights (:func:`blend_parameters`), without weight decay."""
    pretrained_ids = {id(p) for p in model.news_encoder.pretrained_parameters()}
    blend = blend_parameters(model) if config.blend_lr is not None else []
    blend_ids = {id(p) for p in blend}
    pretrained = [p for p in model.parameters() if p.requires_grad and id(p) in pretrained_ids]
    new = [p for p in model.parameters() if p.requires_grad and id(p) not in pretrained_ids | blend_ids]
    rates = learning_rates(config)
    groups = [{"params": new, "lr": rates["new"], "name": "new"}]
    if pretrained:
        groups.append({"params": pretrained, "lr": rates["pretrained"], "name": "pretrained"})
    if blend:
        groups.append({"params": blend, "lr": rates["blend"], "name": "blend"})
    for group in groups:
        group["weight_decay"] = weight_decay(config, group["name"])
    return torch.optim.AdamW(groups)


def linear_warmup_decay(optimizer: torch.optim.Optimizer, total_steps: int, warmup_ratio: float):
    warmup = max(1, int(total_steps * warmup_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def apply_settings(optimizer: torch.optim.Optimizer, scheduler, config: TrainingConfig) -> None:
    """Puts the configured learning rates and weight decay over restored optimiser and scheduler
    state (a resume that changed them), at the schedule's current position."""
    rates = learning_rates(config)
    scheduler.base_lrs = [rates[group["name"]] for group in optimizer.param_groups]
    for group, base, lr_lambda in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True):
        group["initial_lr"] = base
        group["lr"] = base * lr_lambda(scheduler.last_epoch)
        group["weight_decay"] = weight_decay(config, group["name"])
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


def resolve_mixed_precision(setting: str) -> str:
    """The accelerate setting that ``training.mixed_precision`` means on this machine (auto: bf16,
    else fp16, on a GPU; no autocast on the CPU)."""
    if setting != "auto":
        return setting
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"


def train(
    model: NewsRecommender,
    features: NewsFeatures,
    train_arrays: ImpressionArrays,
    dev_arrays: ImpressionArrays | None,
    config: TrainingConfig,
    run_dir: str | Path | RunDir,
    resume: bool = False,
    progress: bool = False,
    on_step: Callable[[LoopState], None] | None = None,
    checkpoint: Checkpoint | None = None,
) -> LoopState:
    """Trains ``model`` in place; returns the final loop state. Best weights go to ``run/checkpoints/best``
    (without ``dev_arrays``: the final weights).

    Args:
        resume: continue from ``run/checkpoints/last`` when it holds a checkpoint.
        on_step: called after every optimiser step (tests use it to interrupt a run).
        checkpoint: the checkpoint to continue from, already read (and its weights loaded into
            ``model``) by :func:`~mmnewsrec.runs.checkpoint.read_checkpoint`; implies ``resume``.
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    run_dir = run.path
    distributed_state()
    accelerator = Accelerator(
        mixed_precision=resolve_mixed_precision(config.mixed_precision), gradient_accumulation_steps=config.grad_accum
    )
    set_seed(config.seed)
    world, rank = accelerator.num_processes, accelerator.process_index
    sampler = TrainSampler(train_arrays, config.negatives, config.history_len, seed=config.seed)
    per_epoch = sampler.num_batches(config.batch_size) // world  # micro-batches per process
    if per_epoch == 0:
        raise ValueError(
            f"{len(sampler)} training samples: too few for batch size {config.batch_size} x {world} processes"
        )
    steps_per_epoch = max(1, per_epoch // config.grad_accum)
    total_steps = config.max_steps or steps_per_epoch * config.epochs
    optimizer = build_optimizer(model, config)
    scheduler = linear_warmup_decay(optimizer, total_steps, config.warmup_ratio)

    state = LoopState(processes=world)
    last = run.last
    history_cache = None
    if config.history_cache_steps:
        history_cache = NewsVectorCache(features.num_news, model.news_encoder.body_dim, config.history_cache_steps)
    if checkpoint is None and resume and has_checkpoint(last):
        checkpoint = read_checkpoint(last, model, history_cache is not None)
    resume = resume or checkpoint is not None
    if checkpoint is not None:
        state = checkpoint.restore(optimizer, scheduler, history_cache)
        if state.processes != world:
            raise RunError(
                f"{last}: saved by {state.processes} processes, resumed with {world}: sample order would differ"
            )
        apply_settings(optimizer, scheduler, config)
        logger.info("resumed at epoch %d, step %d", state.epoch, state.step)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    device = accelerator.device
    core = accelerator.unwrap_model(model)
    names = core.news_encoder.inputs()
    if history_cache is not None:
        history_cache.to(device)

    def gather(rows: torch.Tensor, only: list[str] | None = None) -> dict[str, torch.Tensor]:
        return features.gather(rows, names if only is None else only, device)

    log = MetricsLog(run_dir, enabled=accelerator.is_main_process, resume_step=state.step if resume else None)
    bar = tqdm(
        total=total_steps, initial=state.step, desc="train", disable=not (progress and accelerator.is_main_process)
    )
    loss_sum, loss_count, started, samples_seen = 0.0, 0, time.perf_counter(), 0
    elapsed_before = state.elapsed_s

    def clock() -> LoopState:
        """Brings ``state.elapsed_s`` up to now (what every log record and checkpoint carries)."""
        state.elapsed_s = elapsed_before + time.perf_counter() - started
        return state

    if config.eval_at_start and checkpoint is None:  # the weights are the initial ones
        _evaluate(core, features, dev_arrays, config, clock(), run, log, accelerator, progress)
    done = state.step >= total_steps or state.stopped_early
    # Whole optimiser steps only: an epoch never leaves half-accumulated gradients behind, so a
    # checkpoint at an epoch or step boundary captures the complete training state.
    usable = steps_per_epoch * config.grad_accum * world
    while not done and not state.stopped_early and state.epoch < config.epochs:
        model.train()
        batches = sampler.epoch_batches(state.epoch, config.batch_size, start_batch=state.batch_in_epoch)
        for index, batch in enumerate(batches, start=state.batch_in_epoch):
            if index >= usable:
                break
            state.batch_in_epoch = index + 1
            if index % world != rank:
                continue
            batch = batch.to(device)
            with accelerator.accumulate(model):
                logits = model(batch, gather, dedup=config.dedup_news, history_cache=history_cache)
                loss = training_loss(logits, batch, config)
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            loss_sum += float(loss.detach())
            loss_count += 1
            samples_seen += len(batch) * world
            if not accelerator.sync_gradients:
                continue
            if history_cache is not None:
                history_cache.tick()
            # The other processes' micro-batches of this step were consumed too.
            state.batch_in_epoch = min(usable, state.batch_in_epoch + (world - 1 - rank))
            state.step += 1
            bar.update(1)
            if state.step % config.log_every == 0:
                rate = samples_seen / (time.perf_counter() - started)
                record = {
                    "step": state.step,
                    "epoch": state.epoch,
                    "loss": loss_sum / loss_count,
                    "samples_per_s": rate,
                    "elapsed_s": clock().elapsed_s,
                }
                log.write("train", record)
                bar.set_postfix(loss=f"{record['loss']:.4f}", samples_s=f"{rate:.1f}")
                loss_sum, loss_count = 0.0, 0
            if config.eval_every and state.step % config.eval_every == 0:
                _evaluate(core, features, dev_arrays, config, clock(), run, log, accelerator, progress)
                _save_checkpoint(last, core, optimizer, scheduler, clock(), accelerator, history_cache)
            if on_step is not None:
                on_step(state)
            if state.step >= total_steps or state.stopped_early:
                done = True
                break
        if state.batch_in_epoch >= usable:  # the epoch ran to its end (possibly on the last step)
            state.epoch, state.batch_in_epoch = state.epoch + 1, 0
            if not config.eval_every:
                _evaluate(core, features, dev_arrays, config, clock(), run, log, accelerator, progress)
            _save_checkpoint(last, core, optimizer, scheduler, clock(), accelerator, history_cache)
    bar.close()
    if dev_arrays is not None and not state.history:
        _evaluate(core, features, dev_arrays, config, clock(), run, log, accelerator, progress)
    _save_checkpoint(last, core, optimizer, scheduler, clock(), accelerator, history_cache)
    if accelerator.is_main_process and dev_arrays is None:  # nothing to select on: the final weights
        write_weights(run.best, core)
    accelerator.wait_for_everyone()
    log.close()
    return state


def _evaluate(
    model: NewsRecommender,
    features: NewsFeatures,
    dev_arrays: ImpressionArrays | None,
    config: TrainingConfig,
    state: LoopState,
    run: RunDir,
    log: MetricsLog,
    accelerator,
    progress: bool,
) -> None:
    if dev_arrays is None:
        return
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        arrays = dev_arrays
        if config.eval_impressions and config.eval_impressions < len(dev_arrays):
            pick = np.random.default_rng(config.seed).choice(len(dev_arrays), config.eval_impressions, replace=False)
            arrays = dev_arrays.subset(np.sort(pick))
        result = evaluate(
            model, features, arrays, config.history_len, config.eval_batch_size, accelerator.device, progress
        )
        metrics = result.metrics.to_dict()
        record = {"step": state.step, "epoch": state.epoch, **metrics, "elapsed_s": state.elapsed_s}
        state.history.append(record)
        log.write("eval", record)
        logger.info(
            "step %d: dev auc %.4f mrr %.4f ndcg@10 %.4f",
            state.step,
            metrics["auc"],
            metrics["mrr"],
            metrics["ndcg@10"],
        )
        if metrics["auc"] > state.best_auc:
            state.best_auc, state.best_step, state.evals_without_gain = metrics["auc"], state.step, 0
            write_weights(run.best, model)
        else:
            state.evals_without_gain += 1
            state.stopped_early = bool(config.patience) and state.evals_without_gain >= config.patience
    # Every process needs the same early-stopping decision.
    flag = torch.tensor([1.0 if state.stopped_early else 0.0], device=accelerator.device)
    state.stopped_early = bool(accelerator.reduce(flag, reduction="sum").item() > 0)
    accelerator.wait_for_everyone()


def _save_checkpoint(
    folder: Path, model, optimizer, scheduler, state: LoopState, accelerator, history_cache: NewsVectorCache | None
) -> None:
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        write_checkpoint(folder, model, optimizer, scheduler, state, history_cache)
