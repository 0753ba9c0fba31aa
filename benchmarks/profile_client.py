"""Where a sample request's client CPU goes: per-stage breakdown against a fast endpoint.

The endpoint is ``benchmarks/_fast_server.py`` (raw ASGI on uvicorn + uvloop +
httptools, in its own process; it answers ``asample`` with a promise and the
first ``retrieve_future`` with the result), so the client, not the server, is
measured. Every case runs in a client process of its own, closed loop
(32-token prompt, max_tokens=16, num_samples=1), and reports its CPU time
per request in the timed window next to a raw aiohttp two-call loop's, cases
interleaved round by round so that a busy machine slows them all alike.

Clients: ``raw`` (aiohttp, two POSTs, no library logic — the limit),
``pipeline`` (``sc.pipeline()``, every result awaited), ``taskgroup`` (a task
group of ``await sc.sample()``); ``--backends asyncio trio`` for the two
mint_async clients.

With ``--py-spy`` (py-spy on PATH or ``--py-spy-bin``) each mint_async case
is also sampled by py-spy (CPU only: idle samples are dropped) and its samples
are sorted into the stages of a request's path by the innermost mint_async
frame on the stack (:data:`STAGES`); the table then gives µs of CPU per
request per stage. Samples with no mint_async frame are the event loop's own
work (scheduling, socket readiness) and are reported as ``event loop``.

Run: ``python benchmarks/profile_client.py [--concurrency 64 512] [--requests 3000]
[--rounds 2] [--py-spy]``. One JSON line per case on stdout, tables on stderr.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

from _common import closed_loop, emit, machine, table

HERE = Path(__file__).resolve().parent
PROMPT = list(range(1, 33))
MAX_TOKENS = 16
BASE_MODEL = "Qwen/Qwen3-0.6B"

STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    # (stage, "path fragment[:function]" of the frames that belong to it); a sample
    # goes to the stage of its innermost matching frame.
    ("encode", ("mint_async/_codec.py:encode",)),
    ("decode", ("mint_async/_codec.py", "mint_async/_binary", "mint_async/_wire.py")),
    ("http/1.1 pool", ("mint_async/_http11", "httpx/", "mint_async/_response_body.py")),
    (
        "transport (retries, headers, deadline)",
        (
            "mint_async/_transport.py",
            "mint_async/_errors.py",
            "mint_async/_pools.py",
            "mint_async/_auth.py",
            "mint_async/_redaction.py",
            "mint_async/_retry.py",
        ),
    ),
    ("ordering", ("mint_async/_ordering.py",)),
    ("poll loop", ("mint_async/_polling.py", "mint_async/_queue_state.py")),
    (
        "future resolution",
        ("mint_async/_future_base.py", "mint_async/_futures.py", "mint_async/_sample_future.py"),
    ),
    ("submit", ("mint_async/_sampling.py", "mint_async/_context.py", "mint_async/types")),
    ("pipeline bookkeeping", ("mint_async/_pipeline", "mint_async/_chunking.py")),
    ("benchmark loop", ("profile_client.py",)),
)
"""Stages of a request's path. A sample with no frame of these is the event loop's own
work (scheduling, socket readiness, garbage collection between frames)."""


# ---------------------------------------------------------------------------------
# workers (one process each)
# ---------------------------------------------------------------------------------


async def _closed_loop(
    one: Callable[[], Awaitable[None]], requests: int, concurrency: int
) -> float:
    """``_common.closed_loop`` (bench_client's harness), timed: returns the wall time."""
    start = time.perf_counter()
    await closed_loop(one, requests, concurrency)
    return time.perf_counter() - start


async def _pipeline_loop(sc: Any, requests: int, concurrency: int) -> float:
    """``sc.pipeline(max_in_flight=concurrency)``, every result awaited through as_completed."""
    import anyio

    from mint_async import types as t

    prompt = t.ModelInput.from_ints(PROMPT)
    params = t.SamplingParams(max_tokens=MAX_TOKENS)
    start = time.perf_counter()
    async with sc.pipeline(max_in_flight=concurrency) as pipe:

        async def feed() -> None:
            for _ in range(requests):
                await pipe.submit(prompt, 1, params)
            pipe.close()

        async with anyio.create_task_group() as tg:
            tg.start_soon(feed)
            async for handle in pipe.as_completed(until_closed=True):
                await handle
    return time.perf_counter() - start


async def _mint_worker(args: argparse.Namespace) -> dict[str, Any]:
    from mint_async import ServiceClient
    from mint_async import types as t

    async with ServiceClient(base_url=args.base_url, api_key="tml-bench") as svc:
        sc = await svc.create_sampling_client(base_model=BASE_MODEL)
        prompt = t.ModelInput.from_ints(PROMPT)
        params = t.SamplingParams(max_tokens=MAX_TOKENS)

        async def one() -> None:
            await sc.sample(prompt, 1, params)

        await _closed_loop(one, 300, min(args.concurrency, 300))  # warm-up
        server = _server_cpu(args.base_url)
        cpu = time.process_time()
        if args.client == "pipeline":
            elapsed = await _pipeline_loop(sc, args.requests, args.concurrency)
        else:
            elapsed = await _closed_loop(one, args.requests, args.concurrency)
        cpu = time.process_time() - cpu
        return {"elapsed": elapsed, "cpu": cpu, "server_cpu": _server_cpu(args.base_url) - server}


async def _raw_worker(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp
    import orjson

    url = args.base_url
    headers = {"X-API-Key": "tml-bench", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), headers=headers
    ) as http:
        body: dict[str, Any] = {"session_id": "s", "sampling_session_seq_id": 0}
        async with http.post(f"{url}/api/v1/create_sampling_session", data=orjson.dumps(body)) as r:
            sampler = orjson.loads(await r.read())["sampling_session_id"]
        seq = 0

        async def one() -> None:
            nonlocal seq
            seq += 1
            request = {
                "num_samples": 1,
                "prompt": {"chunks": [{"type": "encoded_text", "tokens": PROMPT}]},
                "sampling_params": {"max_tokens": MAX_TOKENS, "temperature": 1.0},
                "sampling_session_id": sampler,
                "seq_id": seq,
                "type": "sample",
            }
            async with http.post(f"{url}/api/v1/asample", data=orjson.dumps(request)) as r:
                rid = orjson.loads(await r.read())["request_id"]
            poll = orjson.dumps({"request_id": rid, "allow_metadata_only": True})
            while True:
                async with http.post(f"{url}/api/v1/retrieve_future", data=poll) as r:
                    answer = orjson.loads(await r.read())
                if answer.get("type") != "try_again":
                    return

        await _closed_loop(one, 300, min(args.concurrency, 300))
        server = _server_cpu(args.base_url)
        cpu = time.process_time()
        elapsed = await _closed_loop(one, args.requests, args.concurrency)
        cpu = time.process_time() - cpu
        return {"elapsed": elapsed, "cpu": cpu, "server_cpu": _server_cpu(args.base_url) - server}


def _worker(args: argparse.Namespace) -> None:
    import anyio

    backend = "asyncio" if args.client == "raw" else args.backend
    options = {"use_uvloop": False} if backend == "asyncio" else {}
    worker = _raw_worker if args.client == "raw" else _mint_worker
    result = anyio.run(worker, args, backend=backend, backend_options=options)
    print(json.dumps(result), flush=True)


# ---------------------------------------------------------------------------------
# coordinator
# ---------------------------------------------------------------------------------


def _server_cpu(base_url: str) -> float:
    """The fast server's CPU seconds so far (a blocking call, outside the timed window)."""
    import urllib.request

    with urllib.request.urlopen(f"{base_url}/_bench/stats", timeout=10) as r:
        cpu: float = json.loads(r.read())["cpu"]
    return cpu


Case = tuple[str, str, str, int]
"""(tree, client, backend, in flight); the raw client's tree is "-"."""


def _run_case(args: argparse.Namespace, case: Case, spy: Path | None) -> dict[str, Any]:
    tree, client, backend, concurrency = case
    cmd = cmd_tail(args, client, backend, concurrency)
    if spy is not None:
        # py-spy samples on-CPU stacks only (idle ones are dropped without --idle).
        cmd = [args.py_spy_bin, "record", "--format", "raw", "--rate", "250", "-o", str(spy)]
        cmd += ["--", *cmd_tail(args, client, backend, concurrency)]
    env = dict(os.environ)
    if tree != "-" and args.trees[tree]:
        env["PYTHONPATH"] = os.pathsep.join([args.trees[tree], env.get("PYTHONPATH", "")])
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=900, env=env)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        msg = f"{case} failed:\n{out.stderr[-3000:]}"
        raise RuntimeError(msg)
    result: dict[str, Any] = json.loads(lines[-1])
    n = args.requests
    return {
        "throughput": n / result["elapsed"],
        "cpu_us_per_req": result["cpu"] / n * 1e6,
        "server_util": result["server_cpu"] / result["elapsed"],
    }


