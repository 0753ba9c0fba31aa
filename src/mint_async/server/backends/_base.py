"""The interface between the local server and the code that does the numerical work.

A backend owns models (LoRA training state on a base model) and samplers
(frozen weights to sample from). The server owns everything else: HTTP,
authentication, sessions, ordering, futures, faults, latency and the checkpoint
store. Backend methods are plain synchronous functions; the server decides
where they run:

* ``ExecutionPolicy(threaded=False)`` — on the event loop. Only for backends
  whose calls take well under a millisecond or so (the synthetic backend).
  Requests larger than ``RequestLimits.inline_work`` (tokens + elements) still
  compute in a worker thread, at most ``max_concurrency`` at a time, so such a
  backend may see one of them in a thread while it serves small calls on the
  loop (never two calls on the same model at once).
* ``ExecutionPolicy(threaded=True, max_concurrency=n)`` — in worker threads,
  at most ``n`` calls at a time across the whole backend, so the event loop
  never blocks on compute (a torch backend: CPU-bound, ``n=1``).

Checkpoint I/O (``save_state``, ``load_state``, ``load_sampler``, ``interpolate``)
always runs in a worker thread, whatever the policy.

Guarantees the server gives a backend:

* calls on one model are never concurrent, and arrive in the model's
  ``seq_id`` order;
* samplers are immutable once created; ``sample`` may run concurrently with
  itself (on any samplers) and with calls on models, up to ``max_concurrency``;
* every input has been decoded into the validated wire Structs of
  :mod:`mint_async.types`; what the wire types cannot check (token ids in the
  vocabulary, loss inputs present, shapes matching) is the backend's to check.

Errors: raise :class:`~mint_async.InvalidInputError` for anything the caller
got wrong (the request then fails with category ``"user"``); any other
exception fails it with category ``"server"``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Generic, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from mint_async.types import (
    AdamParams,
    Datum,
    ForwardBackwardOutput,
    ForwardBackwardReverseKLResponse,
    LoraConfig,
    ReverseKLDatum,
    SampleResponse,
    TensorData,
)

__all__ = [
    "Backend",
    "CheckpointKind",
    "ExecutionPolicy",
    "ModelSpec",
    "SampleSpec",
    "TOP_P_SLACK",
]

ModelT = TypeVar("ModelT")
SamplerT = TypeVar("SamplerT")

TOP_P_SLACK: Final = 1e-6
"""top_p keeps tokens while the mass before them is below ``top_p - TOP_P_SLACK``.

