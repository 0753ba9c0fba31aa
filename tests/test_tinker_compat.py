"""mint_async.tinker_compat: tinker 0.38's API shape on mint_async, without tinker installed.

Blocking use from plain threads, awaiting from asyncio and trio loops (the
clients run on the compat runtime's own loop), install()/uninstall(), and
tinker-style objects converted by their fields.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import pickle
import sys
import types as pytypes
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

import mint_async
from mint_async import tinker_compat as tc
from mint_async.server import ServerConfig
from mint_async.testing import LoopbackServer, serve_loopback

BASE = "Qwen/Qwen3-0.6B"


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with serve_loopback(ServerConfig(poll_hold=5.0)) as srv:
        yield srv


@pytest.fixture(scope="module")
def service(server: LoopbackServer) -> Iterator[tc.ServiceClient]:
    with tc.ServiceClient(
        base_url=server.base_url, api_key=server.api_key, display_name="compat tests"
    ) as svc:
        yield svc


def datum(tokens: list[int]) -> tc.Datum:
    return tc.Datum(
        model_input=tc.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={
            "target_tokens": tc.TensorData(data=tokens[1:], dtype="int64"),
            "weights": tc.TensorData(data=[1.0] * (len(tokens) - 1), dtype="float32"),
        },
    )


class FakeTinkerModel:
    """Stands for a tinker pydantic object: only ``model_dump`` (its wire JSON) is used."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self._fields = fields

    def model_dump(self, *, mode: str, exclude_none: bool) -> dict[str, Any]:
        assert mode == "json" and exclude_none
        return self._fields


# -- blocking use ------------------------------------------------------------------


def test_blocking_training_and_sampling(service: tc.ServiceClient) -> None:
    fut = service.create_lora_training_client(BASE, rank=4)
    assert isinstance(fut, tc.ClientFuture)
    training = fut.result(timeout=60)
    assert isinstance(training, tc.TrainingClient) and training.model_id
    batch = [datum([1, 2, 3, 4, 5]), datum([6, 7, 8])]
    losses: list[float] = []
    for _ in range(3):
        fb = training.forward_backward(batch, "cross_entropy")
        opt = training.optim_step(tc.AdamParams(learning_rate=0.05))
        out = fb.result(timeout=60)
        opt.result(timeout=60)
        losses.append(sum(-float(x["logprobs"].to_numpy().sum()) for x in out.loss_fn_outputs))
    assert losses[-1] < losses[0]
    sampler = training.save_weights_and_get_sampling_client(record_stability_info=False).result()
    resp = sampler.sample(
        tc.ModelInput.from_ints([1, 2, 3]), 2, tc.SamplingParams(max_tokens=4, seed=1)
    ).result(timeout=60)
    assert len(resp.sequences) == 2 and all(len(s.tokens) <= 4 for s in resp.sequences)
    assert resp.prompt_cache_hit_tokens == 0  # tinker's default, not None
    logprobs = sampler.compute_logprobs(tc.ModelInput.from_ints([1, 2, 3])).result()
    assert logprobs[0] is None and len(logprobs) == 3


def test_client_future_forwards_attributes_with_a_warning(service: tc.ServiceClient) -> None:
    fut = service.create_lora_training_client(BASE, rank=4)
    with pytest.warns(FutureWarning, match="get the client first"):
        model_id = fut.model_id
    assert model_id == fut.result().model_id


def test_save_state_user_metadata_and_rest_futures(service: tc.ServiceClient) -> None:
    training = service.create_lora_training_client(BASE, rank=4, user_metadata={"a": "b"}).result()
    saved = training.save_state("ckpt", user_metadata={"k": "v"}).result(timeout=60)
    assert saved.path.endswith("/weights/ckpt")
    sampler_path = training.save_weights_for_sampler("s", user_metadata={"k": "v"}).result().path
    rest = service.create_rest_client()
    assert isinstance(rest.list_checkpoints(training.model_id), tc.APIFuture)
    run_future: Any = rest.get_training_run_by_tinker_path(saved.path)
    run: mint_async.types.TrainingRun = run_future.result(timeout=30)
    assert run.training_run_id == training.model_id
    info = rest.get_weights_info_by_tinker_path(sampler_path).result()
    assert info.base_model == BASE
    resumed = service.create_training_client_from_state(saved.path, base_model=BASE).result()
    assert resumed.model_id != training.model_id
    with pytest.raises(tc.TinkerError):  # mint_async errors are tinker's names
        rest.get_training_run("no-such-run").result(timeout=30)
    with pytest.raises(AttributeError, match="no method"):
        _ = rest.no_such_method


