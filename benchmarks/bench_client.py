"""Client benchmark: mint_async vs a raw aiohttp loop (vs the tinker SDKs, when installed), one run.

**The server is not the bottleneck.** By default the requests are served by
``benchmarks/_fast_server.py``: a minimal fake endpoint (raw ASGI on uvicorn with
uvloop + httptools + orjson) in its own process that answers ``asample`` with a
promise and the first ``retrieve_future`` with the result (protobuf or JSON, as
the client's ``Accept`` asks). Every case reports the server's CPU utilisation
over the client's timed window (server CPU seconds / wall seconds, read from
``/proc/<pid>/stat``); a case above ``SERVER_BOUND`` (0.7) is marked
*server-bound*: its throughput says more about the server than about the client.
The client's own utilisation is reported too: near 1 the client is CPU-bound (the
case measures it); client and server both well below 1 mean the machine is busy
with something else and the throughput column is not to be trusted.
``--server local`` (or ``both``) runs the same cases against the bundled local
reference server (synthetic backend) instead, in a separately labelled table —
that server saturates first, which flatters every client.

Every client runs in its own process, so its CPU time and peak RSS are its own;
client CPU per request is measured **in the timed window only** (after a
200-request warm-up). Rounds are interleaved (each round runs every client once
per concurrency) and the medians are reported.

Closed-loop sampling: ``requests`` sample requests (32-token prompt,
max_tokens=16, num_samples=1), ``concurrency`` in flight at a time. One request
= ``asample`` submit + ``retrieve_future`` until the result.

Clients:

* ``mint_async.pipeline`` — ``SamplingClient.pipeline(max_in_flight=C)``; one task submits,
  another awaits every handle as it completes (``as_completed``);
* ``mint_async.taskgroup`` — C tasks in a task group, each ``await sc.sample(...)`` back to back;
* ``mint_async.trio.pipeline`` / ``mint_async.trio.taskgroup`` — the same two, on trio;
* ``mint_async.httpx`` — the pipeline over httpx's own transport (``http_client="httpx"``);
* ``raw_aiohttp`` — the limit: C tasks on one aiohttp session issuing the same two POSTs
  (JSON), no library logic;
* ``tinker_<version>`` — ``sample_async`` in C tasks, for each interpreter given by
  ``--tinker-python`` that has the official SDK installed (``import mint`` first when
  MinT's shim is there); skipped with a note when none has it.

Training (against the local server — the fast endpoint has no training; ``--no-training``
skips it): ``steps`` pipelined ``forward_backward`` + ``optim_step`` pairs of 16 x 2048
tokens, mint_async vs the SDK, on each wire (``--wires``): ``json``, ``proto``,
``proto+zstd``; each row says which body encodings the server received.

Output: one JSON line per measurement on stdout, tables on stderr.
Run: ``python benchmarks/bench_client.py [--rounds 2] [--requests 3000] [--concurrency 64 512 2048]``;
``--quick`` is a smoke run (one round, 64 in flight, 300 requests).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import closed_loop, emit, machine, table

HERE = Path(__file__).resolve().parent
MINT_CLIENTS = (
    "mint_async.pipeline",
    "mint_async.taskgroup",
    "mint_async.trio.pipeline",
    "mint_async.trio.taskgroup",
    "mint_async.httpx",
)
CLIENTS = (*MINT_CLIENTS, "raw_aiohttp")
TINKER = "tinker"
"""``--clients`` name of the SDK rows (one per ``--tinker-python`` that has it)."""
PROMPT = list(range(1, 33))
MAX_TOKENS = 16
BASE_MODEL = "Qwen/Qwen3-0.6B"
WARMUP = 200
SERVER_BOUND = 0.7
"""Server CPU utilisation above which a case is marked server-bound."""
WIRES: dict[str, list[str]] = {
    "json": [],
    "proto": ["--proto"],
    "proto+zstd": ["--proto", "--zstd"],
}
"""Training wires: the ``mint-async serve`` flags of each."""
TRAINING_CLIENTS = ("train:mint_async", "train:tinker_0.22")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))]


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) process ``pid`` has used so far; None without ``/proc``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the parenthesised command name (which may hold spaces): utime is 14th, stime 15th.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Window:
    """The timed window of one case: wall time, this process's CPU, the server's CPU."""

    def __init__(self, server_pid: int | None) -> None:
        self._pid = server_pid
        self._server0 = process_cpu(server_pid) if server_pid else None
        self._rss = _rss_mb()
        self._cpu = time.process_time()
        self._start = time.perf_counter()

    def result(self, latencies: list[float], concurrency: int) -> dict[str, Any]:
        """The case's figures (call right after the last request finished)."""
        elapsed = time.perf_counter() - self._start
        cpu = time.process_time() - self._cpu
        server1 = process_cpu(self._pid) if self._pid else None
        util = None
        if self._server0 is not None and server1 is not None:
            util = round((server1 - self._server0) / elapsed, 3)
        lat = sorted(latencies)
        n = len(lat)
        return {
            "requests": n,
            "throughput": round(n / elapsed, 1),
            "p50_ms": round(_percentile(lat, 0.50) * 1e3, 1),
            "p99_ms": round(_percentile(lat, 0.99) * 1e3, 1),
            "cpu_ms_per_request": round(cpu / n * 1000, 4),
            "cpu_s_per_1000": round(cpu / n * 1000, 3),  # same figure; bench_loadtest reads it
            "client_util": round(cpu / elapsed, 3),
            "server_util": util,
            "rss_mb_per_1000_in_flight": round(
                max(0.0, _rss_mb() - self._rss) / concurrency * 1000, 1
            ),
        }


