# ruff: noqa: T201 - a command-line front end prints to the terminal by design
"""``mint-async loadtest``: the command line over :func:`~mint_async.loadtest.run`.

Exit status: 0 all good; 1 the run itself failed (e.g. the endpoint is
unreachable); 2 invalid options or files (a missing API key too); 99 a
``--threshold`` was crossed (k6's convention, so CI can tell a slow endpoint
from a broken command); 130 interrupted (Ctrl-C).

A given ``--base-url`` is tried once before the run (a GET with a 3 s connect
timeout, no retries): the client's own retries would otherwise spend about a
minute backing off before an unreachable endpoint is reported.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, Final, Literal

import anyio

from .._config import ClientConfig, Timeouts
from .._exceptions import APIConnectionError, InvalidInputError, MintError
from .._transport import Transport, is_read_timeout
from ._config import LoadTestConfig, parse_seconds
from ._distributions import IntDistribution
from ._scenario import Scenario, warmup_settings
from ._workloads import WORKLOAD_TYPES, ForwardBackwardWorkload, RLStepWorkload, SampleWorkload

__all__ = ["EXIT_THRESHOLDS", "add_loadtest_parser", "config_from_args", "main"]

EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_THRESHOLDS: Final = 99
EXIT_INTERRUPTED: Final = 130
PREFLIGHT_CONNECT_TIMEOUT: Final = 3.0
"""Seconds the check of a given ``--base-url`` waits for a connection."""
PREFLIGHT_READ_TIMEOUT: Final = 5.0
"""Seconds it waits for the answer (a timeout here still counts as reachable)."""

# Workload options: (dest, the workload types it applies to, parse as a distribution?).
_WORKLOAD_OPTIONS: Final = {
    "prompt_tokens": (("sample", "rl-step"), True),
    "max_tokens": (("sample", "rl-step"), True),
    "num_samples": (("sample",), True),
    "temperature": (("sample",), False),
    "batch_size": (("forward_backward",), True),
    "seq_len": (("forward_backward",), True),
    "loss_fn": (("forward_backward", "rl-step"), False),
    "models": (("forward_backward", "rl-step"), False),
    "groups": (("rl-step",), False),
    "group_size": (("rl-step",), False),
    "minibatches": (("rl-step",), False),
    "learning_rate": (("rl-step",), False),
    "lora_rank": (("forward_backward", "rl-step"), False),
    "base_model": (("sample", "forward_backward", "rl-step"), False),
}
_SECONDS: Final = ("duration", "ramp_up", "timeout", "drain_timeout", "request_timeout")


class _DeprecatedEventLoopAlias(argparse.Action):
    """``--backend asyncio|trio``: the old name of ``--event-loop`` (``serve``'s ``--backend`` is a model)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        print(
            f"mint-async loadtest: {option_string} is deprecated; use --event-loop", file=sys.stderr
        )
        setattr(namespace, self.dest, values)


