"""Handlers of the training-model endpoints (protocol §4.2-§4.4, §4.10).

forward/forward_backward bodies may be JSON or protobuf (+zstd), see :mod:`._bodies`.

Only structural problems answer 400 at submission: a body that does not
decode, or one that asks for more work than the server takes (token ids
beyond int64, loss inputs whose rows are not the model input's length, a
datum beyond the context, totals beyond ``ServerConfig.limits``; see
:mod:`._limits`). Everything that depends on state (checkpoint names, paths,
loss inputs) is checked when the request runs, and fails it with category
``user`` — so a submission is never half-accepted.

``gspo`` and ``stable_reinforce`` (tinker 0.38) are served on both wires: the
provenance spans ``stable_reinforce`` needs travel in the protobuf body (which
the 0.22 wire accepts too) or as the JSON ``model_input_spans`` /
``loss_fn_input_spans`` of a Datum (a mint_async extension). Each datum's
spans are checked against the server's stability records when the request
runs (:mod:`._stability`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mint_async import _codec
from mint_async._exceptions import InvalidInputError
from mint_async.types import (
    ForwardBackwardInput,
    ForwardBackwardRequest,
    ForwardRequest,
    GetInfoRequest,
    GetInfoResponse,
    LoadWeightsRequest,
    LoadWeightsResponse,
    ModelData,
    OptimStepRequest,
    OptimStepResponse,
    SaveWeightsForSamplerRequest,
    SaveWeightsForSamplerResponseInternal,
    SaveWeightsRequest,
    SaveWeightsResponse,
    UnloadModelRequest,
    UnloadModelResponse,
)

from ._bodies import decode_fwdbwd
from ._checkpoints import read_checkpoint, write_checkpoint
from ._futures import Encoded
from ._http import HTTPError, Request, Response, json_response
from ._limits import check_fwdbwd, offloaded
from ._runs import create_via_load, is_create_via_load
from ._sequenced import decode_sequenced, enqueue, fail_slot
from ._stability import resolve_stable_reinforce
from ._state import Model, Sampler

if TYPE_CHECKING:
    from ._core import ServerCore

__all__ = [
    "forward",
    "forward_backward",
    "get_info",
    "load_weights",
    "optim_step",
    "save_weights",
    "save_weights_for_sampler",
    "unload_model",
]


def _handle(model: Model) -> Any:
    if model.handle is None:
        msg = f"model {model.model_id} is not loaded"
        raise InvalidInputError(msg)
    return model.handle


async def get_info(core: ServerCore, req: Request) -> Response:
    """``get_info``: base model, LoRA rank and tokenizer of a training run."""
    body = _codec.decode(GetInfoRequest, req.body)
    model = core.state.models.get(body.model_id)
    if model is None or model.owner != req.owner:
        raise HTTPError(404, f"model {body.model_id!r} not found")
    spec = model.spec
    return json_response(
        GetInfoResponse(
            model_id=model.model_id,
            model_data=ModelData(
                arch=spec.arch, model_name=spec.name, tokenizer_id=spec.tokenizer_id
            ),
            is_lora=True,
            lora_rank=model.lora.rank,
            model_name=spec.name,
            optimizer_config=model.optimizer_config,
        )
    )


async def unload_model(core: ServerCore, req: Request) -> Response:
    """``unload_model``: runs after the model's already-submitted requests, then frees it."""
    backend, _, executor = core.require_running()
    body = _codec.decode(UnloadModelRequest, req.body)
    model = core.model(req.owner, body.model_id)

    async def work() -> UnloadModelResponse:
        handle, model.handle = model.handle, None
        model.unloaded = True  # the worker stops after this job
        if handle is not None:
            await executor.call(lambda: backend.unload_model(handle))
        return UnloadModelResponse(model_id=model.model_id)

    return enqueue(
        core,
        req,
        op="unload_model",
        model=model,
        seq_id=None,
        work=work,
        request_id=f"{model.model_id}:unload",
    )


def _fb_work(
    core: ServerCore, model: Model, fb: ForwardBackwardInput, *, backward: bool, size: int
) -> Any:
    backend, _, executor = core.require_running()
    config = fb.loss_fn_config or {}
    # Large batches (sparse inputs densify in the backend) compute off the event loop.
    offload = offloaded(size, core.config.limits)
    records = core.state.stability

    def run() -> object:
        data = fb.data
        if fb.loss_fn == "stable_reinforce":
            # Checked when the request runs, like every state-dependent input (the
            # samples it names may finish after this submission).
            data = [
                resolve_stable_reinforce(
                    d, i, records, owner=model.owner, session_id=model.session_id
                )
                for i, d in enumerate(data)
            ]
        return backend.forward_backward(_handle(model), data, fb.loss_fn, config, backward=backward)

    async def work() -> Encoded:
        return await executor.compute_encoded(run, offload=offload)

    return work


async def forward(core: ServerCore, req: Request) -> Response:
    """``forward`` (tinker 0.22): loss and logprobs, no gradients."""
    return _fwdbwd(core, req, decode_fwdbwd(core, req, ForwardRequest))


