"""Blocking futures: ``.result(timeout=None)`` waits for the async future on the portal."""

from __future__ import annotations

from typing import Generic, TypeVar

from .. import types as t
from .._futures import APIFuture as AsyncAPIFuture
from ._bridge import Bridge

__all__ = ["APIFuture", "SampleFuture"]

T = TypeVar("T")


class APIFuture(Generic[T]):
    """A blocking handle to a result: ``.result(timeout=None)`` waits for it.

    A ``timeout`` that expires raises :class:`mint_async.FutureTimeoutError`; the
    request keeps running on the server and a later ``result()`` picks it up.
    """

    def __init__(self, bridge: Bridge, inner: AsyncAPIFuture[T]) -> None:
        self._bridge = bridge
        self._inner = inner

    def __repr__(self) -> str:
        return f"APIFuture(request_id={self.request_id!r}, done={self.done()})"

    @property
    def request_id(self) -> str | None:
        """The server's request id, when there is exactly one."""
        return self._inner.request_id

    @property
    def total_polls(self) -> int:
        """``retrieve_future`` calls made for this result so far."""
        return self._inner.total_polls

    def done(self) -> bool:
        """Whether the result is already known (never blocks)."""
        return self._inner.done()

    def result(self, timeout: float | None = None) -> T:
        """Wait for the result (``timeout`` seconds at most: FutureTimeoutError)."""
        return self._bridge.call(self._inner.result, timeout)


class SampleFuture(APIFuture[t.SampleResponse]):
    """A sample's future; its result's fields are also readable directly (blocking)."""

    @property
    def sequences(self) -> list[t.SampledSequence]:
        """The sampled sequences (waits for the result)."""
        return self.result().sequences

    @property
    def prompt_logprobs(self) -> list[float | None] | None:
        """Prompt logprobs, if requested (waits for the result)."""
        return self.result().prompt_logprobs

    @property
    def topk_prompt_logprobs(self) -> list[list[tuple[int, float]] | None] | None:
        """Top-k prompt logprobs, if requested (waits for the result)."""
        return self.result().topk_prompt_logprobs
