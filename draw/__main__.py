"""``python -m draw``: the same as the ``draw`` command (``python -S -m draw verify`` needs nothing installed)."""

import sys

from draw.cli import main

sys.exit(main())
