"""The future of one sample request, and what happens when the server loses it.

A sample the server declares lost (410) is resubmitted with a **new** seq_id,
as the official SDK does — a deduplicating server would otherwise answer the
old seq_id with the lost result again — up to :data:`MAX_LOST_SAMPLE_RESUBMITS`
times. The future follows the current attempt: ``seq_id``, ``request_id``.
"""

from __future__ import annotations

import logging
from typing import Final, Protocol

import msgspec

from . import types as t
from ._context import RetryObserver
from ._exceptions import PromiseExpiredError
from ._futures import APIFuture, PollingFuture

__all__ = ["MAX_LOST_SAMPLE_RESUBMITS", "SampleFuture", "SampleSender"]

logger = logging.getLogger("mint_async")

MAX_LOST_SAMPLE_RESUBMITS: Final = 5
"""How many times a sample the server lost (410) is resubmitted, each time with a new
seq_id, before the error surfaces (the polling future's own resubmission of a lost
promise, with the same body, is off for samples)."""


class SampleSender(Protocol):
    """What a :class:`SampleFuture` needs of its :class:`~mint_async.SamplingClient`."""

    def reserve_seq_id(self) -> int: ...
    def request_id_of(self, request: t.SampleRequest) -> str: ...
    async def post_request(
        self, request: t.SampleRequest, *, on_retry: RetryObserver | None = None
    ) -> PollingFuture[t.SampleResponse]: ...


class SampleFuture(APIFuture[t.SampleResponse]):
    """The future of one sample request; its ``request_id`` is known before it is sent."""

    def __init__(
        self,
        client: SampleSender,
        request: t.SampleRequest,
        inner: PollingFuture[t.SampleResponse],
        *,
        on_retry: RetryObserver | None = None,
    ) -> None:
        super().__init__()
        self._client = client
        self._request = request
        self._inner = inner
        self._on_retry = on_retry
        """Told of the HTTP retries of resubmissions too (the first submission's observer)."""
        self.resubmits: int = 0
        """How often the request was resubmitted after the server lost it."""
        self._earlier_polls = 0

    @property
    def seq_id(self) -> int:
        """The seq_id of the current attempt."""
        assert self._request.seq_id is not None
        return self._request.seq_id

    @property
    def request_id(self) -> str:
        """``<sampling_session_id>:<seq_id>`` of the current attempt."""
        return self._client.request_id_of(self._request)

    @property
    def polls(self) -> int:
        """``retrieve_future`` calls made for the current attempt."""
        return self._inner.polls

    @property
    def total_polls(self) -> int:
        """``retrieve_future`` calls made over every attempt (resubmissions included)."""
        return self._earlier_polls + self._inner.polls

    async def _resolve(self) -> t.SampleResponse:
        while True:
            try:
                return _stamp_sequence_ids(await self._inner, self._inner.promise)
            except PromiseExpiredError:
                if self.resubmits >= MAX_LOST_SAMPLE_RESUBMITS:
                    raise
                self.resubmits += 1
                self._earlier_polls += self._inner.polls
                old = self.request_id
                self._request = msgspec.structs.replace(
                    self._request, seq_id=self._client.reserve_seq_id()
                )
                logger.debug(
                    "sample %s expired on the server; resubmitting as %s", old, self.request_id
                )
                self._inner = await self._client.post_request(
                    self._request, on_retry=self._on_retry
                )


def _stamp_sequence_ids(resp: t.SampleResponse, promise: t.UntypedAPIFuture) -> t.SampleResponse:
    """Name each sequence by the promise's ``sample_sequence_ids`` (tinker 0.38), in order.

    The ids come with the submission's answer, not with the result; provenance
    spans (``stable_reinforce``) refer to sequences by them.
    """
    ids = promise.sample_sequence_ids
    if ids and len(ids) == len(resp.sequences):
        for seq, sequence_id in zip(resp.sequences, ids, strict=True):
            if seq.sequence_id is None:
                seq.sequence_id = sequence_id
    return resp
