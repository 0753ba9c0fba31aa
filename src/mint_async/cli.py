"""The ``mint-async`` command.

Subcommands import their modules lazily so ``mint-async --help`` stays fast and
the client never pulls in server-only dependencies. Without a subcommand it
prints the help and exits 0; every ``--help`` shows the options' defaults.

Exit status: 0 success; 1 the command failed; 2 invalid options (argparse's
convention); ``loadtest`` adds 99 (a threshold was crossed) and 130 (interrupted).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from ._version import __version__

__all__ = ["main"]


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: X)`` to an option's help unless there is nothing to show.

    ``None``, ``False``, ``""`` and ``[]`` mean "not given" here, and help that
    already names its default (``--steps``: per backend) keeps its own words.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default: object = action.default
        if default is None or default is False or default in ("", []) or "default" in text:
            return text
        return super()._get_help_string(action)


class _ArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose subcommands (created with its class) share the help formatter."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


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


def _serve(args: argparse.Namespace) -> int:
    from .server._cli import serve  # noqa: PLC0415

    return serve(args)


def _add_serve_arguments(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (0: any free port)")
    serve.add_argument("--backend", default="synthetic", help="model backend (synthetic, torch)")
    serve.add_argument("--faults", default="", help="fault spec, e.g. submit_5xx=0.1,seed=1")
    serve.add_argument("--latency", default="", help="latency spec, e.g. sample=0.02,default=0")
    serve.add_argument(
        "--limits",
        default="",
        help="per-request work limits, e.g. num_samples=128,sample_tokens=1048576,"
        "batch_tokens=1048576,batch_elements=4194304,inline_work=16384 (the defaults)",
    )
    serve.add_argument("--data-dir", default=None, help="keep checkpoints here (default: temp)")
    serve.add_argument("--api-key", action="append", help="accepted API key (repeatable)")
    serve.add_argument("--capacity", type=int, default=None, help="max requests executing")
    serve.add_argument("--max-queued-samples", type=int, default=None, help="429 beyond this")
    serve.add_argument("--poll-hold", type=float, default=30.0, help="long-poll hold (s)")
    serve.add_argument("--session-expiry", type=float, default=120.0, help="heartbeat timeout (s)")
    serve.add_argument("--seed", type=int, default=0, help="seed of models and sampling")
    serve.add_argument("--retrieve-futures", action="store_true", help="serve retrieve_futures")
    serve.add_argument(
        "--track-executions", action="store_true", help="count executions per request id"
    )
    serve.add_argument(
        "--sdk-transport",
        choices=("pyqwest", "httpx"),
        default="pyqwest",
        help="HTTP transport tinker SDKs are told to use (httpx: archive URLs work in 0.22)",
    )
    serve.add_argument(
        "--proto",
        action="store_true",
        help="ask SDKs for protobuf forward_backward bodies (proto_write_fwdbwd), answer protobuf results",
    )
    serve.add_argument(
        "--zstd",
        action="store_true",
        help="ask for zstd-compressed protobuf bodies (proto_compress_fwdbwd)",
    )
    serve.add_argument(
        "--wire",
        choices=("0.22", "0.38"),
        default="0.22",
        help="0.38: as newer servers, protobuf forward_backward bodies only (JSON gets 415)",
    )
    serve.add_argument(
        "--allow-default-key",
        action="store_true",
        help="listen on a non-loopback --host with only the documented default key (warns)",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        default=4096,
        help="connections served (503 beyond; 0: no cap)",
    )
    serve.add_argument(
        "--head-timeout", type=float, default=10.0, help="close a request head unfinished after (s)"
    )
    serve.add_argument(
        "--body-timeout", type=float, default=60.0, help="408 to a body unfinished after (s)"
    )
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        default=64 << 20,
        help="413 beyond this body size on forward/forward_backward",
    )
    serve.add_argument(
        "--max-small-body-bytes",
        type=int,
        default=8 << 20,
        help="413 beyond this body size on every other route",
    )
    serve.add_argument(
        "--public-url", default=None, help="base URL of archive links (default: the bound address)"
    )
    serve.add_argument("--log-level", default="warning", help="uvicorn log level")
    serve.set_defaults(func=_serve)


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
    demo.add_argument("--max-operand", type=int, default=9, help="questions cover a, b in 1..N")
    demo.add_argument("--seed", type=int, default=0, help="seed of the local model and the LoRA")
    demo.add_argument("--no-table", action="store_true", help="skip the table of answers")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``mint-async``."""
    parser = _ArgumentParser(
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
    serve = sub.add_parser(
        "serve",
        help="run the local reference server (MinT / tinker 0.22 protocol)",
        description="Run the local MinT server (uvicorn). Prints MINT_BASE_URL=... and a ready line.",
    )
    _add_serve_arguments(serve)
    from .loadtest._cli import add_loadtest_parser  # noqa: PLC0415 - option tables only

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
