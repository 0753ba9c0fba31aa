"""retrieve_future: release on completion, try_again after the hold, complete_metadata once, 404/410, queue states."""

from __future__ import annotations

import time
import types
from typing import cast

import anyio
import pytest

from mint_async.server import LatencyConfig, ServerConfig
from mint_async.server._futures import FutureRecord, Phase

from ._support import fb_body, running, sample_body, wait_until

pytestmark = pytest.mark.anyio


async def test_held_poll_is_released_when_the_result_is_ready() -> None:
    """A poll held on a 600 s hold returns once the (1 s) work completes, not at the hold boundary."""
    # 1 s of work: long enough that the poll surely arrives (and is held) before it ends.
    config = ServerConfig(poll_hold=600.0, latency=LatencyConfig.parse("sample=1"))
    async with running(config) as (server, api):
        sampler = await api.sampler(await api.session())
        rid = await api.submit("asample", sample_body(sampler, 0))
        start = time.monotonic()
        with anyio.fail_after(60):  # a poll that waited for the hold would fail here, not hang
            r = await api.poll(rid)
        elapsed = time.monotonic() - start
        assert r.json()["type"] == "sample"
        assert server.statistics().peak_held_polls == 1  # it really was held
        assert server.statistics().held_polls == 0
        assert elapsed < 10  # liveness bound: 1 s of work against a 600 s hold
        server.reset_peaks()
        assert server.statistics().peak_held_polls == 0


async def test_held_poll_is_released_when_the_future_fails() -> None:
    """A held poll returns as soon as its request fails (here: cancelled), long before the hold."""
    config = ServerConfig(poll_hold=600.0, latency=LatencyConfig.parse("sample=600"))
    async with running(config) as (server, api):
        sampler = await api.sampler(await api.session())
        rid = await api.submit("asample", sample_body(sampler, 0))
        answers: list[dict[str, object]] = []

        async def poll() -> None:
            answers.append((await api.poll(rid)).json())

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(poll)
                await wait_until(lambda: server.statistics().held_polls == 1)
                assert (await api.ok("cancel_future", {"request_id": rid}))["cancelled"] is True
        assert answers == [{"error": "cancelled by the client", "category": "user"}]
        assert server.statistics().held_polls == 0


async def test_try_again_after_the_hold() -> None:
    """An unfinished future answers try_again (queue_state active) once the hold passes."""
    config = ServerConfig(poll_hold=0.05, latency=LatencyConfig.parse("sample=5"))
    async with running(config) as (_, api):
        sampler = await api.sampler(await api.session())
        rid = await api.submit("asample", sample_body(sampler, 0))
        answer = (await api.poll(rid)).json()
        assert answer == {"type": "try_again", "request_id": rid, "queue_state": "active"}


async def test_capacity_queues_and_reports_paused_capacity() -> None:
    """Beyond capacity, requests wait with queue_state paused_capacity; 429 once too many samples wait."""
    config = ServerConfig(
        capacity=1, max_queued_samples=2, poll_hold=0.01, latency=LatencyConfig.parse("sample=5")
    )
    async with running(config) as (_, api):
        sampler = await api.sampler(await api.session())
        rids = [await api.submit("asample", sample_body(sampler, seq)) for seq in range(3)]
        # Which one gets the slot is up to the scheduler (trio shuffles); exactly one does.
        with anyio.fail_after(4):
            while True:
                states = [(await api.poll(r)).json().get("queue_state") for r in rids]
                if sorted(states) == ["active", "paused_capacity", "paused_capacity"]:
                    break
        refused = await api.post("asample", sample_body(sampler, 3))
        assert refused.status_code == 429 and refused.json()["detail"]


