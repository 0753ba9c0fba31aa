"""``retrieve_future`` (the long poll), 0.38's ``retrieve_futures`` and ``cancel_future``.

A poll of an unfinished future is held until it finishes (released at once,
not at the hold boundary) or ``poll_hold`` passes, then answers ``try_again``
with the queue state. A finished result larger than ``metadata_threshold`` is
announced once with ``complete_metadata`` when the client allows it, then
sent; never two metadata answers for one future. Unknown ids answer 404, the
caller's ids we purged (or that belong to the caller's model or sampler) 410;
another user's id answers 404 like an unknown one (a 410 would tell them it
exists).

A finished forward/forward_backward or sample result goes out as protobuf or
JSON by the poll's ``Accept`` (negotiated per poll, ``_result_encoding.answer``); the
``complete_metadata`` size is that of the encoding the next poll with the same
``Accept`` gets.

Protocol Q3 (our choice): the hold defaults to 30 s (below the SDK's 45 s read
timeout) and expires into a 200 ``try_again``; 408 is only sent by the
``retrieve_408`` fault. Q13: ``queue_state`` is ``paused_capacity`` while a
request waits for a capacity slot, ``active`` otherwise (a request waiting for
an earlier seq_id says so in ``queue_state_reason``); this server never rate
limits, so it never reports ``paused_rate_limit``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import msgspec

from mint_async import _codec
from mint_async.types import CompleteMetadataResponse, FutureRetrieveRequest, TryAgainResponse

from ._batched import FuturesRetrieveRequest
from ._futures import FutureRecord, Phase
from ._http import HTTPError, Request, Response, json_response
from ._result_encoding import PROTOBUF, accepts, answer, count_result

if TYPE_CHECKING:
    from ._core import ServerCore

__all__ = ["cancel_future", "retrieve_future", "retrieve_futures"]


def _try_again(core: ServerCore, rec: FutureRecord) -> bytes:
    reason = None
    if rec.phase is Phase.WAITING:
        model = core.state.models.get(rec.request_id.rsplit(":", 1)[0])
        missing = model.gate.waiting_for if model is not None else None
        if missing is not None:
            reason = f"waiting for seq_id {missing} of {model.model_id if model else ''}"
    state = rec.queue_state
    return _codec.encode(
        TryAgainResponse(request_id=rec.request_id, queue_state=state, queue_state_reason=reason)
    )


def _gone(core: ServerCore, request_id: str, owner: str) -> HTTPError:
    """410 for the caller's own expired promise, else 404 (whoever else's it was)."""
    scope = request_id.rsplit(":", 1)[0]
    state = core.state
    model, sampler = state.models.get(scope), state.samplers.get(scope)
    if (
        core.futures.purged_owner(request_id) == owner
        or (model is not None and model.owner == owner)
        or (sampler is not None and sampler.owner == owner)
    ):
        return HTTPError(
            410, f"promise {request_id!r} expired (its result was already delivered or is too old)"
        )
    return HTTPError(404, f"unknown request_id {request_id!r}")


async def retrieve_future(core: ServerCore, req: Request) -> Response:
    """``retrieve_future``: result, failure, complete_metadata, or try_again after the hold."""
    body = _codec.decode(FutureRetrieveRequest, req.body)
    faults = core.faults
    if faults.fires("slow_poll"):
        await anyio.sleep(faults.config.slow_poll_seconds)
    if faults.fires("retrieve_410"):
        raise HTTPError(410, "injected fault: promise expired")
    rec = core.futures.get(body.request_id)
    if rec is None or rec.owner != req.owner:
        raise _gone(core, body.request_id, req.owner)
    if faults.fires("retrieve_408"):
        raise HTTPError(408, "injected fault: try again", body=_try_again(core, rec))
    if faults.fires("try_again"):
        return json_response(_try_again(core, rec))
    if not rec.finished:
        await core.futures.wait(rec, core.config.poll_hold)
        if not rec.finished:
            return json_response(_try_again(core, rec))
    json_ok, protobuf_ok = accepts(req)
    payload, binary = answer(rec, json_ok=json_ok, protobuf_ok=protobuf_ok)
    if (
        rec.phase is Phase.DONE
        and body.allow_metadata_only
        and not rec.metadata_sent
        and len(payload) > core.config.metadata_threshold
    ):
        rec.metadata_sent = True
        return json_response(CompleteMetadataResponse(response_payload_size=len(payload)))
    core.futures.delivered(rec)
    if rec.phase is Phase.DONE:
        count_result(core.state, rec.kind, binary=binary)
    if binary:
        return Response(200, payload, PROTOBUF)
    return json_response(payload)


async def retrieve_futures(core: ServerCore, req: Request) -> Response:
    """``retrieve_futures`` [0.38, behind ``enable_retrieve_futures``]: completion events."""
    if not core.config.enable_retrieve_futures:
        raise HTTPError(404, "retrieve_futures is not enabled on this server")
    body = _codec.decode(FuturesRetrieveRequest, req.body)
    sampler_id = body.target.sampling_session_id
    core.sampler(req.owner, sampler_id)
    for rid in body.retrieved_request_ids:
        rec = core.futures.get(rid)
        if rec is not None and rec.owner == req.owner and rec.finished:
            core.futures.delivered(rec)
    hold = (
        core.config.poll_hold if body.timeout is None else min(core.config.poll_hold, body.timeout)
    )
    answer = await core.batched.poll(
        (sampler_id, body.target.cloned_sampler_id), body.prev_cursor, hold
    )
    return json_response(answer)


class _CancelRequest(msgspec.Struct):
    request_id: str


async def cancel_future(core: ServerCore, req: Request) -> Response:
    """``cancel_future`` [0.38]: stop an unfinished request (its polls answer a failure)."""
    body = _codec.decode(_CancelRequest, req.body)
    rec = core.futures.get(body.request_id)
    if rec is None or rec.owner != req.owner:
        raise _gone(core, body.request_id, req.owner)
    if not rec.finished:
        core.futures.fail(rec, "cancelled by the client", "user")
    return json_response({"request_id": rec.request_id, "cancelled": rec.finished})
