"""``mint-async demo``: the SFT quickstart learns (torch), runs on either backend, and reports well."""

from __future__ import annotations

import importlib.util
import io
from importlib.machinery import ModuleSpec

import pytest

from mint_async import _demo, cli
from mint_async._demo import DemoResult, DemoSettings, Example, run
from mint_async._demo_report import Reporter, line_every, print_table
from mint_async.server import ServerConfig
from mint_async.testing import serve_loopback


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_torch_demo_learns_the_whole_multiplication_table() -> None:
    """The default torch run (seed 0) goes from 0/81 to 81/81 and prints about 30 step lines."""
    out, err = io.StringIO(), io.StringIO()
    result = run(DemoSettings(backend="torch"), out=out, err=err)
    assert result.target == "torch" and len(result.losses) == 270
    assert result.losses[-1] < 0.01 * result.losses[0]
    assert DemoResult.accuracy(result.before) < 0.1
    assert DemoResult.accuracy(result.after) == 1.0
    text = out.getvalue()
    lines = text.splitlines()
    assert lines[1].startswith("local server: starting, torch backend")
    assert "local server stopped" in text
    assert "training: 270 steps of 27 questions (3 per pass over all 81: 90 passes)" in text
    steps = [int(line.split()[1].split("/")[0]) for line in lines if line.startswith("step ")]
    assert steps == [1, *range(10, 271, 10)]
    assert "after training: 81/81 answered correctly (100%)" in text
    assert "What is 9 * 9?" in text and any(line.startswith("question") for line in lines)
    assert lines[-1].startswith("done in ")
    assert err.getvalue() == ""  # no progress bar when stderr is not a terminal


def test_demo_splits_each_pass_into_batches() -> None:
    """--steps and batches count steps; the plan line says how a pass over the questions splits."""
    out = io.StringIO()
    result = run(
        DemoSettings(backend="torch", steps=4, batches=2, max_operand=3, show_table=False),
        out=out,
        err=io.StringIO(),
    )
    assert len(result.losses) == 4 and len(result.after) == 9
    assert "training: 4 steps of 4-5 questions (2 per pass over all 9: 2 passes)" in out.getvalue()


def test_synthetic_demo_runs_end_to_end() -> None:
    """The synthetic backend runs the same flow; its loss falls (it cannot learn products)."""
    out = io.StringIO()
    result = run(
        DemoSettings(backend="synthetic", steps=15, max_operand=3, show_table=False),
        out=out,
        err=io.StringIO(),
    )
    assert result.target == "synthetic" and len(result.after) == 9
    assert result.losses[-1] < result.losses[0]
    assert "synthetic backend" in out.getvalue()
    assert not any(line.startswith("question") for line in out.getvalue().splitlines())


