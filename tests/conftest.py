"""Shared fixtures: every async test runs on asyncio and, when trio is installed, on trio."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

# Tests never reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

_NO_OPTIONS: dict[str, Any] = {}
BACKENDS: list[Any] = [pytest.param(("asyncio", _NO_OPTIONS), id="asyncio")]
if importlib.util.find_spec("trio") is not None and os.environ.get("MINT_TEST_NO_TRIO") != "1":
    BACKENDS.append(pytest.param(("trio", _NO_OPTIONS), id="trio"))


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """The anyio backend (and its options) each async test runs on."""
    backend: tuple[str, dict[str, Any]] = request.param
    return backend


@pytest.fixture(autouse=True)
def _no_retry_sleeps() -> Iterator[None]:
    """Retry/backoff sleeps take no time in tests (the retry logic itself still runs)."""
    import mint_async

    mint_async.set_testing(True)
    yield
    mint_async.set_testing(False)


# -- a busy machine on demand ----------------------------------------------------------------
#
# `pytest --cpu-hog` (or `nox -s tests -- --cpu-hog`) runs the suite while busy-loop processes
# occupy the cores, as on a loaded CI machine: tests of timing and scheduling must hold there too.
# Each hog is a plain `while True` in its own process that exits by itself once pytest is gone
# (it polls its parent), so a killed test run leaves nothing spinning.

_HOG_LOOP = """
import os, sys
parent = int(sys.argv[1])
while True:
    for _ in range(2_000_000):
        pass
    if os.getppid() != parent:
        break
"""

_hogs: list[subprocess.Popen[bytes]] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--cpu-hog[=N]``: N busy-loop processes (default: one per core) for the whole run."""
    parser.addoption(
        "--cpu-hog",
        nargs="?",
        type=int,
        const=0,
        default=None,
        metavar="N",
        help="run the suite beside N busy-loop processes (default: one per core)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Start the busy loops asked for with ``--cpu-hog``."""
    count: int | None = config.getoption("--cpu-hog")
    if count is None:
        return
    count = count or os.cpu_count() or 2
    command = [sys.executable, "-c", _HOG_LOOP, str(os.getpid())]
    _hogs.extend(subprocess.Popen(command) for _ in range(count))


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say that the run is on a deliberately loaded machine."""
    return f"cpu hog: {len(_hogs)} busy-loop processes" if _hogs else None


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the busy loops."""
    for hog in _hogs:
        hog.kill()
    for hog in _hogs:
        hog.wait()
    _hogs.clear()
