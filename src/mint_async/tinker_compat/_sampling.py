"""tinker 0.38's ``SamplingClient`` on mint_async's async ``SamplingClient``."""

from __future__ import annotations

import base64
import json
import logging
from typing import TYPE_CHECKING, Any

import msgspec

from .. import types as t
from .._config import ClientConfig
from .._exceptions import InvalidInputError
from .._foreign import as_model_input, as_sampling_params, convert
from ._futures import APIFuture
from ._runtime import runtime

if TYPE_CHECKING:
    from .._sampling import SamplingClient as AsyncSamplingClient

__all__ = ["SamplingClient"]

logger = logging.getLogger("mint_async.tinker_compat")


class SamplingClient:
    """Samples one model (a base model or saved weights); ``sample`` returns an :class:`APIFuture`.

    ``record_stability_info=True`` (from ``create_sampling_client``) asks the
    server to record every sampled sequence for ``stable_reinforce`` training.
    """

    def __init__(
        self, inner: AsyncSamplingClient, *, base_url: str, record_stability_info: bool = False
    ) -> None:
        self._inner = inner
        self._base_url = base_url
        self._record = record_stability_info

    def __repr__(self) -> str:
        return f"tinker_compat.{self._inner!r}"

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Pickles as its handle (no credentials): the copy authenticates as its process does.
        return (_from_handle, (self.get_sampler_handle(),))

    def close(self) -> None:
        """Close the connections of a client opened from a handle (or unpickled); else nothing."""
        runtime().call(self._inner.aclose)

    @property
    def aio(self) -> AsyncSamplingClient:
        """The mint_async client underneath."""
        return self._inner

    def _request(
        self,
        prompt: Any,
        num_samples: int,
        sampling_params: Any,
        *,
        include_prompt_logprobs: bool,
        topk_prompt_logprobs: int,
        topk_sample_logprobs: int,
        target_prompt_logprobs: Any,
        prompt_alt_tokens_k: int,
        prompt_logprobs_last_n: int | None,
    ) -> t.SampleRequest:
        base = self._inner.build_request(
            as_model_input(prompt),
            num_samples,
            as_sampling_params(sampling_params),
            include_prompt_logprobs=include_prompt_logprobs,
            topk_prompt_logprobs=topk_prompt_logprobs,
        )
        target = (
            convert(target_prompt_logprobs, t.TensorData, "target_prompt_logprobs")
            if target_prompt_logprobs is not None
            else None
        )
        try:
            return msgspec.structs.replace(
                base,
                topk_sample_logprobs=topk_sample_logprobs,
                target_prompt_logprobs=target,
                prompt_alt_tokens_k=prompt_alt_tokens_k,
                prompt_logprobs_last_n=prompt_logprobs_last_n,
                record_stability_info=self._record,
            )
        except (msgspec.ValidationError, TypeError) as exc:
            raise InvalidInputError(str(exc)) from exc

    def sample(
        self,
        prompt: Any,
        num_samples: int,
        sampling_params: Any,
        include_prompt_logprobs: bool = False,
        topk_prompt_logprobs: int = 0,
        topk_sample_logprobs: int = 0,
        target_prompt_logprobs: Any = None,
        prompt_alt_tokens_k: int = 0,
        prompt_logprobs_last_n: int | None = None,
    ) -> APIFuture[t.SampleResponse]:
        """Sample ``num_samples`` continuations of ``prompt`` (tinker 0.38's keywords)."""
        request = self._request(
            prompt,
            num_samples,
            sampling_params,
            include_prompt_logprobs=include_prompt_logprobs,
            topk_prompt_logprobs=topk_prompt_logprobs,
            topk_sample_logprobs=topk_sample_logprobs,
            target_prompt_logprobs=target_prompt_logprobs,
            prompt_alt_tokens_k=prompt_alt_tokens_k,
            prompt_logprobs_last_n=prompt_logprobs_last_n,
        )

        async def run() -> t.SampleResponse:
            resp = await (await self._inner.submit(request))
            if resp.prompt_cache_hit_tokens is None:
                resp.prompt_cache_hit_tokens = 0  # tinker's SampleResponse says 0, not None
            return resp

        return APIFuture(runtime().spawn(run))

    async def sample_async(self, *args: Any, **kwargs: Any) -> t.SampleResponse:
        """Deprecated in tinker 0.38: ``await sample(...)`` instead."""
        return await self.sample(*args, **kwargs)

    def compute_logprobs(
        self, prompt: Any, prompt_logprobs_last_n: int | None = None
    ) -> APIFuture[list[float | None]]:
        """The logprob of each prompt token (the first is None), or of the last N only."""
        request = self._request(
            prompt,
            1,
            t.SamplingParams(max_tokens=1),
            include_prompt_logprobs=True,
            topk_prompt_logprobs=0,
            topk_sample_logprobs=0,
            target_prompt_logprobs=None,
            prompt_alt_tokens_k=0,
            prompt_logprobs_last_n=prompt_logprobs_last_n,
        )

        async def run() -> list[float | None]:
            resp = await (await self._inner.submit(request))
            if resp.prompt_logprobs is None:
                msg = "the server returned no prompt logprobs"
                raise InvalidInputError(msg)
            return resp.prompt_logprobs

        return APIFuture(runtime().spawn(run))

    async def compute_logprobs_async(self, *args: Any, **kwargs: Any) -> list[float | None]:
        """Deprecated in tinker 0.38: ``await compute_logprobs(...)`` instead."""
        return await self.compute_logprobs(*args, **kwargs)

    def get_tokenizer(self) -> Any:
        """The base model's tokenizer (``transformers``)."""
        return runtime().call(self._inner.get_tokenizer)

    def get_base_model(self) -> str:
        """The base model's name."""
        return runtime().call(self._inner.get_base_model)

    async def get_base_model_async(self) -> str:
        """The base model's name."""
        return await APIFuture(runtime().spawn(self._inner.get_base_model))

    def get_sampler_handle(self) -> str:
        """A string naming this sampler, without credentials, for other processes.

        :meth:`from_sampler_handle` opens a new client on the same sampler.
        """
        state = {
            "base_url": self._base_url,
            "sampling_session_id": self._inner.sampling_session_id,
            "model_path": self._inner.model_path,
            "record_stability_info": self._record,
        }
        payload = json.dumps(state, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(payload).decode()

    @staticmethod
    def from_sampler_handle(handle: str, *, api_key: str | None = None) -> SamplingClient:
        """A client for the sampler behind ``handle`` (credentials from ``api_key`` or the environment)."""
        return _from_handle(handle, api_key=api_key)

    def on_queue_state_change(self, queue_state: Any, queue_state_reason: str | None) -> None:
        """Log a paused queue (tinker's observer hook)."""
        if str(queue_state).lower() != "active":
            logger.warning("sampling is paused (%s): %s", queue_state, queue_state_reason)


def _from_handle(handle: str, api_key: str | None = None) -> SamplingClient:
    from .._sampling import (  # noqa: PLC0415 - the unpickling path
        _unpickle_sampling_client,  # pyright: ignore[reportPrivateUsage]
    )

    try:
        state = json.loads(base64.urlsafe_b64decode(handle.encode()))
        base_url = str(state["base_url"])
        session = str(state["sampling_session_id"])
        model_path = state.get("model_path")
        record = bool(state.get("record_stability_info", False))
    except (ValueError, KeyError, TypeError) as exc:
        msg = f"not a sampler handle: {exc}"
        raise InvalidInputError(msg) from exc
    config = ClientConfig.resolve(base_url=base_url, api_key=api_key)
    inner = _unpickle_sampling_client(config, session, None, model_path, None)
    return SamplingClient(inner, base_url=base_url, record_stability_info=record)