def add_loadtest_parser(sub: Any) -> None:
    """Add ``loadtest`` (and ``loadtest compare``) to the ``mint-async`` subcommands."""
    p: argparse.ArgumentParser = sub.add_parser(
        "loadtest",
        help="load-test a MinT endpoint (the local server by default)",
        description="Drive sample / forward_backward / RL-step load at a MinT endpoint and report "
        "throughput, latency percentiles, errors and client overhead (vllm bench serve style). "
        "Without --base-url (or MINT_BASE_URL) the local reference server is started.",
        epilog="Distributions: 32, uniform(16,64), normal(64,16), lognormal(4,0.5), exp(32), "
        "choice(1,2,4). Durations: 500ms, 30s, 2m. Thresholds: p99_time_to_result<2s, "
        "error_rate<0.01, request_throughput>100. Exit status 99 when a threshold is crossed.",
    )
    target = p.add_argument_group("target")
    target.add_argument("--base-url", help="endpoint (default: env MINT_BASE_URL, else local)")
    target.add_argument("--api-key", help="API key (default: env MINT_API_KEY)")
    target.add_argument(
        "--local", action="store_true", help="use the local server even if MINT_BASE_URL is set"
    )
    target.add_argument("--server-faults", help="local server fault spec, e.g. sample_429=0.05")
    target.add_argument("--server-latency", help="local server latency spec, e.g. sample=exp(0.05)")
    target.add_argument("--server-capacity", type=int, help="local server: max requests executing")
    target.add_argument(
        "--http-client", choices=("builtin", "httpx"), help="client transport (default: builtin)"
    )
    target.add_argument(
        "--wire", choices=("auto", "json", "binary"), help="client wire format (default: auto)"
    )
    work = p.add_argument_group("workload")
    work.add_argument(
        "--workload", choices=sorted(WORKLOAD_TYPES), help="what to send (default: sample)"
    )
    work.add_argument("--scenario", help="TOML/JSON file with a mix of workloads and load settings")
    work.add_argument("--prompt-tokens", help="prompt length distribution (default: 32)")
    work.add_argument("--max-tokens", help="max_tokens distribution (default: 16)")
    work.add_argument("--num-samples", help="num_samples distribution (default: 1)")
    work.add_argument("--temperature", type=float, help="sample: temperature (default: 1.0)")
    work.add_argument("--batch-size", help="forward_backward datums distribution (default: 4)")
    work.add_argument(
        "--seq-len", help="forward_backward tokens per datum distribution (default: 128)"
    )
    work.add_argument(
        "--loss-fn",
        help="loss function (default: cross_entropy; rl-step: importance_sampling)",
    )
    work.add_argument(
        "--models", type=int, help="training runs to spread training load over (default: 1)"
    )
    work.add_argument("--groups", type=int, help="rl-step: sample requests per round (default: 4)")
    work.add_argument("--group-size", type=int, help="rl-step: samples per request (default: 4)")
    work.add_argument(
        "--minibatches", type=int, help="rl-step: forward_backward calls per round (default: 1)"
    )
    work.add_argument(
        "--learning-rate", type=float, help="rl-step: AdamW learning rate (default: 1e-4)"
    )
    work.add_argument("--lora-rank", type=int, help="LoRA rank of the training runs (default: 16)")
    work.add_argument("--base-model", help="model to sample / train (default: Qwen/Qwen3-0.6B)")
    load = p.add_argument_group("load")
    load.add_argument(
        "--concurrency", type=int, help="closed loop: operations in flight (default: 16)"
    )
    load.add_argument("--rate", type=float, help="open loop: operations started per second")
    load.add_argument(
        "--arrival", choices=("poisson", "constant"), help="open loop arrivals (default: poisson)"
    )
    load.add_argument("--max-in-flight", type=int, help="open loop cap (default: 1024)")
    load.add_argument("--requests", type=int, help="measured operations (default: 1000)")
    load.add_argument("--duration", help="measure for this long (e.g. 30s)")
    load.add_argument("--warmup", help="unmeasured warmup: a duration (5s) or a count (100)")
    load.add_argument("--ramp-up", help="start workers / raise the rate over this long")
    load.add_argument("--timeout", help="cap on the whole run (default: 1h)")
    load.add_argument(
        "--drain-timeout", help="wait this long for running operations (default: 60s)"
    )
    load.add_argument(
        "--request-timeout",
        help="give up on a request after this long (default: no per-request limit)",
    )
    load.add_argument(
        "--seed", type=int, help="seed of the workload's random choices and arrivals (default: 0)"
    )
    load.add_argument(
        "--workers",
        type=int,
        help="load-generator processes; the load is split over them and their results "
        "merged into one report (default: 1)",
    )
    load.add_argument(
        "--ray-address",
        help="run the generators as Ray tasks: a cluster address, 'auto' (the running cluster) "
        "or 'local' (start a local instance); needs the ray extra",
    )
    out = p.add_argument_group("output")
    out.add_argument(
        "--threshold", action="append", default=[], help="pass/fail criterion (repeatable)"
    )
    out.add_argument("--save-result", help="write the result as JSON")
    out.add_argument("--plot", help="write a PNG (needs the plot extra)")
    out.add_argument("--quiet", action="store_true", help="no live progress line")
    out.add_argument(
        "--event-loop",
        choices=("asyncio", "trio"),
        default="asyncio",
        help="event loop the load generator runs on",
    )
    out.add_argument(
        "--backend",
        dest="event_loop",
        choices=("asyncio", "trio"),
        action=_DeprecatedEventLoopAlias,
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
    )
    p.set_defaults(func=main, loadtest_command=None)
    commands = p.add_subparsers(
        dest="loadtest_command", metavar="{compare}", help="compare: two saved results"
    )
    compare = commands.add_parser(
        "compare",
        help="compare two --save-result files",
        description="Print two saved load test results side by side, with deltas.",
    )
    compare.add_argument("a", help="baseline result (JSON)")
    compare.add_argument("b", help="new result (JSON)")


def _workload(
    args: argparse.Namespace,
) -> SampleWorkload | ForwardBackwardWorkload | RLStepWorkload:
    kind: str = args.workload or "sample"
    values: dict[str, Any] = {}
    for dest, (types, is_dist) in _WORKLOAD_OPTIONS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if kind not in types:
            flag = "--" + dest.replace("_", "-")
            msg = f"{flag} applies to the {' / '.join(types)} workload, not {kind}"
            raise InvalidInputError(msg)
        values[dest] = IntDistribution.parse(value) if is_dist else value
    cls = WORKLOAD_TYPES[kind]
    return cls(**values)


