"""Report figures (matplotlib, headless): training curves, time to accuracy, breakdown bars,
simulated days and accuracy-diversity fronts.

Each function takes plain numbers and returns a PNG as bytes. One colour per run, the same in every
figure (the order of ``runs``).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display: figures are files
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

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


#: Line styles that tell runs apart once the colours repeat (more than eight lines).
_STYLES = ("-", "--", ":", "-.")


def day_curves(panels: Sequence[tuple[str, str]], series: Mapping[str, Mapping[str, Sequence[float | None]]]) -> bytes:
    """Simulated days: one panel per measurement, one line per simulation over the days.

    Args:
        panels: (key, label) of each measurement, in panel order.
        series: simulation -> key -> one value per day (None: not measured that day).
    """
    columns = 3
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(14, 3.6 * rows), squeeze=False)
    for index, (name, values) in enumerate(series.items()):
        style = {"color": colour(index), "linestyle": _STYLES[(index // len(COLOURS)) % len(_STYLES)]}
        for panel, (key, _) in enumerate(panels):
            points = [(day + 1, v) for day, v in enumerate(values.get(key, [])) if v is not None]
            if points:
                axis = axes[panel // columns][panel % columns]
                axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=name, **style)
    for panel, axis in enumerate(axes.flat):
        if panel >= len(panels):
            axis.set_visible(False)
            continue
        axis.set_title(panels[panel][1], fontsize=10)
        axis.set_xlabel("simulated day")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=8, frameon=False)
    figure.suptitle("Closed-loop simulation, per day")
    figure.tight_layout(rect=(0, 0.04 + 0.02 * (len(labels) // 5), 1, 0.97))
    return _png(figure)


def tradeoff_fronts(
    axes_spec: Sequence[tuple[str, str]],
    accuracy: tuple[str, str],
    families: Mapping[str, Sequence[tuple[float | None, str, Mapping[str, float]]]],
    title: str = "Accuracy against diversity across trade-offs",
) -> bytes:
    """Accuracy against diversity: one panel per diversity measurement, one line per family of
    pipelines through its trade-off values (each point labelled with its value).

    Args:
        axes_spec: (key, label) of each diversity measurement (the x axes).
        accuracy: (key, label) of the accuracy measurement (the y axis).
        families: family -> [(trade-off value or None, simulation, measurements)]; a family whose
            points have no trade-off (the model's top k) is drawn as stars, labelled by simulation.
    """
    figure, axes = plt.subplots(1, len(axes_spec), figsize=(6.5 * len(axes_spec), 5), squeeze=False)
    key_y, label_y = accuracy
    for index, (family, points) in enumerate(families.items()):
        ordered = sorted(points, key=lambda p: -1.0 if p[0] is None else p[0])
        for axis, (key_x, _) in zip(axes[0], axes_spec, strict=True):
            xs = [p[2][key_x] for p in ordered]
            ys = [p[2][key_y] for p in ordered]
            if all(p[0] is None for p in ordered):
                axis.scatter(xs, ys, marker="*", s=140, color=colour(index), label=family, zorder=3)
                labels = [p[1] for p in ordered]
            else:
                axis.plot(xs, ys, marker="o", color=colour(index), label=family)
                labels = [f"{p[0]:g}" for p in ordered]
            at: dict[tuple[float, float], list[str]] = {}  # points drawn on one another share a label
            for x, y, text in zip(xs, ys, labels, strict=True):
                at.setdefault((round(x, 6), round(y, 6)), []).append(text)
            for (x, y), texts in at.items():
                axis.annotate(", ".join(texts), (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7)
    for axis, (_, label_x) in zip(axes[0], axes_spec, strict=True):
        axis.set_xlabel(label_x)
        axis.set_ylabel(label_y)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    return _png(figure)
