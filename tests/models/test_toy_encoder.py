"""A new news encoder is one class and its registry entry: declared here, it trains and evaluates
through the unchanged train and evaluate workflows, which build the features it declares."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from mmnewsrec.config import FeaturesConfig, NewsEncoderConfig
from mmnewsrec.features.plan import FeatureNeed, TokensNeed
from mmnewsrec.models.news_encoders import NEWS_ENCODERS, ModelContext, NewsEncoder
from mmnewsrec.workflows.evaluate import run_evaluate
from mmnewsrec.workflows.train import run_train
from tests.run_fixtures import word_config

TOKENIZER: dict[str, str] = {}  # set by the test: the tiny BERT's folder


@dataclass(frozen=True)
class BagOfWordsConfig(NewsEncoderConfig):
    """The toy encoder's keys: its own, and what every news encoder reads."""

    type: str = "toy_bag_of_words"
    text_field: str = "title"
    max_length: int = 16
    buckets: int = 4096


@NEWS_ENCODERS.register("toy_bag_of_words")
class BagOfWords(NewsEncoder):
    """Mean of hashed token embeddings over the title, projected."""

    config_class = BagOfWordsConfig

    @classmethod
    def feature_needs(cls, config: BagOfWordsConfig, features: FeaturesConfig) -> list[FeatureNeed]:
        return [TokensNeed(TOKENIZER["path"], config.text_field, config.max_length)]

    def __init__(self, config: BagOfWordsConfig, context: ModelContext):
        super().__init__()
        self.field = config.text_field
        self.buckets = config.buckets
        self.embed = nn.Embedding(config.buckets, config.dim)
        self.dim = config.dim

    def inputs(self) -> list[str]:
        return [f"{self.field}_ids", f"{self.field}_mask"]

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        ids, mask = inputs[f"{self.field}_ids"] % self.buckets, inputs[f"{self.field}_mask"]  # (U, L)
        words = self.embed(ids) * mask.unsqueeze(-1)  # (U, L, dim), padding zeroed
        return words.sum(1) / mask.sum(1, keepdim=True).clamp(min=1)  # (U, dim)


def test_a_toy_encoder_trains_and_evaluates_through_the_workflows(tiny_mind: Path, tiny_bert: Path, tmp_path: Path):
    TOKENIZER["path"] = str(tiny_bert)
    config = word_config(tiny_mind, tiny_bert, tmp_path / "cache", max_steps=6, eval_impressions=60)
    news = BagOfWordsConfig(dim=64, buckets=1024)
    config = replace(config, model=replace(config.model, news=news))
    record = run_train(config, run_dir=tmp_path / "run")
    assert record["steps"] == 6 and 0 < record["auc"] < 1
    evaluated = run_evaluate(tmp_path / "run", split="dev")
    assert evaluated["auc"] == record["auc"]
    assert list((tmp_path / "cache").glob("tokens-*")), "the declared token feature was built"
