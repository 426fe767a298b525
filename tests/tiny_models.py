"""Tiny random-initialised models of the real transformers classes, saved as local folders.

They go through exactly the loading code users run on hub names (``from_pretrained(folder)``),
without any download: hidden size 32, 2 layers, a word-level vocabulary of the synthetic data.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch

from mmnewsrec.data.synthetic import CATEGORY_WORDS, COMMON_WORDS, HOOK_WORDS

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
IMAGE_SIZE = 32


def save_tokenizer(folder: Path) -> int:
    from transformers import BertTokenizerFast

    words = sorted({w for ws in CATEGORY_WORDS.values() for w in ws} | set(COMMON_WORDS) | set(HOOK_WORDS))
    vocab = SPECIAL + [".", ",", '"', "-"] + words
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    path = str(folder / "vocab.txt")
    # transformers 5 takes the vocabulary as ``vocab``; 4.x as ``vocab_file``.
    takes_vocab = "vocab" in inspect.signature(BertTokenizerFast.__init__).parameters
    tokenizer = BertTokenizerFast(vocab=path) if takes_vocab else BertTokenizerFast(vocab_file=path)
    tokenizer.save_pretrained(folder)
    return len(vocab)


TEXT_SIZES = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("models") / "tiny-bert"
    vocab_size = save_tokenizer(folder)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=vocab_size, max_position_embeddings=64, **TEXT_SIZES)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    folder = tmp_path_factory.mktemp("models") / "tiny-vit"
    torch.manual_seed(0)
    ViTModel(ViTConfig(image_size=IMAGE_SIZE, patch_size=8, **TEXT_SIZES)).save_pretrained(folder)
    ViTImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_blip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import BlipConfig, BlipForImageTextRetrieval, BlipImageProcessor

    folder = tmp_path_factory.mktemp("models") / "tiny-blip"
    vocab_size = save_tokenizer(folder)
    config = BlipConfig(
        text_config=dict(vocab_size=vocab_size, max_position_embeddings=64, **TEXT_SIZES),
        # BlipVisionConfig initialises with std 1e-10 (meant to be overwritten by pretrained weights),
        # which would make every random image look the same: use a usual std.
        vision_config=dict(image_size=IMAGE_SIZE, patch_size=8, initializer_range=0.02, **TEXT_SIZES),
        image_text_hidden_size=16,
        projection_dim=16,
    )
    torch.manual_seed(0)
    BlipForImageTextRetrieval(config).save_pretrained(folder)
    BlipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}).save_pretrained(folder)
    return folder
