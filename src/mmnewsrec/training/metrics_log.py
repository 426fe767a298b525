"""Run metrics to JSONL and CSV files (and TensorBoard when it is installed)."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


class MetricsLog:
    """Appends records to ``{run}/metrics.jsonl`` and ``{run}/{kind}_metrics.csv``.

    TensorBoard event files go to ``{run}/tensorboard`` when ``torch.utils.tensorboard`` can be
    imported (``pip install tensorboard``); otherwise that sink is skipped.
    """

    def __init__(self, run_dir: str | Path, enabled: bool = True):
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self._writer = None
        if enabled:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(self.run_dir / "tensorboard"))
            except ImportError:
                logger.debug("tensorboard not installed: metrics go to JSONL and CSV only")

    def write(self, kind: str, record: dict) -> None:
        if not self.enabled:
            return
        with (self.run_dir / "metrics.jsonl").open("a") as handle:
            handle.write(json.dumps({"kind": kind, **record}) + "\n")
        path = self.run_dir / f"{kind}_metrics.csv"
        new = not path.exists()
        with path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(record))
            if new:
                writer.writeheader()
            writer.writerow(record)
        if self._writer is not None:
            for key, value in record.items():
                if key not in ("step", "epoch") and isinstance(value, (int, float)):
                    self._writer.add_scalar(f"{kind}/{key}", value, record.get("step", 0))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
