"""``python -m flowlab``: the same as the ``flowlab`` command."""

import sys

from flowlab.cli import main

if __name__ == "__main__":
    sys.exit(main())
