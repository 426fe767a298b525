"""mmnewsrec: multimodal neural news recommendation on MIND."""

import logging
import os

# Threads that wait for work sleep instead of spinning (OpenMP, which torch and OpenBLAS use): on a
# machine whose cores another process keeps busy, spinning threads fight it for the cores, and the
# demo's text model trained in 53 s instead of 29 s (24 s on an idle machine either way). Read when
# the OpenMP runtime starts, so only if torch is not imported yet; a value already set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from mmnewsrec.errors import ConfigError, DataFormatError, MmnewsrecError

__version__ = "0.1.0"
__all__ = ["ConfigError", "DataFormatError", "MmnewsrecError", "__version__"]

logging.getLogger(__name__).addHandler(logging.NullHandler())