Nucleus sampling keeps the smallest set of most likely tokens whose mass reaches
``top_p`` (the token crossing it included). The slack absorbs float rounding, so
probabilities .5, .3, ... with top_p .8 keep two tokens, not three.
"""

CheckpointKind = Literal["training", "sampler"]
"""``training``: weights and optimizer state; ``sampler``: weights only."""


@dataclass(frozen=True, kw_only=True)
class ExecutionPolicy:
    """Where the server runs a backend's compute.

    ``threaded=False`` runs calls inline on the event loop; ``threaded=True``
    runs them in worker threads, at most ``max_concurrency`` at a time.
    """

    threaded: bool = False
    max_concurrency: int = 1

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            msg = f"max_concurrency must be >= 1, got {self.max_concurrency}"
            raise ValueError(msg)


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """A base model a backend serves.

    ``tokenizer_id`` is what ``get_info`` reports: a Hugging Face id or a local
    directory that ``transformers.AutoTokenizer.from_pretrained`` can load.
    """

    name: str
    tokenizer_id: str
    vocab_size: int
    max_context_length: int = 32_768
    arch: str = "unknown"
    trainable: bool = True
    sampleable: bool = True


@dataclass(frozen=True, kw_only=True)
class SampleSpec:
    """One ``asample`` request, with every default resolved by the server.

    * ``stop_token_ids``: ``None`` keeps the model's implicit end-of-sequence
      stop; a tuple (possibly empty) replaces it.
    * ``seed`` is always set: the caller's seed, or one the server derived from
      its own seed and the request id (so results are reproducible).
    * ``prompt_logprobs``: one entry per prompt token, the first ``None``.
    * ``topk_prompt_logprobs``: ``k > 0`` asks for the ``k`` most likely tokens
      (with their logprobs) at each prompt position, the first ``None``.
    * tinker 0.38 (defaults: off): ``topk_sample_logprobs`` (``k > 0``: the ``k``
      most likely tokens at each sampled position, ``SampledSequence.topk_logprobs``),
      ``prompt_logprobs_last_n``, ``target_prompt_logprobs`` (int64
      ``[len(prompt) - 1, K]``, checked against the prompt by the server) and
      ``prompt_alt_tokens_k``. The prompt-side ones are computed by
      :func:`~mint_async.server.backends._sample_extras.prompt_extras`, which a
      backend may reuse.
    """

    prompt: npt.NDArray[np.int64]
    num_samples: int
    max_tokens: int
    temperature: float
    top_k: int
    top_p: float
    stop_token_ids: tuple[int, ...] | None
    stop_strings: tuple[str, ...]
    seed: int
    prompt_logprobs: bool
    topk_prompt_logprobs: int
    topk_sample_logprobs: int = 0
    prompt_logprobs_last_n: int | None = None
    target_prompt_logprobs: TensorData | None = None
    prompt_alt_tokens_k: int = 0


class Backend(ABC, Generic[ModelT, SamplerT]):
    """What the server needs from the code that trains and samples.

    ``ModelT`` is the backend's per-training-run state, ``SamplerT`` its
    frozen sampling weights; the server stores them and hands them back.
    """

    name: str = "backend"
    """Short name shown by ``mint-async serve`` and in ``get_info``."""

    execution: ExecutionPolicy = ExecutionPolicy()
    """Where the server runs this backend's compute (see the module docstring)."""

    @abstractmethod
    def models(self) -> Sequence[ModelSpec]:
        """The base models this backend serves."""

    @abstractmethod
    def create_model(self, model_id: str, spec: ModelSpec, lora: LoraConfig) -> ModelT:
        """A fresh LoRA training run on ``spec`` (deterministic in ``lora.seed``)."""

    def unload_model(self, model: ModelT) -> None:
        """Release a model's resources; it is never used again."""

    @abstractmethod
    def forward_backward(
        self,
        model: ModelT,
        data: Sequence[Datum],
        loss_fn: str,
        loss_fn_config: Mapping[str, float],
        *,
        backward: bool,
    ) -> ForwardBackwardOutput:
        """Run ``loss_fn`` on ``data``; with ``backward``, accumulate gradients.

        Returns one ``{"logprobs": TensorData(float32)}`` per datum (shape of
        its ``target_tokens``) and metrics keyed ``name:reduction``, including
        ``loss:sum``.
        """

    @abstractmethod
    def optim_step(self, model: ModelT, params: AdamParams) -> dict[str, float]:
        """Apply the accumulated gradients with AdamW, then zero them; returns metrics."""

    @abstractmethod
    def save_state(self, model: ModelT, directory: Path, *, kind: CheckpointKind) -> None:
        """Write the model's weights (and, for ``training``, optimizer state) into ``directory``.

        ``directory`` exists and is empty; the server makes the write atomic.
        """

    @abstractmethod
    def load_state(self, model: ModelT, directory: Path, *, optimizer: bool) -> None:
        """Replace the model's weights (and optimizer state if asked) from a checkpoint."""

    @abstractmethod
    def snapshot_sampler(self, model: ModelT) -> SamplerT:
        """A sampler frozen at the model's current weights."""

    @abstractmethod
    def base_sampler(self, spec: ModelSpec) -> SamplerT:
        """A sampler of the base model itself."""

    @abstractmethod
    def load_sampler(self, spec: ModelSpec, directory: Path) -> SamplerT:
        """A sampler of the weights saved in ``directory`` (either checkpoint kind)."""

    @abstractmethod
    def sample(self, sampler: SamplerT, spec: SampleSpec) -> SampleResponse:
        """``spec.num_samples`` sequences; ``stop_reason`` is ``"stop"`` or ``"length"``.

        Sequence logprobs are those of the model at temperature 1 (so they
        match what ``forward`` returns for the same tokens).
        """

    @abstractmethod
    def forward_backward_reverse_kl(
        self,
        model: ModelT,
        reference: SamplerT,
        data: Sequence[ReverseKLDatum],
        temperature: float,
    ) -> ForwardBackwardReverseKLResponse:
        """Accumulate gradients of the reverse KL ``KL(student || reference)``.

        The last ``len(target_tokens)`` positions of ``student_input`` and of
        ``reference_input`` are aligned with the targets; per-datum outputs
        hold the weighted per-token loss.
        """

    @abstractmethod
    def interpolate(
        self, sources: Sequence[Path], coefficients: Sequence[float], out: Path
    ) -> None:
        """Write into ``out`` the sampler weights ``sum(c_i * w_i)`` of the source checkpoints."""

    def close(self) -> None:
        """Release everything; called once when the server stops."""
