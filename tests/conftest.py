"""Shared fixtures: every async test runs on asyncio and, when trio is installed, on trio."""

from __future__ import annotations

import importlib.util
import os
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
