"""SamplingClient: sample from a base model or a saved checkpoint.

Request ids are deterministic: ``<sampling_session_id>:<seq_id>``, known before
the request is sent. A submission lost in transit is resubmitted with the
**same** seq_id (a deduplicating server runs it once); only a future the server
declares lost (410) is resubmitted with a new one, as the official SDK does.

Sampling clients pickle (for process pools and Ray-style workers). An unpickled
copy connects lazily with its own transport and draws seq_ids from its own
namespace: ``seq_namespace=k`` gives ``k * 10**9 + n``; without one, a random
namespace in ``[1, 10**9)`` as the official SDK does.
"""

from __future__ import annotations

import itertools
import secrets
import warnings
from typing import TYPE_CHECKING, Any, Final, Unpack

from . import types as t
from ._config import ClientConfig
from ._context import (
    ClientContext,
    QueueStateObservable,
    RetryObserver,
    call,
    current_retry_observer,
    start_operation,
)
from ._exceptions import ClientClosedError, InvalidInputError
from ._futures import PollingFuture, QueueStateMonitor
from ._sample_future import SampleFuture as SampleFuture
from ._sample_request import SampleOptions as SampleOptions
from ._sample_request import build_sample_request
from ._sampler_handle import SamplerHandle, decode_sampler_handle, encode_sampler_handle

if TYPE_CHECKING:
    from ._pipeline import SamplePipeline

__all__ = ["SampleFuture", "SampleOptions", "SamplingClient"]

SEQ_NAMESPACE_SIZE: Final = 10**9


