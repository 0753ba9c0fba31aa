"""Per-request work limits, checked at submission before anything is computed or densified.

A hostile (or buggy) client can ask for far more work than its body's size
suggests: a ~200-byte sparse ``TensorData`` declaring ``[1, 10_000_000]``, or
``num_samples=100_000``. Every forward / forward_backward / reverse-KL / asample
body is checked here, right after it decodes and before it is accepted:

* token ids must fit int64 (a larger id would fail deep in numpy as a
  "server" error);
* a forward_backward datum's ``loss_fn_inputs`` must have the model input's
  length as their first dimension (``[T]`` or ``[T, K]``) — checked on the
  *declared* shape, so a sparse tensor is never densified to find out;
* each datum's model input, and a sample's prompt + ``max_tokens``, fit the
  model's ``max_context_length`` (the limit ``get_server_capabilities``
  advertises per model; the protocol has no place for the others);
* the request's totals stay under :class:`RequestLimits`: model-input tokens,
  declared loss-input elements (sparse tensors count at their dense size),
  samples per request, sampled tokens per request.

A violation answers 400 naming the limit (``ServerConfig.limits`` configures
them; ``mint-async serve --limits``). The checks return how much work an
accepted request is, so the executor runs large requests in a worker
thread even on an inline backend (``RequestLimits.inline_work``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Final

import numpy as np

from mint_async.types import (
    Datum,
    EncodedTextChunk,
    ForwardBackwardInput,
    ImageAssetPointerChunk,
    ImageChunk,
    ModelInput,
    ReverseKLDatum,
    SampleRequest,
    TensorData,
)

from ._http import HTTPError

__all__ = [
    "RequestLimits",
    "check_fwdbwd",
    "check_reverse_kl",
    "check_sample",
    "check_sample_context",
    "offloaded",
]

_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1


@dataclass(frozen=True, kw_only=True)
class RequestLimits:
    """How much work one request may ask for (a 400 names the limit it broke).

    Example::

        ServerConfig(limits=RequestLimits.parse("num_samples=16,batch_tokens=65536"))
    """

    num_samples: int = 128
    """Most ``num_samples`` one ``asample`` may ask for."""
    sample_tokens: int = 1 << 20
    """Most tokens one ``asample`` may generate (``num_samples * max_tokens``)."""
    batch_tokens: int = 1 << 20
    """Most model-input tokens in one forward / forward_backward / reverse-KL request
    (the client's chunking sends at most ~500k)."""
    batch_elements: int = 1 << 22
    """Most ``loss_fn_inputs`` elements in one request, sparse tensors at their dense size;
    also most top-k prompt logprobs one sample may ask for (prompt tokens * k)."""
    inline_work: int = 1 << 14
    """Requests larger than this (tokens + elements) run in a worker thread even when the
    backend runs inline, so ``/healthz`` and long polls stay responsive meanwhile."""

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) < 1:
                msg = f"limit {f.name} must be >= 1"
                raise ValueError(msg)

    @classmethod
    def parse(cls, spec: str) -> RequestLimits:
        """Parse a ``--limits`` spec ``name=int,...`` (names as the fields); raises ValueError."""
        known = [f.name for f in fields(cls)]
        values: dict[str, int] = {}
        for raw in spec.split(","):
            item = raw.strip()
            if not item:
                continue
            name, sep, value = item.partition("=")
            name = name.strip()
            if not sep or name not in known:
                msg = f"unknown limit {item!r}; expected name=value with name in {known}"
                raise ValueError(msg)
            try:
                values[name] = int(value)
            except ValueError:
                msg = f"bad integer in limit {item!r}"
                raise ValueError(msg) from None
        return cls(**values)


def _check_tokens(tokens: Sequence[int] | Any, what: str) -> None:
    """Token ids must fit int64 (numpy would raise OverflowError later)."""
    if isinstance(tokens, np.ndarray):
        return  # the binary wire's arrays are int64 already
    if tokens and (min(tokens) < _INT64_MIN or max(tokens) > _INT64_MAX):
        msg = f"{what}: token ids must fit in int64"
        raise HTTPError(400, msg)


def _input_tokens(model_input: ModelInput, what: str) -> tuple[int, bool]:
    """Tokens of a model input (images at their expected_tokens), each id checked; and
    whether that is its length (not when an image leaves expected_tokens out)."""
    total = 0
    known = True
    for chunk in model_input.chunks:
        if isinstance(chunk, EncodedTextChunk):
            _check_tokens(chunk.tokens, what)
            total += len(chunk.tokens)
        elif isinstance(chunk, ImageChunk | ImageAssetPointerChunk):
            if chunk.expected_tokens is None:
                known = False
            else:
                total += chunk.expected_tokens
    return total, known


def _elements(td: TensorData) -> int:
    """The declared (dense) element count; Python ints, so no overflow."""
    dims: tuple[int, ...] = td.dims
    return math.prod(dims)


def _over(kind: str, value: int, limit: int, what: str) -> HTTPError:
    return HTTPError(400, f"{what} exceeds the server limit {kind}={limit} (got {value})")


