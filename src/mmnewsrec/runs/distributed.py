"""The process group a job runs in: one process, or several launched by ``torchrun`` / ``accelerate launch``."""

from __future__ import annotations

import torch


def distributed_state():
    """The process group this process belongs to (one process unless launched by torchrun/accelerate).

    Without a GPU, several launched processes form a CPU (gloo) process group, so ``torchrun
    --nproc_per_node 2 -m mmnewsrec train ...`` runs data-parallel on a CPU machine too.
    """
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())
