"""Sampling sessions and requests (protocol §4.1, §4.5)."""

from __future__ import annotations

from ._base import WireStruct, check_int, invalid, sent
from ._model_input import ModelInput
from ._params import SamplingParams
from ._tensors import TensorData, known_length


class CreateSamplingSessionRequest(
    WireStruct, tag="create_sampling_session", tag_field="type", kw_only=True
):
    """Body of ``create_sampling_session``: sample a base model or a ``tinker://`` checkpoint."""

    session_id: str
    sampling_session_seq_id: int
    base_model: str | None = None
    model_path: str | None = None

    def __post_init__(self) -> None:
        if self.base_model is None and self.model_path is None:
            msg = "a sampling session needs base_model or model_path"
            raise invalid(msg)


class CreateSamplingSessionResponse(
    WireStruct, tag="create_sampling_session", tag_field="type", kw_only=True
):
    """The new sampling session id (``<session_id>:sample:<n>``)."""

    sampling_session_id: str


class GetSamplerResponse(WireStruct, kw_only=True):
    """``GET samplers/{id}``: what a sampler samples."""

    sampler_id: str
    base_model: str
    model_path: str | None = None
    tokenizer_id: str | None = None
    """mint_async extension (ignored by other clients): the tokenizer to load for this sampler."""


class SampleRequest(WireStruct, tag="sample", tag_field="type", kw_only=True):
    """Body of ``asample``. Its request id is ``<sampling_session_id>:<seq_id>``."""

    num_samples: int = sent(1)
    prompt: ModelInput
    sampling_params: SamplingParams
    sampling_session_id: str | None = None
    seq_id: int | None = None
    base_model: str | None = None
    model_path: str | None = None
    prompt_logprobs: bool = sent(False)
    topk_prompt_logprobs: int = sent(0)
    # tinker 0.38 additions (in the SDK's order), omitted at their defaults so a
    # request without them encodes exactly as tinker 0.22 sends it.
    topk_sample_logprobs: int = 0
    """Return the top-k logprobs at each sampled position (``SampledSequence.topk_logprobs``)."""
    target_prompt_logprobs: TensorData | None = None
    """int64 ``[len(prompt) - 1, K]`` token ids whose logprob to return at prompt position
    ``i + 1``; ``-1`` (or, sparse CSR, an unlisted cell) asks for nothing."""
    prompt_alt_tokens_k: int = 0
    """Draw this many alternative tokens at every prompt position after the first."""
    prompt_logprobs_last_n: int | None = None
    """Score only the last N prompt tokens (needs ``prompt_logprobs``; 1 <= N <= len(prompt) - 1)."""
    record_stability_info: bool = False
    """Record each sampled sequence for ``stable_reinforce`` training (by its ``sequence_id``)."""

    def __post_init__(self) -> None:
        check_int("num_samples", self.num_samples, minimum=1)
        check_int("topk_prompt_logprobs", self.topk_prompt_logprobs, minimum=0)
        check_int("topk_sample_logprobs", self.topk_sample_logprobs, minimum=0)
        check_int("prompt_alt_tokens_k", self.prompt_alt_tokens_k, minimum=0)
        if self.sampling_session_id is not None and self.seq_id is None:
            msg = "seq_id is required with sampling_session_id"
            raise invalid(msg)
        length = known_length(self.prompt)
        if self.prompt_logprobs_last_n is not None:
            check_int("prompt_logprobs_last_n", self.prompt_logprobs_last_n, minimum=1)
            if not self.prompt_logprobs:
                msg = "prompt_logprobs_last_n applies to prompt logprobs; set prompt_logprobs"
                raise invalid(msg)
            if length is not None and self.prompt_logprobs_last_n > length - 1:
                msg = f"prompt_logprobs_last_n must be at most len(prompt) - 1 = {length - 1}, got {self.prompt_logprobs_last_n}"
                raise invalid(msg)
        target = self.target_prompt_logprobs
        if target is not None:
            if target.dtype != "int64" or len(target.dims) != 2:
                msg = f"target_prompt_logprobs must be an int64 [len(prompt) - 1, K] tensor of token ids, got {target.dtype} {list(target.dims)}"
                raise invalid(msg)
            if length is not None and target.dims[0] != max(length - 1, 0):
                msg = f"target_prompt_logprobs has {target.dims[0]} rows; the prompt needs len(prompt) - 1 = {max(length - 1, 0)}"
                raise invalid(msg)
            if target.data.size and int(target.data.min()) < -1:
                msg = "target_prompt_logprobs holds token ids, or -1 for no request"
                raise invalid(msg)
