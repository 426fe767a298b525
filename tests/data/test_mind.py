from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from mmnewsrec.config import DataConfig
from mmnewsrec.data.mind import load_mind, read_behaviors, read_news, read_split
from mmnewsrec.data.vocab import UNK_INDEX
from mmnewsrec.errors import DataFormatError

NEWS_LINE = "N9\tnews\tnewsus\tTitle\tAbstract\thttps://x\t[]\t[]\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_fixture_train_split_exactly(mind_sample: Path) -> None:
    split = read_split(mind_sample / "train")
    assert split.news["news_id"].to_pylist() == ["N1", "N2", "N3", "N4"]
    assert split.news["title"][0].as_py() == 'Tiger wins "the" Masters again'  # bare quotes survive
    assert split.news["abstract"][1].as_py() == ""
    b = split.behaviors
    assert b["impression_id"].to_pylist() == [1, 2, 3]
    assert b["user_id"].to_pylist() == ["U1", "U2", "U1"]
    assert b["time"][0].as_py() == dt.datetime(2019, 11, 11, 9, 5, 58)
    assert b["time"][1].as_py() == dt.datetime(2019, 11, 12, 12, 30, 0)  # 12:30 PM is just past noon
    assert b["time"][2].as_py() == dt.datetime(2019, 11, 13, 23, 59, 59)
    assert b["history"].to_pylist() == [["N1", "N2"], [], ["N1", "N2", "N3"]]
    assert b["candidates"].to_pylist() == [["N3", "N4"], ["N1", "N2", "N4"], ["N4", "N2"]]
    assert b["labels"].to_pylist() == [[1, 0], [0, 0, 1], [1, 0]]
    assert split.labelled
    np.testing.assert_array_equal(split.candidate_offsets(), [0, 2, 5, 7])
    np.testing.assert_array_equal(split.flat_labels(), [1, 0, 0, 0, 1, 1, 0])
    assert split.flat_candidates().to_pylist() == ["N3", "N4", "N1", "N2", "N4", "N4", "N2"]


def test_test_split_without_labels(mind_sample: Path) -> None:
    split = read_split(mind_sample / "test")
    assert not split.labelled
    assert split.behaviors["candidates"].to_pylist() == [["N5", "N6"]]
    assert split.behaviors["labels"].null_count == 1
    with pytest.raises(DataFormatError, match="no click labels"):
        split.flat_labels()


def test_crlf_line_endings_parse_the_same(mind_sample: Path) -> None:
    for name in ("news.tsv", "behaviors.tsv"):
        path = mind_sample / "train" / name
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    split = read_split(mind_sample / "train")
    assert split.behaviors["candidates"][2].as_py() == ["N4", "N2"]
    assert split.news["url"][3].as_py() == "https://example.org/N4"


@pytest.mark.parametrize(
    ("line3", "message"),
    [
        ("3\tU1\t11/13/2019 1:00:00 PM\tN1", "expected 5 tab-separated columns, found 4"),
        ("3\tU1\t11/13/2019 1:00:00 PM\tN1\tN3-1 N4-0\textra", "expected 5 tab-separated columns, found 6"),
        ("3\tU1\t11/13/2019 1:00:00 PM\tN1\tN3-1 N4", "impression token 'N4' is not NEWSID-LABEL"),
        ("3\tU1\t11/13/2019 1:00:00 PM\tN1\tN3-1 N4-2", "label '2' is not 0 or 1"),
        ("3\tU1\t2019-11-13 13:00:00\tN1\tN3-1 N4-0", "does not match 'M/D/YYYY h:mm:ss AM|PM'"),
        ("3\tU1\t13/45/2019 1:00:00 PM\tN1\tN3-1 N4-0", "time '13/45/2019 1:00:00 PM'"),
        ("x3\tU1\t11/13/2019 1:00:00 PM\tN1\tN3-1 N4-0", "impression id 'x3' is not a non-negative integer"),
        ("3\t\t11/13/2019 1:00:00 PM\tN1\tN3-1 N4-0", "empty user id"),
        ("3\tU1\t11/13/2019 1:00:00 PM\tN1\t  ", "impression has no candidates"),
        ("1\tU1\t11/13/2019 1:00:00 PM\tN1\tN3-1 N4-0", "duplicate impression id 1 \\(first seen on line 1\\)"),
        ("", "empty line"),
    ],
)
def test_behaviors_errors_name_file_and_line(tmp_path: Path, line3: str, message: str) -> None:
    good = "1\tU1\t11/11/2019 9:05:58 AM\tN1 N2\tN3-1 N4-0\n2\tU2\t11/12/2019 1:00:00 PM\t\tN1-0 N4-1\n"
    path = write(tmp_path / "behaviors.tsv", good + line3 + "\n4\tU4\t11/14/2019 1:00:00 PM\t\tN1-1 N2-0\n")
    with pytest.raises(DataFormatError, match=message) as info:
        read_behaviors(path)
    assert info.value.line == 3
    assert str(info.value).startswith(f"{path}:3: ")


