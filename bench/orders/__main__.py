"""``python -m bench.orders``: see :mod:`bench.orders.run`."""

from .run import main

raise SystemExit(main())