def test_cli_runs_against_a_given_endpoint(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--base-url / --api-key, or MINT_BASE_URL / MINT_API_KEY, use that server and start none."""
    with serve_loopback(ServerConfig(backend="synthetic", api_keys=("sk-demo",))) as server:
        argv = ["demo", "--steps", "3", "--lr", "0.05", "--max-operand", "2", "--no-table"]
        assert cli.main([*argv, "--base-url", server.base_url, "--api-key", "sk-demo"]) == 0
        first = capsys.readouterr().out
        monkeypatch.setenv("MINT_BASE_URL", server.base_url)
        monkeypatch.setenv("MINT_API_KEY", "sk-demo")
        assert cli.main(argv) == 0
        second = capsys.readouterr().out
    for text in (first, second):
        assert f"endpoint: {server.base_url}" in text
        assert "local server" not in text and "step    3/3" in text


def test_cli_batches_flag_splits_each_pass(capsys: pytest.CaptureFixture[str]) -> None:
    """--batches reaches DemoSettings.batches (the plan line shows the split); 0 is a usage error."""
    argv = ["demo", "--backend", "synthetic", "--steps", "2", "--max-operand", "3", "--no-table"]
    assert cli.main([*argv, "--batches", "3"]) == 0
    assert "(3 per pass over all 9" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        cli.main([*argv, "--batches", "0"])
    assert exc.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err


def test_cli_reports_failures_with_exit_status_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rejected API key ends the demo with a one-line error and status 1."""
    with serve_loopback(ServerConfig(backend="synthetic", api_keys=("sk-right",))) as server:
        status = cli.main(["demo", "--base-url", server.base_url, "--api-key", "sk-wrong"])
    assert status == 1
    assert "mint-async demo failed:" in capsys.readouterr().err


def test_cli_without_an_api_key_names_the_option(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A base URL (flag or MINT_BASE_URL) without a key exits 2 with a message naming --api-key."""
    for name in ("MINT_API_KEY", "TINKER_API_KEY", "MINT_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    url = "http://127.0.0.1:9"
    assert cli.main(["demo", "--base-url", url]) == 2
    monkeypatch.setenv("MINT_BASE_URL", url)
    assert cli.main(["demo"]) == 2
    expected = f"mint-async demo: no API key for {url}: pass --api-key or set MINT_API_KEY"
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and all(line.startswith(expected) for line in lines)


def test_auto_backend_prefers_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """auto picks torch when it is installed, synthetic otherwise; an explicit choice wins."""
    assert _demo._local_backend("auto") == "torch"  # pyright: ignore[reportPrivateUsage]
    real = importlib.util.find_spec

    def without_torch(name: str, package: str | None = None) -> ModuleSpec | None:
        return None if name == "torch" else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", without_torch)
    assert _demo._local_backend("auto") == "synthetic"  # pyright: ignore[reportPrivateUsage]
    assert _demo._local_backend("torch") == "torch"  # pyright: ignore[reportPrivateUsage]


def test_progress_bar_only_on_a_terminal() -> None:
    """On a terminal the bar is drawn, erased around each line and removed at the end."""
    out, err = io.StringIO(), FakeTerminal()
    report = Reporter(out, err)
    report.step(1, 4, 2.5)
    report.step(2, 4, 1.25)
    report.line("hello")
    report.done()
    assert out.getvalue().splitlines() == [
        "step    1/4  loss/token 2.5000",
        "step    2/4  loss/token 1.2500",
        "hello",
    ]
    drawn = err.getvalue()
    assert "training [############------------] 2/4  loss/token 1.2500" in drawn
    assert drawn.endswith("\r\x1b[K")
    quiet = io.StringIO()
    Reporter(io.StringIO(), quiet).step(1, 2, 1.0)
    assert quiet.getvalue() == ""


def test_step_lines_stay_few_however_many_steps() -> None:
    """Lines go to the first, the last and every 1/2/5/10...-th step: at most about 30."""
    assert [line_every(n) for n in (4, 30, 31, 60, 160, 270, 1000)] == [1, 1, 2, 2, 10, 10, 50]
    out, err = io.StringIO(), FakeTerminal()
    report = Reporter(out, err)
    for done in range(1, 46):
        report.step(done, 45, 1.0)
    printed = [int(line.split()[1].split("/")[0]) for line in out.getvalue().splitlines()]
    assert printed == [1, *range(2, 45, 2), 45]
    assert err.getvalue().count("training [") == 45  # the bar still moves at every step


def test_table_lists_every_question_with_a_mark() -> None:
    """Every example appears once, with expected and sampled answers and a right/wrong mark."""
    examples = [
        Example(question=f"What is {i} * 2?", expected=str(2 * i), sampled=str(2 * i + (i == 3)))
        for i in range(1, 8)
    ]
    out = io.StringIO()
    print_table(examples, out)
    text = out.getvalue()
    for e in examples:
        assert text.count(e.question) == 1
    assert text.count("✓") == 6 and text.count("✗") == 1
    ascii_out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    print_table(examples, ascii_out)
    ascii_out.seek(0)
    assert "ok" in ascii_out.read()
