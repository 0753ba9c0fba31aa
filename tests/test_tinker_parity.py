"""tinker 0.38 parity of mint_async's own clients (async and sync): keywords, and tinker's objects.

tinker's pydantic objects are stood in for by plain objects with ``model_dump``
(the only thing mint_async uses), so tinker itself is not needed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

import mint_async
from mint_async import sync as mint
from mint_async import types as t
from mint_async._foreign import as_data
from mint_async.server import ServerConfig
from mint_async.testing import LoopbackServer, serve_in_process, serve_loopback

BASE = "Qwen/Qwen3-0.6B"


class TinkerLike:
    """A tinker pydantic object as mint_async sees it: its wire JSON from ``model_dump``."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self._fields = fields

    def model_dump(self, *, mode: str, exclude_none: bool) -> dict[str, Any]:
        assert mode == "json" and exclude_none
        return self._fields


def tinker_like(name: str, fields: dict[str, Any]) -> Any:
    """An instance of a TinkerLike subclass called ``name`` (as tinker's class names are)."""
    return type(name, (TinkerLike,), {})(fields)


def tinker_datum() -> Any:  # what a tinker user passes: not a mint_async type
    return tinker_like(
        "Datum",
        {
            "model_input": {"chunks": [{"type": "encoded_text", "tokens": [1, 2, 3]}]},
            "loss_fn_inputs": {
                "target_tokens": {"data": [2, 3, 4], "dtype": "int64", "shape": [3]},
                "weights": {"data": [1.0, 1.0, 1.0], "dtype": "float32", "shape": [3]},
            },
        },
    )


TINKER_ADAM = tinker_like("AdamParams", {"learning_rate": 0.05, "beta1": 0.9, "beta2": 0.95})
TINKER_PROMPT = tinker_like("ModelInput", {"chunks": [{"type": "encoded_text", "tokens": [4, 5]}]})
TINKER_PARAMS = tinker_like("SamplingParams", {"max_tokens": 3, "temperature": 1.0, "seed": 3})


@pytest.mark.anyio
async def test_async_clients_take_tinker_objects_and_038_keywords() -> None:
    async with (
        serve_in_process(ServerConfig(wire="0.38")) as srv,
        mint_async.ServiceClient(
            base_url=srv.base_url,
            api_key=srv.api_key,
            transport=srv.transport,
            display_name="parity",
        ) as svc,
    ):
        assert svc.config.display_name == "parity"  # sent in create_session
        tc = await svc.create_lora_training_client(BASE, rank=4)
        out = await (await tc.forward_backward([tinker_datum()], "cross_entropy"))
        assert len(out.loss_fn_outputs) == 1
        assert await (await tc.optim_step(optim_params=TINKER_ADAM)) is not None
        adam = t.AdamParams(learning_rate=0.01)
        step = await (await tc.optim_step(adam_params=adam))
        assert isinstance(step, t.OptimStepResponse)
        with pytest.raises(mint_async.InvalidInputError, match="not both"):
            await tc.optim_step(t.AdamParams(), adam_params=t.AdamParams())
        dimuon = tinker_like("DimuonParams", {"learning_rate": 1.0})
        with pytest.raises(mint_async.InvalidInputError, match="AdamW"):
            await tc.optim_step(dimuon)
        saved = await (await tc.save_state("s", user_metadata={"k": "v"}))
        assert saved.path.endswith("/weights/s")
        adamw = await svc.create_lora_training_client(BASE, 4, optimizer={"type": "adamw"})
        assert adamw.model_id != tc.model_id
        with pytest.raises(mint_async.InvalidInputError, match="AdamW"):
            await svc.create_lora_training_client(BASE, 4, optimizer={"type": "dimuon"})
        resumed = await svc.create_training_client_from_state(saved.path, base_model=BASE)
        assert resumed.base_model == BASE
        with pytest.raises(mint_async.InvalidInputError, match="was trained from"):
            await svc.create_training_client_from_state(saved.path, base_model="other/model")
        with pytest.raises(mint_async.InvalidInputError, match="weights_access_token"):
            await svc.create_training_client_from_state_with_optimizer(
                saved.path, weights_access_token="tok"
            )
        sc = await tc.save_weights_and_get_sampling_client()
        resp = await sc.sample(TINKER_PROMPT, 1, TINKER_PARAMS, topk_sample_logprobs=2)
        seq = resp.sequences[0]
        assert seq.topk_logprobs is not None and len(seq.topk_logprobs) == len(seq.tokens)
        # Each sequence is named by the promise's sample_sequence_ids (provenance refers to them).
        named = await sc.sample(TINKER_PROMPT, 3, TINKER_PARAMS, record_stability_info=True)
        ids = [s.sequence_id for s in named.sequences]
        assert all(ids) and len(set(ids)) == 3
        handle = sc.get_sampler_handle()
        assert srv.api_key not in handle
        copy = mint_async.SamplingClient.from_sampler_handle(handle, api_key=srv.api_key)
        assert copy.sampling_session_id == sc.sampling_session_id
        assert copy.model_path == sc.model_path
        await copy.aclose()
        with pytest.raises(mint_async.InvalidInputError, match="not a sampler handle"):
            mint_async.SamplingClient.from_sampler_handle("%%%")
        assert all(row is None or len(row) <= 2 for row in seq.topk_logprobs)
        scored = await sc.sample(
            t.ModelInput.from_ints([1, 2, 3, 4]),
            1,
            t.SamplingParams(max_tokens=1),
            include_prompt_logprobs=True,
            prompt_logprobs_last_n=2,
        )
        assert scored.prompt_logprobs is not None
        with pytest.raises(mint_async.InvalidInputError, match="prompt_logprobs_last_n"):
            sc.build_request(t.ModelInput.from_ints([1, 2]), 1, prompt_logprobs_last_n=1)
        with pytest.raises(mint_async.InvalidInputError, match="prompt"):
            sc.build_request(object())  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with serve_loopback(ServerConfig(wire="0.38")) as srv:
        yield srv


