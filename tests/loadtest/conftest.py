"""Fixtures of the load tester's tests: a plain local server on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mint_async.testing import LoopbackServer, serve_loopback


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    """The local reference server (zero latency, no faults) on a loopback port."""
    with serve_loopback() as srv:
        yield srv
