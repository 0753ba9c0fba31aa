"""Pipelines: many requests in flight at once, with backpressure and an adaptive window.

``async with sampling_client.pipeline(max_in_flight=512) as pipe:`` — each
``await pipe.submit(...)`` returns a handle as soon as the request may go (it
blocks only while the pipeline is full), the request is sent and its result
polled in the pipeline's task group, and results come out of
``pipe.as_completed()``, ``pipe.in_order()`` or by awaiting a handle.

The window adapts (AIMD): a 429 or a paused queue state halves it (at most once
per generation of in-flight requests, as TCP does), each success grows it by
``1/window``, never beyond ``max_in_flight`` nor below ``min_in_flight``. A byte
budget bounds the estimated size of what is in flight.

One failure does not cancel the rest unless ``fail_fast=True``. Leaving the
``async with`` block — normally, by an exception or by cancellation — cancels
whatever is still outstanding and stops its polls: consume results inside it.
A cancelled request's handle ends with ``ClientClosedError`` (never pending
forever, never a success).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from . import types as t
from ._chunking import estimate_bytes, estimate_input_bytes
from ._context import reporting_retries
from ._futures import APIFuture
from ._pipeline_base import Pipeline, QueueStateSource
from ._pipeline_handle import Handle as Handle
from ._pipeline_handle import PipelineStatistics as PipelineStatistics

__all__ = ["Handle", "PipelineStatistics", "SamplePipeline", "TrainingPipeline"]


class SamplingClientLike(QueueStateSource, Protocol):
    """What a :class:`SamplePipeline` needs of a :class:`~mint_async.SamplingClient`."""

    def build_request(
        self,
        prompt: t.ModelInput,
        num_samples: int = 1,
        sampling_params: t.SamplingParams | None = None,
        *,
        include_prompt_logprobs: bool = False,
        topk_prompt_logprobs: int = 0,
        record_stability_info: bool = False,
    ) -> t.SampleRequest: ...
    def request_id_of(self, request: t.SampleRequest) -> str: ...
    async def submit(self, request: t.SampleRequest) -> APIFuture[t.SampleResponse]: ...


class TrainingClientLike(QueueStateSource, Protocol):
    """What a :class:`TrainingPipeline` needs of a :class:`~mint_async.TrainingClient`."""

    async def forward_backward(
        self,
        data: Sequence[t.Datum],
        loss_fn: t.LossFnType = "cross_entropy",
        loss_fn_config: dict[str, float] | None = None,
    ) -> APIFuture[t.ForwardBackwardOutput]: ...
    async def forward(
        self,
        data: Sequence[t.Datum],
        loss_fn: t.LossFnType = "cross_entropy",
        loss_fn_config: dict[str, float] | None = None,
    ) -> APIFuture[t.ForwardBackwardOutput]: ...
    async def optim_step(
        self, adam_params: t.AdamParams | None = None, /
    ) -> APIFuture[t.OptimStepResponse]: ...
    async def save_state(self, name: str) -> APIFuture[t.SaveWeightsResponse]: ...
    async def save_weights_for_sampler(
        self, name: str
    ) -> APIFuture[t.SaveWeightsForSamplerResponse]: ...


class SamplePipeline(Pipeline[t.SampleResponse]):
    """A pipeline of sample requests. Create it with ``SamplingClient.pipeline(...)``.

    Example::

        async with sc.pipeline(max_in_flight=512) as pipe:
            for prompt in prompts:
                await pipe.submit(prompt, 8, params, tag=prompt)
            async for handle in pipe.as_completed():
                use(handle.tag, handle.result())
    """

    def __init__(self, client: SamplingClientLike, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self._client = client

    async def submit(
        self,
        prompt: t.ModelInput,
        num_samples: int = 1,
        sampling_params: t.SamplingParams | None = None,
        *,
        include_prompt_logprobs: bool = False,
        topk_prompt_logprobs: int = 0,
        record_stability_info: bool = False,
        tag: object = None,
    ) -> Handle[t.SampleResponse]:
        """Queue a sample request; blocks only while the pipeline is full.

        The returned handle's ``request_id`` (``<sampling_session_id>:<seq_id>``) is
        known before the request is sent. ``record_stability_info`` records the
        sampled sequences for ``stable_reinforce`` (tinker 0.38).
        """
        request = self._client.build_request(
            prompt,
            num_samples,
            sampling_params,
            include_prompt_logprobs=include_prompt_logprobs,
            topk_prompt_logprobs=topk_prompt_logprobs,
            record_stability_info=record_stability_info,
        )
        handle = self._new_handle(
            request_id=self._client.request_id_of(request),
            tag=tag,
            nbytes=estimate_input_bytes(prompt),
        )
        await self._admit(handle)
        self._task_group().start_soon(
            self._run, handle, functools.partial(self._send, handle, request)
        )
        return handle

    async def _send(
        self, handle: Handle[t.SampleResponse], request: t.SampleRequest
    ) -> APIFuture[t.SampleResponse]:
        with reporting_retries(self._retry_observer(handle)):  # 429s shrink the window
            fut = await self._client.submit(request)
        handle.attach(fut)  # request_id follows resubmissions after a 410
        return fut


class TrainingPipeline(Pipeline[Any]):
    """Training operations queued back to back (in seq order), results awaited later.

    Each call submits in the caller's task — so seq_ids follow call order — and
    blocks only while the pipeline is full; the pipeline polls the results.
    Create it with ``TrainingClient.pipeline(...)``.

    Example::

        async with tc.pipeline(max_in_flight=8) as pipe:
            for batch in batches:
                fb = await pipe.forward_backward(batch, "cross_entropy")
                await pipe.optim_step(types.AdamParams(learning_rate=1e-4))
            async for handle in pipe.in_order():
                print(handle.tag, handle.result())
    """

    def __init__(self, client: TrainingClientLike, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self._client = client

    async def _op(
        self, tag: object, nbytes: int, send: Callable[[], Awaitable[APIFuture[Any]]]
    ) -> Handle[Any]:
        handle = self._new_handle(request_id=None, tag=tag, nbytes=nbytes)
        await self._admit(handle)
        try:
            with reporting_retries(self._retry_observer(handle)):  # 429s shrink the window
                fut = await send()
        except Exception as exc:
            self._finish(handle, None, exc)
            raise
        except BaseException:
            # Cancelled mid-submit. Once its seq_id was taken the submission itself
            # completed (shielded, see _ordering), so the server may run it; but its
            # result is not collected and it must not count as a success.
            self._cancel(handle, "its submit() was cancelled; the server may still run it")
            raise
        handle.attach(fut)

        async def job() -> APIFuture[Any]:
            return fut

        self._task_group().start_soon(self._run, handle, job)
        return handle

    async def forward_backward(
        self,
        data: list[t.Datum],
        loss_fn: t.LossFnType = "cross_entropy",
        loss_fn_config: dict[str, float] | None = None,
        *,
        tag: object = "forward_backward",
    ) -> Handle[t.ForwardBackwardOutput]:
        """Submit a forward_backward now (in order); its result arrives on the handle."""
        nbytes = sum(estimate_bytes(d) for d in data)
        return await self._op(
            tag, nbytes, lambda: self._client.forward_backward(data, loss_fn, loss_fn_config)
        )

    async def forward(
        self,
        data: list[t.Datum],
        loss_fn: t.LossFnType = "cross_entropy",
        loss_fn_config: dict[str, float] | None = None,
        *,
        tag: object = "forward",
    ) -> Handle[t.ForwardBackwardOutput]:
        """Submit a forward pass now (in order)."""
        nbytes = sum(estimate_bytes(d) for d in data)
        return await self._op(
            tag, nbytes, lambda: self._client.forward(data, loss_fn, loss_fn_config)
        )

    async def optim_step(
        self, adam_params: t.AdamParams | None = None, *, tag: object = "optim_step"
    ) -> Handle[t.OptimStepResponse]:
        """Submit an optimizer step now (in order)."""
        return await self._op(tag, 0, lambda: self._client.optim_step(adam_params))

    async def save_state(
        self, name: str, *, tag: object = "save_state"
    ) -> Handle[t.SaveWeightsResponse]:
        """Submit a training checkpoint save now (in order)."""
        return await self._op(tag, 0, lambda: self._client.save_state(name))

    async def save_weights_for_sampler(
        self, name: str, *, tag: object = "save_weights_for_sampler"
    ) -> Handle[t.SaveWeightsForSamplerResponse]:
        """Submit a sampler checkpoint save now (in order)."""
        return await self._op(tag, 0, lambda: self._client.save_weights_for_sampler(name))