class SamplingClient(QueueStateObservable):
    """Samples from one sampling session.

    Example::

        sc = await service.create_sampling_client(base_model="Qwen/Qwen3-0.6B")
        resp = await sc.sample(types.ModelInput.from_ints(prompt), 4, types.SamplingParams(max_tokens=32))
        for seq in resp.sequences:
            print(seq.tokens)
    """

    def __init__(
        self,
        ctx: ClientContext,
        sampling_session_id: str,
        *,
        base_model: str | None = None,
        model_path: str | None = None,
        tokenizer_id: str | None = None,
        seq_namespace: int = 0,
        pin_namespace: bool = False,
    ) -> None:
        if not 0 <= seq_namespace < SEQ_NAMESPACE_SIZE:
            msg = f"seq_namespace must be in [0, {SEQ_NAMESPACE_SIZE}), got {seq_namespace}"
            raise InvalidInputError(msg)
        self._ctx = ctx
        self._id = sampling_session_id
        self._base_model = base_model
        self._model_path = model_path
        self._tokenizer_id = tokenizer_id
        self._namespace = seq_namespace
        self._counter = itertools.count()
        self._monitor = QueueStateMonitor(f"sampler {sampling_session_id}")
        self._closed = False
        self._explicit_namespace = pin_namespace

    def __repr__(self) -> str:
        return f"SamplingClient(sampling_session_id={self._id!r}, seq_namespace={self._namespace})"

    # -- identity and seq ids --------------------------------------------------------

    @property
    def sampling_session_id(self) -> str:
        """The server's id of this sampling session (``<session_id>:sample:<n>``)."""
        return self._id

    @property
    def model_path(self) -> str | None:
        """The checkpoint sampled from, if not a base model."""
        return self._model_path

    @property
    def seq_namespace(self) -> int:
        """This copy's seq_id namespace (seq_ids are ``namespace * 10**9 + n``)."""
        return self._namespace

    def reserve_seq_id(self) -> int:
        """Reserve the next seq_id of this client (each call takes a new one)."""
        n = next(self._counter)
        if n >= SEQ_NAMESPACE_SIZE:
            msg = "this sampling client used up its seq_id namespace; create a new one"
            raise InvalidInputError(msg)
        return self._namespace * SEQ_NAMESPACE_SIZE + n

    def next_seq_id(self) -> int:
        """Deprecated alias of :meth:`reserve_seq_id` (it reserves; it does not peek)."""
        warnings.warn(
            "SamplingClient.next_seq_id() reserves a seq_id; call reserve_seq_id() instead",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.reserve_seq_id()

    def request_id_for(self, seq_id: int) -> str:
        """The deterministic request id of ``seq_id`` in this session."""
        return f"{self._id}:{seq_id}"

    def request_id_of(self, request: t.SampleRequest) -> str:
        """The request id of a request made by :meth:`build_request` (its seq_id is set)."""
        if request.seq_id is None:
            msg = "the request has no seq_id; make it with build_request()"
            raise InvalidInputError(msg)
        return self.request_id_for(request.seq_id)

    # -- pipelines --------------------------------------------------------------------

    def pipeline(
        self,
        max_in_flight: int = 512,
        max_in_flight_bytes: int = 10 * 2**20,
        *,
        min_in_flight: int = 1,
        fail_fast: bool = False,
    ) -> SamplePipeline:
        """A pipeline of sample requests with backpressure (use it with ``async with``).

        Example::

            async with sc.pipeline(max_in_flight=512) as pipe:
                handles = [await pipe.submit(p, 8, params) for p in prompts]
                async for h in pipe.as_completed():
                    ...
        """
        # Imported here: a client module does not load the pipelines until one is made.
        from ._pipeline import SamplePipeline  # noqa: PLC0415

        return SamplePipeline(
            self,
            max_in_flight=max_in_flight,
            max_in_flight_bytes=max_in_flight_bytes,
            min_in_flight=min_in_flight,
            fail_fast=fail_fast,
        )

    # -- sampling ---------------------------------------------------------------------

    def build_request(
        self,
        prompt: t.ModelInput,
        num_samples: int = 1,
        sampling_params: t.SamplingParams | None = None,
        *,
        include_prompt_logprobs: bool = False,
        topk_prompt_logprobs: int = 0,
        seq_id: int | None = None,
        **options: Unpack[SampleOptions],
    ) -> t.SampleRequest:
        """The validated request (with its seq_id reserved), without sending it.

        ``prompt`` and ``sampling_params`` may also be tinker's own objects
        (converted by their fields); ``options`` are tinker 0.38's sampling
        keywords (see :class:`SampleOptions`).
        """
        return build_sample_request(
            self._id,
            self.reserve_seq_id() if seq_id is None else seq_id,
            prompt,
            num_samples,
            sampling_params,
            include_prompt_logprobs=include_prompt_logprobs,
            topk_prompt_logprobs=topk_prompt_logprobs,
            options=options,
        )

    async def post_request(
        self, request: t.SampleRequest, *, on_retry: RetryObserver | None = None
    ) -> PollingFuture[t.SampleResponse]:
        """POST one request and return the future of its result (no resubmission on 410)."""
        if self._closed:
            msg = "this sampling client is closed"
            raise ClientClosedError(msg)
        # 429 is backpressure, not failure: the transport waits and resubmits
        # the same seq_id; give it a long budget (bounded by give_up_after).
        plan = self._ctx.wire.plan(await self._ctx.transport.server_config())
        return await start_operation(
            self._ctx,
            "api/v1/asample",
            request,
            t.SampleResponse,
            request_type="Sample",
            traffic="sample",
            monitor=self._monitor,
            headers={"X-Tinker-Sampling-Backpressure": "1"},
            max_retries=1000,
            binary_decoder=self._ctx.wire.result_decoder(t.SampleResponse, plan),
            on_retry=on_retry,
            # A lost sample is resubmitted with a *new* seq_id (SampleFuture), as the SDK does.
            resubmit_lost=False,
        )

    async def submit(self, request: t.SampleRequest) -> SampleFuture:
        """Send a request built by :meth:`build_request`; returns once the server accepted it.

        The HTTP retries of the submission, and of its resubmissions should the
        server lose it, are reported to the :func:`~mint_async._context.reporting_retries`
        observer current here.
        """
        on_retry = current_retry_observer()
        inner = await self.post_request(request, on_retry=on_retry)
        return SampleFuture(self, request, inner, on_retry=on_retry)

    async def submit_sample(
        self,
        prompt: t.ModelInput,
        num_samples: int = 1,
        sampling_params: t.SamplingParams | None = None,
        *,
        include_prompt_logprobs: bool = False,
        topk_prompt_logprobs: int = 0,
        **options: Unpack[SampleOptions],
    ) -> SampleFuture:
        """Submit a sample request and return its future (for callers who pipeline)."""
        request = self.build_request(
            prompt,
            num_samples,
            sampling_params,
            include_prompt_logprobs=include_prompt_logprobs,
            topk_prompt_logprobs=topk_prompt_logprobs,
            **options,
        )
        return await self.submit(request)

    async def sample(
        self,
        prompt: t.ModelInput,
        num_samples: int = 1,
        sampling_params: t.SamplingParams | None = None,
        *,
        include_prompt_logprobs: bool = False,
        topk_prompt_logprobs: int = 0,
        **options: Unpack[SampleOptions],
    ) -> t.SampleResponse:
        """Sample ``num_samples`` continuations of ``prompt`` and return them.

        Example::

            resp = await sc.sample(prompt, 2, types.SamplingParams(max_tokens=16, temperature=0.0))
            top = await sc.sample(prompt, 1, params, topk_sample_logprobs=5)   # tinker 0.38 keywords
        """
        fut = await self.submit_sample(
            prompt,
            num_samples,
            sampling_params,
            include_prompt_logprobs=include_prompt_logprobs,
            topk_prompt_logprobs=topk_prompt_logprobs,
            **options,
        )
        return await fut

    async def compute_logprobs(self, prompt: t.ModelInput) -> list[float | None]:
        """The log-probability of each prompt token under the model (the first is None)."""
        resp = await self.sample(
            prompt, 1, t.SamplingParams(max_tokens=1), include_prompt_logprobs=True
        )
        if resp.prompt_logprobs is None:
            msg = "the server returned no prompt logprobs"
            raise InvalidInputError(msg)
        return resp.prompt_logprobs

    # -- metadata ---------------------------------------------------------------------

    async def _sampler_info(self) -> t.GetSamplerResponse:
        info = await call(self._ctx, "GET", f"api/v1/samplers/{self._id}", t.GetSamplerResponse)
        self._base_model = info.base_model
        self._tokenizer_id = self._tokenizer_id or info.tokenizer_id
        return info

    async def get_base_model(self) -> str:
        """The base model this session samples from."""
        if self._base_model is None:
            await self._sampler_info()
        assert self._base_model is not None
        return self._base_model

    async def get_tokenizer(self) -> Any:
        """The model's tokenizer (transformers), loaded once."""
        if self._tokenizer_id is None:
            await self._sampler_info()
        tokenizer_id = self._tokenizer_id or await self.get_base_model()
        return await self._ctx.tokenizers.get(tokenizer_id)

    # -- lifecycle and pickling -----------------------------------------------------

    async def aclose(self) -> None:
        """Close the connections of an unpickled copy (a no-op for clients of a ServiceClient)."""
        self._closed = True
        if self._ctx.owns_transport:
            await self._ctx.transport.aclose()

    async def __aenter__(self) -> SamplingClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def with_seq_namespace(self, seq_namespace: int) -> SamplingClient:
        """A copy drawing seq_ids from namespace ``seq_namespace`` (``k * 10**9 + n``).

        The copy shares this client's connections, and keeps its namespace when
        pickled — give each worker its own ``k`` (e.g. ``worker_index + 1``) so
        their request ids never collide::

            payload = pickle.dumps(sc.with_seq_namespace(worker_index + 1))
        """
        return SamplingClient(
            self._ctx,
            self._id,
            base_model=self._base_model,
            model_path=self._model_path,
            tokenizer_id=self._tokenizer_id,
            seq_namespace=seq_namespace,
            pin_namespace=True,
        )

    def get_sampler_handle(self) -> str:
        """A string naming this sampler, without credentials (tinker 0.38).

        :meth:`from_sampler_handle` opens a client on the same sampler in any
        process, authenticating as that process does.
        """
        return encode_sampler_handle(
            SamplerHandle(
                base_url=self._ctx.config.base_url,
                sampling_session_id=self._id,
                base_model=self._base_model,
                model_path=self._model_path,
                tokenizer_id=self._tokenizer_id,
            )
        )

    @staticmethod
    def from_sampler_handle(handle: str, *, api_key: str | None = None) -> SamplingClient:
        """A client for the sampler behind ``handle`` (key: ``api_key``, else the environment).

        Like an unpickled client it has connections of its own: ``await aclose()`` it.
        """
        h = decode_sampler_handle(handle)
        config = ClientConfig.resolve(base_url=h.base_url, api_key=api_key)
        return _unpickle_sampling_client(
            config, h.sampling_session_id, h.base_model, h.model_path, h.tokenizer_id
        )

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Only credentials and ids travel; the copy reconnects lazily. Without an
        # explicit namespace the copy picks a random one, as the official SDK does.
        return (
            _unpickle_sampling_client,
            (
                self._ctx.config,
                self._id,
                self._base_model,
                self._model_path,
                self._tokenizer_id,
                self._namespace if self._explicit_namespace else None,
            ),
        )


def _unpickle_sampling_client(
    config: ClientConfig,
    sampling_session_id: str,
    base_model: str | None,
    model_path: str | None,
    tokenizer_id: str | None,
    seq_namespace: int | None = None,
) -> SamplingClient:
    namespace = (
        seq_namespace
        if seq_namespace is not None
        else 1 + secrets.randbelow(SEQ_NAMESPACE_SIZE - 1)
    )
    return SamplingClient(
        ClientContext.standalone(config),
        sampling_session_id,
        base_model=base_model,
        model_path=model_path,
        tokenizer_id=tokenizer_id,
        seq_namespace=namespace,
        pin_namespace=seq_namespace is not None,
    )
