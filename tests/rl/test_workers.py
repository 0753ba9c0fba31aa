"""Rollouts in a process pool and on Ray actors: own client copies, deterministic seq-id namespaces."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest

from mint_async import ServiceClient, rl
from mint_async import types as t
from mint_async.server import LatencyConfig, ServerConfig
from mint_async.testing import LoopbackServer, serve_loopback

pytestmark = pytest.mark.anyio

G = 2


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    """A loopback server (workers in other processes reach it over HTTP)."""
    config = ServerConfig(
        latency=LatencyConfig.parse("sample=uniform(0.01,0.05),forward_backward=0.03")
    )
    with serve_loopback(config) as srv:
        yield srv


async def _train(
    server: LoopbackServer,
    executor: rl.RolloutExecutor,
    loss_fn: t.LossFnType = "importance_sampling",
    group_size: int = 4,
) -> list[rl.StepMetrics]:
    async with ServiceClient(base_url=server.base_url, api_key=server.api_key) as svc:
        tc = await svc.create_lora_training_client("Qwen/Qwen3-0.6B", rank=8, seed=0)
        dataset = rl.DigitsDataset.from_tokenizer(
            await tc.get_tokenizer(), prompts=8, group_size=group_size, max_tokens=6
        )
        config = rl.RLConfig(
            steps=3,
            groups_per_step=G,
            max_steps_off_policy=1,
            sampling_params=t.SamplingParams(max_tokens=6, temperature=1.0),
            adam=t.AdamParams(learning_rate=0.05),
            loss_fn=loss_fn,
        )
        return await rl.RLLoop(tc, dataset, config, executor=executor).run()


def _sample_namespaces(server: LoopbackServer, before: set[str]) -> set[int]:
    """The seq-id namespaces of the sample requests made since ``before``."""
    new = [rid for rid in server.execution_counts() if rid not in before and ":sample:" in rid]
    return {int(rid.rsplit(":", 1)[1]) // 10**9 for rid in new}


def _check(history: list[rl.StepMetrics], namespaces: set[int]) -> None:
    assert [h.step for h in history] == [0, 1, 2]
    trained = [i for h in history for i in h.data_indices]
    assert len(trained) == len(set(trained)) == 3 * G
    # Each rollout sampled through its own client copy in namespace data position + 1.
    assert {i + 1 for i in trained} <= namespaces
    assert 0 not in namespaces


async def test_process_pool_rollouts(server: LoopbackServer) -> None:
    """Two worker processes run the group rollouts; training proceeds as in the event loop."""
    before = set(server.execution_counts())
    history = await _train(server, rl.ProcessPoolRollouts(workers=2))
    _check(history, _sample_namespaces(server, before))


def _check_trained(history: list[rl.StepMetrics]) -> None:
    # A refused forward_backward fails the run; so does a worker's group without records.
    trained = [h for h in history if h.datums > 0]
    assert trained, "every group had equal rewards"
    assert all(h.loss is not None for h in trained)


async def test_process_pool_rollouts_stable_reinforce(server: LoopbackServer) -> None:
    """Workers sample with record_stability_info; sequence ids come back pickled; steps train."""
    before = set(server.execution_counts())
    # Groups of 8: all-equal rewards in every one of the 6 groups is ~1e-4 likely.
    history = await _train(
        server, rl.ProcessPoolRollouts(workers=2), "stable_reinforce", group_size=8
    )
    _check(history, _sample_namespaces(server, before))
    _check_trained(history)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """A local Ray instance with two CPUs (skipped when ray is not installed)."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed (pip install 'mint-async[ray]')")
    import ray as ray_module

    ray: Any = ray_module
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()


async def test_ray_rollouts_on_two_local_workers(server: LoopbackServer, ray_cluster: Any) -> None:
    """Two Ray actors run the rollouts, each job with its own sampling client copy and namespace."""
    before = set(server.execution_counts())
    executor = rl.RayRollouts(num_workers=2, concurrency=4)
    history = await _train(server, executor)
    _check(history, _sample_namespaces(server, before))


async def test_ray_rollouts_stable_reinforce(server: LoopbackServer, ray_cluster: Any) -> None:
    """Ray actors sample with record_stability_info; sequence ids survive the transport."""
    before = set(server.execution_counts())
    executor = rl.RayRollouts(num_workers=2, concurrency=4)
    history = await _train(server, executor, "stable_reinforce", group_size=8)
    _check(history, _sample_namespaces(server, before))
    _check_trained(history)