def cmd_tail(args: argparse.Namespace, client: str, backend: str, concurrency: int) -> list[str]:
    """The worker's command line (what py-spy runs)."""
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "--base-url",
        args.base_url,
        "--client",
        client,
        "--backend",
        backend,
        "--requests",
        str(args.requests),
        "--concurrency",
        str(concurrency),
    ]


_OUTER: Final = frozenset({"<module>", "main", "_worker"})
"""This script's frames below the event loop (every sample has them)."""


def stage_of(stack: str) -> str:
    """The stage of one collapsed py-spy stack (``frame;frame;...``, root first)."""
    frames = stack.split(";")
    for frame in reversed(frames):
        # py-spy's raw frames read "function (path/to/file.py:line)".
        name, _, where = frame.partition(" (")
        if name in _OUTER:
            continue
        location = where.rsplit(":", 1)[0].replace("\\", "/")
        for stage, fragments in STAGES:
            for fragment in fragments:
                file_part, _, func = fragment.partition(":")
                if file_part in location and (not func or name == func):
                    return stage
    return "event loop"


def breakdown(collapsed: Path) -> dict[str, float]:
    """Share of samples per stage in a py-spy raw (collapsed) file."""
    counts: collections.Counter[str] = collections.Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        # Start-up (imports, the session set-up) is not a request's path.
        if "_find_and_load" in stack or "create_sampling_client" in stack:
            continue
        counts[stage_of(stack)] += int(count)
    total = sum(counts.values()) or 1
    return {stage: counts[stage] / total for stage in counts}


