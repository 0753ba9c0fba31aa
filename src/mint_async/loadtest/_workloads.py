"""What the load generator sends: the three workloads and their parameters.

* :class:`SampleWorkload` — one ``sample`` request per operation.
* :class:`ForwardBackwardWorkload` — one ``forward_backward`` per operation
  (``batch_size`` datums of ``seq_len`` tokens), spread round-robin over
  ``models`` training runs; each run's requests are pipelined in seq order.
* :class:`RLStepWorkload` — one RL round per operation: ``groups`` sample
  requests of ``group_size`` completions each, then ``minibatches``
  forward_backward calls on those completions and an ``optim_step``, all
  submitted back to back (pipelined), then a weight sync
  (``save_weights_and_get_sampling_client``) whose sampler the next round uses.
  A round needs its training run to itself: at most ``models`` rounds run at once.

Every workload has a ``name`` (unique in a run; its results are reported under
it) and a ``weight`` (its share of operations in a mix).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Final, Literal, TypeAlias

from .. import types as t
from .._exceptions import InvalidInputError
from ._distributions import IntDistribution

__all__ = [
    "WORKLOAD_TYPES",
    "ForwardBackwardWorkload",
    "RLStepWorkload",
    "SampleWorkload",
    "Workload",
    "describe_workload",
]

DEFAULT_BASE_MODEL: Final = "Qwen/Qwen3-0.6B"
MAX_TOKEN_ID: Final = 256
"""Token ids are drawn below this: valid for every tokenizer (byte-level ids), the local server's too."""


def _check_common(name: str, weight: float, vocab: int) -> None:
    if (
        not isinstance(name, str)
        or not name
        or not name.replace("-", "").replace("_", "").isalnum()
    ):
        msg = f"a workload name is letters, digits, '-' and '_', got {name!r}"
        raise InvalidInputError(msg)
    if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight > 0):
        msg = f"workload {name}: weight must be a positive number, got {weight!r}"
        raise InvalidInputError(msg)
    if not isinstance(vocab, int) or not 2 <= vocab <= 2**31:
        msg = f"workload {name}: vocab must be an integer in [2, 2**31], got {vocab!r}"
        raise InvalidInputError(msg)


def _check_dist(workload: str, name: str, value: object, minimum: int) -> None:
    if not isinstance(value, IntDistribution):
        msg = (
            f"workload {workload}: {name} must be an IntDistribution "
            f"(IntDistribution.parse('uniform(16,64)')), got {value!r}"
        )
        raise InvalidInputError(msg)
    value.check_range(f"workload {workload}: {name}", minimum)


