"""The blocking facade against loopback servers (the MinT SFT guide itself runs as examples/sft_quickstart_sync.py, see test_examples)."""

from __future__ import annotations

import asyncio
import re
import tarfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec
import numpy as np
import pytest

import mint_async
from mint_async import sync as mint
from mint_async import types
from mint_async.server import DEFAULT_API_KEY, LatencyConfig, ServerConfig
from mint_async.testing import LoopbackServer, serve_loopback

BASE = "Qwen/Qwen3-0.6B"
OTHER_KEY = "sk-other-user"
T = TypeVar("T")


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    """A loopback server for the module, with a second user's key."""
    with serve_loopback(ServerConfig(api_keys=(DEFAULT_API_KEY, OTHER_KEY), poll_hold=5.0)) as srv:
        yield srv


@pytest.fixture(scope="module")
def slow_server() -> Iterator[LoopbackServer]:
    """One request computes at a time; forward_backward takes 0.5 s and sample 0.3 s; polls held 50 ms."""
    config = ServerConfig(
        capacity=1,
        poll_hold=0.05,
        latency=LatencyConfig.parse("forward_backward=0.5,sample=0.3"),
    )
    with serve_loopback(config) as srv:
        yield srv


@pytest.fixture
def mint_env(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment the MinT guide expects (MINT_API_KEY, MINT_BASE_URL)."""
    monkeypatch.setenv("MINT_API_KEY", server.api_key)
    monkeypatch.setenv("MINT_BASE_URL", server.base_url)


def sft_datum(prompt: list[int], answer: list[int]) -> types.Datum:
    """A supervised datum: answer tokens weighted 1, shifted for teacher forcing."""
    tokens = prompt + answer
    weights = [0.0] * len(prompt) + [1.0] * len(answer)
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={"target_tokens": tokens[1:], "weights": weights[1:]},
    )


BATCH = [sft_datum([1, 2, 3], [4, 5])]
ADAM = types.AdamParams(learning_rate=0.1)
PROMPT = types.ModelInput.from_ints([1, 2, 3, 4])


def logprobs(tc: mint.TrainingClient) -> types.TensorData:
    """The model's per-token logprobs of BATCH (a forward pass)."""
    return tc.forward(BATCH).result(timeout=30).loss_fn_outputs[0]["logprobs"]


def train_step(tc: mint.TrainingClient) -> None:
    """forward_backward and optim_step, pipelined (both submitted before either is awaited)."""
    fb, opt = tc.forward_backward(BATCH), tc.optim_step(ADAM)
    fb.result(timeout=30)
    opt.result(timeout=30)


def results_concurrently(futures: Sequence[mint.APIFuture[T]]) -> list[T]:
    """Wait for every future from its own thread, so all of them are polled at once."""
    with ThreadPoolExecutor(len(futures)) as pool:
        waiting = [pool.submit(fut.result, 30) for fut in futures]
        return [w.result() for w in waiting]


class RecordingTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, keeping the method, path and body of every request."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, str, bytes]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path, request.content))
        return await super().handle_async_request(request)


class StateLog:
    """A queue-state observer that calls back into the blocking client and records what it saw."""

    def __init__(self, probe: Callable[[], object]) -> None:
        self.changes: list[tuple[str, str | None, str]] = []
        self.resumed = threading.Event()
        """Set once an ``active`` follows a ``paused_capacity``."""
        self._probe = probe

    def __call__(self, state: types.QueueState, reason: str | None) -> None:
        self._probe()  # a blocking call into the client: fine outside the event loop
        self.changes.append((state, reason, threading.current_thread().name))
        if state == "active" and any(c[0] == "paused_capacity" for c in self.changes):
            self.resumed.set()


@pytest.mark.usefixtures("mint_env")
def test_sync_facade_inside_a_running_event_loop() -> None:
    """Like Jupyter: the blocking API is called from a thread that runs an asyncio loop."""

    async def notebook_cell() -> int:
        with mint.ServiceClient() as svc:
            sc = svc.create_sampling_client(base_model=BASE)
            out = sc.sample(
                types.ModelInput.from_ints([1, 2, 3]), 2, types.SamplingParams(max_tokens=3)
            ).result(timeout=30)
            return len(out.sequences)

    assert asyncio.run(notebook_cell()) == 2


@pytest.mark.usefixtures("mint_env")
def test_sync_facade_on_trio() -> None:
    """The portal can run trio; futures' request ids and sampling work through it."""
    pytest.importorskip("trio", reason="the asyncio-only test session runs without trio")
    with mint.ServiceClient(backend="trio") as svc:
        tc = svc.create_lora_training_client(rank=4)
        fut = tc.save_state("s1")
        assert fut.request_id is not None
        path = fut.result().path
        assert svc.create_rest_client().get_weights_info_by_tinker_path(path).base_model == BASE
        assert tc.get_info().model_id == tc.model_id
        sc = svc.create_sampling_client()
        samples = sc.sample(
            types.ModelInput.from_ints([1, 2]), 2, types.SamplingParams(max_tokens=3)
        )
        assert samples.sequences == samples.result().sequences  # both spellings of the MinT docs
        lps = tc.create_sampling_client(tc.save_weights_for_sampler("w").result().path)
        assert lps.compute_logprobs(PROMPT)[0] is None


@pytest.mark.usefixtures("mint_env")
def test_sync_training_operations() -> None:
    """forward leaves weights alone; a custom torch loss trains; reverse KL against itself is zero."""
    torch = pytest.importorskip("torch")

    def neg_mean_logprob(data: list[types.Datum], lps: list[Any]) -> tuple[Any, dict[str, float]]:
        return torch.stack([-lp.mean() for lp in lps]).sum(), {"n:sum": float(len(data))}

    with mint.ServiceClient() as svc:
        tc = svc.create_lora_training_client(rank=4, seed=1)
        assert (tc.base_model, tc.next_seq_id) == (BASE, 1)
        before = logprobs(tc)
        assert before.dims == (4,) and logprobs(tc) == before  # forward has no side effect
        assert tc.next_seq_id == 3
        custom = tc.forward_backward_custom(BATCH, neg_mean_logprob).result(timeout=30)
        assert custom.metrics["n:sum"] == 1.0
        assert custom.metrics["loss:sum"] == pytest.approx(-before.to_numpy().mean(), rel=1e-5)
        tc.optim_step(ADAM).result(timeout=30)
        assert logprobs(tc).to_numpy().mean() > before.to_numpy().mean()  # the loss fell

        teacher = tc.save_weights_for_sampler("teacher").result(timeout=30).path
        same = types.ModelInput.from_ints([1, 2, 3])
        data = [
            types.ReverseKLDatum(
                student_input=same, reference_input=ref, target_tokens=[2, 3, 4], weights=[1.0] * 3
            )
            for ref in (same, types.ModelInput.from_ints([9, 8, 7]))
        ]
        kl = tc.forward_backward_reverse_kl(teacher, data).result(timeout=30)
        assert np.abs(kl.outputs[0].loss.to_numpy()).max() < 1e-5  # the teacher is these weights
        assert kl.outputs[1].loss.to_numpy().min() > 0
        assert kl.metrics["loss:sum"] == pytest.approx(float(kl.outputs[1].loss.to_numpy().sum()))


@pytest.mark.usefixtures("mint_env")
def test_sync_checkpoints_restore_weights_and_optimizer() -> None:
    """load_state restores weights (fresh optimizer), ..._with_optimizer the optimizer too; so do the from_state factories."""
    with mint.ServiceClient() as svc:
        tc = svc.create_lora_training_client(rank=4, seed=1)
        train_step(tc)
        saved = tc.save_state("resume").result(timeout=30).path
        at_save = logprobs(tc)
        train_step(tc)
        continued = logprobs(tc)  # a second step with the optimizer's moments
        assert continued != at_save

        assert tc.load_state(saved).result(timeout=30).path == saved
        assert logprobs(tc) == at_save
        train_step(tc)
        fresh_step = logprobs(tc)  # a first step of a fresh optimizer
        assert fresh_step != continued
        tc.load_state_with_optimizer(saved).result(timeout=30)
        assert logprobs(tc) == at_save
        train_step(tc)
        assert logprobs(tc) == continued

        resumed = svc.create_training_client_from_state_with_optimizer(saved, {"from": "opt"})
        train_step(resumed)
        assert logprobs(resumed) == continued
        fresh = svc.create_training_client_from_state(saved, user_metadata={"from": "weights"})
        assert logprobs(fresh) == at_save
        train_step(fresh)
        assert logprobs(fresh) == fresh_step
        rest = svc.create_rest_client()
        assert rest.get_training_run(resumed.model_id).user_metadata == {"from": "opt"}
        assert rest.get_training_run(fresh.model_id, "owned").user_metadata == {"from": "weights"}


@pytest.mark.usefixtures("mint_env")
def test_sync_sampling_client_and_interpolation() -> None:
    """Sampling client metadata, submit_sample, seq_id reservation, capabilities; interpolate_checkpoints mixes weights."""
    with mint.ServiceClient() as svc:
        caps = svc.get_server_capabilities()
        assert BASE in {m.model_name for m in caps.supported_models}
        assert svc.create_rest_client().get_server_capabilities() == caps
        tc = svc.create_lora_training_client(rank=4, seed=1)
        a = tc.save_weights_for_sampler("a").result(timeout=30).path
        train_step(tc)
        b = tc.save_weights_for_sampler("b").result(timeout=30).path

        sc = svc.create_sampling_client(model_path=a)
        assert (sc.model_path, sc.seq_namespace, sc.get_base_model()) == (a, 0, BASE)
        # The local server names the tokenizer in get_info (samplers/{id} does not say it).
        tokenizer = tc.create_sampling_client(a).get_tokenizer()
        assert tokenizer.decode(tokenizer.encode("What is 3 * 4?")) == "What is 3 * 4?"
        fut = sc.submit_sample(
            PROMPT, 2, types.SamplingParams(max_tokens=3), include_prompt_logprobs=True
        )
        assert isinstance(fut, mint.SampleFuture)
        assert fut.request_id == f"{sc.sampling_session_id}:0"
        assert sc.reserve_seq_id() == 1  # the sample took 0
        with pytest.warns(DeprecationWarning, match="reserve_seq_id"):
            assert sc.next_seq_id() == 2
        assert sc.request_id_for(2) == f"{sc.sampling_session_id}:2"
        resp = fut.result(timeout=30)
        assert len(resp.sequences) == 2 and fut.done() and fut.total_polls >= 1
        assert resp.prompt_logprobs is not None and len(resp.prompt_logprobs) == 4

        at_a = sc.compute_logprobs(PROMPT)
        at_b = svc.create_sampling_client(model_path=b).compute_logprobs(PROMPT)
        assert at_a != at_b
        only_a = svc.interpolate_checkpoints([a, b], [1.0, 0.0]).path
        assert svc.create_sampling_client(model_path=only_a).compute_logprobs(PROMPT) == at_a
        half = svc.interpolate_checkpoints([a, b], [0.5, 0.5], output_path="half")
        assert half.path.startswith("tinker://")
        at_half = svc.create_sampling_client(model_path=half.path).compute_logprobs(PROMPT)
        assert at_half not in (at_a, at_b)


@pytest.mark.usefixtures("mint_env")
def test_sync_rest_client(server: LoopbackServer, tmp_path: Path) -> None:
    """Every blocking RestClient method, with its effect; tags and transport reach the async client."""
    recorder = RecordingTransport()
    with (
        mint.ServiceClient(user_metadata={"who": "sync"}, tags=["t1"], transport=recorder) as svc,
        mint.ServiceClient(api_key=OTHER_KEY) as other,
    ):
        created = next(b for _, p, b in recorder.requests if p.endswith("create_session"))
        assert msgspec.json.decode(created)["tags"] == ["t1"]
        assert svc.config.tags == ("t1",)
        tc = svc.create_lora_training_client(rank=4, user_metadata={"k": "v"})
        state = tc.save_state("r1", user_metadata={"ck": "1"}).result(timeout=30).path
        sampler = tc.save_weights_for_sampler("r1s", user_metadata={"ck": "2"}).result(30).path
        for path, meta in (
            ("save_weights", {"ck": "1"}),
            ("save_weights_for_sampler", {"ck": "2"}),
        ):
            body = next(b for _, p, b in recorder.requests if p.endswith(f"/{path}"))
            assert msgspec.json.decode(body)["user_metadata"] == meta
        rest, other_rest = svc.create_rest_client(), other.create_rest_client()

        assert rest.get_training_run(tc.model_id).user_metadata == {"k": "v"}
        assert rest.get_training_run_by_tinker_path(state).training_run_id == tc.model_id
        runs = rest.list_training_runs(limit=1000).training_runs
        assert tc.model_id in {r.training_run_id for r in runs}
        listed = rest.list_checkpoints(tc.model_id).checkpoints
        assert {c.tinker_path for c in listed} == {state, sampler}
        newest = rest.list_user_checkpoints(limit=2).checkpoints
        assert [c.tinker_path for c in newest] == [sampler, state]
        assert rest.get_weights_info_by_tinker_path(state).lora_rank == 4
        sc = tc.create_sampling_client(sampler)
        assert rest.get_sampler(sc.sampling_session_id).model_path == sampler

        rest.publish_checkpoint_from_tinker_path(state)
        assert other_rest.get_training_run(tc.model_id, "accessible").training_run_id == tc.model_id
        assert other_rest.get_training_run_by_tinker_path(state, "accessible").lora_rank == 4
        with pytest.raises(mint_async.ConflictError):
            rest.publish_checkpoint_from_tinker_path(state)
        rest.unpublish_checkpoint_from_tinker_path(state)
        with pytest.raises(mint_async.NotFoundError):
            other_rest.get_training_run(tc.model_id, "accessible")
        rest.set_checkpoint_ttl_from_tinker_path(state, 3600)
        (ckpt,) = [
            c for c in rest.list_checkpoints(tc.model_id).checkpoints if c.tinker_path == state
        ]
        assert ckpt.expires_at is not None
        rest.set_checkpoint_ttl_from_tinker_path(state, None)

        assert isinstance(
            rest.get_checkpoint_archive_url(tc.model_id, "weights/r1"),
            types.CheckpointArchiveUrlResponse,
        )
        assert isinstance(
            rest.get_checkpoint_archive_url_from_tinker_path(state),
            types.CheckpointArchiveUrlResponse,
        )
        progress: list[tuple[int, int | None]] = []
        archive = rest.download_checkpoint(
            state, tmp_path, progress=lambda done, total: progress.append((done, total))
        )
        with tarfile.open(archive) as tar:
            assert tar.getnames()
        assert progress and progress[-1][0] == archive.stat().st_size

        session = rest.get_session(svc.session_id)
        assert session.training_run_ids == [tc.model_id] and session.user_metadata == {
            "who": "sync"
        }
        assert svc.session_id in rest.list_sessions(limit=100).sessions
        rest.assign_session_project(svc.session_id, "p-sync")
        assert (
            "PUT",
            f"/api/v1/sessions/{svc.session_id}/project",
            b'{"project_id":"p-sync"}',
        ) in recorder.requests

        rest.delete_checkpoint(tc.model_id, "sampler_weights/r1s")
        assert [c.tinker_path for c in rest.list_checkpoints(tc.model_id).checkpoints] == [state]
        rest.delete_checkpoint_from_tinker_path(state)
        assert rest.list_checkpoints(tc.model_id).checkpoints == []
        deleted = {
            e.tinker_path
            for e in rest.get_audit_log("checkpoints").entries
            if e.event == "checkpoint_deleted"
        }
        assert {state, sampler} <= deleted


def test_result_timeout_expires_and_the_request_still_completes(
    slow_server: LoopbackServer,
) -> None:
    """result(timeout) raises FutureTimeoutError; the same future later returns the result, executed once."""
    with mint.ServiceClient(base_url=slow_server.base_url, api_key=slow_server.api_key) as svc:
        tc = svc.create_lora_training_client(rank=4)
        fut = tc.forward_backward(BATCH)
        assert fut.request_id is not None
        with pytest.raises(mint_async.FutureTimeoutError, match=re.escape(fut.request_id)) as info:
            fut.result(timeout=0.05)
        assert isinstance(info.value, TimeoutError) and not fut.done()
        out = fut.result(timeout=30)
        assert fut.done() and out.loss > 0
        assert fut.result(timeout=0) is out  # known now: no wait, no request
        assert slow_server.executions(fut.request_id) == 1


def test_queue_state_observers_run_in_the_callback_thread(
    slow_server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Sampling observers see paused_capacity then active, off the event loop, in order; a failing one is logged."""
    with mint.ServiceClient(base_url=slow_server.base_url, api_key=slow_server.api_key) as svc:
        sc = svc.create_sampling_client()
        log = StateLog(sc.get_base_model)

        def broken(state: types.QueueState, reason: str | None) -> None:
            raise RuntimeError("observer bug")

        sc.on_queue_state_change(log)
        sc.on_queue_state_change(broken)
        params = types.SamplingParams(max_tokens=2)
        # Capacity 1: whichever sample runs second waits, paused, while both are polled.
        results = results_concurrently([sc.sample(PROMPT, 1, params) for _ in range(2)])
        assert [len(r.sequences) for r in results] == [1, 1]  # observers never fail requests
        assert log.resumed.wait(10)
        assert {name for _, _, name in log.changes} == {"mint_async-callbacks_0"}
        assert log.changes[0][0] == "paused_capacity"
        assert sc.queue_status().state == "active"
        assert "observer bug" in caplog.text
        sc.remove_queue_state_observer(broken)
        with pytest.raises(ValueError, match="not an observer"):
            sc.remove_queue_state_observer(broken)


def test_training_queue_state_observer(slow_server: LoopbackServer) -> None:
    """A TrainingClient's observer is told when its work waits and runs, and nothing once removed."""
    with mint.ServiceClient(base_url=slow_server.base_url, api_key=slow_server.api_key) as svc:
        clients = [svc.create_lora_training_client(rank=4) for _ in range(2)]
        log = StateLog(clients[0].get_info)
        for tc in clients:
            tc.on_queue_state_change(log)
        outs = results_concurrently([tc.forward_backward(BATCH) for tc in clients])
        assert all(out.loss > 0 for out in outs)
        assert log.resumed.wait(10)
        assert log.changes[0][0] == "paused_capacity"
        assert all(tc.queue_status().state == "active" for tc in clients)
        # Removed, it hears nothing of a second round that another observer hears.
        other = StateLog(clients[0].get_info)
        for tc in clients:
            tc.remove_queue_state_observer(log)
            tc.on_queue_state_change(other)
        seen = len(log.changes)
        outs = results_concurrently([tc.forward_backward(BATCH) for tc in clients])
        assert other.resumed.wait(10)
        assert len(log.changes) == seen
        with pytest.raises(ValueError, match="not an observer"):
            clients[0].remove_queue_state_observer(log)


@pytest.mark.usefixtures("mint_env")
def test_closed_sync_client_refuses_work() -> None:
    """After close(), calls raise ClientClosedError; close() is idempotent."""
    svc = mint.ServiceClient()
    sc = svc.create_sampling_client()
    svc.close()
    svc.close()
    with pytest.raises(mint_async.ClientClosedError):
        svc.create_lora_training_client()
    with pytest.raises(mint_async.ClientClosedError):
        sc.on_queue_state_change(lambda state, reason: None)


def test_observer_may_close_the_client(slow_server: LoopbackServer) -> None:
    """close() from an observer (the callback thread) returns; waiters get results or ClientClosedError."""
    svc = mint.ServiceClient(base_url=slow_server.base_url, api_key=slow_server.api_key)
    sc = svc.create_sampling_client()
    closed = threading.Event()

    def close_on_change(state: types.QueueState, reason: str | None) -> None:
        svc.close()
        closed.set()

    sc.on_queue_state_change(close_on_change)
    futures = [sc.sample(PROMPT, 1, types.SamplingParams(max_tokens=2)) for _ in range(2)]
    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(_result_or_closed, futures))
    assert closed.wait(10) and len(outcomes) == 2
    with pytest.raises(mint_async.ClientClosedError):
        sc.sample(PROMPT)


def _result_or_closed(
    fut: mint.SampleFuture,
) -> types.SampleResponse | mint_async.ClientClosedError:
    try:
        return fut.result(timeout=30)
    except mint_async.ClientClosedError as exc:  # the client closed while this waited
        return exc
