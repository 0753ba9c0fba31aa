"""Each injected fault, and a retrying client under all of them: state stays exact (executions counted)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from mint_async.server import FaultConfig, ServerConfig

from ._support import Api, Json, fb_body, optim_body, running, sample_body, wait_until

pytestmark = pytest.mark.anyio


def faulty(spec: str, **kwargs: Any) -> ServerConfig:
    """A config with faults from ``spec``."""
    return ServerConfig(faults=FaultConfig.parse(spec), **kwargs)


async def test_submit_5xx_enqueues_nothing() -> None:
    """A submission answered 5xx left no trace: nothing accepted, nothing executed."""
    async with running(faulty("submit_5xx=1")) as (server, api):
        sampler = await api.sampler(await api.session())
        r = await api.post("asample", sample_body(sampler, 0))
        assert r.status_code in (500, 502, 503) and "injected" in r.json()["detail"]
        stats = server.statistics()
        assert stats.accepted == {} and stats.executed == {} and stats.faults["submit_5xx"] == 1


async def test_sample_429_is_backpressure_for_samples_only() -> None:
    """asample answers 429 (nothing enqueued); training submissions are unaffected."""
    async with running(faulty("sample_429=1")) as (server, api):
        sid = await api.session()
        sampler = await api.sampler(sid)
        r = await api.post("asample", sample_body(sampler, 0))
        assert r.status_code == 429 and r.headers["retry-after-ms"] == "100"
        mid = await api.model(sid)
        assert "loss:sum" in (await api.run("forward_backward", fb_body(mid, 1)))["metrics"]
        assert "sample" not in server.statistics().accepted


async def test_dropped_connection_after_accept_still_runs_the_work() -> None:
    """The client sees a transport error, yet the request ran once; resubmitting does not run it again."""
    async with running(faulty("drop_after_accept=1")) as (server, api):
        sampler = await api.sampler(await api.session())
        with pytest.raises(httpx.RemoteProtocolError):
            await api.post("asample", sample_body(sampler, 0))
        rid = f"{sampler}:0"
        await wait_until(lambda: server.executions(rid) == 1)
        with pytest.raises(httpx.RemoteProtocolError):
            await api.post("asample", sample_body(sampler, 0))
        assert (await api.result(rid))["type"] == "sample"
        assert server.executions(rid) == 1 and server.statistics().duplicates == 1


async def test_retrieve_408_carries_try_again() -> None:
    """A 408 poll answer carries a try_again body with the queue state."""
    async with running(faulty("retrieve_408=1")) as (_, api):
        sampler = await api.sampler(await api.session())
        rid = await api.submit("asample", sample_body(sampler, 0))
        r = await api.poll(rid)
        assert (
            r.status_code == 408
            and r.json()["type"] == "try_again"
            and r.json()["request_id"] == rid
        )


async def test_try_again_storm() -> None:
    """try_again answers at once, even for a finished future."""
    async with running(faulty("try_again=1")) as (server, api):
        sampler = await api.sampler(await api.session())
        rid = await api.submit("asample", sample_body(sampler, 0))
        await wait_until(lambda: server.executions(rid) == 1)
        assert (await api.poll(rid)).json()["type"] == "try_again"


async def test_retrieve_410_leaves_the_future_valid() -> None:
    """Some polls answer 410; polling again still gets the result."""
    async with running(faulty("retrieve_410=0.5,seed=4")) as (server, api):
        sampler = await api.sampler(await api.session())
        rid = await api.submit("asample", sample_body(sampler, 0))
        statuses: list[int] = []
        while not statuses or statuses[-1] != 200:
            statuses.append((await api.poll(rid)).status_code)
        assert server.statistics().faults["retrieve_410"] == statuses.count(410)
        assert set(statuses) <= {200, 410}


async def test_slow_poll_still_answers() -> None:
    """A slowed poll of a finished result takes at least the injected delay, then answers it."""
    delay = 0.5
    async with running(faulty(f"slow_poll=1:{delay}")) as (server, api):
        sampler = await api.sampler(await api.session())
        rid = await api.submit("asample", sample_body(sampler, 0))
        await wait_until(lambda: server.statistics().outstanding == 0)  # the result is ready
        start = time.monotonic()
        answer = await api.poll(rid)
        elapsed = time.monotonic() - start
        assert answer.status_code == 200 and answer.json()["type"] == "sample"
        assert elapsed >= delay * 0.9  # lower bound only (a little slack for timer granularity)
        assert server.statistics().faults["slow_poll"] == 1
        assert server.statistics().peak_held_polls == 0  # the time went to the fault, not a hold


async def test_error_results_consume_the_slot_without_running() -> None:
    """An injected failure answers {"error", "category"}, executes nothing and does not block the next seq_id."""
    async with running(faulty("error_result=1:user")) as (server, api):
        sid = await api.session()
        body = {
            "session_id": sid,
            "model_seq_id": 0,
            "base_model": "Qwen/Qwen3-0.6B",
            "lora_config": {"rank": 4},
            "type": "create_model",
        }
        created = await api.run("create_model", body)
        assert created["category"] == "user" and "injected" in created["error"]
        mid = f"{sid}:train:0"
        for seq in (1, 2):
            assert (await api.run("optim_step", optim_body(mid, seq)))["category"] == "user"
        assert server.statistics().executed == {}


async def _submit(api: Api, path: str, body: Json) -> str:
    """Submit until the server accepts (retrying 5xx, 429 and dropped connections with the same body)."""
    while True:
        try:
            r = await api.post(path, body)
        except httpx.TransportError:
            continue
        if r.status_code == 200:
            return str(r.json()["request_id"])
        assert r.status_code in (429, 500, 502, 503), r.text


async def _answer(api: Api, rid: str) -> Json:
    """Poll until an answer (re-polling 408, 410 and try_again)."""
    while True:
        r = await api.poll(rid)
        if r.status_code in (408, 410):
            continue
        assert r.status_code == 200, r.text
        data: Json = r.json()
        if data.get("type") != "try_again":
            return data


async def test_retrying_client_under_every_fault_gets_exactly_once() -> None:
    """With every fault firing often, a client that resubmits the same seq_ids gets every answer, each run at most once."""
    spec = "submit_5xx=0.2,sample_429=0.2,drop_after_accept=0.3,retrieve_408=0.2,try_again=0.2,retrieve_410=0.1,slow_poll=0.1:0.01,error_result=0.1,seed=11"
    async with running(faulty(spec, poll_hold=0.01)) as (server, api):
        sid = await api.session()
        create = {
            "session_id": sid,
            "model_seq_id": 0,
            "base_model": "Qwen/Qwen3-0.6B",
            "lora_config": {"rank": 4},
            "type": "create_model",
        }
        created = await _answer(api, await _submit(api, "create_model", create))
        if "error" in created:  # the injected failure hit create_model itself; try another model
            create["model_seq_id"] = 1
            created = await _answer(api, await _submit(api, "create_model", create))
        mid = str(created["model_id"])
        sampler = await api.sampler(sid)
        rids: list[str] = []
        for seq in range(1, 13):
            body = fb_body(mid, seq) if seq % 2 else optim_body(mid, seq)
            rids.append(await _submit(api, "forward_backward" if seq % 2 else "optim_step", body))
            rids.append(await _submit(api, "asample", sample_body(sampler, seq)))
        answers = [await _answer(api, rid) for rid in rids]
        failed = {rid for rid, a in zip(rids, answers, strict=True) if "error" in a}
        counts = server.execution_counts()
        assert all(n == 1 for n in counts.values())
        assert all(counts.get(rid, 0) == (0 if rid in failed else 1) for rid in rids)
        stats = server.statistics()
        assert stats.duplicates > 0 and sum(stats.faults.values()) > 10