def _check_int(workload: str, name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        msg = f"workload {workload}: {name} must be an integer in [{low}, {high}], got {value!r}"
        raise InvalidInputError(msg)


def _check_loss(workload: str, loss_fn: object) -> None:
    if loss_fn not in t.LOSS_FNS:
        msg = f"workload {workload}: unknown loss function {loss_fn!r}; expected one of {list(t.LOSS_FNS)}"
        raise InvalidInputError(msg)


def _check_model(workload: str, base_model: object) -> None:
    if not isinstance(base_model, str) or not base_model:
        msg = f"workload {workload}: base_model must be a non-empty string"
        raise InvalidInputError(msg)


@dataclass(frozen=True, kw_only=True)
class SampleWorkload:
    """Sampling requests with random prompts.

    Example::

        SampleWorkload(
            prompt_tokens=IntDistribution.parse("lognormal(4,0.5)"),
            max_tokens=IntDistribution.parse("uniform(16,128)"),
        )
    """

    type: Literal["sample"] = field(default="sample", init=False)
    name: str = "sample"
    weight: float = 1.0
    prompt_tokens: IntDistribution = field(default_factory=lambda: IntDistribution.fixed(32))
    max_tokens: IntDistribution = field(default_factory=lambda: IntDistribution.fixed(16))
    num_samples: IntDistribution = field(default_factory=lambda: IntDistribution.fixed(1))
    temperature: float = 1.0
    base_model: str = DEFAULT_BASE_MODEL
    vocab: int = MAX_TOKEN_ID
    """Prompt token ids are drawn from ``[0, vocab)``."""

    def __post_init__(self) -> None:
        _check_common(self.name, self.weight, self.vocab)
        _check_dist(self.name, "prompt_tokens", self.prompt_tokens, 1)
        _check_dist(self.name, "max_tokens", self.max_tokens, 1)
        _check_dist(self.name, "num_samples", self.num_samples, 1)
        if not (isinstance(self.temperature, (int, float)) and 0 <= self.temperature <= 100):
            msg = f"workload {self.name}: temperature must be in [0, 100], got {self.temperature!r}"
            raise InvalidInputError(msg)
        _check_model(self.name, self.base_model)


@dataclass(frozen=True, kw_only=True)
class ForwardBackwardWorkload:
    """forward_backward requests of ``batch_size`` x ``seq_len`` tokens.

    Example::

        ForwardBackwardWorkload(batch_size=IntDistribution.fixed(8), seq_len=IntDistribution.fixed(512))
    """

    type: Literal["forward_backward"] = field(default="forward_backward", init=False)
    name: str = "forward_backward"
    weight: float = 1.0
    batch_size: IntDistribution = field(default_factory=lambda: IntDistribution.fixed(4))
    seq_len: IntDistribution = field(default_factory=lambda: IntDistribution.fixed(128))
    loss_fn: t.LossFnType = "cross_entropy"
    models: int = 1
    """Training runs the requests are spread over (round-robin)."""
    lora_rank: int = 16
    base_model: str = DEFAULT_BASE_MODEL
    vocab: int = MAX_TOKEN_ID

    def __post_init__(self) -> None:
        _check_common(self.name, self.weight, self.vocab)
        _check_dist(self.name, "batch_size", self.batch_size, 1)
        _check_dist(self.name, "seq_len", self.seq_len, 2)
        _check_loss(self.name, self.loss_fn)
        _check_int(self.name, "models", self.models, 1, 1024)
        _check_int(self.name, "lora_rank", self.lora_rank, 1, 64)
        _check_model(self.name, self.base_model)


@dataclass(frozen=True, kw_only=True)
class RLStepWorkload:
    """RL rounds: sample, train on the samples (pipelined), sync weights.

    Example::

        RLStepWorkload(groups=8, group_size=4, max_tokens=IntDistribution.fixed(32))
    """

    type: Literal["rl-step"] = field(default="rl-step", init=False)
    name: str = "rl-step"
    weight: float = 1.0
    groups: int = 4
    """Sample requests per round."""
    group_size: int = 4
    """Completions per sample request (``num_samples``)."""
    prompt_tokens: IntDistribution = field(default_factory=lambda: IntDistribution.fixed(32))
    max_tokens: IntDistribution = field(default_factory=lambda: IntDistribution.fixed(16))
    minibatches: int = 1
    """forward_backward calls per round (the round's datums split evenly)."""
    loss_fn: t.LossFnType = "importance_sampling"
    learning_rate: float = 1e-4
    models: int | None = None
    """Training runs (one round at a time each); None: the closed-loop concurrency, else 4."""
    lora_rank: int = 16
    base_model: str = DEFAULT_BASE_MODEL
    vocab: int = MAX_TOKEN_ID

    def __post_init__(self) -> None:
        _check_common(self.name, self.weight, self.vocab)
        _check_int(self.name, "groups", self.groups, 1, 100_000)
        _check_int(self.name, "group_size", self.group_size, 1, 10_000)
        _check_dist(self.name, "prompt_tokens", self.prompt_tokens, 2)
        _check_dist(self.name, "max_tokens", self.max_tokens, 1)
        _check_int(self.name, "minibatches", self.minibatches, 1, self.groups * self.group_size)
        _check_loss(self.name, self.loss_fn)
        if not (isinstance(self.learning_rate, (int, float)) and 0 < self.learning_rate < 1):
            msg = (
                f"workload {self.name}: learning_rate must be in (0, 1), got {self.learning_rate!r}"
            )
            raise InvalidInputError(msg)
        if self.models is not None:
            _check_int(self.name, "models", self.models, 1, 1024)
        _check_int(self.name, "lora_rank", self.lora_rank, 1, 64)
        _check_model(self.name, self.base_model)


Workload: TypeAlias = SampleWorkload | ForwardBackwardWorkload | RLStepWorkload
"""Any workload."""

WORKLOAD_TYPES: Final[dict[str, type[Workload]]] = {
    "sample": SampleWorkload,
    "forward_backward": ForwardBackwardWorkload,
    "rl-step": RLStepWorkload,
}


def describe_workload(workload: Workload) -> dict[str, Any]:
    """A JSON-ready description (distributions as spec strings)."""
    out: dict[str, Any] = {}
    for f in fields(workload):
        value = getattr(workload, f.name)
        out[f.name] = str(value) if isinstance(value, IntDistribution) else value
    return out
