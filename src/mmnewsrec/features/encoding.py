"""Running pretrained backbones over news, shared by the frozen features and the trainable encoders:
pooling, the cut of a batch to its longest row, and BLIP's image-grounded-or-text-alone path."""

from __future__ import annotations

from typing import Any

import torch

from mmnewsrec.errors import MmnewsrecError


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` over positions where ``mask`` is True; all-False rows give zeros.

    Shape:
        hidden: (B, L, D); mask: (B, L) bool; returns (B, D).
    """
    weights = mask.to(hidden.dtype).unsqueeze(-1)  # (B, L, 1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def pool(output: Any, pooling: str, mask: torch.Tensor | None) -> torch.Tensor:
    """Pools a transformers model output into one vector per row. Shape: returns (B, D), or
    (B, L, D) with padding zeroed for ``tokens``."""
    hidden = output.last_hidden_state  # (B, L, D)
    if mask is None:  # image patches: every position is real
        mask = torch.ones(hidden.shape[:2], dtype=torch.bool, device=hidden.device)
    if pooling == "tokens":
        return hidden * mask.unsqueeze(-1).to(hidden.dtype)
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "mean":
        return masked_mean(hidden, mask)
    pooled = getattr(output, "pooler_output", None)
    if pooled is None:
        raise MmnewsrecError("pooling 'pooler': this model has no pooler output; use 'cls' or 'mean'")
    return pooled


def trim_to_longest(mask: torch.Tensor, *sequences: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Drops the columns that are padding in every row (at least one column stays), so a batch of
    short titles does not pay for the padding of the longest possible one.

    Shape:
        mask (B, L) bool, each sequence (B, L, ...) -> the same cut to (B, W[, ...]), W <= L.
    """
    width = max(int(mask.sum(1).max()), 1) if len(mask) else 1
    return (mask[:, :width], *(sequence[:, :width] for sequence in sequences))


def blip_text_output(
    text_encoder: torch.nn.Module,
    vision_model: torch.nn.Module,
    ids: torch.Tensor,
    mask: torch.Tensor,
    pixel_values: torch.Tensor,
    use_image: torch.Tensor,
) -> Any:
    """BLIP's text encoder over the title, cross-attending the image patches where ``use_image``,
    and alone (BLIP's unimodal text mode) where there is no image to attend to.

    Shape:
        ids, mask (B, L); pixel_values (B, 3, S, S) normalised; use_image (B,) bool ->
        an output with ``last_hidden_state`` (B, L, h).
    """
    from transformers.modeling_outputs import BaseModelOutput

    hidden = None
    for rows, fused in ((use_image, True), (~use_image, False)):
        if not rows.any():
            continue
        kwargs: dict[str, Any] = {"input_ids": ids[rows], "attention_mask": mask[rows].long()}
        if fused:
            patches = vision_model(pixel_values=pixel_values[rows]).last_hidden_state  # (b, P, Dv)
            kwargs["encoder_hidden_states"] = patches
            kwargs["encoder_attention_mask"] = torch.ones(patches.shape[:2], dtype=torch.long, device=patches.device)
        states = text_encoder(**kwargs).last_hidden_state  # (b, L, h)
        if hidden is None:
            hidden = states.new_zeros((len(ids), *states.shape[1:]))
        hidden[rows] = states.to(hidden.dtype)
    return BaseModelOutput(last_hidden_state=hidden)
