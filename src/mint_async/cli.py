"""The ``mint-async`` command.

Subcommands import their modules lazily so ``mint-async --help`` stays fast and
the client never pulls in server-only dependencies.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._version import __version__

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from ._demo_codec import run  # noqa: PLC0415

    return run()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``mint-async``."""
    parser = argparse.ArgumentParser(
        prog="mint-async", description="mint_async: an async client for MinT / Tinker."
    )
    parser.add_argument("--version", action="version", version=f"mint-async {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="show the wire types and the zero-copy codec at work")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mint-async`` console script."""
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
