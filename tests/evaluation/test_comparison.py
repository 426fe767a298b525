"""The report's analyses are pure functions of predictions: tables of values, rendered apart."""

from __future__ import annotations

import numpy as np

from mmnewsrec.evaluation.analysis import SIZE_GROUPS, Interval, Resamples, impression_metrics
from mmnewsrec.evaluation.comparison import Paired, RunPredictions, impression_breakdown, main_table, paired_table
from mmnewsrec.evaluation.rendering import cell_text, table_csv, table_markdown


def predictions(name: str, scores: np.ndarray, labels: np.ndarray, offsets: np.ndarray) -> RunPredictions:
    return RunPredictions(name, scores, impression_metrics(scores, labels, offsets), train_seconds=12.5)


def test_tables_hold_values_and_the_renderer_formats_them() -> None:
    rng = np.random.default_rng(0)
    offsets = np.arange(0, 41 * 5, 5)  # 40 impressions of 5 candidates, one click each
    labels = np.zeros(offsets[-1], dtype=np.int8)
    labels[offsets[:-1]] = 1
    perfect = predictions("perfect", labels + 0.0, labels, offsets)
    noisy = predictions("noisy", rng.random(len(labels)), labels, offsets)
    resamples = Resamples(len(offsets) - 1, samples=100, seed=0)
    main, found = main_table([perfect, noisy], resamples, "Main")
    assert isinstance(main.rows[0][1], Interval) and main.rows[0][1].mean == 1.0
    assert found["perfect"][0].mean == 1.0 and found["noisy"][0].mean < 1.0
    assert main.rows[0][5] == 12.5 and main.rows[0][-1] == 40  # training seconds, scorable impressions
    paired = paired_table([perfect, noisy], perfect, resamples)
    assert isinstance(paired.rows[1][1], Paired) and paired.rows[1][1].difference.diff < 0
    assert cell_text(paired.rows[0][1]).startswith("+0.0000 [+0.0000, +0.0000] p=1")
    table, bars = impression_breakdown("size", "By size", [perfect], np.diff(offsets), SIZE_GROUPS, resamples)
    assert bars.groups == ["2-10"] and bars.counts == [40] and table.rows[0][:2] == ["2-10", 40]
    header = table_csv(main).splitlines()[0].split(",")
    assert header[:4] == ["run", "auc", "auc_low", "auc_high"]
    assert table_markdown(main).splitlines()[0] == "### Main" and "| perfect | 1.0000" in table_markdown(main)
