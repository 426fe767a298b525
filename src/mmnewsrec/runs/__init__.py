"""Run folders as objects: the layout, checkpoints and the resume policy, and :class:`TrainedRun`."""

from mmnewsrec.runs.artifact import TrainedRun
from mmnewsrec.runs.layout import RunDir, RunError, RunInfo

__all__ = ["RunDir", "RunError", "RunInfo", "TrainedRun"]