def _start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "_fast_server.py")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("FAST_SERVER_URL="):
        proc.kill()
        msg = f"the fast server did not start: {line!r}"
        raise RuntimeError(msg)
    return proc, line.split("=", 1)[1]


def _mean(runs: list[dict[str, Any]], key: str) -> float:
    return float(sum(r[key] for r in runs)) / len(runs)


def main() -> None:
    """Parse the arguments; run a worker, or coordinate the cases."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", default="")
    parser.add_argument("--client", default="pipeline", choices=["raw", "pipeline", "taskgroup"])
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument("--clients", nargs="+", default=["raw", "pipeline", "taskgroup"])
    parser.add_argument("--backends", nargs="+", default=["asyncio", "trio"])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--tree",
        action="append",
        default=[],
        metavar="NAME=SRC",
        help="compare source trees (e.g. before=/tmp/old/src); default: the installed package",
    )
    parser.add_argument("--py-spy", action="store_true", help="also sample each case with py-spy")
    parser.add_argument("--py-spy-bin", default=shutil.which("py-spy") or "py-spy")
    args = parser.parse_args()
    if args.worker:
        args.concurrency = args.concurrency[0]
        _worker(args)
        return
    args.trees = dict(t.split("=", 1) for t in args.tree) or {"installed": ""}
    server, args.base_url = _start_server()
    cases: list[Case] = []
    for c in args.concurrency:
        for client in args.clients:
            if client == "raw":
                cases.append(("-", "raw", "asyncio", c))
                continue
            cases += [(tree, client, b, c) for tree in args.trees for b in args.backends]
    results: dict[Case, list[dict[str, Any]]] = {case: [] for case in cases}
    spies: dict[Case, dict[str, float]] = {}
    load = os.getloadavg()[0]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for rnd in range(args.rounds):
                # Interleaved, alternating direction: drift hits every case alike.
                for case in cases if rnd % 2 == 0 else reversed(cases):
                    results[case].append(_run_case(args, case, spy=None))
            if args.py_spy:
                for case in cases:
                    if case[1] != "raw":
                        out = Path(tmp) / f"{'-'.join(map(str, case))}.txt"
                        _run_case(args, case, spy=out)
                        spies[case] = breakdown(out)
    finally:
        server.terminate()
        server.wait(10)
    load_end = os.getloadavg()[0]
    rows: list[list[str]] = []
    for case in cases:
        tree, client, backend, c = case
        runs = results[case]
        raw_runs = results.get(("-", "raw", "asyncio", c), runs)
        tput, cpu = _mean(runs, "throughput"), _mean(runs, "cpu_us_per_req")
        raw_tput, raw_cpu = _mean(raw_runs, "throughput"), _mean(raw_runs, "cpu_us_per_req")
        record = {
            "tree": tree,
            "client": client,
            "backend": backend,
            "concurrency": c,
            "requests": args.requests,
            "rounds": args.rounds,
            "throughput": round(tput, 1),
            "cpu_us_per_req": round(cpu, 1),
            "vs_raw_throughput": round(tput / raw_tput, 3),
            "vs_raw_cpu": round(cpu / raw_cpu, 3),
            "server_util_max": round(max(r["server_util"] for r in runs), 2),
            "stages_us": {
                stage: round(share * cpu, 1) for stage, share in sorted(spies.get(case, {}).items())
            },
            "load_avg_1m": [round(load, 2), round(load_end, 2)],
            "machine": machine(),
        }
        emit(record)
        rows.append(
            [
                f"{client}/{backend}" + ("" if tree in ("-", "installed") else f" [{tree}]"),
                str(c),
                f"{tput:.0f}",
                f"{tput / raw_tput:.0%}",
                f"{cpu:.0f}",
                f"{cpu / raw_cpu:.2f}x",
                f"{record['server_util_max']:.2f}",
            ]
        )
    print(f"load average (1 min) at start / end: {load:.2f} / {load_end:.2f}", file=sys.stderr)
    table(
        f"closed-loop sampling, fast endpoint, {args.requests} requests (means of {args.rounds} rounds)",
        ["client", "in flight", "req/s", "of raw", "µs CPU/req", "vs raw", "server util"],
        rows,
    )
    if spies:
        stages = sorted({s for shares in spies.values() for s in shares})
        header = ["stage", *("/".join(map(str, case)) for case in spies)]
        srows: list[list[str]] = []
        for stage in stages:
            line = [stage]
            for case, shares in spies.items():
                line.append(
                    f"{shares.get(stage, 0.0) * _mean(results[case], 'cpu_us_per_req'):.0f}"
                )
            srows.append(line)
        table("µs of client CPU per request, by stage (py-spy samples)", header, srows)


if __name__ == "__main__":
    main()
