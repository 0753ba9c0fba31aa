"""Bookkeeping: the timeline's bins widen for long runs; errors are classified by status and category."""

from __future__ import annotations

from mint_async import InternalServerError, RequestFailedError
from mint_async.loadtest._recorder import Recorder, Timeline, classify


def test_timeline_rebins_long_runs() -> None:
    """Counts in 100 ms bins are merged so that at most max_bins remain, nothing lost."""
    timeline = Timeline(0.0)
    for index in range(0, 2000, 3):
        timeline.completed[index] += 2
    timeline.failed[1999] += 1
    width, completed, failed = timeline.binned(max_bins=600)
    assert width == 0.4 and len(completed) == len(failed) == 500
    assert sum(completed) == 2 * len(range(0, 2000, 3)) and sum(failed) == 1 and failed[-1] == 1
    assert Timeline(0.0).binned() == (0.1, [], [])


def test_classify_and_count_errors() -> None:
    """Status errors count by status, RequestFailed by category, everything by type."""
    recorder = Recorder(keep_samples=10)
    recorder.error(InternalServerError("boom", status_code=503))
    recorder.error(RequestFailedError("bad", category="user"))
    recorder.error(TimeoutError())
    recorder.retry(None)
    recorder.retry(429)
    assert recorder.errors_by_status == {"503": 1}
    assert recorder.errors_by_category == {"user": 1}
    assert recorder.errors_by_type == {
        "InternalServerError": 1,
        "RequestFailedError": 1,
        "Timeout": 1,
    }
    assert recorder.retries_by_status == {"connection": 1, "429": 1}
    assert classify(ValueError("x")) == (None, None, "ValueError")
