"""Issue 12: hostile bodies answer 4xx (or fail as the user's error), never 5xx, and never stall the server."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import numpy as np
import pytest

from mint_async import _binary, _codec
from mint_async._exceptions import InvalidInputError
from mint_async.cli import build_parser
from mint_async.server import RequestLimits, ServerConfig
from mint_async.server._cli import config_from_args
from mint_async.server.backends import CheckpointKind, ModelSpec, SampleSpec
from mint_async.server.backends._bigram import SyntheticModel, SyntheticSampler
from mint_async.server.backends._losses import datum_inputs
from mint_async.server.backends._tiny_tokenizer import ensure_tiny_tokenizer
from mint_async.server.backends.synthetic import SyntheticBackend
from mint_async.testing import serve_in_process
from mint_async.types import (
    ForwardBackwardOutput,
    ForwardBackwardRequest,
    SampleResponse,
    TensorData,
)

from ._support import (
    Api,
    Json,
    create_model_body,
    datum,
    fb_body,
    running,
    sample_body,
    wait_until,
)

pytestmark = pytest.mark.anyio

NESTED = ('{"a":' * 1000 + "1" + "}" * 1000).encode()

# Every POST route that takes a JSON body (the sequenced ones probe a body that fails to decode).
POST_ROUTES = [
    "client/config",
    "client/dynamic_config",
    "auth/token",
    "create_session",
    "session_heartbeat",
    "telemetry",
    "create_model",
    "get_info",
    "unload_model",
    "forward",
    "forward_backward",
    "optim_step",
    "save_weights",
    "save_weights_for_sampler",
    "load_weights",
    "mint/forward_backward_reverse_kl",
    "mint/checkpoints/interpolate",
    "create_sampling_session",
    "asample",
    "retrieve_future",
    "cancel_future",
    "weights_info",
    "sessions/{session}/finish",
]

IGNORE_BODY = frozenset({"client/config", "client/dynamic_config", "auth/token"})
"""Routes that answer without reading their body (the session route answers 404 first)."""


def sparse_datum(tokens: list[int], shape: list[int]) -> Json:
    """A datum whose target_tokens is an all-zero sparse CSR tensor of ``shape``."""
    target = {
        "data": [],
        "dtype": "int64",
        "shape": shape,
        "sparse_crow_indices": [0] * (shape[0] + 1),
        "sparse_col_indices": [],
    }
    return {
        "model_input": {"chunks": [{"tokens": tokens, "type": "encoded_text"}]},
        "loss_fn_inputs": {"target_tokens": target},
    }


async def healthy(api: Api) -> None:
    """/healthz answers 200 within a generous bound."""
    with anyio.fail_after(5):
        r = await api.get("healthz")
    assert r.status_code == 200, r.text


async def training(api: Api) -> str:
    """A fresh model id."""
    return await api.model(await api.session())


# -- item 1: memory amplification from sparse tensors --------------------------------------------


async def test_sparse_declared_shape_is_bounded_before_densifying() -> None:
    """A ~200-byte sparse target declaring [1, 10^7] answers 400 naming the limit; its slot is used up."""
    async with running() as (_, api):
        mid = await training(api)
        r = await api.post(
            "forward_backward", fb_body(mid, 1, data=[sparse_datum([1], [1, 10**7])])
        )
        assert r.status_code == 400, r.text
        assert "batch_elements" in r.json()["detail"]
        await healthy(api)
        # The rejected body still used up seq_id 1: seq_id 2 runs at once.
        assert "loss_fn_outputs" in await api.run("forward_backward", fb_body(mid, 2))


@pytest.mark.parametrize("zstd", [False, True])
async def test_sparse_amplification_over_the_binary_wire(zstd: bool) -> None:
    """The same sparse [1, 2**62] target as protobuf (and zstd) answers 400 naming the limit."""
    async with running() as (_, api):
        mid = await training(api)
        body = fb_body(mid, 1, data=[sparse_datum([1], [1, 2**62])])
        request = _codec.decode(ForwardBackwardRequest, json.dumps(body).encode())
        payload = _binary.encode_forward_backward_request(request)
        headers = {"content-type": "application/x-protobuf"}
        if zstd:
            payload = _binary.zstd_compress(payload)
            headers["content-encoding"] = "zstd"
        r = await api.http.post("/api/v1/forward_backward", content=payload, headers=headers)
        assert r.status_code == 400, r.text
        assert "batch_elements" in r.json()["detail"]
        await healthy(api)


async def test_loss_input_rows_must_match_the_model_input() -> None:
    """A target whose first dimension is not the model input's length answers 400 at submission."""
    async with running() as (_, api):
        mid = await training(api)
        body = fb_body(mid, 1, data=[sparse_datum([1], [2, 10**12])])
        r = await api.post("forward_backward", body)
        assert r.status_code == 400, r.text
        assert "model_input has 1 tokens" in r.json()["detail"]
        three_d = datum()
        three_d["loss_fn_inputs"]["weights"]["shape"] = [7, 1, 1]
        r = await api.post("forward", fb_body(mid, 2, data=[three_d], key="forward_input"))
        assert r.status_code == 400, r.text
        assert "[T] or [T, K] with T = 7" in r.json()["detail"]


