"""Futures: every branch of the retrieve_future state machine (protocol §5.5), timeouts, cancellation."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import httpx
import pytest

import mint_async
from mint_async import types as t
from mint_async._futures import (
    DoneFuture,
    GatherFuture,
    MapFuture,
    PollingFuture,
    PollSettings,
    QueueStateMonitor,
)
from mint_async._transport import Transport

from .mock_server import MockServer, json_response

pytestmark = pytest.mark.anyio

OK = {"metrics": {"loss:sum": 1.0}}
TRY_AGAIN = {"type": "try_again", "request_id": "r1", "queue_state": "active"}


@pytest.fixture
def mock() -> MockServer:
    """A mock server (one per test)."""
    return MockServer()


def future(
    mock: MockServer,
    *,
    stuck: float | None = 30.0,
    monitor: QueueStateMonitor | None = None,
) -> tuple[PollingFuture[t.OptimStepResponse], Transport]:
    transport = Transport(mock.config(), mock.transport)
    fut = PollingFuture(
        transport,
        t.UntypedAPIFuture(request_id="r1"),
        t.OptimStepResponse,
        request_type="OptimStep",
        settings=PollSettings(retrieve_timeout=5.0, stuck_timeout=stuck),
        monitor=monitor,
        roundtrip=0.25,
    )
    return fut, transport


async def resolve(mock: MockServer, **kwargs: Any) -> t.OptimStepResponse:
    fut, transport = future(mock, **kwargs)
    try:
        return await fut
    finally:
        await transport.aclose()


async def test_try_again_repolls_and_reports_queue_state(mock: MockServer) -> None:
    """try_again answers re-poll at once and feed the queue-state observer; iteration headers count up."""
    mock.script(
        "retrieve_future",
        {**TRY_AGAIN, "queue_state": "paused_capacity", "queue_state_reason": "busy"},
        TRY_AGAIN,
        OK,
    )
    monitor = QueueStateMonitor("test")
    changes: list[tuple[str, str | None]] = []
    monitor.add_observer(lambda state, reason: changes.append((state, reason)))
    assert await resolve(mock, monitor=monitor) == t.OptimStepResponse(metrics={"loss:sum": 1.0})
    polls = mock.calls("retrieve_future")
    assert [p.headers["x-tinker-request-iteration"] for p in polls] == ["0", "1", "2"]
    assert polls[0].headers["x-tinker-request-type"] == "OptimStep"
    assert "x-tinker-create-promise-roundtrip-time" in polls[0].headers
    assert "x-tinker-create-promise-roundtrip-time" not in polls[1].headers
    assert changes == [("paused_capacity", "busy"), ("active", None)]
    assert mock.bodies("retrieve_future")[0] == {"request_id": "r1", "allow_metadata_only": True}


async def test_complete_metadata_then_payload(mock: MockServer) -> None:
    """complete_metadata makes the next poll ask for the payload (allow_metadata_only=false)."""
    mock.script("retrieve_future", {"status": "complete_metadata", "response_payload_size": 10}, OK)
    assert (await resolve(mock)).metrics == {"loss:sum": 1.0}
    assert [b["allow_metadata_only"] for b in mock.bodies("retrieve_future")] == [True, False]


async def test_metadata_twice_is_an_error(mock: MockServer) -> None:
    """A server answering metadata-only twice breaks the protocol: APIResponseValidationError."""
    mock.script("retrieve_future", {"status": "complete_metadata", "response_payload_size": 10})
    with pytest.raises(mint_async.APIResponseValidationError, match="twice"):
        await resolve(mock)


async def test_error_result_raises_request_failed(mock: MockServer) -> None:
    """{"error", "category"} raises RequestFailedError with the category; never retried."""
    mock.script("retrieve_future", {"error": "bad targets", "category": "user"})
    with pytest.raises(mint_async.RequestFailedError) as info:
        await resolve(mock)
    assert info.value.category == "user" and info.value.request_id == "r1"
    assert len(mock.calls("retrieve_future")) == 1


async def test_408_repolls_with_queue_state(mock: MockServer) -> None:
    """408 is a disguised try_again: re-poll, queue state taken from the body."""
    mock.script("retrieve_future", json_response(408, {"queue_state": "paused_rate_limit"}), OK)
    monitor = QueueStateMonitor("test")
    await resolve(mock, monitor=monitor)
    assert len(mock.calls("retrieve_future")) == 2
    assert monitor.status().state == "active"


async def test_5xx_and_transport_errors_repoll(mock: MockServer) -> None:
    """5xx, 429 and transport errors are retried by the poll loop itself."""
    mock.script(
        "retrieve_future",
        json_response(500, {}),
        json_response(503, {}),
        json_response(502, {}),
        json_response(500, {}),
        json_response(500, {}),
        json_response(429, {}),
        httpx.ConnectError("reset"),
        httpx.ReadTimeout("slow"),
        OK,
    )
    assert (await resolve(mock)).metrics is not None
    assert len(mock.calls("retrieve_future")) == 9


async def test_400_budget(mock: MockServer) -> None:
    """400 is re-polled up to three times, then raised."""
    mock.script(
        "retrieve_future",
        json_response(400, {"detail": "hm"}),
        json_response(400, {"detail": "hm"}),
        OK,
    )
    await resolve(mock)
    mock2 = MockServer()
    mock2.script("retrieve_future", json_response(400, {"detail": "bad"}))
    with pytest.raises(mint_async.BadRequestError):
        await resolve(mock2)
    assert len(mock2.calls("retrieve_future")) == 4


async def test_410_raises_promise_expired(mock: MockServer) -> None:
    """410 surfaces as PromiseExpiredError (sampling resubmits on it)."""
    mock.script("retrieve_future", json_response(410, {"detail": "expired"}))
    with pytest.raises(mint_async.PromiseExpiredError):
        await resolve(mock)


async def test_other_4xx_is_fatal(mock: MockServer) -> None:
    """404 and friends raise at once."""
    mock.script("retrieve_future", json_response(404, {"detail": "no such request"}))
    with pytest.raises(mint_async.NotFoundError):
        await resolve(mock)
    assert len(mock.calls("retrieve_future")) == 1


async def test_402_billing_pause_in_poll(mock: MockServer) -> None:
    """402 during polling is waited out, then polling goes on."""
    mock.script("retrieve_future", json_response(402, {"detail": "billing"}), OK)
    await resolve(mock)
    assert len(mock.calls("retrieve_future")) == 2


async def test_malformed_result_is_a_validation_error(mock: MockServer) -> None:
    """A 200 body that is not the expected type raises APIResponseValidationError."""
    mock.script("retrieve_future", {"metrics": "not a dict"})
    with pytest.raises(mint_async.APIResponseValidationError):
        await resolve(mock)


async def test_stuck_watchdog(mock: MockServer) -> None:
    """With no answer from the server for stuck_timeout seconds, StuckRequestError is raised."""
    mock.script("retrieve_future", httpx.ConnectError("down"))
    with pytest.raises(mint_async.StuckRequestError):
        await resolve(mock, stuck=0.2)


async def test_result_timeout_then_resume(mock: MockServer) -> None:
    """result(timeout) raises FutureTimeoutError; the future stays usable and resolves later."""
    release = anyio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        if not release.is_set():
            await release.wait()
            return json_response(200, TRY_AGAIN)
        return json_response(200, OK)

    mock.routes["retrieve_future"] = slow
    fut, transport = future(mock)
    try:
        with pytest.raises(mint_async.FutureTimeoutError) as info:
            await fut.result(timeout=0.05)
        assert isinstance(info.value, TimeoutError)
        assert not fut.done()
        release.set()
        assert (await fut.result(timeout=5)).metrics == {"loss:sum": 1.0}
        assert fut.done() and (await fut).metrics == {"loss:sum": 1.0}
    finally:
        await transport.aclose()


async def test_concurrent_awaiters_share_one_poll(mock: MockServer) -> None:
    """Several tasks awaiting one future share its polls and its result."""
    mock.script("retrieve_future", TRY_AGAIN, OK)
    fut, transport = future(mock)
    results: list[t.OptimStepResponse] = []
    try:
        async with anyio.create_task_group() as tg:
            for _ in range(5):

                async def wait() -> None:
                    results.append(await fut)

                tg.start_soon(wait)
    finally:
        await transport.aclose()
    assert len(results) == 5 and len({id(r) for r in results}) == 1
    assert len(mock.calls("retrieve_future")) == 2


async def test_cancellation_stops_polling_cleanly(mock: MockServer) -> None:
    """Cancelling the awaiting task stops the poll; no request is left running."""
    started = anyio.Event()
    active = 0

    async def hold(request: httpx.Request) -> httpx.Response:
        nonlocal active
        active += 1
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            active -= 1
        raise AssertionError  # pragma: no cover

    mock.routes["retrieve_future"] = hold
    fut, transport = future(mock)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(fut.result)
            await started.wait()
            tg.cancel_scope.cancel()
        assert active == 0
        assert not fut.done()
    finally:
        await transport.aclose()


async def test_queue_state_logged_at_most_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    """Paused states are logged as warnings, at most once per minute."""
    caplog.set_level(logging.WARNING, logger="mint_async")
    monitor = QueueStateMonitor("run x")
    for _ in range(5):
        monitor.report("paused_capacity", None)
        monitor.report("paused_rate_limit", "limit")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "paused_capacity" in warnings[0].getMessage()
    assert monitor.status().state == "paused_rate_limit"


async def test_composed_futures() -> None:
    """DoneFuture, MapFuture and GatherFuture compose results in order."""
    done = DoneFuture(2)

    async def double(x: int) -> int:
        return 2 * x

    mapped = MapFuture(done, double)
    gathered = GatherFuture([DoneFuture(1), mapped, DoneFuture(3)], sum)
    assert await gathered == 8
    assert await mapped == 4 and mapped.done()


async def test_gather_propagates_first_failure(mock: MockServer) -> None:
    """If one part fails, the gathered future raises that error."""
    mock.script("retrieve_future", {"error": "boom", "category": "server"})
    fut, transport = future(mock)
    try:
        gathered: GatherFuture[t.OptimStepResponse, int] = GatherFuture(
            [fut, DoneFuture(t.OptimStepResponse())], len
        )
        with pytest.raises(mint_async.RequestFailedError, match="boom"):
            await gathered
    finally:
        await transport.aclose()


async def test_long_run_of_server_errors_keeps_polling(mock: MockServer) -> None:
    """Thousands of consecutive 5xx answers neither overflow the backoff nor stop the poll."""
    mock.script("retrieve_future", *([json_response(500, {})] * 1500), OK)
    assert (await resolve(mock)).metrics == {"loss:sum": 1.0}
