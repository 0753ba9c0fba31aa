"""Client benchmark: mint_async vs the official tinker 0.22 SDK vs a raw aiohttp loop, one run.

The local reference server runs in its own process (synthetic backend, zero
latency); every client runs in its own process too, so CPU time and peak RSS
are its own. Rounds are interleaved (each round runs every client once per
concurrency) and the medians are reported.

Closed-loop sampling: ``requests`` sample requests (32-token prompt,
max_tokens=16, num_samples=1), ``concurrency`` in flight at a time. One request
= ``asample`` submit + ``retrieve_future`` until the result.

Clients:

* ``mint_async.pipeline`` — ``SamplingClient.pipeline(max_in_flight=C)``;
* ``mint_async.taskgroup`` — plain ``await sc.sample(...)`` in a task group (limiter C);
* ``mint_async.trio`` — the pipeline, on trio;
* ``mint_async.httpx`` — the pipeline over httpx's own transport (``http_client="httpx"``);
* ``tinker_0.22`` — ``sample_async`` calls in a task group (limiter C), via ``import mint``, on
  the transport the server names (``--sdk-transport``: pyqwest, the SDK's default, or httpx);
* ``raw_aiohttp`` — the limit: one aiohttp session issuing the same two POSTs, no library logic.

Training: ``steps`` pipelined ``forward_backward`` + ``optim_step`` pairs of 16 x 2048
tokens, mint_async vs the SDK (seconds per pair, client CPU per pair), on each wire
(``--wires``): ``json``, ``proto`` (server ``--proto``: protobuf forward_backward bodies
and results) and ``proto+zstd`` (``--proto --zstd``; tinker 0.22 never compresses, so its
bodies stay plain protobuf there). A server per wire, started with the matching flags;
each row says which body encodings the server actually received (in its last round).

Output: one JSON line per measurement on stdout, tables on stderr.
Run: ``python benchmarks/bench_client.py [--rounds 3] [--requests 2000] [--concurrency 64 512 2048]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from _common import emit, machine, table

CLIENTS = (
    "mint_async.pipeline",
    "mint_async.taskgroup",
    "mint_async.trio",
    "mint_async.httpx",
    "tinker_0.22",
    "raw_aiohttp",
)
PROMPT = list(range(1, 33))
MAX_TOKENS = 16
BASE_MODEL = "Qwen/Qwen3-0.6B"
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


def _result(
    latencies: list[float], elapsed: float, cpu: float, rss_before: float, concurrency: int
) -> dict[str, Any]:
    lat = sorted(latencies)
    n = len(lat)
    return {
        "requests": n,
        "throughput": round(n / elapsed, 1),
        "p50_ms": round(_percentile(lat, 0.50) * 1e3, 1),
        "p99_ms": round(_percentile(lat, 0.99) * 1e3, 1),
        "cpu_s_per_1000": round(cpu / n * 1000, 3),
        "rss_mb_per_1000_in_flight": round(
            max(0.0, _rss_mb() - rss_before) / concurrency * 1000, 1
        ),
    }


async def _closed_loop(
    one: Callable[[], Awaitable[None]], requests: int, concurrency: int
) -> tuple[list[float], float]:
    """Run ``requests`` calls of ``one`` with ``concurrency`` in flight; returns latencies and wall time."""
    import anyio

    latencies: list[float] = []
    limiter = anyio.CapacityLimiter(concurrency)

    async def timed() -> None:
        async with limiter:
            start = time.perf_counter()
            await one()
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(requests):
            tg.start_soon(timed)
    return latencies, time.perf_counter() - start


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

        await _closed_loop(one, 200, min(args.concurrency, 200))  # warm-up
        rss = _rss_mb()
        cpu = time.process_time()
        if pipeline:
            latencies: list[float] = []
            start = time.perf_counter()
            async with sc.pipeline(
                max_in_flight=args.concurrency, max_in_flight_bytes=1 << 40
            ) as pipe:
                for _ in range(args.requests):
                    await pipe.submit(prompt, 1, params)
                async for handle in pipe.as_completed():
                    handle.result()
                    assert handle.latency is not None
                    latencies.append(handle.latency)
            elapsed = time.perf_counter() - start
        else:
            latencies, elapsed = await _closed_loop(one, args.requests, args.concurrency)
        del anyio
        return _result(latencies, elapsed, time.process_time() - cpu, rss, args.concurrency)


async def _tinker_worker(args: argparse.Namespace) -> dict[str, Any]:
    import importlib

    os.environ["TINKER_TELEMETRY"] = "0"
    importlib.import_module("mint")  # MinT's shim: sk- keys, env names
    tinker: Any = importlib.import_module("tinker")
    service = tinker.ServiceClient(base_url=args.base_url, api_key=args.api_key)
    sc = await service.create_sampling_client_async(base_model=BASE_MODEL)
    prompt = tinker.types.ModelInput.from_ints(PROMPT)
    params = tinker.types.SamplingParams(max_tokens=MAX_TOKENS)

    async def one() -> None:
        await sc.sample_async(prompt=prompt, num_samples=1, sampling_params=params)

    await _closed_loop(one, 200, min(args.concurrency, 200))
    rss = _rss_mb()
    cpu = time.process_time()
    latencies, elapsed = await _closed_loop(one, args.requests, args.concurrency)
    return _result(latencies, elapsed, time.process_time() - cpu, rss, args.concurrency)


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
                rid = orjson.loads(await r.read())["request_id"]
            poll = orjson.dumps({"request_id": rid, "allow_metadata_only": True})
            while True:
                async with http.post(f"{url}/api/v1/retrieve_future", data=poll) as r:
                    answer = orjson.loads(await r.read())
                if answer.get("type") != "try_again":
                    return

        await _closed_loop(one, 200, min(args.concurrency, 200))
        rss = _rss_mb()
        cpu = time.process_time()
        latencies, elapsed = await _closed_loop(one, args.requests, args.concurrency)
        return _result(latencies, elapsed, time.process_time() - cpu, rss, args.concurrency)


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


def _worker(args: argparse.Namespace) -> None:
    import anyio

    client: str = args.worker
    backend = "trio" if client == "mint_async.trio" else "asyncio"
    runners: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
        "mint_async.pipeline": lambda: _mint_async_worker(
            args, pipeline=True, http_client="builtin"
        ),
        "mint_async.taskgroup": lambda: _mint_async_worker(
            args, pipeline=False, http_client="builtin"
        ),
        "mint_async.trio": lambda: _mint_async_worker(args, pipeline=True, http_client="builtin"),
        "mint_async.httpx": lambda: _mint_async_worker(args, pipeline=True, http_client="httpx"),
        "tinker_0.22": lambda: _tinker_worker(args),
        "raw_aiohttp": lambda: _raw_worker(args),
        "train:mint_async": lambda: _mint_async_training(args),
        "train:tinker_0.22": lambda: _tinker_training(args),
    }
    result = anyio.run(runners[client], backend=backend)
    print(json.dumps(result), flush=True)


def _run_worker(
    client: str, base_url: str, api_key: str, extra: list[str], timeout: float
) -> dict[str, Any] | None:
    cmd = [
        sys.executable,
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


def _delta(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """Counters that grew between two statistics snapshots, by how much."""
    return {k: n - before.get(k, 0) for k, n in after.items() if n > before.get(k, 0)}


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--worker")
    parser.add_argument("--base-url")
    parser.add_argument("--api-key")
    parser.add_argument("--concurrency", type=int, nargs="*", default=[64, 512, 2048])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--clients", nargs="*", default=list(CLIENTS))
    parser.add_argument("--no-training", action="store_true")
    parser.add_argument("--wires", nargs="*", default=list(WIRES), choices=list(WIRES))
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument(
        "--sdk-transport",
        choices=["pyqwest", "httpx"],
        default="pyqwest",
        help="the transport the server tells tinker 0.22 to use (pyqwest: the SDK's default)",
    )
    args = parser.parse_args()
    if args.worker:
        args.concurrency = args.concurrency[0]
        _worker(args)
        return

    from mint_async.testing import serve_subprocess

    emit(
        {
            "bench": "client",
            "machine": machine(),
            "requests": args.requests,
            "rounds": args.rounds,
            "sdk_transport": args.sdk_transport,
        }
    )
    samples: dict[tuple[str, int], list[dict[str, Any]]] = {}
    sdk_flags = ["--sdk-transport", args.sdk_transport]
    with serve_subprocess(sdk_flags) as server:
        for _ in range(args.rounds):
            for concurrency in args.concurrency:
                for client in args.clients:
                    extra = [
                        "--concurrency",
                        str(concurrency),
                        "--requests",
                        str(max(args.requests, 2 * concurrency)),
                    ]
                    result = _run_worker(
                        client, server.base_url, server.api_key, extra, args.timeout
                    )
                    if result is not None:
                        emit({"client": client, "concurrency": concurrency, **result})
                        samples.setdefault((client, concurrency), []).append(result)
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if not args.no_training:
        for wire in args.wires:
            # A server per wire: the flags decide what the clients send and receive.
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

    rows: list[list[object]] = []
    for concurrency in args.concurrency:
        med = {
            c: {
                k: _median([r[k] for r in samples[(c, concurrency)]])
                for k in samples[(c, concurrency)][0]
            }
            for c in args.clients
            if (c, concurrency) in samples
        }
        sdk = med.get("tinker_0.22", {}).get("throughput")
        raw = med.get("raw_aiohttp", {}).get("throughput")
        for client, m in med.items():
            emit({"summary": client, "concurrency": concurrency, **m})
            rows.append(
                [
                    concurrency,
                    client,
                    f"{m['throughput']:.0f}",
                    f"{m['p50_ms']:.0f}",
                    f"{m['p99_ms']:.0f}",
                    f"{m['cpu_s_per_1000']:.2f}",
                    f"{m['rss_mb_per_1000_in_flight']:.0f}",
                    f"{m['throughput'] / sdk:.1f}x" if sdk else "-",
                    f"{m['throughput'] / raw:.0%}" if raw else "-",
                ]
            )
    table(
        f"closed-loop sampling (medians of {args.rounds} interleaved rounds)",
        [
            "in flight",
            "client",
            "req/s",
            "p50 ms",
            "p99 ms",
            "CPU s/1000",
            "RSS MB/1000",
            "vs SDK",
            "vs raw",
        ],
        rows,
    )
    if training:
        json_rows = {c: training.get((c, "json")) for c in TRAINING_CLIENTS}
        rows = []
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
            f"training: {args.steps} pipelined forward_backward+optim_step pairs (16 x 2048 tokens), "
            f"medians of {args.rounds} rounds",
            ["client", "wire", "s/pair", "client CPU s/pair", "json CPU / this", "bodies received"],
            rows,
        )


if __name__ == "__main__":
    main()
