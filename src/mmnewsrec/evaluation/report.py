"""Human-readable result tables."""

from __future__ import annotations

from collections.abc import Mapping

METRIC_COLUMNS = ("auc", "mrr", "ndcg@5", "ndcg@10")


def metrics_table(rows: Mapping[str, Mapping[str, float]], title: str | None = None) -> str:
    """A fixed-width text table: one row per method, columns AUC, MRR, nDCG@5, nDCG@10."""
    width = max([len("method"), *(len(name) for name in rows)])
    header = f"{'method':<{width}}  " + "  ".join(f"{c:>8}" for c in METRIC_COLUMNS)
    lines = [title] if title else []
    lines += [header, "-" * len(header)]
    for name, values in rows.items():
        lines.append(f"{name:<{width}}  " + "  ".join(f"{values[c]:>8.4f}" for c in METRIC_COLUMNS))
    return "\n".join(lines)
