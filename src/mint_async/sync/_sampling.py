"""The blocking twin of :class:`mint_async.SamplingClient`."""

from __future__ import annotations

import warnings
from typing import Any, Unpack

from .. import types as t
from .._sample_request import SampleOptions
from .._sampling import SamplingClient as AsyncSamplingClient
from ._bridge import ObservedTwin
from ._futures import SampleFuture

__all__ = ["SamplingClient"]


class SamplingClient(ObservedTwin[AsyncSamplingClient]):
    """Blocking twin of :class:`mint_async.SamplingClient`."""

    @property
    def sampling_session_id(self) -> str:
        """The server's id of this sampling session."""
        return self._inner.sampling_session_id

    @property
    def model_path(self) -> str | None:
        """The checkpoint sampled from, if not a base model."""
        return self._inner.model_path

    @property
    def seq_namespace(self) -> int:
        """This client's seq_id namespace (seq_ids are ``namespace * 10**9 + n``)."""
        return self._inner.seq_namespace

    def reserve_seq_id(self) -> int:
        """Reserve the next seq_id of this client (each call takes a new one)."""
        return self._bridge.run_sync(self._inner.reserve_seq_id)

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
        return self._inner.request_id_for(seq_id)

    def get_sampler_handle(self) -> str:
        """A string naming this sampler, without credentials (see the async client)."""
        return self._inner.get_sampler_handle()

    def sample(
        self,
        prompt: t.ModelInput,
        num_samples: int = 1,
        sampling_params: t.SamplingParams | None = None,
        include_prompt_logprobs: bool = False,
        topk_prompt_logprobs: int = 0,
        **options: Unpack[SampleOptions],
    ) -> SampleFuture:
        """Submit a sample; ``.result()`` (or reading ``.sequences``) waits for it.

        ``options``: tinker 0.38's sampling keywords (``topk_sample_logprobs``...).
        """
        fut = self._bridge.call(
            self._inner.submit_sample,
            prompt,
            num_samples,
            sampling_params,
            include_prompt_logprobs=include_prompt_logprobs,
            topk_prompt_logprobs=topk_prompt_logprobs,
            **options,
        )
        return SampleFuture(self._bridge, fut)

    def submit_sample(
        self,
        prompt: t.ModelInput,
        num_samples: int = 1,
        sampling_params: t.SamplingParams | None = None,
        *,
        include_prompt_logprobs: bool = False,
        topk_prompt_logprobs: int = 0,
        **options: Unpack[SampleOptions],
    ) -> SampleFuture:
        """The async client's spelling of :meth:`sample`: returns the future once submitted."""
        return self.sample(
            prompt,
            num_samples,
            sampling_params,
            include_prompt_logprobs,
            topk_prompt_logprobs,
            **options,
        )

    def compute_logprobs(self, prompt: t.ModelInput) -> list[float | None]:
        """Per-token logprobs of ``prompt`` (the first is None)."""
        return self._bridge.call(self._inner.compute_logprobs, prompt)

    def get_tokenizer(self) -> Any:
        """The model's tokenizer."""
        return self._bridge.call(self._inner.get_tokenizer)

    def get_base_model(self) -> str:
        """The base model sampled from."""
        return self._bridge.call(self._inner.get_base_model)
