"""``mint-async loadtest``: the local server by default, option errors, scenarios, compare, progress."""

from __future__ import annotations

import io
import json
import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest

import mint_async
from mint_async.cli import build_parser, main
from mint_async.loadtest import LoadTestConfig, LoadTestReport, SampleWorkload, Scenario, run_async
from mint_async.server import FaultConfig, ServerConfig
from mint_async.testing import LoopbackServer, serve_loopback


def remote(server: LoopbackServer) -> list[str]:
    return ["loadtest", "--base-url", server.base_url, "--api-key", server.api_key, "--quiet"]


def test_local_server_by_default(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    anyio_backend: tuple[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without a URL the local server runs in a child process; its counts are in the result and on the console."""
    monkeypatch.delenv("MINT_BASE_URL", raising=False)
    out = tmp_path / "result.json"
    argv = [
        "loadtest", "--requests", "40", "--concurrency", "4", "--warmup", "5", "--quiet",
        "--server-faults", "error_result=0.1,seed=3", "--event-loop", anyio_backend[0],
        "--save-result", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    data = json.loads(out.read_text())
    assert data["target"].endswith("(local server)") and data["backend"] == anyio_backend[0]
    server = data["server"]
    assert server["accepted"]["sample"] == 45 == data["accepted_by_kind"]["sample"] + 5
    seen = data["errors_by_category"].get("server", 0) + data["warmup"]["errors_by_category"].get(
        "server", 0
    )
    assert server["faults"].get("error_result", 0) == seen
    assert data["completed"] + data["failed"] == 40
    console = capsys.readouterr().out.splitlines()
    section = console.index(next(line for line in console if " Local server " in line))
    rows = dict(line.split(":", 1) for line in console[section + 1 : section + 6])
    assert rows["Accepted"].split() == ["sample", "45"]
    assert rows["Executed"].split() == ["sample", str(server["executed"]["sample"])]
    fired = ", ".join(f"{k} {v}" for k, v in server["faults"].items()) or "-"
    assert rows["Faults fired"].strip() == fired


def test_base_url_from_the_environment(
    server: LoopbackServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    anyio_backend: tuple[str, Any],
) -> None:
    """MINT_BASE_URL / MINT_API_KEY name the target; --base-url wins over them; --local ignores them."""
    monkeypatch.setenv("MINT_BASE_URL", server.base_url)
    monkeypatch.setenv("MINT_API_KEY", server.api_key)
    out = tmp_path / "result.json"
    base = ["loadtest", "--quiet", "--event-loop", anyio_backend[0], "--save-result", str(out)]
    assert main([*base, "--requests", "12", "--concurrency", "3"]) == 0
    data = json.loads(out.read_text())
    assert data["target"] == server.base_url and data["server"] is None
    assert server.statistics().accepted["sample"] == 12 == data["completed"]
    # An explicit --base-url beats the environment's (which now points nowhere).
    monkeypatch.setenv("MINT_BASE_URL", "http://127.0.0.1:9")
    argv = [*base, "--base-url", server.base_url, "--requests", "5"]
    assert main(argv) == 0
    assert json.loads(out.read_text())["target"] == server.base_url
    assert server.statistics().accepted["sample"] == 17
    # --local starts the local server although MINT_BASE_URL is set.
    monkeypatch.setenv("MINT_BASE_URL", server.base_url)
    assert main([*base, "--local", "--requests", "6", "--concurrency", "2"]) == 0
    data = json.loads(out.read_text())
    assert data["target"].endswith("(local server)") and data["target"] != server.base_url
    assert data["server"]["accepted"]["sample"] == 6
    assert server.statistics().accepted["sample"] == 17


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--batch-size", "4"], "--batch-size applies to the forward_backward workload"),
        (["--concurrency", "4", "--rate", "5"], "not both"),
        (["--duration", "soon"], "not a duration"),
        (["--prompt-tokens", "uniform(9,1)"], "low end is above the high end"),
        (["--server-faults", "sample_429=0.1"], "cannot be used with a base URL"),
        (["--workload", "rl-step", "--groups", "0"], "groups"),
        (["--plot", "x.png", "--threshold", "p99<1s"], "unknown metric"),
    ],
)
def test_bad_options_exit_2(
    server: LoopbackServer, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Invalid options print a clear message and exit with status 2, before any load."""
    assert main([*remote(server), *argv]) == 2
    assert message in capsys.readouterr().err
    assert server.statistics().accepted == {}


def test_scenario_file_with_a_mix(
    server: LoopbackServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A TOML scenario mixes workloads by weight; its thresholds decide the exit status."""
    scenario = tmp_path / "mix.toml"
    scenario.write_text(
        """
thresholds = ["error_rate<0.5", "p50_time_to_result<1us"]

[load]
concurrency = 4
requests = 60
warmup = 3
seed = 3

[[workload]]
type = "sample"
weight = 3
prompt_tokens = "uniform(4,16)"
max_tokens = "choice(1,2)"

[[workload]]
type = "forward_backward"
name = "train"
batch_size = 2
seq_len = "uniform(8,16)"
"""
    )
    out = tmp_path / "r.json"
    assert main([*remote(server), "--scenario", str(scenario), "--save-result", str(out)]) == 99
    data = json.loads(out.read_text())
    ops = data["workloads"]
    assert set(ops) == {"sample", "train"}
    assert ops["sample"]["completed"] + ops["train"]["completed"] == 60
    assert ops["sample"]["completed"] > ops["train"]["completed"] > 0
    assert "FAIL  p50_time_to_result<1us" in capsys.readouterr().out
    # Command-line load settings win over the file's.
    assert (
        main(
            [
                *remote(server),
                "--scenario",
                str(scenario),
                "--requests",
                "8",
                "--save-result",
                str(out),
            ]
        )
        == 99
    )
    data = json.loads(out.read_text())
    assert data["completed"] + data["failed"] == 8


def test_scenario_errors(
    tmp_path: Path, server: LoopbackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unknown keys, types and unreadable files are refused with the offending name."""
    cases = {
        "a.json": (json.dumps({"workload": [{"type": "sample", "max_token": 3}]}), "max_token"),
        "b.json": (json.dumps({"workload": [{"type": "chat"}]}), "'type' must be one of"),
        "c.json": (json.dumps({"workload": []}), "at least one"),
        "d.json": (json.dumps({"load": {"speed": 1}, "workload": [{"type": "sample"}]}), "speed"),
        "e.toml": ("[[workload]]\ntype = 'sample'\n[extra]\n", "unknown top-level"),
        "f.toml": ("not toml at all [", "cannot read scenario"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        assert main([*remote(server), "--scenario", str(path)]) == 2, name
        assert message in capsys.readouterr().err, name
    path = tmp_path / "ok.json"
    path.write_text(json.dumps({"workload": [{"type": "sample"}]}))
    assert main([*remote(server), "--scenario", str(path), "--max-tokens", "4"]) == 2
    assert "cannot be combined with --scenario" in capsys.readouterr().err
    scenario = Scenario.load_file(path)
    assert scenario.config(rate=5.0).rate == 5.0


def test_compare(
    server: LoopbackServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """compare prints both results side by side with deltas; unreadable files exit 2."""
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert (
        main([*remote(server), "--requests", "30", "--concurrency", "2", "--save-result", str(a)])
        == 0
    )
    assert (
        main([*remote(server), "--requests", "60", "--concurrency", "8", "--save-result", str(b)])
        == 0
    )
    capsys.readouterr()
    assert main(["loadtest", "compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert (
        "30" in lines["completed"]
        and "60" in lines["completed"]
        and "+100.0%" in lines["completed"]
    )
    assert "sample.p99_time_to_result_ms" in lines
    assert lines["request_throughput"].rstrip().endswith(("better", "worse"))
    (tmp_path / "junk.json").write_text("{}")
    assert main(["loadtest", "compare", str(a), str(tmp_path / "junk.json")]) == 2
    assert "not a mint-async load test result" in capsys.readouterr().err
    loaded = LoadTestReport.load(a)
    assert loaded["completed"] == 30 and loaded.histograms["time_to_result"].count == 30


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.anyio
async def test_progress_line_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """With progress on and a terminal on stderr, a refreshing line shows done, errors, rates, p50/p99."""
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    faults = ServerConfig(faults=FaultConfig.parse("error_result=0.3,seed=2"))
    with serve_loopback(faults) as srv:
        config = LoadTestConfig(
            base_url=srv.base_url, api_key=srv.api_key, workloads=(SampleWorkload(),),
            concurrency=2, duration=1.0, progress=True,
        )  # fmt: skip
        report = await run_async(config)
    text = terminal.getvalue()
    assert text.startswith("\r") and text.endswith("\n")
    assert "req/s" in text and "in flight" in text
    # The line is redrawn every 0.5 s: the last drawing (at 0.5 s or later) has results.
    last = text.rstrip().split("\r")[-1]
    match = re.search(
        r"\| ([\d,]+) ok \| ([\d,]+) err \|.*\| p50 ([\d,.]+)ms p99 ([\d,.]+)ms", last
    )
    assert match is not None, last
    done, errors, p50, p99 = (float(g.replace(",", "")) for g in match.groups())
    assert 0 < errors <= report["failed"] and 0 < done <= report["completed"]
    assert 0 < p50 <= p99


@pytest.mark.anyio
async def test_no_progress_when_not_a_terminal(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Piped stderr gets no progress line (logs stay clean)."""
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stderr", pipe)
    config = LoadTestConfig(
        base_url=server.base_url, api_key=server.api_key, requests=10, progress=True
    )
    await run_async(config)
    assert pipe.getvalue() == ""


def test_a_failing_setup_exits_1(
    server: LoopbackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run that cannot start (a base model the server does not serve) exits 1 with the reason."""
    assert main([*remote(server), "--base-model", "no/such-model", "--requests", "5"]) == 1
    assert "the run failed" in capsys.readouterr().err


def _closed_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_unreachable_endpoint_fails_fast(
    anyio_backend: tuple[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """A closed --base-url port is reported in one line naming the URL, with status 1, in seconds."""
    url = f"http://127.0.0.1:{_closed_port()}"
    # Real backoff sleeps: without the up-front check the client's retries would take about a minute.
    mint_async.set_testing(False)
    argv = ["loadtest", "--base-url", url, "--api-key", "sk-test", "--quiet", "--requests", "5"]
    start = time.monotonic()
    assert main([*argv, "--event-loop", anyio_backend[0]]) == 1
    assert time.monotonic() - start < 15
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"mint-async loadtest: cannot reach {url}: ") and "\n" not in err


def test_a_missing_api_key_names_the_option(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A base URL (flag or MINT_BASE_URL) without a key exits 2 naming --api-key, before any load."""
    for name in ("MINT_API_KEY", "TINKER_API_KEY", "MINT_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert main(["loadtest", "--base-url", server.base_url, "--quiet"]) == 2
    monkeypatch.setenv("MINT_BASE_URL", server.base_url)
    assert main(["loadtest", "--quiet"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    for line in lines:
        assert "pass --api-key or set MINT_API_KEY" in line and server.base_url in line
    assert server.statistics().accepted == {}


def test_backend_is_a_deprecated_alias_of_event_loop(capsys: pytest.CaptureFixture[str]) -> None:
    """``loadtest --backend trio`` still picks the event loop, with a one-line notice on stderr."""
    assert build_parser().parse_args(["loadtest"]).event_loop == "asyncio"
    assert capsys.readouterr().err == ""
    assert build_parser().parse_args(["loadtest", "--backend", "trio"]).event_loop == "trio"
    assert capsys.readouterr().err == (
        "mint-async loadtest: --backend is deprecated; use --event-loop\n"
    )
    assert build_parser().parse_args(["loadtest", "--event-loop", "trio"]).event_loop == "trio"
