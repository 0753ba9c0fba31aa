"""A short tour of the wire types and the codec (the demo until the quickstart lands)."""

from __future__ import annotations

import time

import numpy as np

from . import _codec
from . import types as t


def run() -> int:
    """Build a forward_backward request from numpy data, encode it, decode a sample result."""
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 151_000, (16, 8192), dtype=np.int64)
    data = [
        t.Datum(
            model_input=t.ModelInput.from_ints(row[:-1]),
            loss_fn_inputs={"target_tokens": row[1:], "weights": np.ones(8191, dtype=np.float32)},
        )
        for row in tokens
    ]
    req = t.ForwardBackwardRequest(
        forward_backward_input=t.ForwardBackwardInput(data=data, loss_fn="cross_entropy"),
        model_id="demo:train:0",
        seq_id=1,
    )
    start = time.perf_counter()
    body = _codec.encode(req)
    took = (time.perf_counter() - start) * 1e3
    print(
        f"encoded a 16 x 8192-token forward_backward request: {len(body) / 1e6:.1f} MB in {took:.1f} ms"
    )
    print(f"  {body[:120].decode()}...")

    sample = t.SampleResponse(
        sequences=[
            t.SampledSequence(
                stop_reason="length",
                tokens_np=rng.integers(0, 151_000, 4096),
                logprobs_np=-rng.exponential(1.0, 4096).astype(np.float32),
            )
            for _ in range(64)
        ]
    )
    wire = _codec.encode(sample)
    start = time.perf_counter()
    decoded = _codec.decode_future_outcome(t.SampleResponse, wire)
    took = (time.perf_counter() - start) * 1e3
    assert isinstance(decoded, t.SampleResponse)
    seq = decoded.sequences[0]
    print(
        f"decoded a 64 x 4096-token SampleResponse ({len(wire) / 1e6:.1f} MB) in {took:.1f} ms: "
        f"tokens {seq.tokens_np.dtype}{seq.tokens_np.shape}, logprobs {seq.logprobs_np.dtype if seq.logprobs_np is not None else None}"
    )
    try:
        t.SamplingParams(max_tokens=-1)
    except ValueError as exc:
        print(f"bad input is refused before anything is sent: {type(exc).__name__}: {exc}")
    return 0
