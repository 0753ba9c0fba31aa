# ruff: noqa: T201 - a command-line front end prints to the terminal by design
"""``mint-async serve``: the local server under uvicorn, in the foreground.

Prints the base URL (``MINT_BASE_URL=...``, ready to ``export``) and then a
ready line once requests are accepted; Ctrl-C (or SIGTERM) stops it cleanly.

Without ``--api-key``, the server accepts the two documented default keys,
``sk-mint-async-local`` (mint_async, ``import mint``) and ``tml-mint-async-local``
(tinker 0.38 and tinker-cookbook, whose SDK refuses keys without the ``tml-``
prefix); both are one user. ``--api-key`` replaces them (pass a ``tml-`` key
for the official 0.38 SDK). A non-loopback ``--host`` with only documented
default keys (anyone who has read the README knows them) is refused unless
``--allow-default-key`` says so, and then warned about on stderr.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from .._argparse import CommandParser
from ._config import DEFAULT_API_KEYS, ServerConfig
from ._faults import FaultConfig
from ._latency import LatencyConfig
from ._limits import RequestLimits

__all__ = [
    "READY_LINE",
    "add_serve_parser",
    "config_from_args",
    "default_key_exposure",
    "is_loopback",
    "main",
    "serve",
]

READY_LINE: Final = "mint-async server ready"
"""The start of the line printed once the server accepts requests."""

_HELP: Final = "run the local reference server (MinT / tinker 0.22 protocol, 0.38 with --wire)"
_DESCRIPTION: Final = (
    "Run the local MinT server (uvicorn). Prints MINT_BASE_URL=... and a ready line. "
    "Without --api-key it accepts the documented local keys sk-mint-async-local "
    "(mint_async, import mint) and tml-mint-async-local (the official tinker 0.38 SDK "
    "and tinker-cookbook), one user."
)


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """A ServerConfig from the ``serve`` arguments (ValueError on a bad spec)."""
    return ServerConfig(
        backend=args.backend,
        api_keys=tuple(args.api_key) if args.api_key else DEFAULT_API_KEYS,
        data_dir=Path(args.data_dir) if args.data_dir else None,
        seed=args.seed,
        faults=FaultConfig.parse(args.faults) if args.faults else FaultConfig(),
        latency=LatencyConfig.parse(args.latency, seed=args.seed)
        if args.latency
        else LatencyConfig(),
        limits=RequestLimits.parse(args.limits) if args.limits else RequestLimits(),
        capacity=args.capacity,
        max_queued_samples=args.max_queued_samples,
        poll_hold=args.poll_hold,
        session_expiry=args.session_expiry,
        enable_retrieve_futures=args.retrieve_futures,
        track_executions=args.track_executions,
        sdk_pyqwest_transport=args.sdk_transport == "pyqwest",
        proto_write_fwdbwd=args.proto,
        proto_compress_fwdbwd=args.zstd,
        wire=args.wire,
        max_connections=args.max_connections or None,
        head_timeout=args.head_timeout,
        body_timeout=args.body_timeout,
        max_body_bytes=args.max_body_bytes,
        max_small_body_bytes=args.max_small_body_bytes,
        public_url=args.public_url,
    )


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def default_key_exposure(config: ServerConfig, host: str) -> str | None:
    """A warning when ``host`` is reachable from other machines and only default keys work."""
    if is_loopback(host) or not set(config.api_keys) <= set(DEFAULT_API_KEYS):
        return None
    keys = " / ".join(repr(k) for k in DEFAULT_API_KEYS if k in config.api_keys)
    return (
        f"listening on {host} with only the documented default API keys ({keys}): "
        "anyone who can reach this port can train, sample, and read and delete checkpoints. "
        "Pass --api-key with a secret key (or listen on 127.0.0.1)."
    )


def serve(args: argparse.Namespace) -> int:
    """Run the server until interrupted; returns the exit status."""
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"mint-async serve: {exc}", file=sys.stderr)
        return 2
    from .backends import available_backends  # noqa: PLC0415

    if config.backend not in available_backends():
        print(
            f"mint-async serve: unknown backend {config.backend!r}; available: {available_backends()}",
            file=sys.stderr,
        )
        return 2
    exposure = default_key_exposure(config, args.host)
    if exposure is not None:
        if not args.allow_default_key:
            print(
                f"mint-async serve: refusing: {exposure} (--allow-default-key overrides)",
                file=sys.stderr,
            )
            return 2
        print(f"mint-async serve: WARNING: {exposure}", file=sys.stderr, flush=True)
    from ._app import MintServerApp  # noqa: PLC0415 - keep `--help` fast
    from ._uvicorn import MintUvicornServer, bind_socket, uvicorn_config  # noqa: PLC0415

    app = MintServerApp(config)
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        print(f"mint-async serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    keys = (
        "the default keys " + " and ".join(DEFAULT_API_KEYS)
        if not args.api_key
        else f"{len(args.api_key)} configured key(s)"
    )
    data = config.data_dir or "a temporary directory (removed on exit)"
    wire = f"tinker {config.wire} wire" + (", protobuf results" if config.binary_results else "")
    print(f"mint-async server: backend={config.backend}, {wire}, data in {data}, accepting {keys}")
    print(f"MINT_BASE_URL=http://{host}:{port}", flush=True)

    def ready() -> None:
        print(f"{READY_LINE} (Ctrl-C to stop)", flush=True)

    server = MintUvicornServer(uvicorn_config(app, log_level=args.log_level), app, on_ready=ready)
    server.run(sockets=[sock])
    return 0 if server.started else 1


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``serve`` options (their defaults are shown by ``--help``)."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (0: any free port)")
    parser.add_argument("--backend", default="synthetic", help="model backend (synthetic, torch)")
    parser.add_argument("--faults", default="", help="fault spec, e.g. submit_5xx=0.1,seed=1")
    parser.add_argument("--latency", default="", help="latency spec, e.g. sample=0.02,default=0")
    parser.add_argument(
        "--limits",
        default="",
        help="per-request work limits, e.g. num_samples=128,sample_tokens=1048576,"
        "batch_tokens=1048576,batch_elements=4194304,inline_work=16384 (the defaults)",
    )
    parser.add_argument("--data-dir", default=None, help="keep checkpoints here (default: temp)")
    parser.add_argument(
        "--api-key",
        action="append",
        help="accepted API key (repeatable; replaces the defaults sk-mint-async-local and "
        "tml-mint-async-local, one local user; tinker 0.38 takes tml- keys only)",
    )
    parser.add_argument("--capacity", type=int, default=None, help="max requests executing")
    parser.add_argument("--max-queued-samples", type=int, default=None, help="429 beyond this")
    parser.add_argument("--poll-hold", type=float, default=30.0, help="long-poll hold (s)")
    parser.add_argument("--session-expiry", type=float, default=120.0, help="heartbeat timeout (s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of models and sampling")
    parser.add_argument("--retrieve-futures", action="store_true", help="serve retrieve_futures")
    parser.add_argument(
        "--track-executions", action="store_true", help="count executions per request id"
    )
    parser.add_argument(
        "--sdk-transport",
        choices=("pyqwest", "httpx"),
        default="pyqwest",
        help="HTTP transport tinker SDKs are told to use (httpx: archive URLs work in 0.22)",
    )
    parser.add_argument(
        "--proto",
        action="store_true",
        help="ask SDKs for protobuf forward_backward bodies (proto_write_fwdbwd), answer protobuf results",
    )
    parser.add_argument(
        "--zstd",
        action="store_true",
        help="ask for zstd-compressed protobuf bodies (proto_compress_fwdbwd)",
    )
    parser.add_argument(
        "--wire",
        choices=("0.22", "0.38"),
        default="0.22",
        help="0.38: as newer servers, protobuf forward_backward bodies only (JSON gets 415)",
    )
    parser.add_argument(
        "--allow-default-key",
        action="store_true",
        help="listen on a non-loopback --host with only the documented default keys (warns)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=4096,
        help="connections served (503 beyond; 0: no cap)",
    )
    parser.add_argument(
        "--head-timeout", type=float, default=10.0, help="close a request head unfinished after (s)"
    )
    parser.add_argument(
        "--body-timeout", type=float, default=60.0, help="408 to a body unfinished after (s)"
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=64 << 20,
        help="413 beyond this body size on forward/forward_backward",
    )
    parser.add_argument(
        "--max-small-body-bytes",
        type=int,
        default=8 << 20,
        help="413 beyond this body size on every other route",
    )
    parser.add_argument(
        "--public-url", default=None, help="base URL of archive links (default: the bound address)"
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn log level")


def add_serve_parser(sub: Any) -> None:
    """Add ``serve`` to the ``mint-async`` subcommands (``sub``: from ``add_subparsers``)."""
    p: argparse.ArgumentParser = sub.add_parser("serve", help=_HELP, description=_DESCRIPTION)
    _add_arguments(p)
    p.set_defaults(func=serve)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mint_async.server [serve options]``."""
    # The same options, help and prog as ``mint-async serve``, without importing
    # the cli module (which imports this one to assemble the subcommands).
    parser = CommandParser(prog="mint-async serve", description=_DESCRIPTION)
    _add_arguments(parser)
    return serve(parser.parse_args(sys.argv[1:] if argv is None else argv))
