"""Helpers for the server tests: a thin JSON client for the raw protocol, and request bodies."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx

from mint_async.server import ServerConfig
from mint_async.testing import InProcessServer, serve_in_process

BASE_MODEL = "Qwen/Qwen3-0.6B"
TOKENS = [11, 42, 7, 300, 5, 19, 2, 77]

Json = dict[str, Any]


class Api:
    """Raw protocol calls over an httpx client (in-process or loopback)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def post(self, path: str, body: object, **kwargs: Any) -> httpx.Response:
        """POST JSON to ``/api/v1/<path>``."""
        return await self.http.post(f"/api/v1/{path}", json=body, **kwargs)

    async def ok(self, path: str, body: object) -> Json:
        """POST and return the JSON of a 200 answer."""
        r = await self.post(path, body)
        assert r.status_code == 200, (r.status_code, r.text)
        data: Json = r.json()
        return data

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET ``/api/v1/<path>``."""
        return await self.http.get(f"/api/v1/{path}", **kwargs)

    async def session(self) -> str:
        """A new session id."""
        body: Json = {
            "tags": [],
            "user_metadata": {},
            "sdk_version": "0.22.0",
            "type": "create_session",
        }
        return str((await self.ok("create_session", body))["session_id"])

    async def poll(self, request_id: str, *, allow_metadata_only: bool = False) -> httpx.Response:
        """One retrieve_future call."""
        body = {"request_id": request_id, "allow_metadata_only": allow_metadata_only}
        return await self.post("retrieve_future", body)

    async def result(self, request_id: str) -> Json:
        """Poll until the future has an answer (result or failure); returns its JSON."""
        while True:
            r = await self.poll(request_id)
            assert r.status_code == 200, (r.status_code, r.text)
            data: Json = r.json()
            if data.get("type") != "try_again":
                return data

    async def model(self, session_id: str, *, model_seq_id: int = 0, rank: int = 8) -> str:
        """Create a model and wait for it; returns its id."""
        promise = await self.ok("create_model", create_model_body(session_id, model_seq_id, rank))
        result = await self.result(promise["request_id"])
        return str(result["model_id"])

    async def submit(self, path: str, body: Json) -> str:
        """Submit and return the request id."""
        return str((await self.ok(path, body))["request_id"])

    async def run(self, path: str, body: Json) -> Json:
        """Submit and wait for the answer."""
        return await self.result(await self.submit(path, body))

    async def sampler(self, session_id: str, *, seq: int = 0, model_path: str | None = None) -> str:
        """A sampling session of the base model (or of ``model_path``)."""
        body: Json = {
            "session_id": session_id,
            "sampling_session_seq_id": seq,
            "type": "create_sampling_session",
        }
        if model_path is None:
            body["base_model"] = BASE_MODEL
        else:
            body["model_path"] = model_path
        return str((await self.ok("create_sampling_session", body))["sampling_session_id"])


def create_model_body(session_id: str, model_seq_id: int = 0, rank: int = 8) -> Json:
    """A create_model body."""
    return {
        "session_id": session_id,
        "model_seq_id": model_seq_id,
        "base_model": BASE_MODEL,
        "lora_config": {"rank": rank},
        "type": "create_model",
    }


def tensor(values: Sequence[float], dtype: str) -> Json:
    """A TensorData body."""
    return {"data": list(values), "dtype": dtype, "shape": [len(values)]}


def datum(tokens: Sequence[int] = TOKENS, **extra: Sequence[float]) -> Json:
    """A next-token datum (targets = input shifted by one; unit weights)."""
    inputs: Json = {
        "target_tokens": tensor(tokens[1:], "int64"),
        "weights": tensor([1.0] * (len(tokens) - 1), "float32"),
    }
    for key, values in extra.items():
        inputs[key] = tensor(values, "float32")
    return {
        "model_input": {"chunks": [{"tokens": list(tokens[:-1]), "type": "encoded_text"}]},
        "loss_fn_inputs": inputs,
    }


def fb_body(
    model_id: str,
    seq_id: int,
    *,
    loss_fn: str = "cross_entropy",
    data: list[Json] | None = None,
    key: str = "forward_backward_input",
) -> Json:
    """A forward_backward (or, with ``key="forward_input"``, forward) body."""
    return {
        key: {"data": data or [datum()], "loss_fn": loss_fn},
        "model_id": model_id,
        "seq_id": seq_id,
    }


def optim_body(model_id: str, seq_id: int, learning_rate: float = 0.05) -> Json:
    """An optim_step body."""
    params = {
        "learning_rate": learning_rate,
        "beta1": 0.9,
        "beta2": 0.95,
        "eps": 1e-12,
        "weight_decay": 0.0,
        "grad_clip_norm": 0.0,
    }
    return {"adam_params": params, "model_id": model_id, "seq_id": seq_id, "type": "optim_step"}


def sample_body(
    sampler_id: str, seq_id: int, *, max_tokens: int = 4, num_samples: int = 1, **params: Any
) -> Json:
    """An asample body."""
    sampling = {"max_tokens": max_tokens, "temperature": 1.0, "top_k": -1, "top_p": 1.0, **params}
    return {
        "num_samples": num_samples,
        "prompt": {"chunks": [{"tokens": TOKENS[:4], "type": "encoded_text"}]},
        "sampling_params": sampling,
        "sampling_session_id": sampler_id,
        "seq_id": seq_id,
        "prompt_logprobs": False,
        "topk_prompt_logprobs": 0,
        "type": "sample",
    }


@asynccontextmanager
async def running(
    config: ServerConfig | None = None,
) -> AsyncGenerator[tuple[InProcessServer, Api]]:
    """An in-process server and an Api for it."""
    async with serve_in_process(config) as server, server.client() as http:
        yield server, Api(http)


async def wait_until(predicate: Any, *, timeout: float = 20.0) -> None:
    """Poll ``predicate()`` until true (a liveness bound, not a timing assertion)."""
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.005)
