"""What a run measures: per request kind, per workload, errors, queue states, a timeline.

Two levels are counted:

* **requests** — server requests by kind (``sample``, ``forward_backward``,
  ``optim_step``, ``save_weights_for_sampler``): submit latency (until the
  server accepted it), time to result (submit start to result), polls, tokens,
  and ``accepted``: how many requests of that kind the server accepted
  (a sample resubmitted after a lost promise counts twice, as it does on the server);
* **operations** — what a workload does once (one request, or a whole RL round).

The recorder is plain bookkeeping on the event loop: no locks, no awaits.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field

from .._exceptions import APIConnectionError, APIStatusError, RequestFailedError
from ._histogram import LatencyHistogram

__all__ = ["KindStats", "QueueStateTracker", "Recorder", "Timeline", "WorkloadStats"]


@dataclass
class KindStats:
    """Counters and histograms of one kind of server request."""

    keep_samples: int
    accepted: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    training_tokens: int = 0
    submit: LatencyHistogram = field(init=False)
    time_to_result: LatencyHistogram = field(init=False)
    polls: Counter[int] = field(default_factory=Counter[int])
    """Requests by how many ``retrieve_future`` calls they needed."""

    def __post_init__(self) -> None:
        self.submit = LatencyHistogram(keep_samples=self.keep_samples)
        self.time_to_result = LatencyHistogram(keep_samples=self.keep_samples)

    def merge(self, other: KindStats) -> None:
        """Add another generator's counts and latencies of the same kind (exact)."""
        self.accepted += other.accepted
        self.completed += other.completed
        self.failed += other.failed
        self.cancelled += other.cancelled
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.training_tokens += other.training_tokens
        self.submit.merge(other.submit)
        self.time_to_result.merge(other.time_to_result)
        self.polls.update(other.polls)


@dataclass
class WorkloadStats:
    """Counters of one workload's operations, and their durations."""

    keep_samples: int
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    duration: LatencyHistogram = field(init=False)

    def __post_init__(self) -> None:
        self.duration = LatencyHistogram(keep_samples=self.keep_samples)

    def merge(self, other: WorkloadStats) -> None:
        """Add another generator's operations of the same workload (exact)."""
        self.completed += other.completed
        self.failed += other.failed
        self.cancelled += other.cancelled
        self.duration.merge(other.duration)


def classify(exc: BaseException) -> tuple[str | None, str | None, str]:
    """``(http_status, request_failed_category, error_type)`` of an error."""
    status = str(exc.status_code) if isinstance(exc, APIStatusError) else None
    category = exc.category if isinstance(exc, RequestFailedError) else None
    if isinstance(exc, TimeoutError) and not isinstance(exc, APIConnectionError):
        kind = "Timeout" if type(exc) is TimeoutError else type(exc).__name__
    else:
        kind = type(exc).__name__
    return status, category, kind


class Recorder:
    """The counts of one phase (warmup or measured)."""

    def __init__(self, *, keep_samples: int) -> None:
        self.keep_samples = keep_samples
        self.kinds: dict[str, KindStats] = {}
        self.workloads: dict[str, WorkloadStats] = {}
        self.errors_by_status: Counter[str] = Counter()
        self.errors_by_category: Counter[str] = Counter()
        self.errors_by_type: Counter[str] = Counter()
        self.retries_by_status: Counter[str] = Counter()
        self.schedule_lag = LatencyHistogram(keep_samples=keep_samples)
        self.last_completion: float | None = None
        """``perf_counter()`` of the last finished operation."""

    def kind(self, name: str) -> KindStats:
        """The stats of request kind ``name`` (created on first use)."""
        stats = self.kinds.get(name)
        if stats is None:
            stats = self.kinds[name] = KindStats(self.keep_samples)
        return stats

    def workload(self, name: str) -> WorkloadStats:
        """The stats of workload ``name`` (created on first use)."""
        stats = self.workloads.get(name)
        if stats is None:
            stats = self.workloads[name] = WorkloadStats(self.keep_samples)
        return stats

    def error(self, exc: BaseException) -> None:
        """Count a failed request by status, category and type."""
        status, category, kind = classify(exc)
        if status is not None:
            self.errors_by_status[status] += 1
        if category is not None:
            self.errors_by_category[category] += 1
        self.errors_by_type[kind] += 1

    def retry(self, status: int | None) -> None:
        """Count a retried submission (``None``: a connection error)."""
        self.retries_by_status["connection" if status is None else str(status)] += 1

    def operation_done(self, workload: str, started: float, error: BaseException | None) -> None:
        """Count a finished operation (``error`` None: success)."""
        now = time.perf_counter()
        stats = self.workload(workload)
        if error is None:
            stats.completed += 1
            stats.duration.record(now - started)
        else:
            stats.failed += 1
        self.last_completion = now

    def operation_cancelled(self, workload: str) -> None:
        """Count an operation cancelled at the end of the drain period."""
        self.workload(workload).cancelled += 1

    def merge(self, other: Recorder, *, shift: float = 0.0) -> None:
        """Add another generator's counts of the same phase (``shift``: its clock minus ours)."""
        for name, k in other.kinds.items():
            self.kind(name).merge(k)
        for name, w in other.workloads.items():
            self.workload(name).merge(w)
        self.errors_by_status.update(other.errors_by_status)
        self.errors_by_category.update(other.errors_by_category)
        self.errors_by_type.update(other.errors_by_type)
        self.retries_by_status.update(other.retries_by_status)
        self.schedule_lag.merge(other.schedule_lag)
        if other.last_completion is not None:
            last = other.last_completion + shift
            self.last_completion = max(last, self.last_completion or last)


