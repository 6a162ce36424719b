"""`python -m app`: the `vcs` command."""

import sys

from app.cli import main

sys.exit(main())
