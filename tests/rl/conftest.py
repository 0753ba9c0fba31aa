"""Helpers for the RL engine's tests: a local server and a fresh training run on it."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from mint_async import ServiceClient, TrainingClient, rl
from mint_async import types as t
from mint_async.server import LatencyConfig, ServerConfig
from mint_async.testing import InProcessServer, serve_in_process

FAST = (
    "sample=uniform(0.01,0.08),forward_backward=0.04,optim_step=0.01,save_weights_for_sampler=0.01"
)
"""Latencies that make rollouts and training overlap measurably, in milliseconds."""


@dataclass
class Run:
    """A server, a service client, a training run and the digits task on its tokenizer."""

    server: InProcessServer
    svc: ServiceClient
    tc: TrainingClient
    dataset: rl.DigitsDataset


@asynccontextmanager
async def digits_run(latency: str = FAST, *, group_size: int = 4) -> AsyncGenerator[Run]:
    """A fresh run of the digits task against an in-process synthetic server."""
    config = ServerConfig(latency=LatencyConfig.parse(latency, seed=1))
    async with (
        serve_in_process(config) as server,
        ServiceClient(
            base_url=server.base_url, api_key=server.api_key, transport=server.transport
        ) as svc,
    ):
        tc = await svc.create_lora_training_client("Qwen/Qwen3-0.6B", rank=8, seed=0)
        tokenizer = await tc.get_tokenizer()
        dataset = rl.DigitsDataset.from_tokenizer(
            tokenizer, prompts=16, group_size=group_size, max_tokens=6
        )
        yield Run(server, svc, tc, dataset)


def rl_config(**kwargs: Any) -> rl.RLConfig:
    """A small RLConfig for the digits task (4 steps of 4 groups, 6 tokens); ``kwargs`` override."""
    base: dict[str, Any] = {
        "steps": 4,
        "groups_per_step": 4,
        "sampling_params": t.SamplingParams(max_tokens=6, temperature=1.0),
        "adam": t.AdamParams(learning_rate=0.05),
    }
    return rl.RLConfig(**{**base, **kwargs})
