"""The examples run end to end against the embedded local server (torch backend) and do what they say."""

from __future__ import annotations

import importlib.util
import itertools
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mint_async.server import ServerConfig
from mint_async.testing import serve_loopback

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> Any:
    """Import ``examples/<name>.py`` as a module (examples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"mint_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _no_configured_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Examples use the embedded server unless an endpoint is configured: make sure none is."""
    for name in ("MINT_BASE_URL", "MINT_API_KEY", "TINKER_BASE_URL", "TINKER_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def _printable(text: str) -> bool:
    """No control characters but line breaks (what a terminal would mangle)."""
    return all(line.isprintable() for line in text.splitlines())


def test_async_quickstart_learns(capsys: pytest.CaptureFixture[str]) -> None:
    """sft_quickstart_async: loss per token halves, most answers are right, output stays short."""
    # Seeded, so the run is the same on every machine. Whole-table steps at 3e-3: unseeded, 100
    # steps got all 16 right for 57 of 60 seeds (the default recipe is the demo's, tested there).
    outcome = load("sft_quickstart_async").main(
        ["--steps", "100", "--batches", "1", "--lr", "3e-3", "--max-operand", "4", "--seed", "0"]
    )
    assert len(outcome.losses) == 100 and outcome.losses[-1] < 0.5 * outcome.losses[0]
    assert outcome.accuracy >= 0.75
    out = capsys.readouterr().out
    assert "local server (torch backend)" in out and "answered correctly" in out
    step_lines = re.findall(r"^step +(\d+)/100  loss per token [0-9.]+$", out, flags=re.MULTILINE)
    assert step_lines[0] == "1" and step_lines[-1] == "100" and len(step_lines) <= 12
    header, *rows = out.split("the model's answers", 1)[1].splitlines()[1:6]
    assert header.split() == ["1", "2", "3", "4"] and [r.split()[0] for r in rows] == list("1234")
    assert _printable(out)


def test_async_quickstart_escapes_what_an_untrained_model_says(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """sft_quickstart_async prints every answer readable, control characters escaped."""
    module = load("sft_quickstart_async")
    assert module.readable("7\x05\n2\ufffd") == "7\\x05\\n2\ufffd"
    answers = {
        f"What is {a} * {b}?": "\x1b[2J" if a == b else str(a * b) for a in (1, 2) for b in (1, 2)
    }
    module.print_grid(answers, 2)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b*" in out and _printable(out)


def _guide_losses(out: str) -> list[float]:
    return [
        float(x)
        for x in re.findall(r"^Step \d+: loss=([0-9.]+) per token$", out, flags=re.MULTILINE)
    ]


def test_sync_quickstart_runs_the_guide(capsys: pytest.CaptureFixture[str]) -> None:
    """sft_quickstart_sync: the guide's loop prints a falling loss per token, then readable samples."""
    load("sft_quickstart_sync").main(["--steps", "4"])
    out = capsys.readouterr().out
    losses = _guide_losses(out)
    assert len(losses) == 4 and all(b < a for a, b in itertools.pairwise(losses))
    # Per token, not summed: an untrained model's is about ln(vocabulary), 5.95 for 384 tokens.
    assert 4.0 < losses[0] < 8.0
    after = out.split(f"Step 3: loss={losses[-1]:.4f} per token\n", 1)[1].splitlines()
    note = [i for i, line in enumerate(after) if line.startswith("(above: samples")]
    assert note == [4]  # the four samples, one line each
    assert "Asked in the training's format (greedy):" in after
    assert len([line for line in after if line.startswith("  What is ")]) == 3
    assert _printable(out)


def test_sync_quickstart_samples_escape_control_characters() -> None:
    """sft_quickstart_sync's readable() escapes control characters and keeps the rest."""
    readable = load("sft_quickstart_sync").readable
    assert readable(" 21<|im_end|>") == " 21<|im_end|>"
    assert readable("a\x15b\nc\x7f\ufffd") == "a\\x15b\\nc\\x7f\ufffd"


def test_sync_quickstart_uses_a_configured_endpoint(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With MINT_BASE_URL set, the sync example talks to that server and starts none itself."""
    with serve_loopback(ServerConfig(backend="synthetic", api_keys=("sk-example",))) as server:
        monkeypatch.setenv("MINT_BASE_URL", server.base_url)
        monkeypatch.setenv("MINT_API_KEY", "sk-example")
        load("sft_quickstart_sync").main([])
        assert server.statistics().executed["forward_backward"] == 10  # the guide's 10 steps
    assert len(_guide_losses(capsys.readouterr().out)) == 10


def _access_lines(text: str) -> list[str]:
    return re.findall(r'"(?:GET|POST) (\S+) HTTP/1\.1" \d+', text)


def test_async_service_answers_concurrent_requests(capsys: pytest.CaptureFixture[str]) -> None:
    """async_service --smoke: progress while training, no access log, concurrent answers."""
    answers = load("async_service").main(
        [
            *("--smoke", "8", "--train-steps", "100", "--batches", "1", "--lr", "3e-3"),
            *("--max-operand", "4", "--seed", "0"),
        ]
    )
    assert len(answers) == 8
    assert {a["question"] for a in answers} >= {"What is 1 * 1?", "What is 4 * 2?"}
    assert sum(a["correct"] for a in answers) >= 6
    captured = capsys.readouterr()
    steps = re.findall(r"^training: step +(\d+)/100  loss/token [0-9.]+ ", captured.out, re.M)
    assert steps == [str(n) for n in range(10, 101, 10)]
    assert "'latency_ms'" in captured.out and "answered correctly" in captured.out
    assert _access_lines(captured.out + captured.err) == []


def test_async_service_access_log_shows_only_its_requests(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--access-log logs the service's own requests, not the MinT calls its training makes."""
    load("async_service").main(
        ["--smoke", "2", "--access-log", "--train-steps", "2", "--max-operand", "2"]
    )
    captured = capsys.readouterr()
    paths = _access_lines(captured.out + captured.err)
    assert sorted(paths) == ["/multiply?a=1&b=1", "/multiply?a=2&b=1"]


def test_async_service_help_explains_both_modes(capsys: pytest.CaptureFixture[str]) -> None:
    """--help describes serve mode and --smoke N mode, how to try and stop it, and the time."""
    with pytest.raises(SystemExit) as exit_info:
        load("async_service").main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for needle in ("serve (default)", "--smoke N", "Ctrl+C", "curl", "--access-log", "12 s"):
        assert needle in text


def test_async_service_serve_mode_prints_url_and_stops_on_ctrl_c() -> None:
    """Serve mode prints its URL, a curl command and how to stop; it answers; Ctrl+C stops it."""
    script = EXAMPLES / "async_service.py"
    argv = ["--port", "0", "--train-steps", "2", "--max-operand", "2"]
    with subprocess.Popen(
        [sys.executable, str(script), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as proc:
        assert proc.stdout is not None
        try:
            lines: list[str] = []
            deadline = (
                time.monotonic() + 600
            )  # a hang guard for a loaded machine, not a timing check
            while not any(line.startswith("try:") for line in lines):
                line = proc.stdout.readline()
                assert line, "".join(lines)
                assert time.monotonic() < deadline
                lines.append(line)
            serving = next(line for line in lines if line.startswith("serving at "))
            assert "Ctrl+C to stop" in serving
            url = serving.split()[2]
            assert f"curl '{url}/multiply?a=7&b=8'" in lines[-1]
            reply = httpx.get(f"{url}/multiply", params={"a": 2, "b": 2}, timeout=60)
            assert reply.status_code == 200 and reply.json()["question"] == "What is 2 * 2?"
            proc.send_signal(signal.SIGINT)
            rest, _ = proc.communicate(timeout=120)
        finally:
            proc.kill()
    assert proc.returncode == 0 and rest.strip().endswith("stopped")
    assert _access_lines("".join(lines) + rest) == []


@pytest.mark.anyio
async def test_async_service_rejects_bad_requests() -> None:
    """Unknown paths are 404, non-integer operands 400, and questions before start-up 503."""
    module = load("async_service")
    app = module.MultiplyService("http://unused", None, train_steps=0, lr=0.0, max_operand=2)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://service"
    ) as http:
        assert (await http.get("/nope")).status_code == 404
        assert (await http.get("/multiply", params={"a": "x", "b": "2"})).status_code == 400
        assert (await http.get("/multiply", params={"a": "1", "b": "2"})).status_code == 503