class Timeline:
    """Completions in 100 ms bins and in-flight samples, over the whole run (warmup included)."""

    BIN: float = 0.1

    def __init__(self, origin: float, *, max_points: int = 20_000) -> None:
        self.origin = origin
        self.completed: Counter[int] = Counter()
        self.failed: Counter[int] = Counter()
        self.in_flight: list[tuple[float, int]] = []
        self.warmup_end: float | None = None
        """Seconds from the origin to the start of measurement."""
        self._max_points = max_points

    def finished(self, ok: bool) -> None:
        """Count one finished request at the current time."""
        index = int((time.perf_counter() - self.origin) / self.BIN)
        (self.completed if ok else self.failed)[index] += 1

    def sample(self, in_flight: int) -> None:
        """Record the current number of requests in flight."""
        if len(self.in_flight) >= self._max_points:
            # Long runs: keep every other point, so memory stays bounded.
            self.in_flight = self.in_flight[::2]
        self.in_flight.append((time.perf_counter() - self.origin, in_flight))

    def merge(self, other: Timeline, *, shift: float = 0.0) -> None:
        """Add another generator's timeline (``shift``: its clock minus ours; completions land in
        the bin of their time on our clock, in-flight becomes the sum of both step functions)."""
        offset = other.origin + shift - self.origin
        bins = round(offset / self.BIN)
        for mine, theirs in ((self.completed, other.completed), (self.failed, other.failed)):
            for index, n in theirs.items():
                mine[max(0, index + bins)] += n
        # Each series is a step function sampled at its own times: the sum at any time is
        # the latest sample of each, so walk the union of sample times in order.
        events = sorted(
            [(t, 0, n) for t, n in self.in_flight]
            + [(t + offset, 1, n) for t, n in other.in_flight]
        )
        current = [0, 0]
        merged: list[tuple[float, int]] = []
        for t, source, n in events:
            current[source] = n
            merged.append((max(0.0, t), sum(current)))
        while len(merged) > self._max_points:
            merged = merged[::2]  # as sample() thins a long run: every other point
        self.in_flight = merged
        if other.warmup_end is not None:
            end = other.warmup_end + offset
            self.warmup_end = end if self.warmup_end is None else min(self.warmup_end, end)

    def binned(self, max_bins: int = 600) -> tuple[float, list[int], list[int]]:
        """``(bin_seconds, completed, failed)`` per bin; bins widen so there are at most ``max_bins``."""
        last = max([*self.completed, *self.failed], default=-1) + 1
        factor = max(1, -(-last // max_bins))
        bins = -(-last // factor)
        completed, failed = [0] * bins, [0] * bins
        for counts, out in ((self.completed, completed), (self.failed, failed)):
            for index, n in counts.items():
                out[index // factor] += n
        return round(self.BIN * factor, 6), completed, failed


class QueueStateTracker:
    """Counts the queue-state changes the server reports, and time spent per state.

    Clients report a state only when it changes, so these are *changes into*
    each state (per client) and the seconds each client spent in it.
    """

    def __init__(self) -> None:
        self.changes: Counter[str] = Counter()
        self._seconds: dict[str, float] = {}
        self._current: dict[int, tuple[str, float]] = {}

    def observer(self, key: int) -> QueueObserver:
        """An observer for the client numbered ``key`` (``client.on_queue_state_change(...)``)."""
        self._current[key] = ("active", time.perf_counter())
        return QueueObserver(self, key)

    def change(self, key: int, state: str) -> None:
        """Client ``key`` reports ``state``."""
        now = time.perf_counter()
        previous, since = self._current.get(key, ("active", now))
        self._seconds[previous] = self._seconds.get(previous, 0.0) + (now - since)
        self._current[key] = (state, now)
        self.changes[state] += 1

    def frozen(self) -> QueueStateTracker:
        """A copy whose clocks are stopped now (to move it to another process, or merge it)."""
        out = QueueStateTracker()
        out.changes = Counter(self.changes)
        out._seconds = self.seconds()
        return out

    def merge(self, other: QueueStateTracker) -> None:
        """Add another generator's (frozen) changes and client-seconds."""
        self.changes.update(other.changes)
        for state, seconds in other.seconds().items():
            self._seconds[state] = self._seconds.get(state, 0.0) + seconds

    def seconds(self) -> dict[str, float]:
        """Client-seconds spent in each state so far (active included)."""
        now = time.perf_counter()
        out = dict(self._seconds)
        for state, since in self._current.values():
            out[state] = out.get(state, 0.0) + (now - since)
        return {k: round(v, 3) for k, v in sorted(out.items()) if not math.isclose(v, 0.0)}


@dataclass(frozen=True)
class QueueObserver:
    """Forwards one client's queue-state changes to a tracker."""

    tracker: QueueStateTracker
    key: int

    def __call__(self, state: str, reason: str | None) -> None:
        """Record the change (the reason is not kept)."""
        self.tracker.change(self.key, state)
