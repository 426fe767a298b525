"""Builds a :class:`NewsRecommender` from a :class:`~mmnewsrec.config.ModelConfig`, and saves/loads it.

News- and user-encoder weights are saved to separate safetensors files, so either can be loaded
alone (e.g. a serving process that only re-encodes users).
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from mmnewsrec.config import ModelConfig
from mmnewsrec.models.news_encoders import ModelContext, build_news_encoder
from mmnewsrec.models.recommender import NewsRecommender
from mmnewsrec.models.scorers import SCORERS
from mmnewsrec.models.user_encoders import USER_ENCODERS

PARTS = ("news_encoder", "user_encoder", "scorer")


def build_model(config: ModelConfig, context: ModelContext) -> NewsRecommender:
    news_encoder = build_news_encoder(config.news, context)
    user_encoder = USER_ENCODERS.get(config.user.type)(news_encoder.dim, config.user)
    return NewsRecommender(news_encoder, user_encoder, SCORERS.get(config.scorer)())


def save_weights(model: NewsRecommender, folder: str | Path) -> None:
    """Writes ``news_encoder.safetensors``, ``user_encoder.safetensors`` (and the scorer's, if any)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for part in PARTS:
        state = {k: v.detach().contiguous().cpu() for k, v in getattr(model, part).state_dict().items()}
        if state:
            save_file(state, str(folder / f"{part}.safetensors"))


def load_weights(model: NewsRecommender, folder: str | Path, parts: tuple[str, ...] = PARTS) -> None:
    """Loads the named parts' weights saved by :func:`save_weights` (strict: every key must match)."""
    folder = Path(folder)
    for part in parts:
        path = folder / f"{part}.safetensors"
        module = getattr(model, part)
        if not path.is_file():
            if not module.state_dict():
                continue
            raise FileNotFoundError(f"{path}: no saved weights for {part}")
        module.load_state_dict(load_file(str(path), device="cpu"), strict=True)


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable}
