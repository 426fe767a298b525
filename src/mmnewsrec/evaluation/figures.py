"""Report figures (matplotlib, headless): training curves, time to accuracy, breakdown bars.

Each function takes plain numbers and returns a PNG as bytes. One colour per run, the same in every
figure (the order of ``runs``).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display: figures are files
import matplotlib.pyplot as plt  # noqa: E402

from mmnewsrec.evaluation.analysis import Interval  # noqa: E402

#: A colour-blind-safe cycle (Okabe-Ito), one per run.
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")


def colour(index: int) -> str:
    return COLOURS[index % len(COLOURS)]


def _png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def training_curves(curves: Mapping[str, Mapping[str, list[tuple[float, float, float]]]]) -> bytes:
    """Training loss and dev AUC against step and against wall-clock minutes.

    Args:
        curves: run -> {"loss": [(step, elapsed_s, loss), ...], "auc": [(step, elapsed_s, auc), ...]}
            (``elapsed_s`` NaN where a run's log has none).
    """
    figure, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    timed = False
    for index, (run, series) in enumerate(curves.items()):
        for row, key in enumerate(("loss", "auc")):
            points = series.get(key, [])
            if not points:
                continue
            steps = [p[0] for p in points]
            minutes = [p[1] / 60 for p in points]
            values = [p[2] for p in points]
            style = {"color": colour(index), "label": run, "marker": "o" if key == "auc" else None, "markersize": 4}
            axes[row][0].plot(steps, values, **style)
            if any(m == m for m in minutes):  # runs trained before elapsed_s was logged have none
                axes[row][1].plot(minutes, values, **style)
                timed = True
    for row, label in enumerate(("training loss (cross-entropy)", "dev AUC")):
        axes[row][0].set_ylabel(label)
        axes[row][1].set_ylabel(label)
        axes[row][0].set_xlabel("optimiser step")
        axes[row][1].set_xlabel("training time (minutes, wall clock)")
        for column in range(2):
            axes[row][column].grid(alpha=0.3)
    axes[0][0].set_title("Training curves against optimiser steps")
    axes[0][1].set_title("... and against training time")
    if not timed:
        for row in range(2):
            axes[row][1].text(
                0.5,
                0.5,
                "no wall-clock times in these runs' logs",
                ha="center",
                va="center",
                transform=axes[row][1].transAxes,
                color="grey",
            )
    handles, labels = axes[1][0].get_legend_handles_labels()
    if not handles:
        handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=min(4, max(1, len(labels))), bbox_to_anchor=(0.5, 0.99))
    figure.tight_layout()
    return _png(figure)


def time_to_accuracy(points: Mapping[str, tuple[float | None, Interval]]) -> bytes:
    """Final dev AUC (with its 95% interval) against training time, one point per run."""
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for index, (run, (seconds, auc)) in enumerate(points.items()):
        if seconds is None:
            continue
        minutes = seconds / 60
        axis.errorbar(
            [minutes],
            [auc.mean],
            yerr=[[auc.mean - auc.low], [auc.high - auc.mean]],
            fmt="o",
            color=colour(index),
            capsize=4,
            label=run,
        )
        axis.annotate(run, (minutes, auc.mean), textcoords="offset points", xytext=(6, 6), fontsize=8)
    axis.set_xlabel("training time (minutes, wall clock, evaluations included)")
    axis.set_ylabel("dev AUC (95% bootstrap interval)")
    axis.set_title("Time to accuracy")
    axis.grid(alpha=0.3)
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=8)
    return _png(figure)


def breakdown_bars(
    title: str, groups: Sequence[str], values: Mapping[str, Sequence[Interval]], counts: Sequence[int], metric: str
) -> bytes:
    """Grouped bars (one colour per run) with 95% interval whiskers; group sizes under the labels.
    The bars start at 0, so their heights compare as the values do; an AUC figure marks 0.5, what
    a random ranking scores.

    Args:
        values: run -> one interval per group (NaN mean: no bar).
        counts: impressions (or candidates) per group.
    """
    return _png(_breakdown_figure(title, groups, values, counts, metric))


def _breakdown_figure(
    title: str, groups: Sequence[str], values: Mapping[str, Sequence[Interval]], counts: Sequence[int], metric: str
) -> plt.Figure:
    runs = list(values)
    width = 0.8 / max(1, len(runs))
    figure, axis = plt.subplots(figsize=(max(6, 1.3 * len(groups) * max(1, len(runs)) ** 0.5 + 2), 4.5))
    for index, run in enumerate(runs):
        xs, heights, errors = [], [], [[], []]
        for g, interval in enumerate(values[run]):
            if interval.mean != interval.mean:  # NaN: nothing to draw
                continue
            xs.append(g + (index - (len(runs) - 1) / 2) * width)
            heights.append(interval.mean)
            errors[0].append(interval.mean - interval.low)
            errors[1].append(interval.high - interval.mean)
        axis.bar(xs, heights, width=width, color=colour(index), label=run, yerr=errors, capsize=3)
    axis.set_xticks(range(len(groups)))
    axis.set_xticklabels([f"{g}\n(n={c:,})" for g, c in zip(groups, counts, strict=True)], fontsize=8)
    axis.set_ylim(0.0, None)
    if metric.lower() == "auc":
        axis.axhline(0.5, color="grey", linestyle="--", linewidth=1, label="random ranking (0.5)")
        axis.set_ylim(0.0, 1.0)
    axis.set_ylabel(f"{metric} (95% bootstrap interval)")
    axis.set_title(title)
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=8)
    return figure
