"""``python -m mmnewsrec`` runs the command line."""

import sys

from mmnewsrec.cli.main import main

sys.exit(main())