def test_news_errors_name_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "news.tsv", NEWS_LINE + NEWS_LINE.replace("N9", "N8") + NEWS_LINE)
    with pytest.raises(DataFormatError, match=r"news.tsv:3: duplicate news id 'N9' \(first seen on line 1\)"):
        read_news(path)
    write(path, NEWS_LINE + "N8\tnews\tnewsus\tTitle only\n")
    with pytest.raises(DataFormatError, match=r"news.tsv:2: expected 8 tab-separated columns, found 4"):
        read_news(path)
    with pytest.raises(DataFormatError, match="file not found"):
        read_news(tmp_path / "absent.tsv")


def test_unknown_news_policy(mind_sample: Path) -> None:
    behaviors = mind_sample / "train" / "behaviors.tsv"
    text = behaviors.read_text().replace("N1 N2 N3\tN4-1 N2-0", "N1 N77 N3\tN4-1 N88-0")
    text += "4\tU5\t11/13/2019 11:00:00 PM\t\tN99-1\n"
    behaviors.write_text(text)
    with pytest.raises(DataFormatError, match=r"behaviors.tsv:3: history references news id 'N77'") as info:
        read_split(mind_sample / "train", on_unknown_news="error")
    assert "3 unknown references" in str(info.value)

    kept = read_split(mind_sample / "train", on_unknown_news="keep")
    assert kept.unknown_news_refs == 3
    assert kept.behaviors["candidates"][2].as_py() == ["N4", "N88"]

    dropped = read_split(mind_sample / "train", on_unknown_news="drop")
    assert dropped.unknown_news_refs == 3
    assert dropped.dropped_impressions == 1  # impression 4 had only the unknown candidate
    assert dropped.behaviors["impression_id"].to_pylist() == [1, 2, 3]
    assert dropped.behaviors["history"][2].as_py() == ["N1", "N3"]
    assert dropped.behaviors["candidates"][2].as_py() == ["N4"]
    assert dropped.behaviors["labels"][2].as_py() == [1]


def test_load_mind_catalogue_and_train_only_vocabs(mind_sample: Path) -> None:
    dataset = load_mind(mind_sample)
    assert list(dataset.splits) == ["train", "dev", "test"]
    # Train news first, in file order, then news first seen in dev (test adds none).
    assert dataset.news["news_id"].to_pylist() == ["N1", "N2", "N3", "N4", "N5", "N6"]
    np.testing.assert_array_equal(dataset.news_rows(dataset["dev"].flat_candidates()), [4, 5, 3, 4, 5])
    vocabs = dataset.vocabs
    assert vocabs is not None
    assert vocabs.categories.tokens == ("<pad>", "<unk>", "sports", "finance", "news")
    assert vocabs.categories.lookup(["weather"])[0] == UNK_INDEX  # only in dev: unknown to train vocab
    assert vocabs.users.lookup(["U1", "U3"]).tolist() == [2, UNK_INDEX]
    with pytest.raises(KeyError, match="N404"):
        dataset.news_rows(np.array(["N404"]))


def test_load_mind_only_named_splits_and_missing_root(mind_sample: Path, tmp_path: Path) -> None:
    dataset = load_mind(mind_sample, splits=("dev",))
    assert list(dataset.splits) == ["dev"] and dataset.vocabs is None
    with pytest.raises(DataFormatError, match="dataset folder not found"):
        load_mind(tmp_path / "nope")
    with pytest.raises(DataFormatError, match="split folder not found"):
        load_mind(mind_sample, splits=("valid",))
    with pytest.raises(DataFormatError, match="no split folders"):
        load_mind(tmp_path)


def test_load_mind_respects_unknown_news_config(mind_sample: Path) -> None:
    (mind_sample / "dev" / "behaviors.tsv").write_text("10\tU1\t11/15/2019 8:00:00 AM\tN3 N404\tN5-0 N6-1\n")
    with pytest.raises(DataFormatError, match="N404"):
        load_mind(mind_sample)
    dataset = load_mind(mind_sample, DataConfig(root=str(mind_sample), on_unknown_news="drop"))
    assert dataset["dev"].behaviors["history"][0].as_py() == ["N3"]


