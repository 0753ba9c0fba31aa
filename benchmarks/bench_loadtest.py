"""Load generator vs pipeline: is ``mint-async loadtest`` the bottleneck? One run, side by side.

Both drive closed-loop sampling (32-token prompt, max_tokens=16, num_samples=1,
``concurrency`` in flight) at the local reference server (synthetic backend,
zero latency) running in its own process; each contender runs in its own
process too:

* ``pipeline`` — ``benchmarks/bench_client.py``'s ``mint_async.pipeline`` worker
  (``SamplingClient.pipeline(max_in_flight=C)``, 200 warm-up requests first);
* ``loadtest`` — ``mint-async loadtest --concurrency C --requests N --warmup 200``
  (its measured throughput, from ``--save-result``).

Rounds are interleaved and medians reported; the ratio loadtest / pipeline is
the figure of merit (acceptance: at least 0.9).

Output: one JSON line per measurement and per summary on stdout, a table on stderr.
Run: ``python benchmarks/bench_loadtest.py [--rounds 3] [--requests 2000] [--concurrency 64 512]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import emit, machine, table

HERE = Path(__file__).resolve().parent
CONTENDERS = ("pipeline", "loadtest")


def _pipeline(
    base_url: str, api_key: str, concurrency: int, requests: int, timeout: float
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(HERE / "bench_client.py"),
        "--worker",
        "mint_async.pipeline",
        "--base-url",
        base_url,
        "--api-key",
        api_key,
        "--concurrency",
        str(concurrency),
        "--requests",
        str(requests),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "throughput": result["throughput"],
        "p99_ms": result["p99_ms"],
        "cpu_ms_per_request": result["cpu_s_per_1000"],
    }


def _loadtest(
    base_url: str, api_key: str, concurrency: int, requests: int, timeout: float
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [
            sys.executable,
            "-m",
            "mint_async.cli",
            "loadtest",
            "--base-url",
            base_url,
            "--api-key",
            api_key,
            "--concurrency",
            str(concurrency),
            "--requests",
            str(requests),
            "--warmup",
            "200",
            "--prompt-tokens",
            "32",
            "--max-tokens",
            "16",
            "--quiet",
            "--save-result",
            str(out),
        ]
        subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
        data = json.loads(out.read_text())
    return {
        "throughput": data["request_throughput"],
        "p99_ms": data["p99_time_to_result_ms"],
        "cpu_ms_per_request": data["client_cpu_ms_per_request"],
        "failed": data["failed"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="*", default=[64, 512])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from mint_async.testing import serve_subprocess

    emit(
        {
            "bench": "loadtest",
            "machine": machine(),
            "requests": args.requests,
            "rounds": args.rounds,
        }
    )
    runners = {"pipeline": _pipeline, "loadtest": _loadtest}
    samples: dict[tuple[str, int], list[dict[str, Any]]] = {}
    with serve_subprocess(["--log-level", "error"]) as server:
        for i in range(args.rounds):
            for concurrency in args.concurrency:
                order = CONTENDERS if i % 2 == 0 else CONTENDERS[::-1]
                for name in order:
                    requests = max(args.requests, 2 * concurrency)
                    result = runners[name](
                        server.base_url, server.api_key, concurrency, requests, args.timeout
                    )
                    emit({"contender": name, "concurrency": concurrency, "round": i, **result})
                    samples.setdefault((name, concurrency), []).append(result)
    rows: list[list[object]] = []
    for concurrency in args.concurrency:
        med = {
            name: {
                k: statistics.median(r[k] for r in samples[(name, concurrency)])
                for k in ("throughput", "p99_ms", "cpu_ms_per_request")
            }
            for name in CONTENDERS
        }
        ratio = med["loadtest"]["throughput"] / med["pipeline"]["throughput"]
        emit(
            {
                "summary": "loadtest/pipeline",
                "concurrency": concurrency,
                "ratio": round(ratio, 3),
                **{f"{n}_{k}": round(v, 3) for n, m in med.items() for k, v in m.items()},
            }
        )
        for name in CONTENDERS:
            m = med[name]
            rows.append(
                [
                    concurrency,
                    name,
                    f"{m['throughput']:.0f}",
                    f"{m['p99_ms']:.0f}",
                    f"{m['cpu_ms_per_request']:.2f}",
                    f"{ratio:.2f}" if name == "loadtest" else "1.00",
                ]
            )
    table(
        f"closed-loop sampling, medians of {args.rounds} interleaved rounds",
        ["in flight", "driver", "req/s", "p99 ms", "client CPU ms/req", "vs pipeline"],
        rows,
    )


if __name__ == "__main__":
    main()