async def test_sparse_targets_within_limits_still_train() -> None:
    """A legitimate sparse [T, K] cross-entropy target is accepted and computed."""
    async with running() as (_, api):
        mid = await training(api)
        target = TensorData.from_numpy_sparse(np.array([[5, 0, 0, 0], [0, 0, 0, 7]], np.int64))
        assert target.is_sparse
        body = {
            "model_input": {"chunks": [{"tokens": [3, 4], "type": "encoded_text"}]},
            "loss_fn_inputs": {
                "target_tokens": {
                    "data": target.data.tolist(),
                    "dtype": "int64",
                    "shape": target.shape,
                    "sparse_crow_indices": target.sparse_crow_indices,
                    "sparse_col_indices": target.sparse_col_indices,
                }
            },
        }
        result = await api.run("forward_backward", fb_body(mid, 1, data=[body]))
        assert result["loss_fn_outputs"][0]["logprobs"]["shape"] == [2, 4]


def test_losses_check_declared_shapes_before_densifying() -> None:
    """The backends' loss inputs compare declared shapes first: no terabyte array is allocated."""
    huge = TensorData(
        data=[],
        dtype="int64",
        shape=[2, 10**12],
        sparse_crow_indices=[0, 0, 0],
        sparse_col_indices=[],
    )
    with pytest.raises(InvalidInputError, match="T = 1"):
        datum_inputs("cross_entropy", {"target_tokens": huge}, 1, 0)
    target = TensorData(data=[1], dtype="int64", shape=[1])
    weights = TensorData(
        data=[],
        dtype="float32",
        shape=[1, 10**12],
        sparse_crow_indices=[0, 0],
        sparse_col_indices=[],
    )
    with pytest.raises(InvalidInputError, match="weights"):
        datum_inputs("cross_entropy", {"target_tokens": target, "weights": weights}, 1, 0)


async def test_batch_tokens_limit_answers_400() -> None:
    """More model-input tokens than ``batch_tokens`` answers 400 naming the limit."""
    async with running(ServerConfig(limits=RequestLimits(batch_tokens=10))) as (_, api):
        mid = await training(api)
        r = await api.post("forward_backward", fb_body(mid, 1, data=[datum(), datum()]))
        assert r.status_code == 400, r.text
        assert "batch_tokens=10" in r.json()["detail"]
        assert "loss_fn_outputs" in await api.run("forward_backward", fb_body(mid, 2))


# -- item 4: unbounded work per request -----------------------------------------------------------


async def test_sample_limits_answer_400_naming_the_limit() -> None:
    """num_samples=100000, or num_samples * max_tokens over the bound, answers 400; healthz stays up."""
    async with running() as (_, api):
        sampler = await api.sampler(await api.session())
        r = await api.post("asample", sample_body(sampler, 1, num_samples=100_000))
        assert r.status_code == 400, r.text
        assert "num_samples=128" in r.json()["detail"]
        r = await api.post("asample", sample_body(sampler, 2, num_samples=64, max_tokens=32_760))
        assert r.status_code == 400, r.text
        assert "sample_tokens" in r.json()["detail"]
        r = await api.post("asample", sample_body(sampler, 3, num_samples=0))
        assert r.status_code == 400, r.text
        topk = {**sample_body(sampler, 5), "prompt_logprobs": True, "topk_prompt_logprobs": 2**40}
        r = await api.post("asample", topk)
        assert r.status_code == 400, r.text
        assert "topk_prompt_logprobs" in r.json()["detail"]
        await healthy(api)
        assert (await api.run("asample", sample_body(sampler, 4)))["type"] == "sample"


