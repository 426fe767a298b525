"""MIND's knowledge entities: the entity columns of news.tsv and entity_embedding.vec, read whole
or refused with the file, the line and (for JSON) the column."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mmnewsrec.data.mind import parse_entities, read_entity_vectors, read_news
from mmnewsrec.errors import DataFormatError

PGA = {"Label": "PGA Tour", "Type": "O", "WikidataId": "Q910409", "Confidence": 1.0, "OccurrenceOffsets": [0]}
GOLF = {"Label": "Golf", "Type": "S", "WikidataId": "Q5377", "Confidence": 0.87, "SurfaceForms": ["golf"]}


def news_line(news_id: str, title_entities: str, abstract_entities: str = "[]") -> str:
    return f"{news_id}\tsports\tsportsgolf\tPGA Tour golf\tGolf news.\thttps://x/{news_id}\t{title_entities}\t{abstract_entities}\n"


def test_entities_of_title_and_abstract_are_read_once_each(tmp_path: Path) -> None:
    path = tmp_path / "news.tsv"
    lines = [
        news_line("N1", json.dumps([PGA, GOLF]), json.dumps([{**GOLF, "Confidence": 0.5}, {"WikidataId": "Q1"}])),
        news_line("N2", "[]", ""),  # no entities: an empty list, or nothing at all
    ]
    path.write_text("".join(lines), encoding="utf-8")
    entities = parse_entities(read_news(path), path)
    assert entities.ids.to_pylist() == [["Q910409", "Q5377", "Q1"], []]
    assert entities.confidence.to_pylist() == [[1.0, pytest.approx(0.87), 1.0], []]  # the title's first
    assert entities.distinct() == ["Q910409", "Q5377", "Q1"]


@pytest.mark.parametrize(
    ("title_entities", "message"),
    [
        ('[{"WikidataId": "Q1",}]', "title_entities (column {col}): not valid JSON (Expecting property name"),
        ('{"WikidataId": "Q1"}', "title_entities (column {col}): expected a JSON list of entities, got dict"),
        ('[{"Label": "x"}]', "title_entities (column {col}): entity 0: WikidataId must be an id"),
        ('[{"WikidataId": "Q1", "Confidence": 1.5}]', "entity 0 (Q1): Confidence must be a number in [0, 1]"),
    ],
)
def test_a_malformed_entity_field_names_file_line_and_column(tmp_path: Path, title_entities: str, message: str):
    path = tmp_path / "news.tsv"
    bad = news_line("N2", title_entities)
    path.write_text(news_line("N1", json.dumps([PGA])) + bad, encoding="utf-8")
    column = bad.index(title_entities) + 1
    if "not valid JSON" in message:
        column += title_entities.index(",}") + 1  # where the decoder stopped: the bad character
    with pytest.raises(DataFormatError) as refused:
        read_news(path)
    assert str(refused.value).startswith(f"{path}:2: ")
    assert message.format(col=column) in str(refused.value), str(refused.value)


def test_entity_vectors_are_read_with_their_ids(tmp_path: Path) -> None:
    path = tmp_path / "entity_embedding.vec"
    path.write_text("Q1\t0.5\t-1.0\t2\t\nQ2\t1e-3\t0\t-0.25\t\n\n", encoding="utf-8")  # MIND ends lines with a tab
    vectors = read_entity_vectors(path)
    assert vectors.ids == ["Q1", "Q2"] and vectors.dim == 3
    np.testing.assert_allclose(vectors.vectors, [[0.5, -1.0, 2.0], [1e-3, 0.0, -0.25]])
    assert vectors.rows(["Q2", "Q404", "Q1"]).tolist() == [1, -1, 0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Q1\t0.5\t1\nQ2\t0.5\n", ":2: Q2: 1 values, where line 1 has 2"),
        ("Q1\t0.5\tx\n", ":1: Q1: 'x' is not a number"),
        ("Q1\t0.5\nQ1\t0.7\n", ":2: entity 'Q1' is listed twice (first at line 1)"),
        ("Q1\n", ":1: expected an entity id, then its vector's values"),
        ("Q1\tnan\n", ":1: Q1: the vector holds a value that is not finite"),
    ],
)
def test_a_malformed_entity_vector_file_names_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "entity_embedding.vec"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataFormatError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        read_entity_vectors(path)
    with pytest.raises(DataFormatError, match="file not found"):
        read_entity_vectors(tmp_path / "none.vec")
