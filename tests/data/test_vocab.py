from __future__ import annotations

from pathlib import Path

import pytest

from mmnewsrec.data.vocab import PAD_INDEX, UNK_INDEX, Vocab


def test_fit_orders_by_frequency_then_name_and_maps_unknown(tmp_path: Path) -> None:
    vocab = Vocab.fit(["b", "a", "c", "a", "b", "a", "d"])
    assert vocab.tokens == ("<pad>", "<unk>", "a", "b", "c", "d")
    assert vocab.lookup(["a", "d", "zzz"]).tolist() == [2, 5, UNK_INDEX]
    assert len(vocab) == 6 and PAD_INDEX == 0
    vocab.save(tmp_path / "v.json")
    assert Vocab.load(tmp_path / "v.json") == vocab
    (tmp_path / "bad.json").write_text('["a", "b"]')
    with pytest.raises(ValueError, match="not a vocabulary file"):
        Vocab.load(tmp_path / "bad.json")