async def test_configured_sample_limits() -> None:
    """``ServerConfig.limits`` moves the bounds: 4 samples pass, 5 do not."""
    config = ServerConfig(limits=RequestLimits(num_samples=4, sample_tokens=40))
    async with running(config) as (_, api):
        sampler = await api.sampler(await api.session())
        ok = await api.run("asample", sample_body(sampler, 1, num_samples=4, max_tokens=10))
        assert len(ok["sequences"]) == 4
        r = await api.post("asample", sample_body(sampler, 2, num_samples=5))
        assert r.status_code == 400
        assert "num_samples=4" in r.json()["detail"]
        r = await api.post("asample", sample_body(sampler, 3, num_samples=4, max_tokens=11))
        assert r.status_code == 400
        assert "sample_tokens=40" in r.json()["detail"]


async def test_context_length_checked_at_submission() -> None:
    """A prompt + max_tokens, or a datum, beyond the model's context answers 400 naming max_context_length."""
    async with running() as (_, api):
        sid = await api.session()
        sampler = await api.sampler(sid)
        r = await api.post("asample", sample_body(sampler, 1, max_tokens=32_765))
        assert r.status_code == 400, r.text
        assert "max_context_length=32768" in r.json()["detail"]
        ok = await api.run("asample", sample_body(sampler, 2, max_tokens=32_764, stop=[]))
        assert len(ok["sequences"][0]["tokens"]) == 32_764
        mid = await api.model(sid)
        long = list(range(1, 301)) * 110  # 33,000 tokens
        r = await api.post("forward", fb_body(mid, 1, data=[datum(long)], key="forward_input"))
        assert r.status_code == 400, r.text
        assert "max_context_length=32768" in r.json()["detail"]
        assert "loss_fn_outputs" in await api.run("forward_backward", fb_body(mid, 2))


async def test_images_without_expected_tokens_are_the_users_error() -> None:
    """An image chunk without expected_tokens (length unknown) fails as the user's error, never a 500."""
    image = {"data": "iVBORw==", "format": "png", "type": "image"}
    async with running() as (_, api):
        sid = await api.session()
        sampler = await api.sampler(sid)
        body = sample_body(sampler, 1)
        body["prompt"]["chunks"].append(image)
        r = await api.post("asample", body)
        assert r.status_code == 200, r.text
        assert (await api.result(r.json()["request_id"]))["category"] == "user"
        mid = await api.model(sid)
        item = datum()
        item["model_input"]["chunks"].append(image)
        failed = await api.run("forward_backward", fb_body(mid, 1, data=[item]))
        assert failed["category"] == "user", failed


def test_limits_spec_and_serve_flag() -> None:
    """``--limits name=int,...`` parses into ServerConfig.limits; unknown names and bad values fail."""
    args = build_parser().parse_args(["serve", "--limits", "num_samples=8, batch_tokens=4096"])
    limits = config_from_args(args).limits
    assert limits == RequestLimits(num_samples=8, batch_tokens=4096)
    assert config_from_args(build_parser().parse_args(["serve"])).limits == RequestLimits()
    for bad in ("samples=3", "num_samples", "num_samples=x", "num_samples=0"):
        with pytest.raises(ValueError, match="limit"):
            RequestLimits.parse(bad)


class RecordingBackend(SyntheticBackend):
    """The synthetic backend (inline policy) recording which thread computed each call."""

    def __init__(self) -> None:
        super().__init__(tokenizer_dir=ensure_tiny_tokenizer())
        self.threads: list[tuple[str, int]] = []

    def sample(self, sampler: SyntheticSampler, spec: SampleSpec) -> SampleResponse:
        """Record the thread, then sample."""
        self.threads.append(("sample", threading.get_ident()))
        return super().sample(sampler, spec)

    def forward_backward(
        self, model: SyntheticModel, *args: Any, **kw: Any
    ) -> ForwardBackwardOutput:
        """Record the thread, then compute."""
        self.threads.append(("forward_backward", threading.get_ident()))
        return super().forward_backward(model, *args, **kw)