def test_sampler_handle_round_trip_and_pickle(
    service: tc.ServiceClient, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sampler = service.create_sampling_client(base_model=BASE).result()
    handle = sampler.get_sampler_handle()
    assert server.api_key not in json.dumps(handle)
    monkeypatch.setenv("TINKER_API_KEY", server.api_key)
    monkeypatch.delenv("MINT_API_KEY", raising=False)
    for copy in (
        tc.SamplingClient.from_sampler_handle(handle),
        pickle.loads(pickle.dumps(sampler)),
    ):
        resp = copy.sample(tc.ModelInput.from_ints([5, 6]), 1, tc.SamplingParams(max_tokens=2))
        assert len(resp.result(timeout=60).sequences) == 1
        copy.close()
    with pytest.raises(mint_async.InvalidInputError, match="not a sampler handle"):
        tc.SamplingClient.from_sampler_handle("garbage!")


def test_bad_input_is_refused_before_sending(service: tc.ServiceClient) -> None:
    training = service.create_lora_training_client(BASE, rank=4).result()
    with pytest.raises(mint_async.InvalidInputError, match=r"data\[0\]"):
        training.forward_backward([object()], "cross_entropy")
    with pytest.raises(mint_async.InvalidInputError, match="AdamW"):
        training.optim_step(FakeTinkerModel({"learning_rate": 1.0}))
    with pytest.raises(mint_async.InvalidInputError, match="snapshot"):
        training.save_weights_and_get_sampling_client(kind="latest")
    with pytest.raises(mint_async.InvalidInputError, match="weights_access_token"):
        training.load_state("tinker://x/weights/y", weights_access_token="tok")
    with pytest.raises(mint_async.InvalidInputError, match="AdamW"):
        service.create_lora_training_client(BASE, optimizer={"type": "dimuon"})


def test_tinker_objects_are_converted_by_their_fields(service: tc.ServiceClient) -> None:
    training = service.create_lora_training_client(BASE, rank=4).result()
    foreign = FakeTinkerModel(
        {
            "model_input": {"chunks": [{"type": "encoded_text", "tokens": [1, 2, 3]}]},
            "loss_fn_inputs": {
                "target_tokens": {"data": [2, 3, 4], "dtype": "int64", "shape": [3]},
                "weights": {"data": [1.0, 1.0, 0.0], "dtype": "float32", "shape": [3]},
            },
        }
    )
    out = training.forward([foreign, datum([1, 2, 3, 4])], "cross_entropy").result(timeout=60)
    assert len(out.loss_fn_outputs) == 2
    adam = FakeTinkerModel({"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8})
    adam.__class__ = type("AdamParams", (FakeTinkerModel,), {})
    training.forward_backward([foreign], "cross_entropy").result()
    assert training.optim_step(adam).result(timeout=60) is not None
    sampler = service.create_sampling_client(base_model=BASE).result()
    prompt = FakeTinkerModel({"chunks": [{"type": "encoded_text", "tokens": [7, 8]}]})
    params = FakeTinkerModel({"max_tokens": 3, "temperature": 0.5})
    assert len(sampler.sample(prompt, 1, params).result().sequences[0].tokens) <= 3
    broken = FakeTinkerModel({"model_input": {"chunks": "nope"}})
    with pytest.raises(mint_async.InvalidInputError, match="cannot convert"):
        training.forward([broken], "cross_entropy")


# -- awaiting from asyncio and trio -------------------------------------------------


@pytest.mark.anyio
async def test_futures_and_async_methods_await_from_any_loop(service: tc.ServiceClient) -> None:
    training = await service.create_lora_training_client(BASE, rank=4)
    batch = [datum([1, 2, 3, 4])]
    fb = training.forward_backward(batch, "cross_entropy")
    opt = training.optim_step(optim_params=tc.AdamParams(learning_rate=0.01))
    assert (await fb).loss_fn_outputs and (await opt) is not None
    assert (await (await training.forward_async(batch, "cross_entropy"))).loss_fn_outputs
    sampler = await training.save_weights_and_get_sampling_client_async()
    prompt = tc.ModelInput.from_ints([3, 4])
    params = tc.SamplingParams(max_tokens=3)
    results: list[int] = []

    async def one() -> None:
        results.append(len((await sampler.sample(prompt, 1, params)).sequences))

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(one)
    assert results == [1] * 8
    assert len((await sampler.sample_async(prompt, 2, params)).sequences) == 2
    # As in tinker, .result() also works inside a running loop (it blocks that loop meanwhile).
    assert len(sampler.sample(prompt, 1, params).result(timeout=30).sequences) == 1
    assert await sampler.get_base_model_async() == BASE
    fut = sampler.sample(prompt, 1, params)
    assert await fut.coroutine() is await fut  # the same result object, awaited twice
    rest = service.create_rest_client()
    assert (await rest.get_training_run(training.model_id)).training_run_id == training.model_id
    assert (await rest.get_training_run_async(training.model_id)).base_model == BASE


@pytest.mark.anyio
async def test_result_async_timeout_leaves_the_operation_running(service: tc.ServiceClient) -> None:
    import concurrent.futures

    pending: concurrent.futures.Future[int] = concurrent.futures.Future()
    fut = tc.APIFuture(pending)
    with pytest.raises(TimeoutError):
        await fut.result_async(timeout=0.05)
    pending.set_result(7)
    assert await fut == 7 and fut.result() == 7 and fut.done()


# -- install() ----------------------------------------------------------------------


@pytest.fixture
def clean_tinker() -> Iterator[None]:
    saved = {k: v for k, v in sys.modules.items() if k == "tinker" or k.startswith("tinker.")}
    for k in saved:
        del sys.modules[k]
    yield
    tc.uninstall()
    for k in [k for k in sys.modules if k == "tinker" or k.startswith("tinker.")]:
        del sys.modules[k]
    sys.modules.update(saved)


def test_install_makes_import_tinker_resolve_here(clean_tinker: None) -> None:
    tc.install()
    tc.install()  # idempotent
    assert tc.installed()
    tinker: Any = importlib.import_module("tinker")
    interfaces: Any = importlib.import_module("tinker.lib.public_interfaces")
    tensor_data: Any = importlib.import_module("tinker.types.tensor_data")
    assert importlib.import_module("tinker.types").LossFnType is mint_async.types.LossFnType
    APIFuture, TensorData = interfaces.APIFuture, tensor_data.TensorData  # noqa: N806

    assert tinker.ServiceClient is tc.ServiceClient and APIFuture is tc.APIFuture
    assert TensorData is tc.TensorData and tinker.types.TrainingRun is mint_async.types.TrainingRun
    assert tinker.TinkerError is mint_async.MintError
    with pytest.raises(ModuleNotFoundError, match=r"does not provide tinker\.cli"):
        importlib.import_module("tinker.cli")
    tc.uninstall()
    assert not tc.installed() and "tinker" not in sys.modules


def test_install_refuses_when_the_real_tinker_is_imported(clean_tinker: None) -> None:
    sys.modules["tinker"] = pytypes.ModuleType("tinker")
    with pytest.raises(RuntimeError, match="real tinker SDK is already imported"):
        tc.install()
    assert not tc.installed()


# -- tinker's value semantics --------------------------------------------------------


def test_values_behave_like_tinkers() -> None:
    td = tc.TensorData(data=[0.5, 1.0], dtype="float32")
    assert json.dumps(sum(td.data)) == "1.5" and isinstance(td.data[-1], float)
    tokens = [1, 2, 3]
    chunk = tc.types.EncodedTextChunk(tokens=tokens)
    tokens.clear()
    assert chunk.tokens == [1, 2, 3]
    d = datum([1, 2, 3])
    stripped = dataclasses.replace(d, loss_fn_inputs={"weights": d.loss_fn_inputs["weights"]})
    assert list(stripped.loss_fn_inputs) == ["weights"] and stripped.model_input == d.model_input
    span = tc.SampledProvenanceSpan(sequence_id="s1", length=4)
    assert dataclasses.replace(span, offset=1, length=3).offset == 1
    prompt_span = tc.PromptProvenanceSpan(sequence_id="s1", length=2)
    with_spans = d.with_provenance(
        model_input=[prompt_span],
        loss_fn_inputs=[tc.SampledProvenanceSpan(sequence_id="s1", length=2)],
    )
    assert isinstance(with_spans, tc.Datum)
    assert dataclasses.replace(with_spans, loss_fn_inputs={}).loss_fn_input_spans is not None
    with pytest.raises(AttributeError, match="does not serve"):
        _ = tc.types.NoSuchType


# -- custom losses -------------------------------------------------------------------


def test_create_custom_loss_runs_per_datum(service: tc.ServiceClient) -> None:
    torch = pytest.importorskip("torch")

    def weighted_nll(logprobs: Any, weights: Any) -> tuple[Any, dict[str, Any]]:
        loss = -(logprobs * weights).sum()
        return loss, {"custom/nll:sum": loss.detach(), "custom/len:mean": torch.tensor(1.0)}

    handle = service.create_custom_loss(weighted_nll, {"weights": 1}).result()
    assert isinstance(handle, tc.LossHandle) and handle.input_names == ("weights",)
    training = service.create_lora_training_client(BASE, rank=4).result()
    batch = [datum([1, 2, 3, 4]), datum([5, 6, 7])]
    out = training.forward_backward_custom(batch, handle).result(timeout=60)
    assert out.metrics["custom/len:mean"] == pytest.approx(1.0)
    assert out.metrics["custom/nll:sum"] == pytest.approx(out.metrics["loss:sum"], rel=1e-5)
    with pytest.raises(mint_async.InvalidInputError, match="input name"):
        service.create_custom_loss(weighted_nll, {"Bad-Name": 1})
    wrong_rank = service.create_custom_loss(weighted_nll, {"weights": 2}).result()
    with pytest.raises(mint_async.InvalidInputError, match="rank 1, declared 2"):
        training.forward_backward_custom(batch, wrong_rank).result(timeout=60)


# -- copy_weights (tinker 0.38) ----------------------------------------------------------


def test_copy_weights_futures_and_the_copy_loads(
    service: tc.ServiceClient, server: LoopbackServer
) -> None:
    training = service.create_lora_training_client(BASE, rank=4).result()
    training.forward_backward([datum([1, 2, 3, 4])], "cross_entropy").result()
    training.optim_step(tc.AdamParams(learning_rate=0.1)).result()
    saved = training.save_state("to-copy").result().path
    future = service.copy_weights(saved, ttl_seconds=3600)
    assert isinstance(future, tc.APIFuture)
    copy: str = future.result(timeout=60)
    assert copy != saved and copy.endswith("/weights/to-copy")  # this session's next run
    loaded = service.create_training_client_from_state(copy).result()
    batch = [datum([5, 6, 7, 8])]
    ours = training.forward(batch, "cross_entropy").result().loss_fn_outputs[0]["logprobs"]
    theirs = loaded.forward(batch, "cross_entropy").result().loss_fn_outputs[0]["logprobs"]
    assert ours.tolist() == theirs.tolist()
    rest = service.create_rest_client()
    in_project = rest.copy_weights(saved, "proj-x").result(timeout=60)
    assert in_project.startswith("tinker://copy-") and in_project.endswith("/weights/to-copy")
    with pytest.raises(tc.TinkerError, match="destination_project_id"):
        rest.copy_weights(saved).result(timeout=30)  # no project anywhere: refused, not sent
    with tc.ServiceClient(
        base_url=server.base_url, api_key=server.api_key, project_id="proj-y"
    ) as in_proj:
        assert in_proj.copy_weights(saved).result(timeout=60).startswith("tinker://copy-")
    with pytest.raises(tc.TinkerError, match="not found"):
        service.copy_weights(saved.replace("to-copy", "missing")).result(timeout=30)


def test_copy_weights_bad_input_raises_at_the_call(service: tc.ServiceClient) -> None:
    path = "tinker://run:train:0/weights/x"
    rest = service.create_rest_client()
    with pytest.raises(tc.TinkerError, match="weights_access_token"):
        service.copy_weights(path, weights_access_token="tok")
    with pytest.raises(ValueError, match="weights_access_token"):
        rest.copy_weights(path, "p", weights_access_token="tok")
    with pytest.raises(ValueError, match="ttl_seconds"):
        service.copy_weights(path, ttl_seconds=59)
    with pytest.raises(ValueError, match="checkpoint kind"):
        rest.copy_weights("tinker://x/nope/y", "p")


@pytest.mark.anyio
async def test_copy_weights_awaits_from_any_loop(service: tc.ServiceClient) -> None:
    training = await service.create_lora_training_client(BASE, rank=4)
    sampler_path = (await training.save_weights_for_sampler("aw")).path
    copy = await service.copy_weights(sampler_path)
    assert copy.endswith("/sampler_weights/aw")
    sampler = await service.create_sampling_client(model_path=copy)
    prompt = tc.ModelInput.from_ints([3, 4])
    assert len((await sampler.sample(prompt, 1, tc.SamplingParams(max_tokens=2))).sequences) == 1
    rest = service.create_rest_client()
    again = await rest.copy_weights_async(copy, "proj-z", ttl_seconds=7200)
    assert again.endswith("/sampler_weights/aw") and again != copy