def test_a_news_id_with_white_space_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "news.tsv", NEWS_LINE + NEWS_LINE.replace("N9", "N 10"))
    with pytest.raises(DataFormatError, match=r"news.tsv:2: news id 'N 10' contains white space"):
        read_news(path)


def test_a_news_id_whose_content_differs_between_splits(mind_sample: Path) -> None:
    dev_news = mind_sample / "dev" / "news.tsv"
    lines = dev_news.read_text().splitlines()
    shared = next(i for i, line in enumerate(lines) if line.split("\t")[0] == "N3")
    fields = lines[shared].split("\t")
    fields[2] = "financebonds"
    lines[shared] = "\t".join(fields)
    dev_news.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError) as error:
        load_mind(mind_sample)
    message = str(error.value)
    assert f"dev/news.tsv:{shared + 1}: news 'N3' has a different subcategory than in" in message
    assert "train/news.tsv:3" in message
    dataset = load_mind(mind_sample, DataConfig(on_conflicting_news="first"))
    row = dataset.news["news_id"].to_pylist().index("N3")
    assert dataset.news["subcategory"][row].as_py() == "financemarkets"  # train's version, as documented
    load_mind(mind_sample, splits=("dev",))  # one split alone has nothing to disagree with


BLOCK_CASES = [
    ("3\tU1\t11/13/2019 1:00:00 PM\tN1", "expected 5 tab-separated columns, found 4"),
    ("3\tU1\t11/13/2019 1:00:00 PM\tN1\tN3-1 N4-2", "label '2' is not 0 or 1"),
    ("3\tU1\t2019-11-13 13:00:00\tN1\tN3-1 N4-0", "does not match 'M/D/YYYY h:mm:ss AM|PM'"),
    ("3\tU1\t11/13/2019 1:00:00 PM\tN1\t  ", "impression has no candidates"),
    ("1\tU1\t11/13/2019 1:00:00 PM\tN1\tN3-1 N4-0", "duplicate impression id 1 \\(first seen in an earlier block\\)"),
    ("3\tU1\t11/13/2019 1:00:00 PM\tN1\tN3 N4", "impression token 'N3' is not NEWSID-LABEL"),
    ("", "empty line"),
]


@pytest.mark.parametrize(("line3", "message"), BLOCK_CASES)
def test_block_reading_names_the_files_line(tmp_path: Path, line3: str, message: str) -> None:
    from mmnewsrec.data.mind import iter_behavior_blocks

    good = "1\tU1\t11/11/2019 9:05:58 AM\tN1 N2\tN3-1 N4-0\n2\tU2\t11/12/2019 1:00:00 PM\t\tN1-0 N4-1\n"
    path = write(tmp_path / "behaviors.tsv", good + line3 + "\n4\tU4\t11/14/2019 1:00:00 PM\t\tN1-1 N2-0\n")
    with pytest.raises(DataFormatError, match=message) as info:
        list(iter_behavior_blocks(path, block_lines=2))  # the bad line opens the second block
    assert info.value.line == 3 and str(info.value).startswith(f"{path}:3: ")


def test_a_block_without_labels_after_labelled_ones_is_refused(tmp_path: Path) -> None:
    from mmnewsrec.data.mind import iter_behavior_blocks

    good = "1\tU1\t11/11/2019 9:05:58 AM\tN1 N2\tN3-1 N4-0\n"
    path = write(tmp_path / "behaviors.tsv", good + "2\tU2\t11/12/2019 1:00:00 PM\t\tN1 N4\n")
    with pytest.raises(DataFormatError, match="some impressions carry click labels and others do not") as info:
        list(iter_behavior_blocks(path, block_lines=1))
    assert info.value.line == 2


@pytest.mark.parametrize("block_lines", [1, 2, 3, 1000])
def test_blocks_put_together_are_the_whole_file(mind_sample: Path, block_lines: int) -> None:
    import pyarrow as pa

    from mmnewsrec.data.mind import iter_behavior_blocks

    path = mind_sample / "train" / "behaviors.tsv"
    whole = read_behaviors(path)
    blocks = list(iter_behavior_blocks(path, block_lines=block_lines))
    assert [b.index for b in blocks] == list(range(len(blocks)))
    assert [b.first_line for b in blocks] == [1 + i * block_lines for i in range(len(blocks))]
    joined = pa.concat_tables([b.result.table for b in blocks]).combine_chunks()
    assert joined.equals(whole.table) and all(b.result.labelled == whole.labelled for b in blocks)
    taken = list(iter_behavior_blocks(path, block_lines=block_lines, take=lambda i: i % 2 == 1))
    assert [b.index for b in taken] == [b.index for b in blocks if b.index % 2 == 1]


