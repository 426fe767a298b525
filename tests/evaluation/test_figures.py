"""The report's figures say what the numbers say: bars from zero, every panel labelled."""

from __future__ import annotations

import matplotlib.pyplot as plt

from mmnewsrec.evaluation import figures
from mmnewsrec.evaluation.analysis import Interval


def test_breakdown_bars_start_at_zero_and_mark_a_random_ranking() -> None:
    values = {"a": [Interval(0.71, 0.69, 0.73), Interval(0.66, 0.62, 0.70)], "b": [Interval(0.70, 0.68, 0.72)] * 2}
    figure = figures._breakdown_figure("AUC by history length", ["0-4", "5+"], values, [120, 380], "AUC")
    axis = figure.axes[0]
    assert axis.get_ylim() == (0.0, 1.0)
    assert any(list(line.get_ydata()) == [0.5, 0.5] for line in axis.get_lines())
    plt.close(figure)
    assert figures.breakdown_bars("t", ["0-4", "5+"], values, [120, 380], "AUC").startswith(b"\x89PNG")


def test_every_training_curve_panel_has_a_y_label(monkeypatch) -> None:
    made = []
    monkeypatch.setattr(figures, "_png", lambda figure: made.append(figure) or b"")
    curves = {"run": {"loss": [(1, 10.0, 0.9), (2, 20.0, 0.7)], "auc": [(2, 20.0, 0.6)]}}
    figures.training_curves(curves)
    assert all(axis.get_ylabel() for axis in made[0].axes)
    plt.close(made[0])
