"""The two MinT extensions (protocol §4.10): reverse-KL forward/backward and checkpoint interpolation.

Reverse-KL ordering (protocol Q5, our choice): with a ``seq_id`` it takes that
slot of the model like any training request (and dedupes on it); without one
(the MinT SDK's default) it runs after the model's requests that had already
arrived, without taking a slot, deduplicated only on ``X-Idempotency-Key``
(stable across one HTTP call's retries). ``reference_model_path`` may be a
``tinker://`` or ``mint://`` checkpoint path, or a served base model's name.

Interpolation writes a sampler checkpoint ``sum(c_i * w_i)`` (coefficients
taken as given, not normalised). Its output lives in a training run of the
caller: the run of ``output_path`` when that is a full path, else the first
source's run, named ``output_path`` or ``interpolated-<hash of the inputs>``
(so a retried request rewrites the same checkpoint).
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from typing import TYPE_CHECKING, Final

from mint_async import _codec
from mint_async._exceptions import InvalidInputError
from mint_async.types import (
    ForwardBackwardReverseKLRequest,
    ForwardBackwardReverseKLResponse,
    InterpolateCheckpointsRequest,
    InterpolateCheckpointsResponse,
)

from ._checkpoints import check_checkpoint_name, load_reference, read_checkpoint
from ._http import HTTPError, Request, Response
from ._limits import check_reverse_kl, offloaded
from ._sequenced import decode_sequenced, enqueue, fail_slot
from ._store import CheckpointMeta, parse_path

if TYPE_CHECKING:
    from ._core import ServerCore

__all__ = ["interpolate_checkpoints", "reverse_kl"]

_IDEMPOTENCY_MAX: Final = 10_000


async def reverse_kl(core: ServerCore, req: Request) -> Response:
    """``mint/forward_backward_reverse_kl``."""
    backend, _, executor = core.require_running()
    body = decode_sequenced(core, req, ForwardBackwardReverseKLRequest)
    try:
        size = check_reverse_kl(body.data, core.config.limits)
    except HTTPError:
        fail_slot(core, req, body.model_id, body.seq_id)  # a 400 still uses up its seq_id
        raise
    offload = offloaded(size, core.config.limits)
    model = core.model(req.owner, body.model_id)

    async def work() -> ForwardBackwardReverseKLResponse:
        if model.handle is None:
            msg = f"model {model.model_id} is not loaded"
            raise InvalidInputError(msg)
        handle = model.handle
        reference = await load_reference(core, req.owner, body.reference_model_path)
        return await executor.call(
            lambda: backend.forward_backward_reverse_kl(
                handle, reference, body.data, body.temperature
            ),
            offload=offload,
        )

    if body.seq_id is not None:
        return enqueue(core, req, op="reverse_kl", model=model, seq_id=body.seq_id, work=work)
    key = req.header(b"x-idempotency-key")
    rid = model.idempotency.get(key) if key else None
    if rid is None:
        model.unsequenced += 1
        rid = f"{model.model_id}:rkl:{model.unsequenced}"
        if key:
            if len(model.idempotency) >= _IDEMPOTENCY_MAX:
                model.idempotency.clear()
            model.idempotency[key] = rid
    return enqueue(core, req, op="reverse_kl", model=model, seq_id=None, work=work, request_id=rid)


def _output_location(
    owner: str, body: InterpolateCheckpointsRequest, first: CheckpointMeta
) -> tuple[str, str]:
    """``(run_id, name)`` of the interpolated checkpoint."""
    out = body.output_path
    if out is not None and "://" in out:
        run_id, kind, name = parse_path(out)
        if kind != "sampler_weights":
            msg = "interpolation writes sampler checkpoints: output_path must be …/sampler_weights/<name>"
            raise InvalidInputError(msg)
        return run_id, name
    if out is not None:
        return first.training_run_id, out
    digest = hashlib.sha256(
        _codec.encode([body.source_paths, body.coefficients, owner])
    ).hexdigest()
    return first.training_run_id, f"interpolated-{digest[:12]}"


async def interpolate_checkpoints(core: ServerCore, req: Request) -> Response:
    """``mint/checkpoints/interpolate``."""
    backend, store, executor = core.require_running()
    body = _codec.decode(InterpolateCheckpointsRequest, req.body)
    key = req.header(b"x-idempotency-key")
    rid = core.idempotent.get(key) if key else None
    existing = core.futures.get(rid) if rid else None
    if existing is not None:
        core.state.duplicates += 1
        return core.promise(existing)
    rid = f"interpolate:{uuid.uuid4().hex[:16]}"
    if key:
        if len(core.idempotent) >= _IDEMPOTENCY_MAX:
            core.idempotent.clear()
        core.idempotent[key] = rid
    rec = core.futures.create(rid, "interpolate", req.owner, None)

    async def work() -> InterpolateCheckpointsResponse:
        sources = [
            read_checkpoint(core, req.owner, path, "interpolate") for path in body.source_paths
        ]
        first = sources[0][0]
        if any(meta.base_model != first.base_model for meta, _ in sources):
            msg = "interpolated checkpoints must share a base model"
            raise InvalidInputError(msg)
        run_id, name = _output_location(req.owner, body, first)
        check_checkpoint_name(name)
        run = store.run(run_id)
        if run is None or run.owner != req.owner:
            msg = f"the output must go to one of your training runs, not {run_id!r}"
            raise InvalidInputError(msg)
        meta = CheckpointMeta(
            training_run_id=run_id,
            kind="sampler_weights",
            name=name,
            owner=req.owner,
            base_model=first.base_model,
            lora_rank=first.lora_rank,
            train_unembed=first.train_unembed,
            train_mlp=first.train_mlp,
            train_attn=first.train_attn,
        )

        def blocking() -> CheckpointMeta:
            staging = store.staging_dir()
            try:
                backend.interpolate([d for _, d in sources], body.coefficients, staging)
                return store.commit(staging, meta, overwrite=True)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise

        written = await executor.call(blocking, io=True)
        return InterpolateCheckpointsResponse(
            path=written.tinker_path,
            source_paths=body.source_paths,
            coefficients=body.coefficients,
        )

    executor.spawn(None, lambda: executor.run(rec, "interpolate", work))
    return core.promise(rec)
