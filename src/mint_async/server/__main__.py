"""``python -m mint_async.server``: the same as ``mint-async serve``."""

from __future__ import annotations

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
