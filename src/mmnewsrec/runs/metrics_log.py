"""Run metrics to JSONL and CSV files (and TensorBoard when it is installed)."""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

from mmnewsrec.atomic import atomic_write_text
from mmnewsrec.runs.layout import RunDir

logger = logging.getLogger(__name__)


def read_records(run_dir: str | Path | RunDir) -> list[dict]:
    """The run's metric records in order (none when it has no log); a line cut short by a crash is skipped."""
    path = (run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)).metrics_log_path
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


class MetricsLog:
    """Appends records to the run's metric log (one JSON line each) and one CSV per record kind.

    TensorBoard event files go to ``{run}/tensorboard`` when ``torch.utils.tensorboard`` can be
    imported (``pip install tensorboard``); otherwise that sink is skipped.
    """

    def __init__(self, run_dir: str | Path | RunDir, enabled: bool = True, resume_step: int | None = None):
        """``resume_step``: the step of the checkpoint a resumed run continues from; records after it
        (written before an interruption, and about to be written again) are dropped first."""
        self.run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
        self.run_dir = self.run.path
        self.enabled = enabled
        self._writer = None
        if enabled:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if resume_step is not None:
                self._truncate(resume_step)
            try:
                from torch.utils.tensorboard import SummaryWriter

                purge = None if resume_step is None else resume_step + 1
                self._writer = SummaryWriter(str(self.run.tensorboard_dir), purge_step=purge)
            except ImportError:
                logger.debug("tensorboard not installed: metrics go to JSONL and CSV only")

    def write(self, kind: str, record: dict) -> None:
        if not self.enabled:
            return
        with self.run.metrics_log_path.open("a") as handle:
            handle.write(json.dumps({"kind": kind, **record}) + "\n")
        path = self.run.metrics_csv_path(kind)
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

    def _truncate(self, step: int) -> None:
        """Keeps the records of steps <= ``step``; a line cut short by a crash is dropped too."""
        jsonl = self.run.metrics_log_path
        if jsonl.is_file():
            kept = []
            for line in jsonl.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and record.get("step", 0) <= step:
                    kept.append(line + "\n")
            atomic_write_text(jsonl, "".join(kept))
        for path in self.run.metrics_csv_paths():
            with path.open(newline="", encoding="utf-8", errors="replace") as handle:
                rows = list(csv.reader(handle))
            if not rows:
                continue
            header, kept_rows = rows[0], []
            column = header.index("step") if "step" in header else None
            for row in rows[1:]:
                try:
                    keep = len(row) == len(header) and (column is None or int(row[column]) <= step)
                except ValueError:
                    keep = False
                if keep:
                    kept_rows.append(row)
            buffer = io.StringIO()
            csv.writer(buffer).writerows([header, *kept_rows])
            atomic_write_text(path, buffer.getvalue())

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
