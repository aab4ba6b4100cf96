"""``python -m siamattn``: the ``siamattn`` command."""

import sys

from siamattn.cli import main

sys.exit(main())