def test_the_news_catalogue_alone_equals_load_minds(tiny_mind: Path) -> None:
    from mmnewsrec.data.mind import load_news_catalogue

    assert load_news_catalogue(tiny_mind).equals(load_mind(tiny_mind).news)
    with pytest.raises(DataFormatError, match="no split folders found"):
        load_news_catalogue(tiny_mind / "train")


@pytest.mark.parametrize(
    "garbage", [b"\xd0\x9f\xff\xfe binary\tstuff\n", b"3\tU\xff1\t11/13/2019 1:00:00 PM\tN1\tN3-1\n"]
)
def test_bytes_that_are_not_utf8_are_one_error_naming_the_line(tmp_path: Path, capfd, garbage: bytes) -> None:
    good = b"1\tU1\t11/11/2019 9:05:58 AM\tN1 N2\tN3-1 N4-0\n2\tU2\t11/12/2019 1:00:00 PM\t\tN1-0 N4-1\n"
    path = tmp_path / "behaviors.tsv"
    path.write_bytes(good + garbage + good.replace(b"1\tU1", b"4\tU4", 1).split(b"\n")[0] + b"\n")
    with pytest.raises(DataFormatError, match=r"behaviors.tsv:3: not UTF-8 text \(byte 0x") as info:
        read_behaviors(path)
    assert "\ufffd" not in str(info.value) and "\\x" not in str(info.value)
    captured = capfd.readouterr()
    assert "Exception ignored" not in captured.err and "Traceback" not in captured.err


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (b"4\tU\xff4\t11/13/2019 1:00:00 PM\tN1\tN3-1", r"behaviors.tsv:4: not UTF-8 text \(byte 0xff at column 4\)"),
        (b"4\tU4\t11/13/2019 1:00:00 PM\tN1", r"behaviors.tsv:4: expected 5 tab-separated columns, found 4"),
    ],
)
def test_a_bare_carriage_return_ends_a_line_for_every_message(tmp_path: Path, bad: bytes, message: str) -> None:
    """Arrow's reader ends a line at a bare CR (old Mac files, a stray byte): the line numbers of
    every error count lines the same way."""
    first = b"1\tU1\t11/11/2019 9:05:58 AM\tN1 N2\tN3-1 N4-0\r"  # a bare CR: line 1 ends here
    lines = b"2\tU2\t11/12/2019 1:00:00 PM\t\tN1-0 N4-1\n3\tU3\t11/12/2019 2:00:00 PM\t\tN1-1 N4-0\n"
    path = tmp_path / "behaviors.tsv"
    path.write_bytes(first + lines + bad + b"\n")
    with pytest.raises(DataFormatError, match=message):
        read_behaviors(path)


def test_a_line_longer_than_the_readers_block_is_read_whole(tmp_path: Path, monkeypatch) -> None:
    """A 50 MB title would straddle Arrow's 16 MiB blocks; shown here with 1 KiB blocks."""
    from mmnewsrec.data.mind import tsv

    monkeypatch.setattr(tsv, "BLOCK_BYTES", 1024)
    long_title = "W" * 5000
    path = write(
        tmp_path / "news.tsv", NEWS_LINE + NEWS_LINE.replace("N9", "N8").replace("\tTitle", "\t" + long_title, 1)
    )
    news = read_news(path)
    assert news.num_rows == 2 and long_title in news["title"][1].as_py()


def test_a_dataset_location_reads_with_the_configs_policies_wherever_the_data_is(
    mind_sample: Path, tmp_path: Path
) -> None:
    """`--data` moves the root; the unknown-news policy and image folder still come from the config."""
    from mmnewsrec.config import ImageConfig
    from mmnewsrec.data.mind import DatasetLocation

    behaviors = mind_sample / "train" / "behaviors.tsv"
    behaviors.write_text(behaviors.read_text().replace("N1 N2 N3\tN4-1 N2-0", "N1 N77 N3\tN4-1 N2-0"))
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    config = DataConfig(root="/nowhere", on_unknown_news="drop", images=ImageConfig(directory=str(pictures)))
    location = DatasetLocation.resolve(config, mind_sample)
    assert location.root == mind_sample and location.image_dir == pictures
    assert location.read_split("train").unknown_news_refs == 1  # dropped, as the config says
    strict = DatasetLocation.resolve(DataConfig(root=str(mind_sample)))
    assert strict.root == mind_sample
    with pytest.raises(DataFormatError, match="history references news id 'N77'"):
        strict.read_split("train")
    assert location.load(("train",)).splits["train"].unknown_news_refs == 1
