"""Ordering and exactly-once: out-of-order arrivals, resubmissions, consumed and skipped slots, sessions."""

from __future__ import annotations

import anyio
import pytest

from mint_async.server import LatencyConfig, ServerConfig

from ._support import datum, fb_body, optim_body, running, sample_body, wait_until

pytestmark = pytest.mark.anyio


async def test_out_of_order_arrivals_execute_in_seq_order() -> None:
    """forward(1), optim(2), forward(3) sent as 3, 2, 1 run in order: 1 sees old weights, 3 new."""
    async with running(ServerConfig(poll_hold=0.01)) as (server, api):
        mid = await api.model(await api.session())
        rid3 = await api.submit("forward", fb_body(mid, 3, key="forward_input"))
        rid2 = await api.submit("optim_step", optim_body(mid, 2))
        # Nothing can run before seq 1 arrives: the polls report the missing slot.
        waiting = (
            await api.post("retrieve_future", {"request_id": rid3, "allow_metadata_only": False})
        ).json()
        assert (
            waiting["type"] == "try_again"
            and waiting["queue_state_reason"] == f"waiting for seq_id 1 of {mid}"
        )
        rid1 = await api.submit("forward_backward", fb_body(mid, 1))
        first, step, third = [await api.result(r) for r in (rid1, rid2, rid3)]
        assert step["metrics"]["step:max"] == 1
        assert third["metrics"]["loss:sum"] < first["metrics"]["loss:sum"]
        assert all(server.executions(r) == 1 for r in (rid1, rid2, rid3))


async def test_parallel_chunks_of_one_call() -> None:
    """Chunks submitted concurrently (the first one last, as tinker does) all run, in order."""
    async with running() as (server, api):
        mid = await api.model(await api.session())
        rids: list[str] = []
        async with anyio.create_task_group() as tg:
            for seq in (4, 3, 2, 1):

                async def submit(seq: int = seq) -> None:
                    rids.append(await api.submit("forward_backward", fb_body(mid, seq)))

                tg.start_soon(submit)
        results = [await api.result(r) for r in rids]
        assert all("loss:sum" in r["metrics"] for r in results)
        assert server.statistics().executed["forward_backward"] == 4


async def test_training_resubmission_returns_the_original_promise() -> None:
    """A repeated (model_id, seq_id) answers the same request id and runs once, also after purging."""
    async with running(ServerConfig(result_retention=0.0, sweep_interval=0.01)) as (server, api):
        mid = await api.model(await api.session())
        body = fb_body(mid, 1)
        rids = {await api.submit("forward_backward", body) for _ in range(3)}
        assert rids == {f"{mid}:1"}
        await api.result(f"{mid}:1")
        await wait_until(lambda: server.statistics().futures == 0)  # delivered results are purged
        assert await api.submit("forward_backward", body) == f"{mid}:1"
        assert (await api.poll(f"{mid}:1")).status_code == 410
        assert server.executions(f"{mid}:1") == 1
        assert server.statistics().duplicates == 3


async def test_sample_resubmission_runs_once() -> None:
    """A repeated (sampling_session_id, seq_id) answers the same promise and never runs twice."""
    async with running(ServerConfig(result_retention=0.0, sweep_interval=0.01)) as (server, api):
        sampler = await api.sampler(await api.session())
        promises = [
            await api.ok("asample", sample_body(sampler, 5, num_samples=2)) for _ in range(3)
        ]
        assert {p["request_id"] for p in promises} == {f"{sampler}:5"}
        assert promises[0]["sample_sequence_ids"] == [f"{sampler}:5:0", f"{sampler}:5:1"]
        assert len((await api.result(f"{sampler}:5"))["sequences"]) == 2
        await wait_until(lambda: server.statistics().futures == 0)
        assert (await api.ok("asample", sample_body(sampler, 5)))["request_id"] == f"{sampler}:5"
        assert server.executions(f"{sampler}:5") == 1


async def test_same_slot_for_another_operation_is_a_400() -> None:
    """Reusing a seq_id for a different kind of request is a client bug: 400, not 409."""
    async with running() as (_, api):
        mid = await api.model(await api.session())
        await api.submit("forward_backward", fb_body(mid, 1))
        r = await api.post("optim_step", optim_body(mid, 1))
        assert r.status_code == 400 and "already used" in r.json()["detail"]
        assert (await api.post("forward_backward", fb_body(mid, 0))).status_code == 400