def test_sync_facade_takes_the_same(server: LoopbackServer) -> None:
    with mint.ServiceClient(
        base_url=server.base_url, api_key=server.api_key, display_name="sync parity"
    ) as svc:
        tc = svc.create_lora_training_client(BASE, rank=4)
        assert tc.forward([tinker_datum()], "cross_entropy").result().loss_fn_outputs
        assert tc.optim_step(optim_params=TINKER_ADAM).result() is not None
        sc = svc.create_sampling_client(base_model=BASE)
        seq = sc.sample(TINKER_PROMPT, 1, TINKER_PARAMS, topk_sample_logprobs=1).sequences[0]
        assert seq.topk_logprobs is not None
        assert sc.get_sampler_handle() == sc.aio.get_sampler_handle()


def test_create_session_carries_display_name_only_when_set() -> None:
    named = t.CreateSessionRequest(sdk_version="0.38.0", display_name="my run")
    assert b'"display_name":"my run"' in msgspec.json.encode(named)
    assert b"display_name" not in msgspec.json.encode(t.CreateSessionRequest(sdk_version="0.38.0"))
    with pytest.raises(mint_async.InvalidInputError, match="not both"):
        mint_async.ServiceClient(
            config=mint_async.ClientConfig.resolve(api_key="sk-x"), display_name="n"
        )


@dataclasses.dataclass(frozen=True)
class DataclassTensor:
    """tinker 0.38's TensorData shape: a dataclass whose ``data`` is a property."""

    dtype: str
    shape: list[int] | None = None
    _values: tuple[float, ...] = ()

    @property
    def data(self) -> list[float]:
        return list(self._values)


@dataclasses.dataclass(frozen=True)
class Datum:
    """tinker 0.38's Datum shape: a dataclass holding a pydantic-like ModelInput."""

    model_input: Any
    loss_fn_inputs: dict[str, Any]


def test_dataclass_objects_convert_by_their_fields() -> None:
    prompt = tinker_like("ModelInput", {"chunks": [{"type": "encoded_text", "tokens": [1, 2]}]})
    weights = DataclassTensor(dtype="float32", shape=[2], _values=(0.5, 1.0))
    targets = DataclassTensor(dtype="int64", shape=[2], _values=(2, 3))
    (datum,) = as_data([Datum(prompt, {"weights": weights, "target_tokens": targets})])
    assert datum.model_input.to_ints() == [1, 2]
    assert datum.loss_fn_inputs["weights"].tolist() == [0.5, 1.0]
    assert datum.loss_fn_inputs["target_tokens"].tolist() == [2, 3]
    with pytest.raises(mint_async.InvalidInputError, match="cannot convert"):
        as_data([Datum(prompt, {"weights": "nope"})])


def _weighted_nll(logprobs: Any, weights: Any) -> tuple[Any, dict[str, Any]]:
    """A per-datum loss: -sum(w * logprob), with a :sum and a :mean metric."""
    loss = -(logprobs * weights).sum()
    return loss, {"custom/nll:sum": loss.detach(), "custom/one:mean": loss.detach() * 0 + 1}


@pytest.mark.anyio
async def test_create_custom_loss_on_the_async_clients() -> None:
    """ServiceClient.create_custom_loss gives a handle forward_backward_custom runs per datum."""
    pytest.importorskip("torch")
    async with (
        serve_in_process(ServerConfig()) as srv,
        mint_async.ServiceClient(
            base_url=srv.base_url, api_key=srv.api_key, transport=srv.transport
        ) as svc,
    ):
        handle = svc.create_custom_loss(_weighted_nll, {"weights": 1})
        assert handle.input_names == ("weights",) and handle.loss_id is None
        tc = await svc.create_lora_training_client(BASE, rank=4)
        batch = [as_data([tinker_datum()])[0]] * 2
        out = await (await tc.forward_backward_custom(batch, handle))
        # The server's loss is -sum(w' * logprob) with w' = -dloss/dlogprob = w: the same number.
        assert out.metrics["custom/nll:sum"] == pytest.approx(out.metrics["loss:sum"], rel=1e-5)
        assert out.metrics["custom/one:mean"] == pytest.approx(1.0)
        with pytest.raises(mint_async.InvalidInputError, match="input name"):
            svc.create_custom_loss(_weighted_nll, {"Bad-Name": 1})
        wrong = svc.create_custom_loss(_weighted_nll, {"weights": 2})
        with pytest.raises(mint_async.InvalidInputError, match="rank 1, declared 2"):
            await tc.forward_backward_custom(batch, wrong)


def test_create_custom_loss_on_the_sync_facade(server: LoopbackServer) -> None:
    pytest.importorskip("torch")
    with mint.ServiceClient(base_url=server.base_url, api_key=server.api_key) as svc:
        handle = svc.create_custom_loss(_weighted_nll, {"weights": 1})
        tc = svc.create_lora_training_client(BASE, rank=4)
        out = tc.forward_backward_custom(as_data([tinker_datum()]), handle).result()
        assert out.metrics["custom/nll:sum"] == pytest.approx(out.metrics["loss:sum"], rel=1e-5)
