"""The per-model seq_id gate: requests of one model leave it strictly in seq_id order.

``create_model`` takes slot 0, the client's training requests 1, 2, 3, ...
Requests that arrive early wait in a buffer until every lower slot is
filled. A slot can also be *consumed* without work (a submission rejected
with 400 still used its seq_id, so later ones must not wait for it).

Unsequenced requests (MinT reverse-KL without a seq_id, ``unload_model``;
protocol Q5) run after every sequenced request that had arrived contiguously
when they did, and before the next one: "after what you already sent".

Gaps (protocol Q9): tinker 0.22 can leave a hole when a submission fails for
good. With a ``gap_timeout`` the gate skips a missing slot after waiting that
long; a request that arrives for a skipped slot later is told it was skipped
(the caller fails it) instead of running out of order. ``None`` waits forever.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Final, Generic, TypeVar

import anyio

__all__ = ["SeqGate"]

T = TypeVar("T")

_NOTHING: Final = object()


class SeqGate(Generic[T]):
    """Releases items in seq order to a single consumer (the model's worker)."""

    def __init__(self, *, first_seq: int = 0, gap_timeout: float | None = None) -> None:
        self.next_seq = first_seq
        """The lowest slot not yet released (or consumed, or skipped)."""
        self._pending: dict[int, T | None] = {}
        self._unsequenced: deque[tuple[int, T]] = deque()
        self._skipped: set[int] = set()
        self._gap_timeout = gap_timeout
        self._blocked_since: float | None = None
        self._changed = anyio.Event()

    def has(self, seq: int) -> bool:
        """Whether ``seq`` has arrived (buffered, released, consumed or skipped)."""
        return seq < self.next_seq or seq in self._pending

    def was_skipped(self, seq: int) -> bool:
        """Whether ``seq`` was skipped after a gap timeout."""
        return seq in self._skipped

    @property
    def waiting_for(self) -> int | None:
        """The missing slot that blocks buffered requests, if any."""
        if self._pending and self.next_seq not in self._pending:
            return self.next_seq
        return None

    @property
    def buffered(self) -> int:
        """How many requests wait in the gate."""
        return len(self._pending) + len(self._unsequenced)

    def put(self, seq: int, item: T | None) -> None:
        """Add the item of slot ``seq``; ``None`` consumes the slot without work."""
        if self.has(seq):
            msg = f"seq_id {seq} already arrived"
            raise ValueError(msg)
        self._pending[seq] = item
        self._changed.set()

    def put_unsequenced(self, item: T) -> None:
        """Add an item that runs after everything that arrived contiguously before it."""
        last = self.next_seq
        while last in self._pending:
            last += 1
        self._unsequenced.append((last - 1, item))
        self._changed.set()

    def _pop_ready(self) -> object:
        if self._unsequenced and self._unsequenced[0][0] < self.next_seq:
            return self._unsequenced.popleft()[1]
        while self.next_seq in self._pending:
            item = self._pending.pop(self.next_seq)
            self.next_seq += 1
            self._blocked_since = None
            if item is not None:
                return item
            if self._unsequenced and self._unsequenced[0][0] < self.next_seq:
                return self._unsequenced.popleft()[1]
        return _NOTHING

    async def get(self) -> T:
        """The next item in order, waiting for it (and skipping timed-out gaps)."""
        while True:
            item = self._pop_ready()
            if item is not _NOTHING:
                return item  # type: ignore[return-value]
            self._changed = anyio.Event()
            if self.waiting_for is None or self._gap_timeout is None:
                await self._changed.wait()
                continue
            now = time.monotonic()
            if self._blocked_since is None:
                self._blocked_since = now
            remaining = self._blocked_since + self._gap_timeout - now
            if remaining > 0:
                with anyio.move_on_after(remaining):
                    await self._changed.wait()
                continue
            # Waited long enough for the missing slot: skip it.
            self._skipped.add(self.next_seq)
            self.next_seq += 1
            self._blocked_since = None

    def drain(self) -> list[T]:
        """Remove and return every buffered item (the model is going away)."""
        items = [item for item in self._pending.values() if item is not None]
        items.extend(item for _, item in self._unsequenced)
        self._pending.clear()
        self._unsequenced.clear()
        return items
