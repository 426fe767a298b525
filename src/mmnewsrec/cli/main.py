"""``mmnewsrec`` command line: thin subcommands that parse arguments and call library functions.

Errors the user can fix (malformed data, bad arguments, unreachable downloads) are printed as one
``error: ...`` line on stderr with exit status 1, never as a traceback.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
from collections.abc import Sequence

from mmnewsrec.cli.parser import build_parser
from mmnewsrec.errors import MmnewsrecError

logger = logging.getLogger("mmnewsrec.cli")

__all__ = ["build_parser", "main"]


def _describe_os_error(exc: OSError) -> str:
    """One line for an operating-system error: the file, what went wrong and what to do."""
    where = f"{exc.filename}: " if exc.filename else ""
    reason = exc.strerror or str(exc)
    hint = {
        errno.ENOSPC: "the disk is full; free space and run again",
        errno.EDQUOT: "the disk quota is exceeded; free space and run again",
        errno.EACCES: "permission denied; choose a path you can read and write, or fix its permissions",
        errno.EROFS: "the file system is read-only; choose another path",
    }.get(exc.errno or 0)
    return f"{where}{hint or reason}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose, quiet = getattr(args, "verbose", False), getattr(args, "quiet", False)
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    args.progress = not quiet and sys.stderr.isatty()
    if not args.progress:  # Hugging Face libraries read these when first imported (below, lazily)
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if quiet:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        return args.func(args)
    except MmnewsrecError as exc:
        logger.debug("details", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # unreadable or unwritable paths, a full disk: user-fixable, no traceback
        logger.debug("details", exc_info=True)
        print(f"error: {_describe_os_error(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
