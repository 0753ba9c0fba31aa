"""The synthetic backend: a tiny bigram language model in numpy, fast and deterministic.

Each base model is a fixed pseudo-random table of next-token logits
conditioned on the previous token, built from low-rank factors seeded by the
model's name. A training run adds a LoRA delta ``A @ B`` (``A``: vocab x rank,
seeded; ``B``: rank x vocab, zero at start), so every number the server returns
is real: ``forward`` logprobs are ``log_softmax(base + A @ B)[prev, target]``,
``loss:sum`` is computed from them, gradients are exact, AdamW moves ``A`` and
``B`` (so losses on repeated data fall), and sampling draws from the same
distribution (sampled logprobs are the model's at temperature 1).

Calls take well under a millisecond for typical requests (see
:mod:`._bigram`), so the backend runs inline on the event loop by default.

Token ids live in the vocabulary of the tiny offline tokenizer
(:func:`._tiny_tokenizer.ensure_tiny_tokenizer`), whose directory every model
reports as its ``tokenizer_id``, so ``get_tokenizer()`` works offline.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from mint_async._exceptions import InvalidInputError
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

from . import _losses
from ._base import Backend, CheckpointKind, ExecutionPolicy, ModelSpec, SampleSpec
from ._bigram import (
    EOS_ID,
    F64,
    I64,
    SyntheticModel,
    SyntheticSampler,
    accumulate_grad,
    base_table,
    reverse_kl,
    seed_of,
    tokens_of,
)
from ._bigram_sampling import Detokenize, decode_table, sample_table
from ._inputs import check_vocab

__all__ = ["DEFAULT_MODELS", "SyntheticBackend", "SyntheticModel", "SyntheticSampler"]

_OVERFLOW: Final = "the interpolation coefficients are too large: the weights overflow float32"

DEFAULT_MODELS: Final = (
    "Qwen/Qwen3-0.6B",
    "Qwen/Qwen3-1.7B",
    "Qwen/Qwen3-4B-Instruct-2507",
    "Qwen/Qwen3-8B",
    "Qwen/Qwen3-30B-A3B",
    "meta-llama/Llama-3.2-1B",
    "meta-llama/Llama-3.1-8B-Instruct",
)
"""Base model names the synthetic backend serves by default (each its own random table)."""

_WEIGHTS_FILE: Final = "lora.npz"
_OPTIMIZER_FILE: Final = "optimizer.npz"
_CONFIG_FILE: Final = "model.json"
_MAX_DECODE_TABLES: Final = 8


def _vocab_size(tokenizer_dir: Path) -> int:
    data = json.loads((tokenizer_dir / "tokenizer.json").read_text())
    ids = list(data["model"]["vocab"].values()) + [t["id"] for t in data.get("added_tokens", [])]
    return int(max(ids)) + 1


class SyntheticBackend(Backend[SyntheticModel, SyntheticSampler]):
    """The numpy bigram backend (see the module docstring)."""

    name = "synthetic"
    execution: ExecutionPolicy

    def __init__(
        self,
        *,
        tokenizer_dir: Path,
        model_names: Sequence[str] = DEFAULT_MODELS,
        seed: int = 0,
        max_context_length: int = 32_768,
        execution: ExecutionPolicy | None = None,
    ) -> None:
        self.execution = execution or ExecutionPolicy(threaded=False)
        self._tokenizer_dir = tokenizer_dir
        self._vocab = _vocab_size(tokenizer_dir)
        self._seed = seed
        self._specs = {
            name: ModelSpec(
                name=name,
                tokenizer_id=str(tokenizer_dir),
                vocab_size=self._vocab,
                max_context_length=max_context_length,
                arch="SyntheticBigramLM",
            )
            for name in model_names
        }
        self._bases: dict[str, F64] = {}
        self._base_samplers: dict[str, SyntheticSampler] = {}
        self._detok: Any = None

    # -- models ------------------------------------------------------------

    def models(self) -> Sequence[ModelSpec]:
        """Every configured base model."""
        return list(self._specs.values())

    def _base(self, name: str) -> F64:
        table = self._bases.get(name)
        if table is None:
            table = self._bases[name] = base_table(name, self._vocab, self._seed)
        return table

    def create_model(self, model_id: str, spec: ModelSpec, lora: LoraConfig) -> SyntheticModel:
        """A new run: ``A`` seeded by ``lora.seed`` (or the model id), ``B`` zero."""
        seed = lora.seed if lora.seed is not None else seed_of(model_id)
        # numpy takes non-negative entropy only; a negative seed gets its own stream.
        rng = np.random.default_rng([seed, self._seed] if seed >= 0 else [-seed, self._seed, 1])
        a = rng.standard_normal((self._vocab, lora.rank)) / np.sqrt(lora.rank)
        b = np.zeros((lora.rank, self._vocab))
        return SyntheticModel(
            model_id=model_id, base_model=spec.name, base=self._base(spec.name), a=a, b=b
        )

    # -- training ------------------------------------------------------------

    def forward_backward(
        self,
        model: SyntheticModel,
        data: Sequence[Datum],
        loss_fn: str,
        loss_fn_config: Mapping[str, float],
        *,
        backward: bool,
    ) -> ForwardBackwardOutput:
        """Exact loss, per-token logprobs and (with ``backward``) gradients."""
        logp = model.logp()
        prevs: list[I64] = []
        targets: list[I64] = []
        coeffs: list[F64] = []
        outputs: list[dict[str, TensorData]] = []
        total = 0.0
        for i, datum in enumerate(data):
            x = tokens_of(datum.model_input, self._vocab, f"datum {i}")
            inputs = _losses.datum_inputs(loss_fn, datum.loss_fn_inputs, x.size, i)
            check_vocab(inputs.targets, self._vocab, f"datum {i} target_tokens")
            # Position t of the input predicts target t (every column of a [T, K] target).
            prev = (
                np.broadcast_to(x[:, None], inputs.targets.shape) if inputs.targets.ndim == 2 else x
            )
            lp = logp[prev, inputs.targets]
            loss, grad = _losses.loss_and_grad(loss_fn, lp, inputs, loss_fn_config)
            total += loss
            outputs.append({"logprobs": TensorData.from_numpy(lp.astype(np.float32))})
            prevs.append(prev.reshape(-1))
            targets.append(inputs.targets.reshape(-1))
            coeffs.append(grad.reshape(-1))
        if backward and prevs:
            accumulate_grad(
                model.grad_logits,
                model.probs(),
                np.concatenate(prevs),
                np.concatenate(targets),
                np.concatenate(coeffs),
            )
        return ForwardBackwardOutput(
            loss_fn_output_type="ArrayRecord", loss_fn_outputs=outputs, metrics={"loss:sum": total}
        )

    def optim_step(self, model: SyntheticModel, params: AdamParams) -> dict[str, float]:
        """One AdamW step on the accumulated gradients (see :meth:`SyntheticModel.adamw`)."""
        return model.adamw(params)

    def forward_backward_reverse_kl(
        self,
        model: SyntheticModel,
        reference: SyntheticSampler,
        data: Sequence[ReverseKLDatum],
        temperature: float,
    ) -> ForwardBackwardReverseKLResponse:
        """Exact per-position reverse KL (see :func:`reverse_kl`)."""
        return reverse_kl(model, reference, data, temperature)

    # -- checkpoints ---------------------------------------------------------

    def _write_config(self, directory: Path, base_model: str, rank: int) -> None:
        config = {
            "backend": self.name,
            "base_model": base_model,
            "rank": rank,
            "vocab_size": self._vocab,
        }
        (directory / _CONFIG_FILE).write_text(json.dumps(config))

    def _read_weights(self, directory: Path, base_model: str | None) -> tuple[str, F64, F64]:
        try:
            config = json.loads((directory / _CONFIG_FILE).read_text())
            with np.load(directory / _WEIGHTS_FILE) as npz:
                a, b = (
                    np.asarray(npz["a"], dtype=np.float64),
                    np.asarray(npz["b"], dtype=np.float64),
                )
        except (OSError, KeyError, ValueError) as exc:
            msg = f"not a synthetic-backend checkpoint: {exc}"
            raise InvalidInputError(msg) from exc
        if config.get("vocab_size") != self._vocab:
            msg = "the checkpoint was saved with a different vocabulary"
            raise InvalidInputError(msg)
        if base_model is not None and config.get("base_model") != base_model:
            msg = f"the checkpoint is of {config.get('base_model')!r}, not {base_model!r}"
            raise InvalidInputError(msg)
        return str(config["base_model"]), a, b

    def save_state(self, model: SyntheticModel, directory: Path, *, kind: CheckpointKind) -> None:
        """``lora.npz`` (+ ``optimizer.npz`` for training checkpoints) and ``model.json``."""
        with (directory / _WEIGHTS_FILE).open("wb") as f:
            np.savez(f, a=model.a, b=model.b)
        if kind == "training":
            with (directory / _OPTIMIZER_FILE).open("wb") as f:
                np.savez(
                    f, m_a=model.m_a, v_a=model.v_a, m_b=model.m_b, v_b=model.v_b, step=model.step
                )
        self._write_config(directory, model.base_model, model.rank)

    def load_state(self, model: SyntheticModel, directory: Path, *, optimizer: bool) -> None:
        """Load weights; with ``optimizer``, AdamW state too (otherwise it is reset)."""
        _, a, b = self._read_weights(directory, model.base_model)
        if a.shape != model.a.shape:
            msg = f"the checkpoint has LoRA rank {a.shape[1]}, this model has rank {model.rank}"
            raise InvalidInputError(msg)
        moments: dict[str, Any] | None = None
        if optimizer:
            path = directory / _OPTIMIZER_FILE
            if not path.exists():
                msg = (
                    "the checkpoint has no optimizer state (sampler checkpoints hold weights only)"
                )
                raise InvalidInputError(msg)
            with np.load(path) as npz:
                moments = {key: np.asarray(npz[key]) for key in npz.files}
        model.a, model.b = a, b
        model.zero_grad()
        model.reset_optimizer()
        if moments is not None:
            model.m_a, model.v_a = (
                moments["m_a"].astype(np.float64),
                moments["v_a"].astype(np.float64),
            )
            model.m_b, model.v_b = (
                moments["m_b"].astype(np.float64),
                moments["v_b"].astype(np.float64),
            )
            model.step = int(moments["step"])
        model.weights_changed()

    def interpolate(
        self, sources: Sequence[Path], coefficients: Sequence[float], out: Path
    ) -> None:
        """Elementwise ``sum(c_i * A_i)``, ``sum(c_i * B_i)`` of same-rank, same-base LoRA weights."""
        loaded = [self._read_weights(src, None) for src in sources]
        base_model = loaded[0][0]
        if any(lb != base_model or la.shape != loaded[0][1].shape for lb, la, _ in loaded):
            msg = "interpolated checkpoints must share the base model and the LoRA rank"
            raise InvalidInputError(msg)
        try:
            # Finite coefficients can still overflow the weights' float32 (1e308 * w).
            with np.errstate(over="raise", invalid="raise"):
                a = sum(
                    (c * la for c, (_, la, _) in zip(coefficients, loaded, strict=True)),
                    np.zeros_like(loaded[0][1]),
                )
                b = sum(
                    (c * lb for c, (_, _, lb) in zip(coefficients, loaded, strict=True)),
                    np.zeros_like(loaded[0][2]),
                )
        except FloatingPointError as exc:
            raise InvalidInputError(_OVERFLOW) from exc
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            raise InvalidInputError(_OVERFLOW)
        with (out / _WEIGHTS_FILE).open("wb") as f:
            np.savez(f, a=a, b=b)
        self._write_config(out, base_model, int(a.shape[1]))

    # -- sampling --------------------------------------------------------------

    def snapshot_sampler(self, model: SyntheticModel) -> SyntheticSampler:
        """The model's current table, frozen."""
        return SyntheticSampler(base_model=model.base_model, logits=model.logits())

    def base_sampler(self, spec: ModelSpec) -> SyntheticSampler:
        """The base table (shared by every caller)."""
        sampler = self._base_samplers.get(spec.name)
        if sampler is None:
            sampler = self._base_samplers[spec.name] = SyntheticSampler(
                base_model=spec.name, logits=self._base(spec.name)
            )
        return sampler

    def load_sampler(self, spec: ModelSpec, directory: Path) -> SyntheticSampler:
        """The table of a saved checkpoint."""
        _, a, b = self._read_weights(directory, spec.name)
        return SyntheticSampler(base_model=spec.name, logits=self._base(spec.name) + a @ b)

    def _detokenizer(self) -> Detokenize:
        if self._detok is None:
            from tokenizers import Tokenizer  # noqa: PLC0415 - only needed for stop strings

            tok: Any = Tokenizer.from_file(str(self._tokenizer_dir / "tokenizer.json"))
            self._detok = tok
        decode: Detokenize = self._detok.decode
        return decode

    def sample(self, sampler: SyntheticSampler, spec: SampleSpec) -> SampleResponse:
        """Draw from the table (see :func:`sample_table`)."""
        detok = self._detokenizer() if spec.stop_strings else None
        cdf = None
        if spec.temperature > 0:
            key = (spec.temperature, spec.top_k, spec.top_p)
            cdf = sampler.tables.get(key)
            if cdf is None:
                if len(sampler.tables) >= _MAX_DECODE_TABLES:
                    sampler.tables.clear()
                cdf = sampler.tables[key] = decode_table(
                    sampler.logits, spec.temperature, spec.top_k, spec.top_p
                )
        return sample_table(
            sampler.logits,
            sampler.logp,
            spec,
            eos_id=EOS_ID,
            detokenize=detok,
            cdf=cdf,
            greedy_next=sampler.greedy_next if spec.temperature == 0 else None,
        )
