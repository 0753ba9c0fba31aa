"""The report: the console block shows the saved JSON's numbers; throughput, CPU and lag are sane."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from mint_async.loadtest import (
    ForwardBackwardWorkload,
    IntDistribution,
    LoadTestConfig,
    LoadTestReport,
    SampleWorkload,
    run_async,
)
from mint_async.server import FaultConfig, ServerConfig
from mint_async.testing import LoopbackServer, serve_loopback

pytestmark = pytest.mark.anyio

LATENCY_ROWS = {
    "Mean (ms)": "mean",
    **{f"P{q} (ms)": f"p{q}" for q in (25, 50, 75, 90, 95, 99)},
    "Max (ms)": "max",
}


def mixed(srv: LoopbackServer, **kwargs: Any) -> LoadTestConfig:
    """Fixed-size samples (10 prompt tokens) and forward_backward (2 x 16 tokens), 3 to 1."""
    sample = SampleWorkload(
        prompt_tokens=IntDistribution.fixed(10), max_tokens=IntDistribution.fixed(4), weight=3.0
    )
    fb = ForwardBackwardWorkload(
        batch_size=IntDistribution.fixed(2), seq_len=IntDistribution.fixed(16)
    )
    return LoadTestConfig(
        base_url=srv.base_url, api_key=srv.api_key, workloads=(sample, fb), **kwargs
    )


def parse(console: str) -> dict[str, dict[str, str]]:
    """The console block as {section: {row label: shown value}} (the headline rows: "result")."""
    sections: dict[str, dict[str, str]] = {}
    rows: dict[str, str] = {}
    for line in console.splitlines():
        if title := re.fullmatch(r"[-=]+ (.+?) [-=]+", line):
            rows = sections.setdefault(
                "result" if title[1] == "mint-async load test result" else title[1], {}
            )
        elif line.strip("="):
            label, value = line.split(":", 1)
            assert label not in rows, f"row {label!r} twice in one section"
            rows[label] = value.strip()
    return sections


def shows(text: str, value: float | None) -> bool:
    """Whether ``text`` is how the console shows ``value`` (2 decimals; ``-`` for none)."""
    if value is None:
        return text == "-"
    return abs(float(text.replace(",", "")) - value) <= (0.005 if abs(value) < 1e5 else 0.5) + 1e-6


def counts(text: str) -> dict[str, float]:
    """``"429 3, connection 1"`` -> ``{"429": 3.0, "connection": 1.0}`` (``-``: none)."""
    if text == "-":
        return {}
    return {k: float(v.replace(",", "")) for k, v in (p.rsplit(" ", 1) for p in text.split(", "))}


async def test_console_block_shows_the_saved_fields(tmp_path: Path) -> None:
    """Every console section and row is there and shows the value of its key in the saved JSON."""
    faults = FaultConfig.parse("error_result=0.15:server,sample_429=0.1,seed=9")
    with serve_loopback(ServerConfig(faults=faults)) as srv:
        report = await run_async(mixed(srv, concurrency=4, requests=80, warmup_requests=6))
    path = tmp_path / "r.json"
    report.save(path)
    d: dict[str, Any] = json.loads(path.read_text())
    console = report.render()
    s = parse(console)
    assert list(s) == [
        "result", "Submit latency", "Time to result", "Polls per request", "Per request kind",
        "Operations", "Errors", "Queue states", "Client",
    ]  # fmt: skip
    head = s["result"]
    assert head["Target"] == d["target"] == srv.base_url
    assert head["Load model"] == "closed loop, concurrency 4"
    assert head["Workloads"] == "sample, forward_backward"
    assert head["Stopped by"] == d["stopped_by"] == "requests"
    assert d["completed"] + d["failed"] == 80 and d["failed"] > 0
    for label, key in (
        ("Requests completed", "completed"),
        ("Requests failed", "failed"),
        ("Duration (s)", "duration"),
        ("Request throughput (req/s)", "request_throughput"),
        ("Input token throughput (tok/s)", "input_token_throughput"),
        ("Output token throughput (tok/s)", "output_token_throughput"),
        ("Training token throughput (tok/s)", "training_token_throughput"),
    ):
        assert shows(head[label], d[key]), (label, head[label], d[key])
    assert head["Error rate"] == f"{d['error_rate']:.2%}"
    assert "Requests cancelled (drain timeout)" not in head  # shown only when there are some
    for section, name in (
        ("Submit latency", "submit_latency"),
        ("Time to result", "time_to_result"),
    ):
        assert list(s[section]) == list(LATENCY_ROWS)
        for label, prefix in LATENCY_ROWS.items():
            assert shows(s[section][label], d[f"{prefix}_{name}_ms"]), (section, label)
    polls = s["Polls per request"]["Mean / P50 / P99 / Max"].split(" / ")
    for text, key in zip(polls, ("mean_polls", "p50_polls", "p99_polls", "max_polls"), strict=True):
        assert shows(text, d[key]), key
    kinds = s["Per request kind"]
    assert set(kinds) == set(d["kinds"]) == {"sample", "forward_backward"}
    for name, k in d["kinds"].items():
        assert kinds[name].startswith(f"{k['completed']} ok, {k['failed']} failed, p50 ")
    ops = s["Operations"]
    for name, w in d["workloads"].items():
        assert ops[name].startswith(f"{w['completed']} ok, {w['failed']} failed, ")
    errors = s["Errors"]
    assert counts(errors["By HTTP status"]) == d["errors_by_status"] == {}
    assert counts(errors["By RequestFailed category"]) == d["errors_by_category"]
    assert d["errors_by_category"]["server"] == d["failed"]
    assert counts(errors["By type"]) == d["errors_by_type"] == {"RequestFailedError": d["failed"]}
    assert counts(errors["Submission retries by status"]) == d["retries_by_status"]
    queue = s["Queue states"]
    assert counts(queue["Changes into state"]) == d["queue_state_changes"]
    seconds = counts(queue["Client-seconds in state"])
    assert seconds.keys() == d["queue_state_seconds"].keys()
    assert all(abs(v - d["queue_state_seconds"][k]) <= 0.005 + 1e-6 for k, v in seconds.items())
    client = s["Client"]
    for label, key in (
        ("CPU (s)", "client_cpu_seconds"),
        ("CPU (% of one core)", "client_cpu_percent"),
        ("CPU per request (ms)", "client_cpu_ms_per_request"),
        ("Peak requests in flight", "peak_in_flight"),
    ):
        assert shows(client[label], d[key]), label
    lag = client["Event-loop lag mean/p99/max (ms)"].split(" / ")
    for text, key in zip(lag, ("mean", "p99", "max"), strict=True):
        assert shows(text, d[f"{key}_event_loop_lag_ms"]), key
    assert client["Warmup requests (not counted above)"] == str(
        d["warmup"]["completed"] + d["warmup"]["failed"]
    )
    assert client["Percentiles"] == d["percentile_precision"] == "exact"
    # A report read back from the JSON renders the same block: the file has every shown field.
    assert LoadTestReport.load(path).render() == console


async def test_open_loop_rows(server: LoopbackServer) -> None:
    """An open-loop report names its rate and arrivals and shows the schedule lag."""
    report = await run_async(
        LoadTestConfig(base_url=server.base_url, api_key=server.api_key, rate=500.0, requests=30)
    )
    s = parse(report.render())
    assert s["result"]["Load model"] == "open loop, 500.0 req/s (poisson)"
    assert "Operations" not in s  # one plain workload: the kinds say it all
    lag = s["Client"]["Schedule lag p50/p99/max (ms)"].split(" / ")
    for text, key in zip(lag, ("p50", "p99", "max"), strict=True):
        assert shows(text, report[f"{key}_schedule_lag_ms"]), key


async def test_throughputs_are_totals_over_the_duration() -> None:
    """Request throughput is completed (not failed) requests, token throughputs the totals, per measured second."""
    faults = FaultConfig.parse("error_result=0.2:server,seed=4")
    with serve_loopback(ServerConfig(faults=faults)) as srv:
        report = await run_async(mixed(srv, concurrency=4, requests=60, seed=3))
    d = report.data
    duration, completed = d["duration"], d["completed"]
    assert duration > 0 and completed + d["failed"] == 60 and d["failed"] > 0
    assert d["request_throughput"] == pytest.approx(completed / duration, rel=2e-3)
    kinds, ops = d["kinds"], d["workloads"]
    # Token totals, exactly: fixed prompt and batch sizes, counted for every accepted request.
    assert d["total_input_tokens"] == 10 * kinds["sample"]["accepted"]
    assert d["total_training_tokens"] == 2 * 16 * kinds["forward_backward"]["accepted"]
    assert 0 < d["total_output_tokens"] <= 4 * kinds["sample"]["completed"]
    for kind in ("input", "output", "training"):
        expected = d[f"total_{kind}_tokens"] / duration
        assert d[f"{kind}_token_throughput"] == pytest.approx(expected, rel=2e-3), kind
    for name in ("sample", "forward_backward"):
        expected = kinds[name]["completed"] / duration
        assert kinds[name]["throughput"] == pytest.approx(expected, rel=2e-3), name
        expected = ops[name]["completed"] / duration
        assert ops[name]["throughput"] == pytest.approx(expected, rel=2e-3), name
    assert ops["sample"]["completed"] + ops["forward_backward"]["completed"] == completed


async def test_client_cpu_and_event_loop_lag(server: LoopbackServer) -> None:
    """After a run the client CPU figures are positive and consistent; the lag monitor sampled."""
    started = time.perf_counter()
    report = await run_async(
        LoadTestConfig(
            base_url=server.base_url, api_key=server.api_key, concurrency=4, duration=0.4
        )
    )
    wall = time.perf_counter() - started
    d = report.data
    cpu, duration = d["client_cpu_seconds"], d["duration"]
    assert d["completed"] > 0 and duration > 0
    # In-process test server threads count too, so the bound is every core for the whole run.
    assert 0 < cpu <= wall * (os.cpu_count() or 1) + 0.1
    assert d["client_cpu_percent"] == pytest.approx(100 * cpu / duration, rel=1e-2)
    assert d["client_cpu_ms_per_request"] == pytest.approx(1e3 * cpu / d["completed"], rel=1e-2)
    lag = report.histograms["event_loop_lag"]
    # One sample per >= 10 ms sleep of the monitor, within the run.
    assert 0 < lag.count <= wall / 0.01 + 1
    values = [d[f"{k}_event_loop_lag_ms"] for k in ("mean", "p50", "p99", "max")]
    assert all(v is not None and v >= 0 for v in values)
    assert d["p50_event_loop_lag_ms"] <= d["p99_event_loop_lag_ms"] <= d["max_event_loop_lag_ms"]
    saved = json.loads(report.to_json())
    assert saved["histograms"]["event_loop_lag"] == lag.to_dict()