async def test_large_requests_leave_the_event_loop() -> None:
    """On an inline backend, requests above ``inline_work`` compute in a worker thread; small ones inline."""
    backend = RecordingBackend()
    config = ServerConfig(limits=RequestLimits(inline_work=100))
    loop_thread = threading.get_ident()
    async with serve_in_process(config, backend=backend) as server, server.client() as http:
        api = Api(http)
        sid = await api.session()
        sampler = await api.sampler(sid)
        mid = await api.model(sid)
        await api.run("asample", sample_body(sampler, 1, max_tokens=4))
        await api.run("asample", sample_body(sampler, 2, num_samples=2, max_tokens=60))
        await api.run("forward_backward", fb_body(mid, 1))
        await api.run("forward_backward", fb_body(mid, 2, data=[datum()] * 10))
    inline = [op for op, thread in backend.threads if thread == loop_thread]
    threaded = [op for op, thread in backend.threads if thread != loop_thread]
    assert inline == ["sample", "forward_backward"]
    assert threaded == ["sample", "forward_backward"]


class GatedSampling(SyntheticBackend):
    """The synthetic backend (inline policy) whose sampling blocks until the test opens a gate."""

    def __init__(self) -> None:
        super().__init__(tokenizer_dir=ensure_tiny_tokenizer())
        self.gate = threading.Event()
        self.started = threading.Event()
        self.finished = threading.Event()

    def sample(self, sampler: SyntheticSampler, spec: SampleSpec) -> SampleResponse:
        """Signal the start, wait for the gate (bounded: inline, it would block the loop), sample."""
        self.started.set()
        self.gate.wait(10)
        self.finished.set()
        return super().sample(sampler, spec)


async def test_healthz_answers_while_a_big_sample_computes() -> None:
    """A large sample computes off the loop: its submission, /healthz and a long poll answer meanwhile."""
    backend = GatedSampling()
    config = ServerConfig(poll_hold=0.2)
    async with serve_in_process(config, backend=backend) as server, server.client() as http:
        api = Api(http)
        sampler = await api.sampler(await api.session())
        body = sample_body(sampler, 1, num_samples=64, max_tokens=512)
        with anyio.fail_after(5):
            rid = await api.submit("asample", body)
        await wait_until(backend.started.is_set)
        await healthy(api)
        with anyio.fail_after(5):
            held = await api.poll(rid)  # held for poll_hold, then try_again
        assert held.json()["type"] == "try_again", held.text
        assert not backend.finished.is_set(), "the sample blocked the event loop until it gave up"
        await anyio.to_thread.run_sync(backend.gate.set)
        assert len((await api.result(rid))["sequences"]) == 64


# -- item 7: deeply nested JSON ---------------------------------------------------------------------


@pytest.mark.parametrize("route", POST_ROUTES)
async def test_deeply_nested_json_answers_400(route: str, caplog: pytest.LogCaptureFixture) -> None:
    """A body nested 1000 deep answers 400 (not a 500 with a logged RecursionError) on every POST route."""
    caplog.set_level(logging.ERROR, logger="mint_async.server")
    async with running() as (_, api):
        sid = await api.session()
        await api.model(sid)
        r = await api.http.post(
            f"/api/v1/{route.format(session=sid)}",
            content=NESTED,
            headers={"content-type": "application/json"},
        )
        if route in IGNORE_BODY:
            assert r.status_code < 500, r.text
        else:
            assert r.status_code == 400, r.text
        await healthy(api)
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]


# -- item 8: user errors reported as server failures ----------------------------------------------


@pytest.mark.parametrize("name", ["%" * 200, "é" * 200, "a" * 100 + "é" * 30])
async def test_checkpoint_names_too_long_for_the_file_system(name: str) -> None:
    """A name that percent-encodes past 255 bytes fails as the user's error, naming no server path."""
    async with running() as (_, api):
        mid = await training(api)
        body = {"model_id": mid, "path": name, "seq_id": 1, "type": "save_weights"}
        failed = await api.run("save_weights", body)
        assert failed["category"] == "user", failed
        assert "255" in failed["error"]
        body = {"model_id": mid, "path": name, "seq_id": 2, "type": "save_weights_for_sampler"}
        failed = await api.run("save_weights_for_sampler", body)
        assert failed["category"] == "user", failed
        assert "/" not in failed["error"]  # no path of the server's data directory


