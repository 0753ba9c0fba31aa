"""The torch backend: a real (tiny) Qwen3 language model, LoRA training and sampling.

``mint-async serve --backend torch`` (needs the ``torch`` extra). Every base
model name the synthetic backend serves, plus ``mint-tiny-qwen3``, maps to one
tiny ``transformers`` ``Qwen3ForCausalLM`` (:mod:`._torch_model`) built offline
from the server's seed over the tiny tokenizer's vocabulary; ``get_info``
reports the tokenizer's directory, so ``get_tokenizer()`` works offline.

* Each training run is a copy of the base with LoRA adapters
  (:mod:`._torch_lora`) on the layers its ``LoraConfig`` selects, initialised
  from its ``seed``; ``torch.optim.AdamW`` over the adapters takes every
  ``AdamParams`` field at each step, after optional global-norm clipping.
  Gradients accumulate across ``forward_backward`` calls until ``optim_step``.
* Losses: protocol.md §8.3, shared with the synthetic backend
  (:mod:`._torch_losses`); reverse KL for MinT's distillation endpoint.
* Samplers are frozen copies with the adapters merged into the weights
  (:mod:`._torch_sampling`).
* Checkpoints are safetensors: ``adapter.safetensors`` + ``adapter_config.json``
  (both kinds) and ``optimizer.safetensors`` (training checkpoints).

Compute runs in one worker thread at a time (``ExecutionPolicy(threaded=True,
max_concurrency=1)``) with one intra-op torch thread: the model is so small
that a second thread costs more in synchronisation than it gains (measured:
~40% slower per training step on two cores), and the other core stays free for
the event loops. Results are deterministic. Warnings from torch and
transformers inside any of these calls are contained (:mod:`._warnings`):
logged once at DEBUG, never a failed request or a line on the terminal.
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import torch
from torch import nn

from mint_async._exceptions import InvalidInputError
from mint_async.types import (
    AdamParams,
    Datum,
    ForwardBackwardOutput,
    ForwardBackwardReverseKLResponse,
    LoraConfig,
    ReverseKLDatum,
    SampleResponse,
)

from . import BackendOptions, register_backend
from ._base import Backend, CheckpointKind, ExecutionPolicy, ModelSpec, SampleSpec
from ._torch_checkpoint import read_adapter, read_optimizer, write_adapter, write_optimizer
from ._torch_lora import (
    LoraLinear,
    adapter_of,
    add_lora,
    load_adapter,
    merged_copy,
    mix_adapters,
    target_modules,
)
from ._torch_losses import forward_backward, reverse_kl
from ._torch_model import MAX_CONTEXT, TINY_MODEL_NAME, build_base_model, fingerprint
from ._torch_sampling import Detokenize, sample
from ._warnings import contain_warnings
from .synthetic import DEFAULT_MODELS as SYNTHETIC_MODELS

__all__ = ["DEFAULT_MODELS", "TorchBackend", "TorchModel", "TorchSampler"]

DEFAULT_MODELS: Final = (TINY_MODEL_NAME, *SYNTHETIC_MODELS)
"""Base model names served by default (all the same tiny model)."""

_EOS_TOKEN: Final = "<|im_end|>"  # noqa: S105 - a token, not a password


@dataclass(eq=False)
class TorchModel:
    """One training run: the adapted model, its adapters and its optimizer."""

    model_id: str
    base_model: str
    lora: LoraConfig
    module: nn.Module
    layers: dict[str, LoraLinear]
    optimizer: torch.optim.AdamW = field(init=False)
    steps: int = 0

    def __post_init__(self) -> None:
        self.reset_optimizer()

    def named_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """The trainable parameters, in a fixed order, with checkpoint names."""
        return [
            (f"{name}.{part}", getattr(layer, part))
            for name, layer in self.layers.items()
            for part in ("lora_A", "lora_B")
        ]

    def reset_optimizer(self) -> None:
        """Fresh AdamW state (hyperparameters are set at every step)."""
        self.optimizer = torch.optim.AdamW([p for _, p in self.named_parameters()])
        self.steps = 0


@dataclass(eq=False)
class TorchSampler:
    """Frozen sampling weights: a model with any adapter merged in."""

    base_model: str
    module: nn.Module


def _run_seed(seed: int, backend_seed: int) -> int:
    digest = hashlib.sha256(f"{seed}:{backend_seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class TorchBackend(Backend[TorchModel, TorchSampler]):
    """The torch backend (see the module docstring)."""

    name = "torch"
    execution: ExecutionPolicy = ExecutionPolicy(threaded=True, max_concurrency=1)

    @contain_warnings
    def __init__(
        self,
        *,
        tokenizer_dir: Path,
        model_names: Sequence[str] = DEFAULT_MODELS,
        seed: int = 0,
        num_threads: int | None = 1,
    ) -> None:
        from tokenizers import Tokenizer  # noqa: PLC0415 - ships with transformers

        if num_threads is not None:
            torch.set_num_threads(num_threads)
        tokenizer: Any = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
        self._tokenizer = tokenizer
        self._vocab = int(tokenizer.get_vocab_size(with_added_tokens=True))
        self._eos = int(tokenizer.token_to_id(_EOS_TOKEN))
        self._seed = seed
        self._base = build_base_model(self._vocab, seed)
        self._fingerprint = fingerprint(self._base)
        self._specs = {
            name: ModelSpec(
                name=name,
                tokenizer_id=str(tokenizer_dir),
                vocab_size=self._vocab,
                max_context_length=MAX_CONTEXT,
                arch="Qwen3ForCausalLM",
            )
            for name in model_names
        }

    @property
    def base_module(self) -> nn.Module:
        """The frozen base model every run and sampler starts from."""
        return self._base

    def models(self) -> Sequence[ModelSpec]:
        """Every configured base model name."""
        return list(self._specs.values())

    # -- training ---------------------------------------------------------------

    @contain_warnings
    def create_model(self, model_id: str, spec: ModelSpec, lora: LoraConfig) -> TorchModel:
        """A copy of the base with LoRA on the selected layers, seeded by ``lora.seed`` (or the id)."""
        seed = (
            lora.seed
            if lora.seed is not None
            else int.from_bytes(hashlib.sha256(model_id.encode()).digest()[:8], "little")
        )
        module = copy.deepcopy(self._base)
        names = target_modules(
            module,
            train_attn=lora.train_attn,
            train_mlp=lora.train_mlp,
            train_unembed=lora.train_unembed,
        )
        generator = torch.Generator().manual_seed(_run_seed(seed, self._seed))
        layers = add_lora(module, names, lora.rank, generator)
        return TorchModel(
            model_id=model_id, base_model=spec.name, lora=lora, module=module, layers=layers
        )

    @contain_warnings
    def forward_backward(
        self,
        model: TorchModel,
        data: Sequence[Datum],
        loss_fn: str,
        loss_fn_config: Mapping[str, float],
        *,
        backward: bool,
    ) -> ForwardBackwardOutput:
        """Per-token logprobs and the loss; with ``backward``, gradients accumulate."""
        return forward_backward(
            model.module, data, loss_fn, loss_fn_config, vocab=self._vocab, backward=backward
        )

    @contain_warnings
    def optim_step(self, model: TorchModel, params: AdamParams) -> dict[str, float]:
        """Clip (``grad_clip_norm > 0``), one AdamW step with ``params``, zero the gradients."""
        named = model.named_parameters()
        for _, param in named:
            if param.grad is None:  # no forward_backward since the last step
                param.grad = torch.zeros_like(param)
        grads = [p.grad for _, p in named if p.grad is not None]
        # The global L2 norm before clipping (reported, as the synthetic backend does).
        norm = math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads))
        if params.grad_clip_norm > 0 and norm > params.grad_clip_norm:
            for grad in grads:
                grad.mul_(params.grad_clip_norm / norm)
        for group in model.optimizer.param_groups:
            group["lr"] = params.learning_rate
            group["betas"] = (params.beta1, params.beta2)
            group["eps"] = params.eps
            group["weight_decay"] = params.weight_decay
        optimizer: Any = model.optimizer
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        model.steps += 1
        return {"grad_norm:mean": norm, "step:max": float(model.steps)}

    @contain_warnings
    def forward_backward_reverse_kl(
        self,
        model: TorchModel,
        reference: TorchSampler,
        data: Sequence[ReverseKLDatum],
        temperature: float,
    ) -> ForwardBackwardReverseKLResponse:
        """Exact per-position ``KL(student || reference)`` at ``temperature``, weighted."""
        return reverse_kl(model.module, reference.module, data, temperature, vocab=self._vocab)

    # -- checkpoints -------------------------------------------------------------

    @contain_warnings
    def save_state(self, model: TorchModel, directory: Path, *, kind: CheckpointKind) -> None:
        """The adapter (+ AdamW moments and step for ``training`` checkpoints)."""
        lora = model.lora
        flags = {
            "train_attn": lora.train_attn,
            "train_mlp": lora.train_mlp,
            "train_unembed": lora.train_unembed,
        }
        write_adapter(
            directory,
            adapter_of(model.layers),
            base_model=model.base_model,
            fingerprint=self._fingerprint,
            extra=flags,
        )
        if kind == "training":
            write_optimizer(directory, model.optimizer, model.named_parameters(), model.steps)

    @contain_warnings
    def load_state(self, model: TorchModel, directory: Path, *, optimizer: bool) -> None:
        """Load the adapter; with ``optimizer``, AdamW state too (otherwise it is reset)."""
        _, adapter = read_adapter(
            directory, fingerprint=self._fingerprint, base_model=model.base_model
        )
        # Read everything before changing anything: a bad checkpoint leaves the run as it was.
        saved = read_optimizer(directory, model.named_parameters()) if optimizer else None
        load_adapter(model.layers, adapter)
        model.optimizer.zero_grad(set_to_none=True)
        model.reset_optimizer()
        if saved is not None and saved[1] > 0:
            state, step = saved
            groups = model.optimizer.state_dict()["param_groups"]
            model.optimizer.load_state_dict({"state": state, "param_groups": groups})
            model.steps = step

    @contain_warnings
    def interpolate(
        self, sources: Sequence[Path], coefficients: Sequence[float], out: Path
    ) -> None:
        """An adapter whose update is exactly ``sum(c_i * update_i)`` (see :func:`mix_adapters`).

        With coefficients summing to 1 this is ``sum(c_i * w_i)`` of the full weights.
        """
        if len(sources) != len(coefficients) or not sources:
            msg = "interpolate needs one coefficient per source checkpoint"
            raise InvalidInputError(msg)
        loaded = [
            read_adapter(src, fingerprint=self._fingerprint, base_model=None) for src in sources
        ]
        base_model = loaded[0][0]
        if any(name != base_model for name, _ in loaded):
            msg = "interpolated checkpoints must share the base model"
            raise InvalidInputError(msg)
        mixed = mix_adapters([adapter for _, adapter in loaded], coefficients)
        if not all(bool(torch.isfinite(b).all()) for _, b in mixed.factors.values()):
            # Finite coefficients can still overflow the float32 factors (1e308 * B).
            msg = "the interpolation coefficients are too large: the weights overflow float32"
            raise InvalidInputError(msg)
        write_adapter(
            out,
            mixed,
            base_model=base_model,
            fingerprint=self._fingerprint,
            extra={"interpolated": True},
        )

    # -- sampling ----------------------------------------------------------------

    @contain_warnings
    def snapshot_sampler(self, model: TorchModel) -> TorchSampler:
        """The run's current weights, merged and frozen."""
        return TorchSampler(
            base_model=model.base_model,
            module=merged_copy(self._base, adapter_of(model.layers)),
        )

    def base_sampler(self, spec: ModelSpec) -> TorchSampler:
        """The base model itself (shared, never modified)."""
        return TorchSampler(base_model=spec.name, module=self._base)

    @contain_warnings
    def load_sampler(self, spec: ModelSpec, directory: Path) -> TorchSampler:
        """A saved adapter (either checkpoint kind, or an interpolation) merged into the base."""
        _, adapter = read_adapter(directory, fingerprint=self._fingerprint, base_model=spec.name)
        return TorchSampler(base_model=spec.name, module=merged_copy(self._base, adapter))

    def _detokenize(self) -> Detokenize:
        decode: Detokenize = self._tokenizer.decode
        return decode

    @contain_warnings
    def sample(self, sampler: TorchSampler, spec: SampleSpec) -> SampleResponse:
        """Decode from the sampler's model (see :mod:`._torch_sampling`)."""
        detokenize = self._detokenize() if spec.stop_strings else None
        return sample(
            sampler.module, spec, vocab=self._vocab, eos_id=self._eos, detokenize=detokenize
        )


def _torch_backend(options: BackendOptions) -> Backend[Any, Any]:
    from ._tiny_tokenizer import ensure_tiny_tokenizer  # noqa: PLC0415 - builds files

    return TorchBackend(
        tokenizer_dir=ensure_tiny_tokenizer(),
        model_names=options.model_names or DEFAULT_MODELS,
        seed=options.seed,
    )


register_backend("torch", _torch_backend)