# ---------------------------------------------------------------------------------
# workers (one process each)
# ---------------------------------------------------------------------------------


async def _mint_async_worker(
    args: argparse.Namespace, *, pipeline: bool, http_client: str
) -> dict[str, Any]:
    import anyio

    from mint_async import ServiceClient
    from mint_async import types as t

    async with ServiceClient(
        base_url=args.base_url, api_key=args.api_key, http_client=http_client
    ) as svc:
        sc = await svc.create_sampling_client(base_model=BASE_MODEL)
        prompt = t.ModelInput.from_ints(PROMPT)
        params = t.SamplingParams(max_tokens=MAX_TOKENS)

        async def one() -> None:
            await sc.sample(prompt, 1, params)

        await closed_loop(one, WARMUP, min(args.concurrency, WARMUP))
        window = Window(args.server_pid)
        if pipeline:
            latencies: list[float] = []
            async with sc.pipeline(
                max_in_flight=args.concurrency, max_in_flight_bytes=1 << 40
            ) as pipe:

                async def produce() -> None:
                    for _ in range(args.requests):
                        await pipe.submit(prompt, 1, params)
                    pipe.close()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(produce)
                    async for handle in pipe.as_completed(until_closed=True):
                        await handle  # every result awaited (raises if one failed)
                        assert handle.latency is not None
                        latencies.append(handle.latency)
        else:
            latencies = await closed_loop(one, args.requests, args.concurrency)
        return window.result(latencies, args.concurrency)


async def _tinker_worker(args: argparse.Namespace) -> dict[str, Any]:
    import importlib
    import importlib.util

    os.environ["TINKER_TELEMETRY"] = "0"
    if importlib.util.find_spec("mint") is not None:
        importlib.import_module("mint")  # MinT's shim: sk- keys, env names
    tinker: Any = importlib.import_module("tinker")
    service = tinker.ServiceClient(base_url=args.base_url, api_key=args.api_key)
    sc = await service.create_sampling_client_async(base_model=BASE_MODEL)
    prompt = tinker.types.ModelInput.from_ints(PROMPT)
    params = tinker.types.SamplingParams(max_tokens=MAX_TOKENS)

    async def one() -> None:
        await sc.sample_async(prompt=prompt, num_samples=1, sampling_params=params)

    await closed_loop(one, WARMUP, min(args.concurrency, WARMUP))
    window = Window(args.server_pid)
    latencies = await closed_loop(one, args.requests, args.concurrency)
    return window.result(latencies, args.concurrency)


