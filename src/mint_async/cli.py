"""The ``mint-async`` command.

This module only assembles the parsers: ``serve`` and ``loadtest`` own their
options (``server._cli.add_serve_parser``, ``loadtest._cli.add_loadtest_parser``),
they share the help formatter of ``_argparse``, and nothing but the console
script imports this module, so there is no import cycle through it. Subcommands
import their modules lazily so ``mint-async --help`` stays fast and the client
never pulls in server-only dependencies. Without a subcommand it prints the
help and exits 0; every ``--help`` shows the options' defaults.

Exit status: 0 success; 1 the command failed; 2 invalid options (argparse's
convention); ``loadtest`` adds 99 (a threshold was crossed) and 130 (interrupted).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ._argparse import CommandParser
from ._version import __version__

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    base_url = args.base_url or os.environ.get("MINT_BASE_URL")
    key = args.api_key or os.environ.get("MINT_API_KEY") or os.environ.get("TINKER_API_KEY")
    if base_url and not key:
        # Caught here, not in the client: its message names api_key=..., a Python argument.
        print(
            f"mint-async demo: no API key for {base_url}: pass --api-key or set MINT_API_KEY "
            "(or TINKER_API_KEY)",
            file=sys.stderr,
        )
        return 2
    from ._demo import main as demo_main  # noqa: PLC0415 - pulls in the server and the client

    return demo_main(args)


def _positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (argparse turns the ValueError into a usage error)."""
    value = int(text)
    if value < 1:
        msg = f"must be at least 1, got {value}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _add_demo_arguments(demo: argparse.ArgumentParser) -> None:
    demo.add_argument("--base-url", help="MinT endpoint (default: env MINT_BASE_URL, else local)")
    demo.add_argument("--api-key", help="API key (default: env MINT_API_KEY)")
    demo.add_argument(
        "--backend",
        choices=("auto", "torch", "synthetic"),
        default="auto",
        help="model backend of the local server (auto: torch when installed)",
    )
    demo.add_argument("--base-model", default="Qwen/Qwen3-0.6B", help="base model to fine-tune")
    demo.add_argument("--rank", type=int, default=16, help="LoRA rank")
    demo.add_argument(
        "--steps", type=int, default=None, help="training steps (default: per backend)"
    )
    demo.add_argument("--lr", type=float, default=None, help="learning rate (default: per backend)")
    demo.add_argument(
        "--batches",
        type=_positive_int,
        default=None,
        help="batches per pass over the questions, one step each (default: per backend)",
    )
    demo.add_argument("--max-operand", type=int, default=9, help="questions cover a, b in 1..N")
    demo.add_argument("--seed", type=int, default=0, help="seed of the local model and the LoRA")
    demo.add_argument("--no-table", action="store_true", help="skip the table of answers")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``mint-async``."""
    parser = CommandParser(
        prog="mint-async", description="mint_async: an async client for MinT / Tinker."
    )
    parser.add_argument(
        "-V",
        "--version",
        action="version",
        version=f"mint-async {__version__}",
        help="print the version and exit",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", help="what to run")
    demo = sub.add_parser(
        "demo",
        help="fine-tune a model on the multiplication table, end to end (local server by default)",
        description="The MinT SFT quickstart through the async client: starts a local server "
        "(torch backend when installed) unless --base-url / MINT_BASE_URL is given.",
    )
    _add_demo_arguments(demo)
    demo.set_defaults(func=_demo)
    # Each subcommand owns its options; imported here, not at the top, so importing
    # this module stays cheap. Neither imports this module back (python -m
    # mint_async.server builds its parser from the same add_serve_parser).
    from .loadtest._cli import add_loadtest_parser  # noqa: PLC0415 - option tables only
    from .server._cli import add_serve_parser  # noqa: PLC0415 - option table only

    add_serve_parser(sub)
    add_loadtest_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mint-async`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
