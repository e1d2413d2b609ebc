"""``python -m bench.load`` (middleware cost) and ``python -m bench.load logins`` (the login path)."""

import sys

if sys.argv[1:2] == ["logins"]:
    from .logins import main

    raise SystemExit(main(sys.argv[2:]))

from .run import main

raise SystemExit(main())