def _check_totals(tokens: int, elements: int, limits: RequestLimits, op: str) -> None:
    if tokens > limits.batch_tokens:
        raise _over("batch_tokens", tokens, limits.batch_tokens, f"{op} model input")
    if elements > limits.batch_elements:
        msg = f"{op} loss_fn_inputs (sparse tensors at their dense size)"
        raise _over("batch_elements", elements, limits.batch_elements, msg)


def _check_datum(datum: Datum, index: int) -> tuple[int, int]:
    """A datum's tokens and declared elements; its inputs' first dimension must be its length."""
    length, known = _input_tokens(datum.model_input, f"datum {index} model_input")
    elements = 0
    for key, td in datum.loss_fn_inputs.items():
        dims = td.dims
        if len(dims) not in (1, 2) or (known and dims[0] != length):
            msg = (
                f"datum {index}: loss_fn_inputs[{key!r}] has shape {list(dims)}; it must be "
                f"[T] or [T, K] with T = {length if known else 'T'}, the model input's length"
            )
            raise HTTPError(400, msg)
        elements += _elements(td)
    return length, elements


def check_fwdbwd(
    inp: ForwardBackwardInput, limits: RequestLimits, op: str, *, context: int | None = None
) -> int:
    """Check a forward / forward_backward batch (each datum within ``context``); returns its work size."""
    tokens = elements = 0
    for i, datum in enumerate(inp.data):
        length, size = _check_datum(datum, i)
        if context is not None and length > context:
            msg = f"datum {i}: a model input of {length} tokens"
            raise _over("max_context_length", length, context, msg)
        tokens += length
        elements += size
        _check_totals(tokens, elements, limits, op)  # per datum: stop early on a huge batch
    return tokens + elements


def check_reverse_kl(data: Sequence[ReverseKLDatum], limits: RequestLimits) -> int:
    """Check a reverse-KL batch; returns its work size (its targets are dense, as sent)."""
    tokens = elements = 0
    for i, datum in enumerate(data):
        tokens += _input_tokens(datum.student_input, f"datum {i} student_input")[0]
        tokens += _input_tokens(datum.reference_input, f"datum {i} reference_input")[0]
        elements += int(datum.target_tokens.data.size)
        _check_totals(tokens, elements, limits, "forward_backward_reverse_kl")
    return tokens + elements


def check_sample(body: SampleRequest, limits: RequestLimits, default_max_tokens: int) -> int:
    """Check an ``asample`` request against the limits; returns its work size."""
    if body.num_samples < 1:
        raise HTTPError(400, f"num_samples must be >= 1 (got {body.num_samples})")
    if body.num_samples > limits.num_samples:
        raise _over("num_samples", body.num_samples, limits.num_samples, "num_samples")
    prompt = _input_tokens(body.prompt, "prompt")[0]
    max_tokens = body.sampling_params.max_tokens
    if max_tokens is None:
        max_tokens = default_max_tokens
    if max_tokens < 0:
        raise HTTPError(400, f"max_tokens must be >= 0 (got {max_tokens})")
    stop = body.sampling_params.stop
    if isinstance(stop, list):
        _check_tokens([s for s in stop if isinstance(s, int)], "stop")
    topk = prompt * body.topk_prompt_logprobs
    if topk > limits.batch_elements:
        msg = "prompt tokens * topk_prompt_logprobs"
        raise _over("batch_elements", topk, limits.batch_elements, msg)
    generated = body.num_samples * max_tokens
    if generated > limits.sample_tokens:
        msg = "num_samples * max_tokens"
        raise _over("sample_tokens", generated, limits.sample_tokens, msg)
    # tinker 0.38's extras: each is an array the server builds, bounded like top-k above.
    extras = 0
    for name, size in (
        ("num_samples * max_tokens * topk_sample_logprobs", generated * body.topk_sample_logprobs),
        ("prompt tokens * prompt_alt_tokens_k", prompt * body.prompt_alt_tokens_k),
    ):
        if size > limits.batch_elements:
            raise _over("batch_elements", size, limits.batch_elements, name)
        extras += size
    if body.target_prompt_logprobs is not None:
        extras += int(body.target_prompt_logprobs.data.size)
    return generated + prompt + topk + extras


def check_sample_context(body: SampleRequest, default_max_tokens: int, context: int) -> None:
    """Prompt + max_tokens must fit the sampled model's context (``max_context_length``)."""
    prompt = _input_tokens(body.prompt, "prompt")[0]
    max_tokens = body.sampling_params.max_tokens
    if max_tokens is None:
        max_tokens = default_max_tokens
    if prompt + max_tokens > context:
        msg = f"prompt ({prompt} tokens) + max_tokens ({max_tokens})"
        raise _over("max_context_length", prompt + max_tokens, context, msg)


def offloaded(size: int, limits: RequestLimits) -> bool:
    """Whether a request of work ``size`` runs in a worker thread (see ``inline_work``)."""
    return size > limits.inline_work
