"""tinker 0.38's batched completion poller (``retrieve_futures``, protocol §5.7).

One log of completion events per (sampling session, clone id); each event has
an increasing integer cursor. A poll returns the events after ``prev_cursor``
(long-polling until there is one, unless ``timeout: 0``); events at or before
``prev_cursor`` are trimmed. The client then fetches each payload with one
``retrieve_future``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio
import msgspec

from ._futures import FutureRecord, Phase
from ._result_encoding import answer

__all__ = [
    "CompletionLogs",
    "FuturesRetrieveRequest",
    "FuturesRetrieveResponse",
    "RetrieveTarget",
]


class RetrieveTarget(msgspec.Struct, kw_only=True):
    """Which sampler's completions to watch."""

    type: str = "sampling_session"
    sampling_session_id: str
    cloned_sampler_id: int = 0


class FuturesRetrieveRequest(msgspec.Struct, kw_only=True):
    """Body of ``retrieve_futures``."""

    target: RetrieveTarget
    prev_cursor: int = 0
    retrieved_request_ids: list[str] = msgspec.field(default_factory=list[str])
    timeout: float | None = None


class Completion(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One completion event."""

    state: str
    request_id: str
    response_payload_uncompressed_size: int | None = None


class FuturesRetrieveResponse(msgspec.Struct, kw_only=True):
    """Answer of ``retrieve_futures``."""

    completions: list[Completion]
    cursor: int


@dataclass
class _Log:
    events: list[tuple[int, Completion]] = field(default_factory=list[tuple[int, Completion]])
    cursor: int = 0
    changed: anyio.Event | None = None


class CompletionLogs:
    """Completion events of sample requests, by (sampling session, clone id)."""

    def __init__(self) -> None:
        self.enabled = False
        self._logs: dict[tuple[str, int], _Log] = {}
        self._closing = False

    def record(self, rec: FutureRecord) -> None:
        """Called when any record finishes; logs samples when the feature is on."""
        if not self.enabled or rec.target is None:
            return
        log = self._logs.setdefault(rec.target, _Log())
        log.cursor += 1
        state = "failed" if rec.phase is Phase.FAILED else "finished"
        # The size of what its retrieve_future will carry: the pollers that use
        # this endpoint (tinker 0.38's) accept only protobuf.
        size = None
        if state == "finished":
            size = len(answer(rec, json_ok=False, protobuf_ok=True)[0])
        log.events.append(
            (
                log.cursor,
                Completion(
                    state=state, request_id=rec.request_id, response_payload_uncompressed_size=size
                ),
            )
        )
        if log.changed is not None:
            log.changed.set()
            log.changed = None

    async def poll(
        self, target: tuple[str, int], prev_cursor: int, hold: float
    ) -> FuturesRetrieveResponse:
        """Events after ``prev_cursor``, waiting up to ``hold`` seconds for one."""
        log = self._logs.setdefault(target, _Log())
        log.events = [e for e in log.events if e[0] > prev_cursor]
        if not log.events and hold > 0 and not self._closing:
            if log.changed is None:
                log.changed = anyio.Event()
            with anyio.move_on_after(hold):
                await log.changed.wait()
        events = [c for cursor, c in log.events if cursor > prev_cursor]
        cursor = log.events[-1][0] if log.events else max(prev_cursor, log.cursor)
        return FuturesRetrieveResponse(completions=events, cursor=cursor)

    def close(self) -> None:
        """Release waiting polls (server shutdown)."""
        self._closing = True
        for log in self._logs.values():
            if log.changed is not None:
                log.changed.set()