def config_from_args(args: argparse.Namespace) -> tuple[LoadTestConfig, list[str]]:
    """The LoadTestConfig and thresholds of the command line (InvalidInputError on bad input)."""
    load: dict[str, Any] = {}
    for name in (
        "concurrency",
        "rate",
        "arrival",
        "max_in_flight",
        "requests",
        "seed",
        "workers",
        "ray_address",
    ):
        if getattr(args, name) is not None:
            load[name] = getattr(args, name)
    for name in _SECONDS:
        if getattr(args, name) is not None:
            load[name] = parse_seconds(getattr(args, name), "--" + name.replace("_", "-"))
    if args.warmup is not None:
        load.update(warmup_settings(args.warmup))
    base_url = None if args.local else (args.base_url or os.environ.get("MINT_BASE_URL") or None)
    server_args: list[str] = []
    for flag, value in (
        ("--faults", args.server_faults),
        ("--latency", args.server_latency),
        ("--capacity", args.server_capacity),
    ):
        if value is not None:
            if base_url is not None:
                msg = f"--server-{flag[2:]} configures the local server; it cannot be used with a base URL"
                raise InvalidInputError(msg)
            server_args += [flag, str(value)]
    client: dict[str, Any] = {}
    if args.http_client:
        client["http_client"] = args.http_client
    if args.wire:
        client["wire"] = args.wire
    api_key = args.api_key or os.environ.get("MINT_API_KEY") or os.environ.get("TINKER_API_KEY")
    if base_url is not None and not api_key:
        # Checked here, not left to the client: its message names api_key=..., a Python argument.
        msg = f"no API key for {base_url}: pass --api-key or set MINT_API_KEY (or TINKER_API_KEY)"
        raise InvalidInputError(msg)
    common: dict[str, Any] = {
        "base_url": base_url,
        "api_key": args.api_key,
        "server_args": tuple(server_args),
        "client_settings": client,
        "progress": not args.quiet,
    }
    thresholds: list[str] = list(args.threshold)
    if args.scenario:
        given = [d for d in _WORKLOAD_OPTIONS if getattr(args, d) is not None]
        if given or args.workload:
            flags = ", ".join("--" + d.replace("_", "-") for d in given) or "--workload"
            msg = f"{flags}: workload options cannot be combined with --scenario; put them in the file"
            raise InvalidInputError(msg)
        scenario = Scenario.load_file(args.scenario)
        return scenario.config(**load, **common), [*scenario.thresholds, *thresholds]
    return LoadTestConfig(workloads=(_workload(args),), **load, **common), thresholds


def _compare(args: argparse.Namespace) -> int:
    from ._compare import compare_reports  # noqa: PLC0415
    from ._report import LoadTestReport  # noqa: PLC0415

    try:
        a, b = LoadTestReport.load(args.a), LoadTestReport.load(args.b)
    except InvalidInputError as exc:
        print(f"mint-async loadtest compare: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(compare_reports(a, b, names=(args.a, args.b)))
    return 0


async def _unreachable(config: LoadTestConfig) -> str | None:
    """Why ``config.base_url`` cannot be reached (one GET, no retries); None when it answers.

    Any HTTP answer, an error status included, counts as reachable, and so does a
    read timeout: the connection was made, and the run itself judges a slow server.
    """
    client = ClientConfig.resolve(
        base_url=config.base_url,
        api_key=config.api_key,
        timeouts=Timeouts(connect=PREFLIGHT_CONNECT_TIMEOUT, request=PREFLIGHT_READ_TIMEOUT),
        **config.client_settings,
    )
    transport = Transport(client)
    try:
        await transport.send_once("GET", "api/v1/healthz", traffic="session", auth=False)
    except APIConnectionError as exc:
        return None if is_read_timeout(exc) else exc.message
    finally:
        await transport.aclose()
    return None


def main(args: argparse.Namespace) -> int:
    """Run ``mint-async loadtest`` (or ``loadtest compare``); returns the exit status."""
    if args.loadtest_command == "compare":
        return _compare(args)
    from ._run import run  # noqa: PLC0415
    from ._thresholds import Threshold  # noqa: PLC0415

    try:
        config, threshold_texts = config_from_args(args)
        thresholds = [Threshold.parse(text) for text in threshold_texts]
        if args.plot:
            from ._plot import require_matplotlib  # noqa: PLC0415

            require_matplotlib()
    except InvalidInputError as exc:
        print(f"mint-async loadtest: {exc}", file=sys.stderr)
        return EXIT_USAGE
    event_loop: Literal["asyncio", "trio"] = args.event_loop
    try:
        if config.base_url is not None:
            problem = anyio.run(_unreachable, config, backend=event_loop)
            if problem is not None:
                print(
                    f"mint-async loadtest: cannot reach {config.base_url}: {problem}",
                    file=sys.stderr,
                )
                return EXIT_ERROR
        report = run(config, backend=event_loop)
    except InvalidInputError as exc:
        print(f"mint-async loadtest: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (MintError, OSError, RuntimeError) as exc:
        print(f"mint-async loadtest: the run failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("\nmint-async loadtest: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(report.render())
    if args.save_result:
        report.save(args.save_result)
        print(f"result saved to {args.save_result}")
    if args.plot:
        from ._plot import plot_report  # noqa: PLC0415

        print(f"plot saved to {plot_report(report, args.plot)}")
    results = [th.check(report) for th in thresholds]
    if results:
        print(" Thresholds ".center(54, "-"))
        for result in results:
            print(result)
    return EXIT_THRESHOLDS if any(not r.passed for r in results) else 0
