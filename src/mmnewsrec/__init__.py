"""mmnewsrec: multimodal neural news recommendation on MIND."""

import logging

from mmnewsrec.errors import ConfigError, DataFormatError, MmnewsrecError

__version__ = "0.1.0"
__all__ = ["ConfigError", "DataFormatError", "MmnewsrecError", "__version__"]

logging.getLogger(__name__).addHandler(logging.NullHandler())