async def _raw_worker(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp
    import orjson

    url = args.base_url
    headers = {"X-API-Key": args.api_key, "Content-Type": "application/json"}
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), headers=headers
    ) as http:
        body: dict[str, Any] = {
            "tags": [],
            "user_metadata": {},
            "sdk_version": "0.22.0",
            "type": "create_session",
        }
        async with http.post(f"{url}/api/v1/create_session", data=orjson.dumps(body)) as r:
            session = orjson.loads(await r.read())["session_id"]
        body = {
            "session_id": session,
            "sampling_session_seq_id": 0,
            "base_model": BASE_MODEL,
            "type": "create_sampling_session",
        }
        async with http.post(f"{url}/api/v1/create_sampling_session", data=orjson.dumps(body)) as r:
            sampler = orjson.loads(await r.read())["sampling_session_id"]
        seq = 0

        async def one() -> None:
            nonlocal seq
            seq += 1
            request = {
                "num_samples": 1,
                "prompt": {"chunks": [{"type": "encoded_text", "tokens": PROMPT}]},
                "sampling_params": {
                    "max_tokens": MAX_TOKENS,
                    "temperature": 1.0,
                    "top_k": -1,
                    "top_p": 1.0,
                },
                "sampling_session_id": sampler,
                "seq_id": seq,
                "prompt_logprobs": False,
                "topk_prompt_logprobs": 0,
                "type": "sample",
            }
            async with http.post(f"{url}/api/v1/asample", data=orjson.dumps(request)) as r:
                r.raise_for_status()
                rid = orjson.loads(await r.read())["request_id"]
            poll = orjson.dumps({"request_id": rid, "allow_metadata_only": True})
            while True:
                async with http.post(f"{url}/api/v1/retrieve_future", data=poll) as r:
                    r.raise_for_status()
                    answer = orjson.loads(await r.read())
                if answer.get("type") != "try_again":
                    assert len(answer["sequences"]) == 1
                    return

        await closed_loop(one, WARMUP, min(args.concurrency, WARMUP))
        window = Window(args.server_pid)
        latencies = await closed_loop(one, args.requests, args.concurrency)
        return window.result(latencies, args.concurrency)


def _training_batch(n: int, seq: int) -> list[tuple[list[int], list[int], list[float]]]:
    import numpy as np

    rng = np.random.default_rng(0)
    out: list[tuple[list[int], list[int], list[float]]] = []
    for _ in range(n):
        tokens = rng.integers(0, 300, seq + 1).tolist()
        out.append((tokens[:-1], tokens[1:], [1.0] * seq))
    return out


