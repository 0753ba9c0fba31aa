"""What every client of one ServiceClient shares, and the two ways of calling the server.

* :func:`call` — a synchronous endpoint: POST/GET, decode the answer.
* :func:`start_operation` — an asynchronous operation: POST, decode the promise,
  return a :class:`~mint_async._futures.PollingFuture` for its result.

Also the one way a caller learns of the HTTP retries of its submissions
(:func:`reporting_retries`, used by the pipelines and the load generator) and
the queue-state methods every client shares (:class:`QueueStateObservable`).
This is the floor of the client core: it imports no client, no pipeline.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import msgspec

from . import _codec
from . import types as t
from ._config import ClientConfig, TrafficClass
from ._exceptions import APIResponseValidationError, DecodeError
from ._futures import PollingFuture, PollSettings, QueueStateMonitor
from ._tokenizer import TokenizerCache
from ._transport import Response, Transport
from ._wire_format import WireFormat

if TYPE_CHECKING:
    import httpx

    from ._futures import QueueStateObserver, QueueStatus

__all__ = [
    "ClientContext",
    "QueueStateObservable",
    "ReportingRetries",
    "RetryObserver",
    "call",
    "current_retry_observer",
    "decode_response",
    "reporting_retries",
    "start_operation",
]

RetryObserver: TypeAlias = Callable[[int | None], None]
"""Told ``status`` (None for a connection error) before each HTTP retry of a submission."""

_retry_observer: ContextVar[RetryObserver | None] = ContextVar(
    "mint_async_retry_observer", default=None
)


def reporting_retries(observer: RetryObserver) -> ReportingRetries:
    """Report the HTTP retries of every submission started inside this block to ``observer``.

    The one channel by which retries reach a caller (a pipeline's window, the load
    generator's counters): a context variable rather than an ``on_retry`` parameter
    on every public client method. It covers every request a call makes (each
    chunk of a batch, in the tasks the call starts) and, for a sample, the later
    resubmissions after the server lost it (:class:`~mint_async.SampleFuture`
    keeps the observer it was submitted under).
    """
    return ReportingRetries(observer)


class ReportingRetries:
    """The ``with`` block of :func:`reporting_retries`: sets the observer, then restores it.

    A class rather than ``contextlib.contextmanager``: a pipeline enters one per
    submission, and a generator-based context manager costs several times as much to
    enter and leave (as ``_errors.map_transport_errors`` found for every request).
    """

    __slots__ = ("_observer", "_token")

    def __init__(self, observer: RetryObserver) -> None:
        self._observer = observer
        self._token: Token[RetryObserver | None] | None = None

    def __enter__(self) -> None:
        self._token = _retry_observer.set(self._observer)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _retry_observer.reset(self._token)
            self._token = None


def current_retry_observer() -> RetryObserver | None:
    """The observer of the innermost :func:`reporting_retries` block, if any."""
    return _retry_observer.get()


T = TypeVar("T")


@dataclass(kw_only=True)
class ClientContext:
    """The transport, settings and session shared by a ServiceClient's clients."""

    transport: Transport
    config: ClientConfig
    session_id: str | None
    poll: PollSettings
    tokenizers: TokenizerCache
    wire: WireFormat
    owns_transport: bool = False
    """Whether clients created from this context must close the transport (unpickled copies)."""
    model_seq: Iterator[int] = field(default_factory=itertools.count)
    """The session's training-client counter (``create_model.model_seq_id``)."""
    sampling_seq: Iterator[int] = field(default_factory=itertools.count)
    """The session's sampling-session counter (shared by both ways of creating one)."""
    extra: dict[str, Any] = field(default_factory=dict[str, Any])

    @classmethod
    def standalone(
        cls,
        config: ClientConfig,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        owns_transport: bool = True,
    ) -> ClientContext:
        """A context on a new transport of its own, with no session yet.

        An unpickled client makes one and closes it with itself (``owns_transport``);
        a ServiceClient makes one (``owns_transport=False``: its clients leave the
        transport open) and fills in ``session_id`` once it has created the session.
        """
        return cls(
            transport=Transport(config, transport),
            config=config,
            session_id=None,
            poll=PollSettings(
                retrieve_timeout=config.timeouts.retrieve, stuck_timeout=config.stuck_timeout
            ),
            tokenizers=TokenizerCache(),
            wire=WireFormat(config.wire),
            owns_transport=owns_transport,
        )


class QueueStateObservable:
    """The queue-state methods of the sampling and training clients (one ``_monitor`` each)."""

    _monitor: QueueStateMonitor

    def on_queue_state_change(self, observer: QueueStateObserver) -> None:
        """Call ``observer(state, reason)`` whenever the server's queue state changes."""
        self._monitor.add_observer(observer)

    def remove_queue_state_observer(self, observer: QueueStateObserver) -> None:
        """Stop calling an observer added with :meth:`on_queue_state_change`."""
        self._monitor.remove_observer(observer)

    def queue_status(self) -> QueueStatus:
        """The last queue state the server reported for this client's requests."""
        return self._monitor.status()


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


async def start_operation(
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
    on_retry: RetryObserver | None = None,
    resubmit_lost: bool = True,
) -> PollingFuture[T]:
    """Start an asynchronous operation (POST it) and return the future of its result.

    Retries of the submission send the same body, so the same ``seq_id``; they are
    reported to ``on_retry``, else to the :func:`reporting_retries` observer.
    ``body`` (already encoded) takes the place of ``payload`` when given. With
    ``resubmit_lost``, a promise the server reports lost (410) is recovered by
    resubmitting the same body (same ``seq_id``: exactly-once on a deduplicating server).
    """
    started = time.monotonic()
    data = body if body is not None else _codec.encode(payload)
    if on_retry is None:
        on_retry = _retry_observer.get()

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
