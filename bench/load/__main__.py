"""``python -m bench.load``: see :mod:`bench.load`."""

from .run import main

raise SystemExit(main())
