"""``python -m dualmq`` is the same as the ``dualmq`` command."""

from dualmq.cli import main

raise SystemExit(main())
