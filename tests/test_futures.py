"""Futures: every branch of the retrieve_future state machine (protocol §5.5), timeouts, cancellation."""

from __future__ import annotations

import logging
from collections.abc import Callable
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
from .test_transport import FakeClock, decisions, install_clock

pytestmark = pytest.mark.anyio

OK = {"metrics": {"loss:sum": 1.0}}
TRY_AGAIN = {"type": "try_again", "request_id": "r1", "queue_state": "active"}


@pytest.fixture
def mock() -> MockServer:
    """A mock server (one per test)."""
    return MockServer()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A fake clock recording every backoff sleep of the poll loop and the transport."""
    return install_clock(monkeypatch)


def future(
    mock: MockServer,
    *,
    stuck: float | None = 30.0,
    retrieve: float = 5.0,
    monitor: QueueStateMonitor | None = None,
    **config: Any,
) -> tuple[PollingFuture[t.OptimStepResponse], Transport]:
    transport = Transport(mock.config(**config), mock.transport)
    fut = PollingFuture(
        transport,
        t.UntypedAPIFuture(request_id="r1"),
        t.OptimStepResponse,
        request_type="OptimStep",
        settings=PollSettings(retrieve_timeout=retrieve, stuck_timeout=stuck),
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


def holding_server(
    clock: FakeClock, *, hold: float, ready_at: float, answer: dict[str, Any] = TRY_AGAIN
) -> Callable[[httpx.Request], Any]:
    """A retrieve_future handler that long-polls for ``hold`` s in simulated time.

    The result is ready at ``ready_at``. A poll held longer than the client's
    read timeout ends in ReadTimeout when that timeout passes, as on a socket.
    """

    def handle(request: httpx.Request) -> Any:
        read: float = request.extensions["timeout"]["read"]
        wait = min(hold, max(0.0, ready_at - clock.now))
        if wait > read:
            clock.advance(read)
            return httpx.ReadTimeout("timed out reading the response")
        clock.advance(wait)
        return OK if clock.now >= ready_at else answer

    return handle


async def test_poll_held_past_the_read_timeout_is_progress(
    mock: MockServer, clock: FakeClock
) -> None:
    """A server holding polls longer than our read timeout: re-poll at once, waiting longer each time.

    Its held answers then arrive and count as progress, so a job longer than the
    stuck watchdog completes.
    """
    # Server hold 2 s, client read timeout 0.5 s, watchdog 4 s, a 9 s job.
    mock.routes["retrieve_future"] = holding_server(clock, hold=2.0, ready_at=clock.now + 9.0)
    assert (await resolve(mock, retrieve=0.5, stuck=4.0)).metrics == {"loss:sum": 1.0}
    assert clock.sleeps == []  # no backoff
    reads = [c.extensions["timeout"]["read"] for c in mock.calls("retrieve_future")]
    # Time out after 0.5 and 1 s; 2 s reads then see the held answers (t = 3.5, 5.5, 7.5) and the
    # result (t = 9), each within the watchdog's 4 s of the previous answer.
    assert reads == pytest.approx([0.5, 1.0, 2.0, 2.0, 2.0, 2.0], abs=0.02)


async def test_poll_never_answered_trips_the_watchdog(mock: MockServer, clock: FakeClock) -> None:
    """A server that accepts polls and never answers ends in StuckRequestError, not an endless wait."""
    mock.routes["retrieve_future"] = holding_server(clock, hold=1e9, ready_at=clock.now + 1e9)
    with pytest.raises(mint_async.StuckRequestError):
        await resolve(mock, retrieve=0.5, stuck=10.0)
    assert clock.sleeps == []
    reads = [c.extensions["timeout"]["read"] for c in mock.calls("retrieve_future")]
    assert reads[:4] == [0.5, 1.0, 2.0, 4.0] and sum(reads) == pytest.approx(10.0, abs=0.1)


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("connection refused"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ReadError("connection reset by peer"),
        httpx.RemoteProtocolError("server disconnected"),
        httpx.WriteTimeout("write timed out"),
    ],
    ids=lambda exc: type(exc).__name__,
)
async def test_dead_server_backs_off_and_trips_the_watchdog(
    mock: MockServer, clock: FakeClock, failure: Exception
) -> None:
    """Refused, reset or unconnectable polls back off min(2**k, 30) s and end in StuckRequestError."""
    mock.script("retrieve_future", failure)
    with pytest.raises(mint_async.StuckRequestError):
        await resolve(mock, stuck=10.0)
    # 1 + 2 + 4 s, then the 8 s step is cut short at the watchdog's deadline.
    assert clock.sleeps[:3] == [1.0, 2.0, 4.0] and clock.sleeps[3] == pytest.approx(3.01)


async def test_held_try_again_repolls_without_sleeping(mock: MockServer, clock: FakeClock) -> None:
    """try_again answers the server held (as §5.5 expects) are re-polled at once."""
    mock.routes["retrieve_future"] = holding_server(clock, hold=30.0, ready_at=clock.now + 100.0)
    assert (await resolve(mock, retrieve=45.0, stuck=None)).metrics == {"loss:sum": 1.0}
    assert clock.sleeps == []
    assert len(mock.calls("retrieve_future")) == 4


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (TRY_AGAIN, [0.05, 0.1, 0.2, 0.25, 0.25, 0.25]),
        ({**TRY_AGAIN, "queue_state": "paused_capacity"}, [0.05, 0.1, 0.2, 0.4, 0.8, 1.0]),
        (json_response(408, {"queue_state": "paused_rate_limit"}), [0.05, 0.1, 0.2, 0.4, 0.8, 1.0]),
        (json_response(408, {}), [0.05, 0.1, 0.2, 0.25, 0.25, 0.25]),
    ],
    ids=["try_again", "try_again_paused", "408_paused", "408"],
)
async def test_unheld_try_again_is_paced(
    mock: MockServer, clock: FakeClock, answer: Any, expected: list[float]
) -> None:
    """try_again/408 answered without a hold back off 0.05 s doubling to 0.25 s (1 s while paused)."""
    mock.script("retrieve_future", *([answer] * 6), OK)
    assert (await resolve(mock, stuck=None)).metrics == {"loss:sum": 1.0}
    assert clock.sleeps == expected


async def test_held_answer_resets_the_pacing(mock: MockServer, clock: FakeClock) -> None:
    """After a held try_again the pacing of un-held ones starts again at 0.05 s."""
    answers: list[bool] = [False, False, False, True, False, False]

    def handle(request: httpx.Request) -> Any:
        if not answers:
            return OK
        if answers.pop(0):
            clock.advance(30.0)
        return TRY_AGAIN

    mock.routes["retrieve_future"] = handle
    await resolve(mock, stuck=None)
    assert clock.sleeps == [0.05, 0.1, 0.2, 0.05, 0.1]


async def test_backoff_doubles_caps_and_resets(mock: MockServer, clock: FakeClock) -> None:
    """429s and connection errors back off min(2**k, 30) s; any other answer resets k."""
    mock.script(
        "retrieve_future",
        *([json_response(429, {})] * 7),
        TRY_AGAIN,
        json_response(429, {}),
        httpx.ConnectError("refused"),
        json_response(500, {}),
        httpx.ConnectError("refused"),
        OK,
    )
    assert (await resolve(mock, stuck=None)).metrics == {"loss:sum": 1.0}
    # Seven 429s; the try_again resets k (its 0.05 s is un-held pacing); the 500 resets it again.
    assert clock.sleeps == [1, 2, 4, 8, 16, 30, 30, 0.05, 1, 2, 1]


async def test_408_resets_the_400_budget(mock: MockServer) -> None:
    """A 408 in between gives the 400 budget back: six 400s around it do not raise."""
    bad = json_response(400, {"detail": "proxy"})
    mock.script("retrieve_future", bad, bad, bad, json_response(408, {}), bad, bad, bad, OK)
    assert (await resolve(mock)).metrics == {"loss:sum": 1.0}
    assert len(mock.calls("retrieve_future")) == 8


async def test_402_in_poll_fatal_after_the_billing_window(
    mock: MockServer, clock: FakeClock
) -> None:
    """402 polls pause 5 s at a time; after the billing window they raise BillingError.

    An answer in between (here a try_again) ends the window: the next 402 starts a new one.
    """
    pay = json_response(402, {"detail": "pay"})
    mock.script("retrieve_future", pay, pay, TRY_AGAIN, pay)
    with pytest.raises(mint_async.BillingError):
        await resolve(mock, stuck=None, retry=mint_async.RetryPolicy(billing_pause=12.0))
    # Window 1: 402 at t=0, 5 (then the try_again); window 2: 402 at 10.05, 15.05, 20.05; 25.05 fatal.
    assert clock.sleeps == [5.0, 5.0, 0.05, 5.0, 5.0, 5.0]
    assert len(mock.calls("retrieve_future")) == 7


async def test_403_in_poll_is_permission_denied(mock: MockServer) -> None:
    """A 403 while polling raises PermissionDeniedError at once."""
    mock.script("retrieve_future", json_response(403, {"detail": "not yours"}))
    with pytest.raises(mint_async.PermissionDeniedError) as info:
        await resolve(mock)
    assert info.value.status_code == 403 and info.value.request_id == "r1"
    assert len(mock.calls("retrieve_future")) == 1


async def test_every_poll_decision_is_logged(
    mock: MockServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Each poll answer's decision (re-poll, retry with delay, raise) is logged at DEBUG with its reason."""
    caplog.set_level(logging.DEBUG, logger="mint_async")
    mock.script(
        "retrieve_future",
        TRY_AGAIN,
        json_response(408, {"queue_state": "paused_capacity"}),
        json_response(400, {}),
        json_response(500, {}),
        json_response(429, {}),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("held"),
        {"status": "complete_metadata", "response_payload_size": 10},
        json_response(404, {"detail": "gone"}),
    )
    with pytest.raises(mint_async.NotFoundError):
        await resolve(mock, stuck=None)
    logged = decisions(caplog)
    assert [(action, status) for action, status, _ in logged] == [
        ("retry", 200),
        ("retry", 408),
        ("repoll", 400),
        ("repoll", 500),
        ("retry", 429),
        ("retry", None),
        ("repoll", None),
        ("repoll", 200),
        ("raise", 404),
    ]
    reasons = [reason for _, _, reason in logged]
    assert reasons[0] == "try_again (queue_state=active) answered without holding the poll"
    assert reasons[1] == "408 (queue_state=paused_capacity) answered without holding the poll"
    assert reasons[2] == "bad request (1 of 3)"
    assert reasons[3] == "server error (1 in a row)"
    assert reasons[4] == "rate limited"
    assert reasons[5].startswith("connection error:") and "ConnectError" in reasons[5]
    assert reasons[6].startswith("read timeout: held past our wait; now waiting ")
    assert reasons[7] == "complete_metadata: fetching the payload"
    assert reasons[8] == "status 404 is fatal while polling"
    records = [r for r in caplog.records if getattr(r, "retry_action", None) == "retry"]
    assert [getattr(r, "retry_delay", None) for r in records] == [0.05, 0.1, 1.0, 2.0]


async def test_fatal_poll_answers_are_logged(
    mock: MockServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Failed requests and an exhausted 400 budget are logged as raise decisions with their reason."""
    caplog.set_level(logging.DEBUG, logger="mint_async")
    mock.script("retrieve_future", {"error": "bad targets", "category": "user"})
    with pytest.raises(mint_async.RequestFailedError):
        await resolve(mock)
    mock2 = MockServer()
    mock2.script("retrieve_future", json_response(400, {"detail": "bad"}))
    with pytest.raises(mint_async.BadRequestError):
        await resolve(mock2)
    logged = decisions(caplog)
    assert logged[0] == ("raise", 200, "the request failed (user); never retried")
    assert logged[-1] == ("raise", 400, "bad request, budget of 3 used")
