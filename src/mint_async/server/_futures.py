"""The futures registry: one record per accepted request, its result bytes, and long-poll waits.

Life of a record::

    WAITING (for its seq_id turn) -> QUEUED (for capacity) -> RUNNING -> DONE | FAILED

A finished record keeps its encoded answer for ``unretrieved_retention``
seconds, or ``result_retention`` seconds after it was fully delivered (a
client whose answer got lost re-polls within that window). Purged ids are
remembered (bounded) so late polls get 410 instead of 404.

Polls wait on a per-record ``anyio.Event`` created only when someone actually
waits, so a request that finishes before its first poll costs no event.

A result is kept in the encodings polls may ask for (:class:`Encoded`): JSON,
and protobuf for the two result types that have a protobuf form when the
server prefers to answer them so. Each poll picks one by its ``Accept`` header
(``_result_encoding.answer``); the JSON form, when not made up front, is made on the
first poll that wants it from the kept result Struct.
"""

from __future__ import annotations

import enum
import heapq
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import anyio

from mint_async import _codec
from mint_async.types import RequestFailedResponse

__all__ = ["Encoded", "FutureRecord", "FutureRegistry", "Phase"]

_TOMBSTONES_MAX: Final = 200_000


class Phase(enum.Enum):
    """Where a request is in its life."""

    WAITING = "waiting"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, eq=False)
class Encoded:
    """A finished result, encoded: JSON and/or protobuf, and the Struct for the missing one."""

    json: bytes | None
    """The JSON answer (``None``: made from ``value`` when a poll first wants it)."""
    binary: bytes | None = None
    """The protobuf answer (ForwardBackwardOutput and SampleResponse only)."""
    value: object = None
    """The result Struct, kept only while ``json`` is ``None``."""


@dataclass(slots=True, eq=False)
class FutureRecord:
    """One accepted request and, once finished, its encoded answer."""

    request_id: str
    kind: str
    owner: str
    session_id: str | None
    target: tuple[str, int] | None = None
    """For samples: (sampling_session_id, clone id), for the batched poller."""
    phase: Phase = Phase.WAITING
    reason: str | None = None
    payload: bytes = b""
    """The JSON answer: a failure, a result, or ``b""`` while only ``binary`` was made."""
    binary: bytes | None = None
    """The protobuf answer, for results that have one on a server that answers in it."""
    value: object = None
    """The result Struct while its JSON form has not been made yet."""
    metadata_sent: bool = False
    expires_at: float = math.inf
    wake: anyio.Event | None = None

    @property
    def finished(self) -> bool:
        """Whether the answer is known (result or failure)."""
        return self.phase is Phase.DONE or self.phase is Phase.FAILED

    def json_answer(self) -> bytes:
        """The finished answer as JSON (made from ``value``, and kept, on first need)."""
        if not self.payload and self.value is not None:
            self.payload, self.value = _codec.encode(self.value), None
        return self.payload

    @property
    def queue_state(self) -> str:
        """The ``queue_state`` a try_again reports."""
        return "paused_capacity" if self.phase is Phase.QUEUED else "active"


@dataclass
class _Stats:
    outstanding: int = 0
    peak_outstanding: int = 0
    held_polls: int = 0
    peak_held_polls: int = 0
    by_kind: dict[str, int] = field(default_factory=dict[str, int])


