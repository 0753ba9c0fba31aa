"""Sampling sessions and requests (protocol §4.1, §4.5)."""

from __future__ import annotations

from ._base import WireStruct, check_int, invalid, sent
from ._model_input import ModelInput
from ._params import SamplingParams
from ._tensors import TensorData


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
    # tinker 0.38 additions, accepted from newer clients; omitted at their defaults.
    topk_sample_logprobs: int = 0
    prompt_alt_tokens_k: int = 0
    record_stability_info: bool = False
    target_prompt_logprobs: TensorData | None = None
    prompt_logprobs_last_n: int | None = None

    def __post_init__(self) -> None:
        check_int("num_samples", self.num_samples, minimum=1)
        check_int("topk_prompt_logprobs", self.topk_prompt_logprobs, minimum=0)
        if self.sampling_session_id is not None and self.seq_id is None:
            msg = "seq_id is required with sampling_session_id"
            raise invalid(msg)
