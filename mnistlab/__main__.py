"""``python -m mnistlab ...``: the ``mnistlab`` command (see :mod:`mnistlab.cli`)."""
import sys

from mnistlab.cli import main

if __name__ == "__main__":
    sys.exit(main())