async def test_rejected_submission_consumes_its_slot() -> None:
    """A 400 for a malformed body still uses its seq_id, so the next request is not blocked."""
    async with running() as (_, api):
        mid = await api.model(await api.session())
        bad = fb_body(mid, 1, data=[datum([1, 2, 3], weights=[1.0])])  # weights of the wrong length
        assert (await api.post("forward_backward", bad)).status_code == 400
        with anyio.fail_after(10):
            assert "loss:sum" in (await api.run("forward_backward", fb_body(mid, 2)))["metrics"]


async def test_failed_requests_consume_their_slot() -> None:
    """A request failing at execution (user error) does not block the next one."""
    async with running() as (_, api):
        mid = await api.model(await api.session())
        failed = await api.run(
            "save_weights", {"model_id": mid, "path": "a/b", "seq_id": 1, "type": "save_weights"}
        )
        assert failed["category"] == "user" and "name" in failed["error"]
        assert (
            "loss:sum"
            in (await api.run("forward", fb_body(mid, 2, key="forward_input")))["metrics"]
        )


async def test_gap_is_skipped_after_the_timeout() -> None:
    """A missing slot is skipped after seq_gap_timeout; when it finally arrives it fails instead of running."""
    async with running(ServerConfig(seq_gap_timeout=0.05)) as (server, api):
        mid = await api.model(await api.session())
        assert "loss:sum" in (await api.run("forward_backward", fb_body(mid, 2)))["metrics"]
        late = await api.run("forward_backward", fb_body(mid, 1))
        assert late["category"] == "server" and "skipped" in late["error"]
        assert server.executions(f"{mid}:1") == 0


async def test_unsequenced_reverse_kl_deduplicates_on_idempotency_key() -> None:
    """Without a seq_id, retries carrying the same X-Idempotency-Key get the same promise."""
    async with running() as (server, api):
        mid = await api.model(await api.session())
        n = 3
        item = {
            "student_input": {"chunks": [{"tokens": [5, 6, 7], "type": "encoded_text"}]},
            "reference_input": {"chunks": [{"tokens": [5, 6, 7], "type": "encoded_text"}]},
            "target_tokens": {"data": [6, 7, 8], "shape": [n], "dtype": "int64"},
            "weights": {"data": [1.0] * n, "shape": None, "dtype": "float32"},
        }
        body = {
            "model_id": mid,
            "reference_model_path": "Qwen/Qwen3-8B",
            "data": [item],
            "temperature": 1.0,
            "seq_id": None,
            "type": "mint_forward_backward_reverse_kl",
        }
        headers = {"X-Idempotency-Key": "stainless-python-retry-1"}
        ids = [
            (await api.post("mint/forward_backward_reverse_kl", body, headers=headers)).json()[
                "request_id"
            ]
            for _ in range(2)
        ]
        other = (await api.post("mint/forward_backward_reverse_kl", body)).json()["request_id"]
        assert ids[0] == ids[1] == f"{mid}:rkl:1" and other == f"{mid}:rkl:2"
        await api.result(ids[0])
        assert server.executions(ids[0]) == 1


async def test_heartbeat_expiry_finishes_the_session() -> None:
    """Without heartbeats a session ends: pending work fails, its models and samplers go away."""
    config = ServerConfig(session_expiry=1.0, sweep_interval=0.02)
    async with running(config) as (server, api):
        sid = await api.session()
        mid = await api.model(sid)
        sampler = await api.sampler(sid)
        blocked = await api.submit("forward_backward", fb_body(mid, 2))  # waits for seq 1, forever
        for _ in range(3):  # heartbeats keep it alive past the expiry time
            await anyio.sleep(0.3)
            await api.ok("session_heartbeat", {"session_id": sid, "type": "session_heartbeat"})
        assert server.statistics().sessions == 1
        failed = await api.result(blocked)
        assert failed["category"] == "server" and "no heartbeat" in failed["error"]
        assert (
            await api.post("session_heartbeat", {"session_id": sid, "type": "session_heartbeat"})
        ).status_code == 410
        assert (await api.post("forward_backward", fb_body(mid, 1))).status_code == 404
        assert (await api.post("asample", sample_body(sampler, 0))).status_code == 404
        assert server.executions(blocked) == 0
        assert server.statistics().models == 0


async def test_expiry_cancels_running_samples() -> None:
    """Samples still executing when their session expires are cancelled and answer a failure."""
    config = ServerConfig(
        session_expiry=0.5, sweep_interval=0.02, latency=LatencyConfig.parse("sample=30")
    )
    async with running(config) as (_, api):
        sampler = await api.sampler(await api.session())
        rid = await api.submit("asample", sample_body(sampler, 0))
        with anyio.fail_after(10):
            failed = await api.result(rid)
        assert "finished" in failed["error"]
