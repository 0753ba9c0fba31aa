"""Creating training runs: ``create_model``, and tinker 0.38's create-via-load ``load_weights``.

A run is ``<session_id>:train:<model_seq_id>``; its creation takes slot 0 of
the run's seq_id gate (request id ``<model_id>:0``), so the client's training
requests start at seq_id 1 either way. A repeated ``(session, model_seq_id)``
answers the original promise.

Create-via-load (0.38's ``create_training_client_from_state*``): a
``load_weights`` body with ``session_id`` and ``model_seq_id`` instead of
``model_id``/``seq_id`` creates the run from the checkpoint's base model and
LoRA configuration, then loads it (with the optimizer state when
``optimizer``). Unlike other requests, the checkpoint is resolved at
submission (the run cannot be created without knowing what it is): a missing
or unreadable one answers 404, a malformed path or another base model 400 —
and no run is created.

``optimizer_config`` (0.38): only AdamW exists here; anything else answers
400. It is kept on the run and echoed by ``get_info``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import msgspec

from mint_async import _codec
from mint_async._exceptions import InvalidInputError
from mint_async.types import (
    CreateModelRequest,
    CreateModelResponse,
    LoadWeightsResponse,
    LoraConfig,
)

from ._checkpoints import read_checkpoint
from ._http import HTTPError, Request, Response
from ._ordering import SeqGate
from ._sequenced import model_worker
from ._state import Job, Model, Session
from ._store import RunMeta, parse_path
from .backends import ModelSpec

if TYPE_CHECKING:
    from ._core import ServerCore

__all__ = [
    "NewModel",
    "check_optimizer",
    "create_model",
    "create_via_load",
    "is_create_via_load",
    "start_model",
]


def check_optimizer(config: dict[str, Any] | None) -> None:
    """400 unless ``config`` is absent or AdamW (tinker 0.38's ``optimizer_config``)."""
    if config is not None and config.get("type") != "adamw":
        raise HTTPError(
            400, f"optimizer {config.get('type')!r} is not supported here (only adamw): {config}"
        )


async def create_model(core: ServerCore, req: Request) -> Response:
    """``create_model``: a new training run ``<session_id>:train:<model_seq_id>``."""
    backend, _, executor = core.require_running()
    body = _codec.decode(CreateModelRequest, req.body)
    check_optimizer(body.optimizer_config)
    session = core.session(req.owner, body.session_id)
    spec = core.spec(body.base_model)
    lora = body.lora_config

    async def work(model: Model) -> CreateModelResponse:
        model.handle = await executor.call(lambda: backend.create_model(model.model_id, spec, lora))
        return CreateModelResponse(model_id=model.model_id)

    return await start_model(
        core,
        req,
        NewModel(session, body.model_seq_id, spec, lora, body.user_metadata, body.optimizer_config),
        "create_model",
        work,
    )


@dataclass(frozen=True, slots=True)
class NewModel:
    """What a new training run is made of."""

    session: Session
    model_seq_id: int
    spec: ModelSpec
    lora: LoraConfig
    user_metadata: dict[str, str] | None
    optimizer_config: dict[str, Any] | None


async def start_model(
    core: ServerCore,
    req: Request,
    new: NewModel,
    op: str,
    work: Callable[[Model], Awaitable[object]],
) -> Response:
    """Register training run ``<session_id>:train:<model_seq_id>`` whose slot 0 runs ``work``.

    A repeated ``(session, model_seq_id)`` answers the original promise.
    """
    _, store, executor = core.require_running()
    session, spec, lora = new.session, new.spec, new.lora
    model_id = f"{session.session_id}:train:{new.model_seq_id}"
    rid = f"{model_id}:0"
    existing = core.futures.get(rid)
    if existing is not None or model_id in core.state.models:
        core.state.duplicates += 1
        return core.promise(rid, model_id=model_id)
    model = Model(
        model_id,
        session.session_id,
        req.owner,
        spec,
        lora,
        SeqGate(first_seq=0, gap_timeout=core.config.seq_gap_timeout),
        optimizer_config=new.optimizer_config,
    )
    core.state.models[model_id] = model
    session.model_ids.append(model_id)
    run = RunMeta(
        training_run_id=model_id,
        owner=req.owner,
        base_model=spec.name,
        lora_rank=lora.rank,
        train_unembed=lora.train_unembed,
        train_mlp=lora.train_mlp,
        train_attn=lora.train_attn,
        user_metadata=new.user_metadata,
        session_id=session.session_id,
    )
    await anyio.to_thread.run_sync(store.save_run, run)
    rec = core.futures.create(rid, op, req.owner, session.session_id)
    model.gate.put(0, Job(rec, op, lambda: work(model)))
    executor.spawn(session, lambda: model_worker(core, model))
    return core.promise(rec, model_id=model_id)


class CreateViaLoadRequest(msgspec.Struct, kw_only=True):
    """tinker 0.38's create-via-load ``load_weights`` body (no ``model_id``/``seq_id``)."""

    session_id: str
    model_seq_id: int
    path: str
    optimizer: bool = False
    base_model: str | None = None
    user_metadata: dict[str, Any] | None = None
    optimizer_config: dict[str, Any] | None = None
    weights_access_token: str | None = None
    """Accepted and unused: readable checkpoints are the caller's own and public ones."""


class _LoadProbe(msgspec.Struct):
    model_id: object = None
    session_id: object = None


_probe = msgspec.json.Decoder(_LoadProbe)


def is_create_via_load(body: bytes) -> bool:
    """Whether a ``load_weights`` body is the create-via-load form (session_id, no model_id)."""
    try:
        probe = _probe.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return False  # not this form; the typed decode answers 400 for it
    return probe.model_id is None and probe.session_id is not None


async def create_via_load(core: ServerCore, req: Request) -> Response:
    """``load_weights`` without ``model_id``: a new run loaded from a checkpoint (see module doc)."""
    backend, _, executor = core.require_running()
    body = _codec.decode(CreateViaLoadRequest, req.body)
    session = core.session(req.owner, body.session_id)
    check_optimizer(body.optimizer_config)
    try:
        parse_path(body.path)
    except InvalidInputError as exc:  # not a tinker:// checkpoint path
        raise HTTPError(400, str(exc)) from None
    try:
        meta, directory = read_checkpoint(core, req.owner, body.path, "create_model")
    except InvalidInputError as exc:
        raise HTTPError(404, str(exc)) from None
    if body.base_model is not None and body.base_model != meta.base_model:
        msg = f"{body.path} was trained from {meta.base_model}, not {body.base_model}"
        raise HTTPError(400, msg)
    spec = core.spec(meta.base_model)
    lora = LoraConfig(
        rank=meta.lora_rank,
        train_unembed=meta.train_unembed,
        train_mlp=meta.train_mlp,
        train_attn=meta.train_attn,
    )

    async def work(model: Model) -> LoadWeightsResponse:
        handle = await executor.call(lambda: backend.create_model(model.model_id, spec, lora))
        model.handle = handle
        await executor.call(
            lambda: backend.load_state(handle, directory, optimizer=body.optimizer), io=True
        )
        return LoadWeightsResponse(path=body.path, model_id=model.model_id)

    metadata = None
    if body.user_metadata is not None:
        metadata = {key: str(value) for key, value in body.user_metadata.items()}
    new = NewModel(session, body.model_seq_id, spec, lora, metadata, body.optimizer_config)
    return await start_model(core, req, new, "load_weights", work)