async def test_token_ids_beyond_int64_answer_400() -> None:
    """Token id 2**63 in a datum, a prompt or a stop list answers 400 (it failed as OverflowError)."""
    async with running() as (_, api):
        mid = await training(api)
        bad = datum()
        bad["model_input"]["chunks"][0]["tokens"][0] = 2**63
        r = await api.post("forward_backward", fb_body(mid, 1, data=[bad]))
        assert r.status_code == 400, r.text
        assert "int64" in r.json()["detail"]
        target = datum()
        target["loss_fn_inputs"]["target_tokens"]["data"][0] = 2**63
        r = await api.post("forward", fb_body(mid, 2, data=[target], key="forward_input"))
        assert r.status_code == 400, r.text
        sampler = await api.sampler(await api.session())
        body = sample_body(sampler, 1)
        body["prompt"]["chunks"][0]["tokens"][0] = -(2**63) - 1
        r = await api.post("asample", body)
        assert r.status_code == 400, r.text
        r = await api.post("asample", sample_body(sampler, 2, stop=[2**64 - 1]))
        assert r.status_code == 400, r.text
        assert "loss_fn_outputs" in await api.run("forward_backward", fb_body(mid, 3))


async def test_negative_lora_seed_and_denormal_temperature() -> None:
    """A negative LoRA seed and temperature 1e-320 work (they failed as server errors in numpy)."""
    async with running() as (_, api):
        sid = await api.session()
        body = create_model_body(sid)
        body["lora_config"]["seed"] = -1
        created = await api.run("create_model", body)
        assert "model_id" in created, created
        sampler = await api.sampler(sid)
        tiny = await api.run("asample", sample_body(sampler, 1, temperature=1e-320, top_k=5))
        assert tiny["type"] == "sample", tiny
        greedy = await api.run("asample", sample_body(sampler, 2, temperature=0.0))
        assert tiny["sequences"][0]["tokens"] == greedy["sequences"][0]["tokens"]


def test_torch_sampling_with_a_denormal_temperature() -> None:
    """The torch backend's filter keeps finite probabilities at temperature 1e-320."""
    torch = pytest.importorskip("torch")
    from mint_async.server.backends._torch_sampling import filtered_probs

    probs = filtered_probs(torch.tensor([[0.5, 2.0, -1.0]]), 1e-320, -1, 1.0)
    assert probs.numpy().tolist() == [[0.0, 1.0, 0.0]]


class RefusingBaseSampler(SyntheticBackend):
    """A backend that refuses to sample a base model (the caller's error, raised at submission)."""

    def base_sampler(self, spec: ModelSpec) -> SyntheticSampler:
        """Refuse."""
        msg = f"{spec.name} cannot be sampled here"
        raise InvalidInputError(msg)


async def test_user_errors_raised_at_submission_answer_400() -> None:
    """An InvalidInputError a handler meets before accepting the request answers 400, not 500."""
    backend = RefusingBaseSampler(tokenizer_dir=ensure_tiny_tokenizer())
    async with serve_in_process(backend=backend) as server, server.client() as http:
        api = Api(http)
        body = {
            "session_id": await api.session(),
            "sampling_session_seq_id": 0,
            "base_model": "Qwen/Qwen3-0.6B",
            "type": "create_sampling_session",
        }
        r = await api.post("create_sampling_session", body)
    assert r.status_code == 400, r.text
    assert "cannot be sampled here" in r.json()["detail"]


class FailingSave(SyntheticBackend):
    """A backend whose checkpoint writes fail with an OSError naming a file."""

    def save_state(self, model: SyntheticModel, directory: Path, *, kind: CheckpointKind) -> None:
        """Fail as a full disk would."""
        raise OSError(28, "No space left on device", str(directory / "lora.npz"))


async def test_server_failures_name_no_server_paths() -> None:
    """An OSError in the server's own work fails as ``server`` without the data directory's paths."""
    backend = FailingSave(tokenizer_dir=ensure_tiny_tokenizer())
    async with serve_in_process(backend=backend) as server, server.client() as http:
        api = Api(http)
        mid = await training(api)
        failed = await api.run(
            "save_weights", {"model_id": mid, "path": "ok", "seq_id": 1, "type": "save_weights"}
        )
    assert failed["category"] == "server"
    assert "No space left on device" in failed["error"]
    assert "lora.npz" not in failed["error"]
    assert "/" not in failed["error"]