async def test_a_free_slot_never_reads_as_paused_capacity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under capacity a request goes straight to running: it is never marked queued, even for the
    instant an awaited acquire would yield (a poll then would report paused_capacity)."""
    slot = cast("types.MemberDescriptorType", vars(FutureRecord)["phase"])  # the slot's descriptor
    queued: list[str] = []
    started: list[str] = []

    def set_phase(rec: FutureRecord, phase: Phase) -> None:
        if phase is Phase.QUEUED:
            queued.append(rec.request_id)
        elif phase is Phase.RUNNING:
            started.append(rec.request_id)
        slot.__set__(rec, phase)

    def get_phase(rec: FutureRecord) -> Phase:
        phase: Phase = slot.__get__(rec, FutureRecord)
        return phase

    monkeypatch.setattr(FutureRecord, "phase", property(get_phase, set_phase))
    # Samples take 30 s, so the slots stay taken however slow the machine (the server is
    # stopped, work cancelled, when the test ends).
    config = ServerConfig(capacity=2, latency=LatencyConfig.parse("sample=30"))
    async with running(config) as (_, api):
        sampler = await api.sampler(await api.session())
        for seq in range(2):
            await api.submit("asample", sample_body(sampler, seq))
        await wait_until(lambda: len(started) == 2)
        assert queued == []  # two slots, two requests
        third = await api.submit("asample", sample_body(sampler, 2))
        await wait_until(lambda: queued == [third])  # the control: a full server does queue


async def test_complete_metadata_is_sent_once() -> None:
    """A large result is announced with complete_metadata once, then sent; never two metadata answers."""
    async with running(ServerConfig(metadata_threshold=10)) as (_, api):
        sampler = await api.sampler(await api.session())
        rid = await api.submit("asample", sample_body(sampler, 0))
        first = (await api.poll(rid, allow_metadata_only=True)).json()
        assert first["status"] == "complete_metadata" and first["response_payload_size"] > 10
        second = await api.poll(rid, allow_metadata_only=True)  # e.g. the metadata answer was lost
        assert (
            second.json()["type"] == "sample"
            and len(second.content) == first["response_payload_size"]
        )
    async with running(ServerConfig(metadata_threshold=10)) as (_, api):
        sampler = await api.sampler(await api.session())
        rid = await api.submit("asample", sample_body(sampler, 0))
        assert (await api.poll(rid, allow_metadata_only=False)).json()["type"] == "sample"


async def test_unknown_and_expired_futures() -> None:
    """Unknown ids answer 404; purged ids of a live sampler or model answer 410."""
    async with running(ServerConfig(result_retention=0.0, sweep_interval=0.01)) as (server, api):
        assert (await api.poll("nothing:1")).status_code == 404
        sid = await api.session()
        sampler = await api.sampler(sid)
        mid = await api.model(sid)
        rids = [
            await api.submit("asample", sample_body(sampler, 0)),
            await api.submit("forward_backward", fb_body(mid, 1)),
        ]
        for rid in rids:
            await api.result(rid)
        await wait_until(lambda: server.statistics().futures == 0)
        for rid in rids:
            gone = await api.poll(rid)
            assert gone.status_code == 410 and gone.json()["detail"]
        assert (await api.poll(f"{sampler}:99")).status_code == 410


async def test_failures_carry_a_category() -> None:
    """A request that fails answers {"error", "category"} with status 200."""
    async with running() as (_, api):
        mid = await api.model(await api.session())
        failed = await api.run(
            "load_weights",
            {
                "model_id": mid,
                "path": "tinker://x/weights/none",
                "seq_id": 1,
                "optimizer": False,
                "type": "load_weights",
            },
        )
        assert set(failed) == {"error", "category"} and failed["category"] == "user"


async def test_other_users_cannot_poll_a_future() -> None:
    """A request id of another user answers as unknown."""
    async with running(ServerConfig(api_keys=("sk-a", "sk-b"))) as (server, api):
        sampler = await api.sampler(await api.session())
        rid = await api.submit("asample", sample_body(sampler, 0))
        async with server.client(headers={"X-API-Key": "sk-b"}) as other:
            r = await other.post(
                "/api/v1/retrieve_future", json={"request_id": rid, "allow_metadata_only": False}
            )
        assert r.status_code in (404, 410)


async def test_zero_latency_samples_are_ready_with_their_promise() -> None:
    """Without latency or a capacity limit, a sample has run by the time its promise arrives (no held poll)."""
    async with running() as (server, api):
        sampler = await api.sampler(await api.session())
        rid = await api.submit("asample", sample_body(sampler, 0))
        assert server.executions(rid) == 1
        assert (await api.poll(rid)).json()["type"] == "sample"
        assert server.statistics().peak_held_polls == 0
