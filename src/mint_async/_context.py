"""What every client of one ServiceClient shares, and the two ways of calling the server.

* :func:`call` — a synchronous endpoint: POST/GET, decode the answer.
* :func:`submit` — an asynchronous operation: POST, decode the promise, return a
  :class:`~mint_async._futures.PollingFuture` for its result.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from . import _codec
from . import types as t
from ._config import ClientConfig, TrafficClass
from ._exceptions import APIResponseValidationError, DecodeError
from ._futures import PollingFuture, PollSettings, QueueStateMonitor
from ._transport import Response, Transport
from ._wire import Wire

if TYPE_CHECKING:
    from ._tokenizer import TokenizerCache

__all__ = ["ClientContext", "call", "decode_response", "submit", "submission_retry_hook"]

submission_retry_hook: ContextVar[Callable[[int | None], None] | None] = ContextVar(
    "mint_async_submission_retry_hook", default=None
)
"""The ``on_retry`` of submissions made in this context that name none.

A training pipeline sets it around a TrainingClient call, so 429s on that call's
submissions (every chunk of a batch included) shrink the pipeline's window
without an ``on_retry`` parameter on every public training method.
"""

T = TypeVar("T")


@dataclass(kw_only=True)
class ClientContext:
    """The transport, settings and session shared by a ServiceClient's clients."""

    transport: Transport
    config: ClientConfig
    session_id: str | None
    poll: PollSettings
    tokenizers: TokenizerCache
    wire: Wire
    owns_transport: bool = False
    """Whether clients created from this context must close the transport (unpickled copies)."""
    model_seq: Iterator[int] = field(default_factory=itertools.count)
    """The session's training-client counter (``create_model.model_seq_id``)."""
    sampling_seq: Iterator[int] = field(default_factory=itertools.count)
    """The session's sampling-session counter (shared by both ways of creating one)."""
    extra: dict[str, Any] = field(default_factory=dict[str, Any])


def decode_response(tp: type[T], resp: Response) -> T:
    """Decode a successful answer; a body that does not fit raises APIResponseValidationError."""
    try:
        return _codec.decode(tp, resp.content)
    except DecodeError as exc:
        raise APIResponseValidationError(str(exc)) from exc


async def call(
    ctx: ClientContext,
    method: str,
    path: str,
    result_type: type[T],
    payload: msgspec.Struct | None = None,
    *,
    traffic: TrafficClass = "train",
    params: Mapping[str, str | int] | None = None,
) -> T:
    """A synchronous endpoint: send, check the status, decode."""
    if params:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        path = f"{path}?{query}"
    body = _codec.encode(payload) if payload is not None else (b"{}" if method == "POST" else None)
    resp = await ctx.transport.request(method, path, body=body, traffic=traffic)
    return decode_response(result_type, resp)


async def submit(
    ctx: ClientContext,
    path: str,
    payload: msgspec.Struct | None,
    result_type: type[T],
    *,
    request_type: str,
    traffic: TrafficClass = "train",
    monitor: QueueStateMonitor | None = None,
    headers: Mapping[str, str] | None = None,
    max_retries: int | None = None,
    binary_decoder: Callable[[bytes], T] | None = None,
    body: bytes | None = None,
    on_retry: Callable[[int | None], None] | None = None,
    resubmit_lost: bool = True,
) -> PollingFuture[T]:
    """Submit an asynchronous operation and return the future of its result.

    Retries of the submission send the same body, so the same ``seq_id``.
    ``body`` (already encoded) takes the place of ``payload`` when given. With
    ``resubmit_lost``, a promise the server reports lost (410) is recovered by
    resubmitting the same body (same ``seq_id``: exactly-once on a deduplicating server).
    """
    started = time.monotonic()
    data = body if body is not None else _codec.encode(payload)
    if on_retry is None:
        on_retry = submission_retry_hook.get()

    async def post() -> t.UntypedAPIFuture:
        resp = await ctx.transport.request(
            "POST",
            path,
            body=data,
            traffic=traffic,
            headers=headers,
            max_retries=max_retries,
            on_retry=on_retry,
        )
        return decode_response(t.UntypedAPIFuture, resp)

    promise = await post()
    return PollingFuture(
        ctx.transport,
        promise,
        result_type,
        request_type=request_type,
        settings=ctx.poll,
        monitor=monitor,
        roundtrip=time.monotonic() - started,
        binary_decoder=binary_decoder,
        resubmit=post if resubmit_lost else None,
    )