async def _mint_async_training(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from mint_async import ServiceClient
    from mint_async import types as t

    batch = [
        t.Datum(
            model_input=t.ModelInput.from_ints(np.asarray(tok)),
            loss_fn_inputs={
                "target_tokens": np.asarray(tgt),
                "weights": np.asarray(w, dtype=np.float32),
            },
        )
        for tok, tgt, w in _training_batch(16, 2048)
    ]
    async with ServiceClient(base_url=args.base_url, api_key=args.api_key) as svc:
        tc = await svc.create_lora_training_client(BASE_MODEL, rank=16)
        cpu = time.process_time()
        start = time.perf_counter()
        async with tc.pipeline(max_in_flight=8) as pipe:
            for _ in range(args.steps):
                await pipe.forward_backward(batch)
                await pipe.optim_step(t.AdamParams(learning_rate=1e-4))
            await pipe.results()
        elapsed = time.perf_counter() - start
    return {
        "steps": args.steps,
        "s_per_pair": round(elapsed / args.steps, 4),
        "cpu_s_per_pair": round((time.process_time() - cpu) / args.steps, 4),
    }


async def _tinker_training(args: argparse.Namespace) -> dict[str, Any]:
    import importlib

    os.environ["TINKER_TELEMETRY"] = "0"
    importlib.import_module("mint")
    tinker: Any = importlib.import_module("tinker")
    tt = tinker.types
    batch = [
        tt.Datum(
            model_input=tt.ModelInput.from_ints(tok),
            loss_fn_inputs={"target_tokens": tgt, "weights": w},
        )
        for tok, tgt, w in _training_batch(16, 2048)
    ]
    service = tinker.ServiceClient(base_url=args.base_url, api_key=args.api_key)
    tc = await service.create_lora_training_client_async(base_model=BASE_MODEL, rank=16)
    cpu = time.process_time()
    start = time.perf_counter()
    futures: list[Any] = []
    for _ in range(args.steps):
        futures.append(await tc.forward_backward_async(batch, "cross_entropy"))
        futures.append(await tc.optim_step_async(tt.AdamParams(learning_rate=1e-4)))
    for fut in futures:
        await fut
    elapsed = time.perf_counter() - start
    return {
        "steps": args.steps,
        "s_per_pair": round(elapsed / args.steps, 4),
        "cpu_s_per_pair": round((time.process_time() - cpu) / args.steps, 4),
    }


def _delta(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """Counters that grew between two statistics snapshots, by how much."""
    return {k: n - before.get(k, 0) for k, n in after.items() if n > before.get(k, 0)}


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def _worker(args: argparse.Namespace) -> None:
    import anyio

    client: str = args.worker
    backend = "trio" if client.startswith("mint_async.trio") else "asyncio"
    runners: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
        "mint_async.pipeline": lambda: _mint_async_worker(
            args, pipeline=True, http_client="builtin"
        ),
        "mint_async.taskgroup": lambda: _mint_async_worker(
            args, pipeline=False, http_client="builtin"
        ),
        "mint_async.trio.pipeline": lambda: _mint_async_worker(
            args, pipeline=True, http_client="builtin"
        ),
        "mint_async.trio.taskgroup": lambda: _mint_async_worker(
            args, pipeline=False, http_client="builtin"
        ),
        "mint_async.httpx": lambda: _mint_async_worker(args, pipeline=True, http_client="httpx"),
        "raw_aiohttp": lambda: _raw_worker(args),
        "train:mint_async": lambda: _mint_async_training(args),
        "train:tinker_0.22": lambda: _tinker_training(args),
    }
    if client.startswith("tinker"):
        runners[client] = lambda: _tinker_worker(args)
    result = anyio.run(runners[client], backend=backend)
    print(json.dumps(result), flush=True)


def _run_worker(
    client: str,
    base_url: str,
    api_key: str,
    extra: list[str],
    timeout: float,
    python: str = sys.executable,
) -> dict[str, Any] | None:
    cmd = [
        python,
        str(Path(__file__).resolve()),
        "--worker",
        client,
        "--base-url",
        base_url,
        "--api-key",
        api_key,
        *extra,
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TINKER_TELEMETRY": "0"}
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        emit({"client": client, "error": f"timed out after {timeout} s"})
        return None
    if proc.returncode != 0:
        emit(
            {
                "client": client,
                "error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed",
            }
        )
        return None
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# ---------------------------------------------------------------------------------
# servers
# ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """A server process the sampling cases run against."""

    label: str
    base_url: str
    api_key: str
    pid: int

    def counts(self) -> dict[str, int]:
        """The fast endpoint's request counters (empty for the local server)."""
        try:
            with urllib.request.urlopen(f"{self.base_url}/_bench/stats", timeout=30) as r:
                counts: dict[str, int] = json.loads(r.read())["counts"]
                return counts
        except urllib.error.HTTPError:
            return {}


@contextlib.contextmanager
def fast_server(sdk_transport: str) -> Generator[Server]:
    """``_fast_server.py`` in its own process, for the block."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "_fast_server.py"), "--sdk-transport", sdk_transport],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("FAST_SERVER_URL="):
            msg = f"the fast server did not start (status {proc.poll()})"
            raise RuntimeError(msg)
        # Drain its stdout so the server never blocks on a full pipe.
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        yield Server("fast endpoint", line.strip().partition("=")[2], "tml-bench", proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def local_server(flags: list[str]) -> Generator[Server]:
    """The bundled local reference server (synthetic backend) in its own process."""
    from mint_async.testing import serve_subprocess

    with serve_subprocess(["--log-level", "error", *flags]) as server:
        yield Server("local server", server.base_url, server.api_key, server.process.pid)


def tinker_interpreters(pythons: list[str]) -> dict[str, str]:
    """``{"tinker_<version>": python}`` for each interpreter that has the SDK installed."""
    found: dict[str, str] = {}
    probe = "import importlib.metadata as m; print(m.version('tinker'))"
    for python in pythons:
        proc = subprocess.run(
            [python, "-c", probe], capture_output=True, text=True, check=False, timeout=60
        )
        if proc.returncode == 0 and proc.stdout.strip():
            found[f"tinker_{proc.stdout.strip()}"] = python
    return found


# ---------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------


def _sampling_cases(
    server: Server,
    args: argparse.Namespace,
    clients: list[str],
    pythons: Mapping[str, str],
) -> dict[tuple[str, int], list[dict[str, Any]]]:
    samples: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for _ in range(args.rounds):
        for concurrency in args.concurrency:
            for client in clients:
                extra = [
                    "--concurrency",
                    str(concurrency),
                    "--requests",
                    str(max(args.requests, 2 * concurrency)),
                    "--server-pid",
                    str(server.pid),
                ]
                before = server.counts()
                result = _run_worker(
                    client,
                    server.base_url,
                    server.api_key,
                    extra,
                    args.timeout,
                    pythons.get(client, sys.executable),
                )
                if result is None:
                    continue
                results = _delta(before, server.counts())
                result["results"] = {
                    k.partition(":")[2]: n for k, n in results.items() if k.startswith("result:")
                }
                emit(
                    {"server": server.label, "client": client, "concurrency": concurrency, **result}
                )
                samples.setdefault((client, concurrency), []).append(result)
    return samples


def _sampling_table(
    label: str,
    args: argparse.Namespace,
    samples: dict[tuple[str, int], list[dict[str, Any]]],
    clients: list[str],
) -> None:
    rows: list[list[object]] = []
    for concurrency in args.concurrency:
        med: dict[str, dict[str, Any]] = {}
        for c in clients:
            runs = samples.get((c, concurrency))
            if not runs:
                continue
            m: dict[str, Any] = {
                k: _median([r[k] for r in runs])
                for k in runs[0]
                if isinstance(runs[0][k], (int, float)) and all(r[k] is not None for r in runs)
            }
            m["server_util"] = (
                round(statistics.median(r["server_util"] for r in runs), 3)
                if all(r["server_util"] is not None for r in runs)
                else None
            )
            m["server_bound"] = m["server_util"] is not None and m["server_util"] > SERVER_BOUND
            m["results"] = runs[-1].get("results", {})
            med[c] = m
        raw = med.get("raw_aiohttp", {})
        for client, m in med.items():
            emit({"summary": client, "server": label, "concurrency": concurrency, **m})
            util = m["server_util"]
            rows.append(
                [
                    concurrency,
                    client,
                    f"{m['throughput']:.0f}",
                    f"{m['throughput'] / raw['throughput']:.0%}" if raw else "-",
                    f"{m['cpu_ms_per_request']:.2f}",
                    f"{m['cpu_ms_per_request'] / raw['cpu_ms_per_request']:.2f}x" if raw else "-",
                    f"{m['p50_ms']:.0f}",
                    f"{m['p99_ms']:.0f}",
                    f"{m['client_util']:.2f}",
                    "-"
                    if util is None
                    else f"{util:.2f}" + (" SERVER-BOUND" if util > SERVER_BOUND else ""),
                    ",".join(sorted(m["results"])) or "-",
                    f"{m['rss_mb_per_1000_in_flight']:.0f}",
                ]
            )
    table(
        f"closed-loop sampling against the {label} (medians of {args.rounds} interleaved rounds; "
        f"client CPU in the timed window; util = CPU s / wall s of the client / server process; "
        f"server > {SERVER_BOUND} = server-bound; both well below 1 = a busy machine)",
        [
            "in flight",
            "client",
            "req/s",
            "vs raw",
            "CPU ms/req",
            "CPU vs raw",
            "p50 ms",
            "p99 ms",
            "client util",
            "server util",
            "results",
            "RSS MB/1000",
        ],
        rows,
    )


def _training(args: argparse.Namespace) -> None:
    sdk_flags = ["--sdk-transport", args.sdk_transport]
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for wire in args.wires:
        # A server per wire: the flags decide what the clients send and receive.
        from mint_async.testing import serve_subprocess

        with serve_subprocess([*sdk_flags, *WIRES[wire]]) as server:
            for _ in range(args.rounds):
                for client in TRAINING_CLIENTS:
                    before = server.statistics()
                    result = _run_worker(
                        client,
                        server.base_url,
                        server.api_key,
                        ["--steps", str(args.steps)],
                        args.timeout,
                    )
                    if result is None:
                        continue
                    after = server.statistics()
                    result["bodies"] = _delta(before.fwdbwd_bodies, after.fwdbwd_bodies)
                    result["results"] = _delta(before.results_sent, after.results_sent)
                    emit({"client": client, "wire": wire, **result})
                    runs.setdefault((client, wire), []).append(result)
    training: dict[tuple[str, str], dict[str, Any]] = {}
    for (client, wire), results in runs.items():
        training[(client, wire)] = {
            **results[-1],
            "s_per_pair": statistics.median(r["s_per_pair"] for r in results),
            "cpu_s_per_pair": statistics.median(r["cpu_s_per_pair"] for r in results),
        }
        emit({"summary": client, "wire": wire, **training[(client, wire)]})
    if not training:
        return
    json_rows = {c: training.get((c, "json")) for c in TRAINING_CLIENTS}
    rows: list[list[object]] = []
    for (client, wire), r in training.items():
        base = json_rows[client]
        rows.append(
            [
                client.split(":", 1)[1],
                wire,
                r["s_per_pair"],
                r["cpu_s_per_pair"],
                f"{base['cpu_s_per_pair'] / r['cpu_s_per_pair']:.1f}x"
                if base and r["cpu_s_per_pair"]
                else "-",
                ", ".join(f"{k} {n}" for k, n in sorted(r["bodies"].items())),
            ]
        )
    table(
        f"training against the local server: {args.steps} pipelined forward_backward+optim_step "
        f"pairs (16 x 2048 tokens), medians of {args.rounds} rounds",
        ["client", "wire", "s/pair", "client CPU s/pair", "json CPU / this", "bodies received"],
        rows,
    )


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (or, with ``--worker``, one client case)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--api-key", help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, nargs="*", default=[64, 512, 2048])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument(
        "--clients", nargs="*", default=[*CLIENTS, TINKER], help=f"of {[*CLIENTS, TINKER]}"
    )
    parser.add_argument(
        "--server",
        choices=["fast", "local", "both"],
        default="fast",
        help="serve the sampling cases from the fast endpoint (default), the local server, or both",
    )
    parser.add_argument("--no-training", action="store_true")
    parser.add_argument("--wires", nargs="*", default=list(WIRES), choices=list(WIRES))
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument(
        "--tinker-python",
        nargs="*",
        default=[sys.executable],
        help="interpreters to run the tinker SDK rows with (one row per SDK version found)",
    )
    parser.add_argument(
        "--sdk-transport",
        choices=["pyqwest", "httpx"],
        default="pyqwest",
        help="the transport the server tells the tinker SDK to use (pyqwest: the SDK's default)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 1 round, 64 in flight, 300 requests"
    )
    args = parser.parse_args(argv)
    if args.worker:
        args.concurrency = args.concurrency[0]
        _worker(args)
        return
    if args.quick:
        args.rounds, args.concurrency, args.requests, args.no_training = 1, [64], 300, True

    clients: list[str] = [c for c in args.clients if c != TINKER]
    pythons: dict[str, str] = {}
    notes: list[str] = []
    if TINKER in args.clients:
        pythons = tinker_interpreters(args.tinker_python)
        clients += sorted(pythons)
        if not pythons:
            notes.append("tinker SDK rows skipped: no --tinker-python interpreter has it installed")
    emit(
        {
            "bench": "client",
            "machine": machine(),
            "requests": args.requests,
            "rounds": args.rounds,
            "server": args.server,
            "sdk_transport": args.sdk_transport,
            "clients": clients,
            "notes": notes,
        }
    )
    labels = ["fast", "local"] if args.server == "both" else [args.server]
    for label in labels:
        with (
            fast_server(args.sdk_transport)
            if label == "fast"
            else local_server(["--sdk-transport", args.sdk_transport])
        ) as server:
            samples = _sampling_cases(server, args, clients, pythons)
        _sampling_table(server.label, args, samples, clients)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if not args.no_training:
        _training(args)


if __name__ == "__main__":
    main()
