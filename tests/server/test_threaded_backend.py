"""A backend whose compute runs in worker threads (the torch backend's policy): the loop never blocks on it."""

from __future__ import annotations

import threading

import anyio
import anyio.to_thread
import pytest

from mint_async.server import ServerConfig
from mint_async.server.backends import ExecutionPolicy, SampleSpec
from mint_async.server.backends._bigram import SyntheticModel, SyntheticSampler
from mint_async.server.backends._tiny_tokenizer import ensure_tiny_tokenizer
from mint_async.server.backends.synthetic import SyntheticBackend
from mint_async.testing import serve_in_process
from mint_async.types import AdamParams, SampleResponse

from ._support import Api, fb_body, optim_body, sample_body, wait_until

pytestmark = pytest.mark.anyio


class GatedBackend(SyntheticBackend):
    """The synthetic backend, threaded, whose sampling waits for the test to open a gate."""

    def __init__(self) -> None:
        super().__init__(
            tokenizer_dir=ensure_tiny_tokenizer(),
            execution=ExecutionPolicy(threaded=True, max_concurrency=2),
        )
        self.gate = threading.Event()
        self.sample_threads: set[int] = set()

        self.events: list[str] = []

    def sample(self, sampler: SyntheticSampler, spec: SampleSpec) -> SampleResponse:
        """Record the thread, wait for the gate, then sample."""
        self.sample_threads.add(threading.get_ident())
        assert self.gate.wait(60), "the test never opened the gate"
        return super().sample(sampler, spec)

    def optim_step(self, model: SyntheticModel, params: AdamParams) -> dict[str, float]:
        """Wait for the gate, then step (recording start and end)."""
        self.events.append("optim started")
        assert self.gate.wait(60), "the test never opened the gate"
        self.events.append("optim finished")
        return super().optim_step(model, params)

    def unload_model(self, model: SyntheticModel) -> None:
        """Record the unload."""
        self.events.append("unloaded")


async def test_threaded_compute_keeps_the_loop_free() -> None:
    """While a sample blocks in a worker thread, other requests are served; then it completes."""
    backend = GatedBackend()
    async with serve_in_process(backend=backend) as server, server.client() as http:
        api = Api(http)
        sampler = await api.sampler(await api.session())
        rid = await api.submit("asample", sample_body(sampler, 0))
        await wait_until(lambda: bool(backend.sample_threads))
        assert threading.get_ident() not in backend.sample_threads
        health = await http.get("/api/v1/healthz")  # served while the sample blocks
        assert health.status_code == 200
        await anyio.to_thread.run_sync(backend.gate.set)
        assert (await api.result(rid))["type"] == "sample"


async def test_threaded_backend_full_flow() -> None:
    """Training, checkpoints and sampling work end to end with thread-run compute and encoding."""
    backend = GatedBackend()
    backend.gate.set()
    async with serve_in_process(backend=backend) as server, server.client() as http:
        api = Api(http)
        sid = await api.session()
        mid = await api.model(sid)
        first = await api.run("forward_backward", fb_body(mid, 1))
        await api.run("optim_step", optim_body(mid, 2))
        path = (
            await api.run(
                "save_weights_for_sampler",
                {"model_id": mid, "path": "s", "seq_id": 3, "type": "save_weights_for_sampler"},
            )
        )["path"]
        later = await api.run("forward", fb_body(mid, 4, key="forward_input"))
        assert later["metrics"]["loss:sum"] < first["metrics"]["loss:sum"]
        sampler = await api.sampler(sid, model_path=path)
        assert (
            len((await api.run("asample", sample_body(sampler, 0, num_samples=2)))["sequences"])
            == 2
        )
        assert all(n == 1 for n in server.execution_counts().values())


async def test_expiry_unloads_a_model_only_after_its_running_call() -> None:
    """A session expiring mid-compute fails the request at once but unloads the model after the call returns."""
    backend = GatedBackend()
    config = ServerConfig(session_expiry=0.5, sweep_interval=0.02)
    async with serve_in_process(config, backend=backend) as server, server.client() as http:
        api = Api(http)
        mid = await api.model(await api.session())
        rid = await api.submit("optim_step", optim_body(mid, 1))
        await wait_until(lambda: backend.events == ["optim started"])
        failed = await api.result(rid)  # answered by the expiry, while the step still runs
        assert "no heartbeat" in failed["error"]
        assert backend.events == ["optim started"]
        await anyio.to_thread.run_sync(backend.gate.set)
        await wait_until(lambda: backend.events[-1:] == ["unloaded"])
        assert backend.events == ["optim started", "optim finished", "unloaded"]


async def test_a_server_app_runs_once() -> None:
    """Entering running() a second time is refused (resources are not reusable)."""
    from mint_async.server import create_app

    app = create_app(backend=GatedBackend())
    async with app.running():
        pass
    with pytest.raises(RuntimeError, match="runs once"):
        async with app.running():
            pass