async def forward_backward(core: ServerCore, req: Request) -> Response:
    """``forward_backward``: loss, logprobs and accumulated gradients (a forward if ``forward_only``)."""
    return _fwdbwd(core, req, decode_fwdbwd(core, req, ForwardBackwardRequest))


def _fwdbwd(
    core: ServerCore, req: Request, body: ForwardRequest | ForwardBackwardRequest
) -> Response:
    forward = isinstance(body, ForwardRequest)
    inp = body.forward_input if isinstance(body, ForwardRequest) else body.forward_backward_input
    op = "forward" if forward else "forward_backward"
    try:
        model = core.model(req.owner, body.model_id)
        size = check_fwdbwd(inp, core.config.limits, op, context=model.spec.max_context_length)
    except HTTPError:
        fail_slot(core, req, body.model_id, body.seq_id)  # a 400 still uses up its seq_id
        raise
    if isinstance(body, ForwardRequest):
        work = _fb_work(core, model, body.forward_input, backward=False, size=size)
        return enqueue(core, req, op="forward", model=model, seq_id=body.seq_id, work=work)
    work = _fb_work(core, model, body.forward_backward_input, backward=True, size=size)
    return enqueue(core, req, op="forward_backward", model=model, seq_id=body.seq_id, work=work)


async def optim_step(core: ServerCore, req: Request) -> Response:
    """``optim_step``: AdamW on the accumulated gradients."""
    backend, _, executor = core.require_running()
    body = decode_sequenced(core, req, OptimStepRequest)
    model = core.model(req.owner, body.model_id)

    async def work() -> OptimStepResponse:
        metrics = await executor.call(lambda: backend.optim_step(_handle(model), body.adam_params))
        return OptimStepResponse(metrics=metrics)

    return enqueue(core, req, op="optim_step", model=model, seq_id=body.seq_id, work=work)


async def save_weights(core: ServerCore, req: Request) -> Response:
    """``save_weights``: a training checkpoint (weights + optimizer) ``tinker://<run>/weights/<name>``."""
    body = decode_sequenced(core, req, SaveWeightsRequest)
    model = core.model(req.owner, body.model_id)

    async def work() -> SaveWeightsResponse:
        meta = await write_checkpoint(
            core,
            model,
            _handle(model),
            "weights",
            body.path,
            body.ttl_seconds,
            overwrite=body.overwrite,
        )
        return SaveWeightsResponse(path=meta.tinker_path)

    return enqueue(core, req, op="save_weights", model=model, seq_id=body.seq_id, work=work)


async def save_weights_for_sampler(core: ServerCore, req: Request) -> Response:
    """``save_weights_for_sampler``: named (a sampler checkpoint) or ephemeral (a new sampling session)."""
    backend, _, executor = core.require_running()
    body = decode_sequenced(core, req, SaveWeightsForSamplerRequest)
    model = core.model(req.owner, body.model_id)
    if body.path is None and body.sampling_session_seq_id is None:
        raise HTTPError(400, "save_weights_for_sampler needs path or sampling_session_seq_id")

    async def work() -> SaveWeightsForSamplerResponseInternal:
        handle = _handle(model)
        path = sampling_session_id = None
        if body.path is not None:
            meta = await write_checkpoint(
                core, model, handle, "sampler_weights", body.path, body.ttl_seconds, overwrite=True
            )
            path = meta.tinker_path
        if body.sampling_session_seq_id is not None:
            sampler_id = f"{model.session_id}:sample:{body.sampling_session_seq_id}"
            if sampler_id in core.state.samplers:
                msg = f"sampling session {sampler_id} already exists"
                raise InvalidInputError(msg)
            frozen = await executor.call(lambda: backend.snapshot_sampler(handle))
            core.state.samplers[sampler_id] = Sampler(
                sampler_id, model.session_id, model.owner, model.spec.name, frozen, path
            )
            session = core.state.sessions.get(model.session_id)
            if session is not None:
                session.sampler_ids.append(sampler_id)
            sampling_session_id = sampler_id
        return SaveWeightsForSamplerResponseInternal(
            path=path, sampling_session_id=sampling_session_id
        )

    return enqueue(
        core, req, op="save_weights_for_sampler", model=model, seq_id=body.seq_id, work=work
    )


async def load_weights(core: ServerCore, req: Request) -> Response:
    """``load_weights``: weights (and optimizer state if asked) from a checkpoint.

    tinker 0.38's create-via-load form (no ``model_id``) creates the run too (``_runs``).
    """
    if is_create_via_load(req.body):
        return await create_via_load(core, req)
    backend, _, executor = core.require_running()
    body = decode_sequenced(core, req, LoadWeightsRequest)
    model = core.model(req.owner, body.model_id)

    async def work() -> LoadWeightsResponse:
        handle = _handle(model)
        meta, directory = read_checkpoint(core, req.owner, body.path, "load_weights")
        if meta.base_model != model.spec.name:
            msg = f"{body.path} was trained from {meta.base_model}, this model is {model.spec.name}"
            raise InvalidInputError(msg)
        await executor.call(
            lambda: backend.load_state(handle, directory, optimizer=body.optimizer), io=True
        )
        return LoadWeightsResponse(path=body.path, model_id=model.model_id)

    return enqueue(core, req, op="load_weights", model=model, seq_id=body.seq_id, work=work)
