"""benchmarks/bench_client.py --quick runs end to end against its fast endpoint and reports what it says."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_client.py"
CLIENTS = ("mint_async.pipeline", "mint_async.trio.taskgroup", "raw_aiohttp")


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("aiohttp") is None, reason="needs aiohttp")
@pytest.mark.skipif(importlib.util.find_spec("trio") is None, reason="needs trio")
def test_quick_run_reports_every_client() -> None:
    """Each client row: 300 timed requests, client CPU/request, server utilisation, result format."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--clients", *CLIENTS, "tinker"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
        cwd=BENCH.parent,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    header = lines[0]
    assert header["bench"] == "client" and header["server"] == "fast"
    summaries = {d["summary"]: d for d in lines if "summary" in d}
    assert set(CLIENTS) <= set(summaries), proc.stdout
    for client in CLIENTS:
        row = summaries[client]
        assert row["requests"] == 300 and row["concurrency"] == 64
        assert row["throughput"] > 0 and row["cpu_ms_per_request"] > 0 and row["client_util"] > 0
        if sys.platform == "linux":
            assert row["server_util"] is not None and 0 < row["server_util"] < 2
            assert row["server_bound"] == (row["server_util"] > 0.7)
        # Every request (200 warm-up + 300 timed) got exactly one result, in the format asked.
        assert sum(row["results"].values()) == 500
        assert set(row["results"]) == ({"json"} if client == "raw_aiohttp" else {"proto"})
    assert "closed-loop sampling against the fast endpoint" in proc.stderr
    assert (
        "server util" in proc.stderr
        and "client util" in proc.stderr
        and "CPU ms/req" in proc.stderr
    )
    if not any(name.startswith("tinker_") for name in header["clients"]):
        assert "tinker SDK rows skipped" in proc.stderr
