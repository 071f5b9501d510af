"""``python -m qev``."""

import sys

from qev.cli import main

sys.exit(main())
