"""Thresholds: parsing with units and clear errors, evaluation against a report, exit codes."""

from __future__ import annotations

import pytest

from mint_async import InvalidInputError
from mint_async.cli import main
from mint_async.loadtest import LatencyHistogram, LoadTestReport, Threshold, check_thresholds
from mint_async.testing import LoopbackServer


def report() -> LoadTestReport:
    """A report whose time_to_result values are 1..100 ms, 2 of 100 requests failed."""
    h = LatencyHistogram()
    for i in range(1, 101):
        h.record(i / 1000)
    sample = LatencyHistogram()
    sample.record(0.5)
    data = {
        "error_rate": 0.02,
        "request_throughput": 250.0,
        "completed": 98,
        "failed": 2,
        "duration": 0.4,
        "kinds": {"sample": {"completed": 98, "failed": 2}},
        "workloads": {},
    }
    return LoadTestReport(data, {"time_to_result": h, "time_to_result:sample": sample})


@pytest.mark.parametrize(
    ("text", "metric", "scope", "op", "value"),
    [
        ("p99_time_to_result<2s", "p99_time_to_result", None, "<", 2.0),
        ("p50_submit_latency <= 250ms", "p50_submit_latency", None, "<=", 0.25),
        ("p99.9_time_to_result{sample}<1s", "p99.9_time_to_result", "sample", "<", 1.0),
        ("error_rate<0.01", "error_rate", None, "<", 0.01),
        ("error_rate<=1%", "error_rate", None, "<=", 0.01),
        ("request_throughput>100", "request_throughput", None, ">", 100.0),
        ("max_event_loop_lag<50ms", "max_event_loop_lag", None, "<", 0.05),
        ("p99_operation{rl-step}<30s", "p99_operation", "rl-step", "<", 30.0),
        ("duration<1m", "duration", None, "<", 60.0),
        ("failed{sample}==0", "failed", "sample", "==", 0.0),
    ],
)
def test_parse(text: str, metric: str, scope: str | None, op: str, value: float) -> None:
    """Metric, scope, operator and value (in seconds / fractions) are parsed."""
    th = Threshold.parse(text)
    assert (th.metric, th.scope, th.op) == (metric, scope, op)
    assert th.value == pytest.approx(value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("p99_time_to_reslt<2s", "did you mean p99_time_to_result"),
        ("latency<2s", "unknown metric"),
        ("p99_time_to_result<2", "unit"),
        ("error_rate<lots", "not a number"),
        ("p99_time_to_result=2s", "expected <metric> <op> <value>"),
        ("p99_operation<2s", "need a workload"),
        ("request_throughput{sample}>1", "no per-kind value"),
        ("p999_time_to_result<1s", "unknown metric"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    """Unknown metrics, missing units and malformed expressions raise InvalidInputError."""
    with pytest.raises(InvalidInputError, match=message):
        Threshold.parse(text)


def test_evaluate() -> None:
    """Each threshold reads the report (percentiles from the histograms) and passes or fails."""
    results = check_thresholds(
        report(),
        [
            "p99_time_to_result<=99ms",
            "p99_time_to_result<99ms",
            "p50_time_to_result==50ms",
            "max_time_to_result<=100ms",
            "mean_time_to_result<51ms",
            "p99_time_to_result{sample}<1s",
            "error_rate<0.01",
            "error_rate<=2%",
            "request_throughput>200",
            "failed{sample}<3",
            "p99_submit_latency<1s",
            "p99_time_to_result{nothing}<1s",
        ],
    )
    assert [r.passed for r in results] == [
        True,
        False,
        True,
        True,
        True,
        True,
        False,
        True,
        True,
        True,
        False,
        False,
    ]
    assert results[1].actual == pytest.approx(0.099)
    assert "no data" in str(results[10]) and str(results[0]).startswith("PASS")
    assert "2.0000%" in str(results[6])


def cli(server: LoopbackServer, *extra: str) -> int:
    return main(
        [
            "loadtest",
            "--base-url",
            server.base_url,
            "--api-key",
            server.api_key,
            "--requests",
            "40",
            "--concurrency",
            "4",
            "--quiet",
            *extra,
        ]
    )


def test_thresholds_set_the_exit_code(
    server: LoopbackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """All thresholds held: 0; one crossed: 99 (k6 style); an unknown metric: 2 before any load."""
    assert (
        cli(server, "--threshold", "error_rate<0.5", "--threshold", "p99_time_to_result<60s") == 0
    )
    out = capsys.readouterr().out
    assert "PASS  error_rate<0.5" in out and "Thresholds" in out
    assert (
        cli(server, "--threshold", "error_rate<0.5", "--threshold", "p50_time_to_result<1us") == 99
    )
    assert "FAIL  p50_time_to_result<1us" in capsys.readouterr().out
    accepted = server.statistics().accepted["sample"]
    assert cli(server, "--threshold", "p99_latency<2s") == 2
    assert "unknown metric" in capsys.readouterr().err
    assert server.statistics().accepted["sample"] == accepted  # nothing was sent