class FutureRegistry:
    """Every live record, by request id."""

    def __init__(
        self,
        *,
        result_retention: float,
        unretrieved_retention: float,
        on_finish: Callable[[FutureRecord], None] | None = None,
    ) -> None:
        self._records: dict[str, FutureRecord] = {}
        self._unfinished_by_session: dict[str, set[str]] = {}
        self._expiry: list[tuple[float, str]] = []
        self._tombstones: OrderedDict[str, str] = OrderedDict()
        """Purged request id -> its owner (so only the owner learns it existed)."""
        self._result_retention = result_retention
        self._unretrieved_retention = unretrieved_retention
        self._on_finish = on_finish
        self._closing = False
        self.stats = _Stats()

    def __len__(self) -> int:
        return len(self._records)

    def get(self, request_id: str) -> FutureRecord | None:
        """The live record of ``request_id``."""
        return self._records.get(request_id)

    def was_purged(self, request_id: str) -> bool:
        """Whether ``request_id`` existed and its record has been purged."""
        return request_id in self._tombstones

    def purged_owner(self, request_id: str) -> str | None:
        """The owner of ``request_id`` if it existed and its record has been purged."""
        return self._tombstones.get(request_id)

    def create(
        self,
        request_id: str,
        kind: str,
        owner: str,
        session_id: str | None,
        target: tuple[str, int] | None = None,
    ) -> FutureRecord:
        """Register a newly accepted request."""
        rec = FutureRecord(request_id, kind, owner, session_id, target)
        self._records[request_id] = rec
        if session_id is not None:
            self._unfinished_by_session.setdefault(session_id, set()).add(request_id)
        stats = self.stats
        stats.outstanding += 1
        stats.peak_outstanding = max(stats.peak_outstanding, stats.outstanding)
        stats.by_kind[kind] = stats.by_kind.get(kind, 0) + 1
        return rec

    def complete(self, rec: FutureRecord, payload: bytes | Encoded) -> None:
        """Store a result (JSON bytes, or its encodings) and release its pollers."""
        if isinstance(payload, bytes):
            self._finish(rec, Phase.DONE, payload)
            return
        if rec.finished:
            return
        rec.binary, rec.value = payload.binary, payload.value
        self._finish(rec, Phase.DONE, payload.json or b"")

    def fail(self, rec: FutureRecord, message: str, category: str) -> None:
        """Store a failure ``{"error", "category"}`` and release its pollers."""
        body = _codec.encode(RequestFailedResponse(error=message, category=category))
        self._finish(rec, Phase.FAILED, body)

    def _finish(self, rec: FutureRecord, phase: Phase, payload: bytes) -> None:
        if rec.finished:
            return  # first answer wins (e.g. a session cancel racing completion)
        rec.phase, rec.payload, rec.reason = phase, payload, None
        self.stats.outstanding -= 1
        if rec.session_id is not None:
            pending = self._unfinished_by_session.get(rec.session_id)
            if pending is not None:
                pending.discard(rec.request_id)
        self._expire_at(rec, self._unretrieved_retention)
        if rec.wake is not None:
            rec.wake.set()
        if self._on_finish is not None:
            self._on_finish(rec)

    def delivered(self, rec: FutureRecord) -> None:
        """The full answer went out: keep it only briefly for re-polls."""
        if rec.expires_at - time.monotonic() > self._result_retention:
            self._expire_at(rec, self._result_retention)

    def _expire_at(self, rec: FutureRecord, after: float) -> None:
        rec.expires_at = time.monotonic() + after
        heapq.heappush(self._expiry, (rec.expires_at, rec.request_id))

    def unfinished_of_session(self, session_id: str) -> list[FutureRecord]:
        """The records of a session that have no answer yet."""
        ids = self._unfinished_by_session.get(session_id, set())
        return [rec for rid in ids if (rec := self._records.get(rid)) is not None]

    def forget_session(self, session_id: str) -> None:
        """Drop the bookkeeping of a finished session."""
        self._unfinished_by_session.pop(session_id, None)

    async def wait(self, rec: FutureRecord, hold: float) -> None:
        """Return when ``rec`` finishes, ``hold`` seconds pass, or the server is stopping."""
        if rec.finished or self._closing or hold <= 0:
            return
        if rec.wake is None:
            rec.wake = anyio.Event()
        stats = self.stats
        stats.held_polls += 1
        stats.peak_held_polls = max(stats.peak_held_polls, stats.held_polls)
        try:
            with anyio.move_on_after(hold):
                await rec.wake.wait()
        finally:
            stats.held_polls -= 1

    def close(self) -> None:
        """Release every held poll (they answer try_again) and stop holding new ones."""
        self._closing = True
        for rec in self._records.values():
            if rec.wake is not None:
                rec.wake.set()

    def purge_expired(self, now: float | None = None) -> int:
        """Drop finished records past their retention; returns how many."""
        now = time.monotonic() if now is None else now
        purged = 0
        heap = self._expiry
        while heap and heap[0][0] <= now:
            expires_at, rid = heapq.heappop(heap)
            rec = self._records.get(rid)
            # Stale heap entries (retention changed since) are skipped.
            if rec is None or rec.expires_at != expires_at:
                continue
            del self._records[rid]
            self._tombstones[rid] = rec.owner
            if len(self._tombstones) > _TOMBSTONES_MAX:
                self._tombstones.popitem(last=False)
            purged += 1
        return purged
