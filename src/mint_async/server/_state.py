"""Sessions, models and samplers the server knows, and its counters.

Identifiers (protocol §7.4, all deterministic except the session id):

* session: ``sess-<12 hex>`` (random);
* model / training run: ``<session_id>:train:<model_seq_id>``;
* sampler / sampling session: ``<session_id>:sample:<sampling_session_seq_id>``.
"""

from __future__ import annotations

import bisect
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio

from mint_async.types import LoraConfig

from ._futures import FutureRecord
from ._ordering import SeqGate
from ._stability import StabilityRecords
from .backends import ModelSpec

__all__ = ["IntervalSet", "Job", "Model", "Sampler", "ServerState", "Session"]


class IntervalSet:
    """A set of ints stored as sorted disjoint ``[start, end)`` runs (seq_ids come in runs)."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def __contains__(self, value: int) -> bool:
        i = bisect.bisect_right(self._starts, value) - 1
        return i >= 0 and value < self._ends[i]

    def add(self, value: int) -> None:
        """Add ``value``, merging with neighbouring runs."""
        starts, ends = self._starts, self._ends
        i = bisect.bisect_right(starts, value) - 1
        if i >= 0 and value < ends[i]:
            return
        joins_left = i >= 0 and ends[i] == value
        joins_right = i + 1 < len(starts) and starts[i + 1] == value + 1
        if joins_left and joins_right:
            ends[i] = ends[i + 1]
            del starts[i + 1], ends[i + 1]
        elif joins_left:
            ends[i] = value + 1
        elif joins_right:
            starts[i + 1] = value
        else:
            starts.insert(i + 1, value)
            ends.insert(i + 1, value + 1)

    @property
    def runs(self) -> int:
        """Number of disjoint runs."""
        return len(self._starts)


@dataclass(slots=True, eq=False)
class Session:
    """A client session (one ServiceClient)."""

    session_id: str
    owner: str
    tags: list[str]
    user_metadata: dict[str, str]
    sdk_version: str
    project_id: str | None = None
    created: float = field(default_factory=time.time)
    last_heartbeat: float = field(default_factory=time.monotonic)
    finished: str | None = None
    """Why the session ended (``None`` while it is alive)."""
    finished_at: float | None = None
    """When it ended (``time.monotonic``); the sweeper purges it ``finished_session_retention`` later."""
    model_ids: list[str] = field(default_factory=list[str])
    sampler_ids: list[str] = field(default_factory=list[str])
    scopes: set[anyio.CancelScope] = field(default_factory=set[anyio.CancelScope])
    """Cancel scopes of this session's running work."""


@dataclass(slots=True, eq=False)
class Job:
    """A training-model request waiting for its turn in the model's gate."""

    record: FutureRecord
    op: str
    work: Callable[[], Awaitable[object]]


@dataclass(slots=True, eq=False)
class Model:
    """A training run loaded in the backend."""

    model_id: str
    session_id: str
    owner: str
    spec: ModelSpec
    lora: LoraConfig
    gate: SeqGate[Job]
    handle: Any = None
    unloaded: bool = False
    unsequenced: int = 0
    """Counter for request ids of unsequenced requests (reverse KL without seq_id)."""
    idempotency: dict[str, str] = field(default_factory=dict[str, str])
    """X-Idempotency-Key -> request id, for unsequenced requests (their only dedupe key)."""
    scope: anyio.CancelScope | None = None
    optimizer_config: dict[str, Any] | None = None
    """tinker 0.38's ``optimizer_config`` as given at creation (echoed by ``get_info``)."""


@dataclass(slots=True, eq=False)
class Sampler:
    """Frozen weights to sample from, addressed by a sampling session id."""

    sampler_id: str
    session_id: str | None
    owner: str
    base_model: str
    handle: Any
    model_path: str | None = None
    seen: IntervalSet = field(default_factory=IntervalSet)
    """Every seq_id ever accepted (so a purged request is never run again)."""


class ServerState:
    """The registries, plus counters readable from other threads."""

    def __init__(self, *, track_executions: bool) -> None:
        self.sessions: dict[str, Session] = {}
        self.models: dict[str, Model] = {}
        self.samplers: dict[str, Sampler] = {}
        self._track = track_executions
        self._lock = threading.Lock()
        self._executions: dict[str, int] = {}
        self._executed_by_kind: dict[str, int] = {}
        self.duplicates = 0
        self.rejected = 0
        self.heartbeats = 0
        self.telemetry_events = 0
        self.http_in_flight = 0
        self.peak_http_in_flight = 0
        self.fwdbwd_bodies: dict[str, int] = {}
        """forward/forward_backward bodies received per encoding (json, protobuf, protobuf+zstd)."""
        self.results_sent: dict[str, int] = {}
        """forward/forward_backward/sample results delivered per encoding (json, protobuf)."""
        self.stability = StabilityRecords()
        """Sampled sequences recorded for ``stable_reinforce`` (``record_stability_info``)."""

    @staticmethod
    def new_session_id() -> str:
        """A fresh random session id (no ':' or '/', so derived ids parse)."""
        return f"sess-{uuid.uuid4().hex[:12]}"

    def count_execution(self, request_id: str, kind: str) -> None:
        """Record that ``request_id`` is being executed (once per real execution)."""
        with self._lock:
            self._executed_by_kind[kind] = self._executed_by_kind.get(kind, 0) + 1
            if self._track:
                self._executions[request_id] = self._executions.get(request_id, 0) + 1

    def executions(self, request_id: str) -> int:
        """How many times ``request_id`` was executed."""
        with self._lock:
            return self._executions.get(request_id, 0)

    def execution_counts(self) -> dict[str, int]:
        """A snapshot of every tracked request's execution count."""
        with self._lock:
            return dict(self._executions)

    def executed_by_kind(self) -> Mapping[str, int]:
        """A snapshot of executions per operation."""
        with self._lock:
            return dict(self._executed_by_kind)
