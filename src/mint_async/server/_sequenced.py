"""Accepting training-model requests into their model's seq_id gate, exactly once.

Request ids (protocol Q1, our scheme):

* ``create_model``: ``<model_id>:0`` (it takes slot 0 of the model);
* sequenced training requests: ``<model_id>:<seq_id>``;
* unsequenced reverse-KL: ``<model_id>:rkl:<n>``; ``unload_model``: ``<model_id>:unload``.

A repeated ``(model_id, seq_id)`` returns the original promise and never
executes again — also after the record was purged (the gate remembers every
slot it released). The same slot reused by a *different* kind of request is a
client bug and answers 400 (not 409, which clients retry for minutes).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TypeVar

import anyio
import anyio.lowlevel
import msgspec

from mint_async import _codec
from mint_async._exceptions import DecodeError

from ._futures import FutureRecord
from ._http import HTTPError, Request, Response
from ._state import Job, Model

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._corelike import CoreLike

__all__ = ["decode_sequenced", "enqueue", "fail_slot", "model_worker"]

_T = TypeVar("_T")


class _SlotProbe(msgspec.Struct):
    """Just enough of a malformed body to find the slot it wanted."""

    model_id: object = None
    seq_id: object = None


_probe = msgspec.json.Decoder(_SlotProbe)


def decode_sequenced(core: CoreLike, req: Request, tp: type[_T]) -> _T:
    """Decode a training request; on 400 still consume its slot so later ones do not wait.

    (tinker 0.22 keeps going with the next seq_id after a permanent 400.)
    """
    try:
        return _codec.decode(tp, req.body)
    except DecodeError as exc:
        try:
            probe = _probe.decode(req.body)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            # RecursionError: hostile nesting; the typed decode said so already.
            probe = _SlotProbe()
        fail_slot(core, req, probe.model_id, probe.seq_id)
        raise HTTPError(400, str(exc)) from None


def fail_slot(core: CoreLike, req: Request, model_id: object, seq: object) -> None:
    """Consume the slot ``(model_id, seq)`` of a rejected body, if it names a free one of ours."""
    model = core.state.models.get(model_id) if isinstance(model_id, str) else None
    if (
        model is not None
        and model.owner == req.owner
        and isinstance(seq, int)
        and seq >= 1
        and not model.gate.has(seq)
    ):
        model.gate.put(seq, None)


def _duplicate(core: CoreLike, rec: FutureRecord, op: str, model_id: str) -> Response:
    if rec.kind != op:
        msg = f"request id {rec.request_id} was already used by a {rec.kind} request, not {op}"
        raise HTTPError(400, msg)
    core.state.duplicates += 1
    return core.promise(rec, model_id=model_id)


def enqueue(
    core: CoreLike,
    req: Request,
    *,
    op: str,
    model: Model,
    seq_id: int | None,
    work: Callable[[], Awaitable[object]],
    request_id: str | None = None,
) -> Response:
    """Accept a request for ``model`` (sequenced when ``seq_id`` is given) and answer its promise."""
    model_id = model.model_id
    if seq_id is not None and seq_id < 1:
        raise HTTPError(400, "seq_id must be >= 1 (slot 0 belongs to create_model)")
    rid = request_id or f"{model_id}:{seq_id}"
    existing = core.futures.get(rid)
    if existing is not None:
        return _duplicate(core, existing, op, model_id)
    gate = model.gate
    if seq_id is not None and gate.has(seq_id):
        if not gate.was_skipped(seq_id):
            # Ran already and its record was purged: same promise, no second run.
            core.state.duplicates += 1
            return core.promise(rid, model_id=model_id)
        rec = core.futures.create(rid, op, req.owner, model.session_id)
        skipped = f"seq_id {seq_id} of {model_id} arrived after the server skipped it (it waited {core.config.seq_gap_timeout} s)"
        core.futures.fail(rec, skipped, "server")
        return core.promise(rec, model_id=model_id)
    rec = core.futures.create(rid, op, req.owner, model.session_id)
    job = Job(rec, op, work)
    if seq_id is None:
        gate.put_unsequenced(job)
    else:
        gate.put(seq_id, job)
    run = core.store.run(model_id) if core.store is not None else None
    if run is not None:
        run.last_request_time = time.time()
    return core.promise(rec, model_id=model_id)


async def model_worker(core: CoreLike, model: Model) -> None:
    """Run a model's requests one at a time, in gate order, until it is unloaded.

    Cancelled when its session ends; a call running in a worker thread finishes
    first (threads are not interrupted), so the backend never unloads a model
    while computing with it.
    """
    backend, _, executor = core.require_running()
    try:
        with anyio.CancelScope() as scope:
            model.scope = scope
            while not model.unloaded:
                job = await model.gate.get()
                await executor.run(job.record, job.op, job.work)
                # Inline work never suspends: let other requests in between jobs.
                await anyio.lowlevel.checkpoint()
    finally:
        for job in model.gate.drain():
            core.futures.fail(job.record, f"model {model.model_id} was unloaded", "user")
        handle, model.handle = model.handle, None
        if model.unloaded and handle is not None:
            backend.unload_model(handle)
