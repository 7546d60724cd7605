"""``python -m dualmq.compare``: the same as ``dualmq compare``."""

import sys

from dualmq.compare.command import main

sys.exit(main())
