"""Hypothesis strategies for every msgspec Struct in ``mint_async.types.__all__``.

Structs whose constructors validate (ranges, matching lengths, numpy fields) have
hand-written strategies in ``OVERRIDES``; every other Struct is built field by
field from msgspec's own view of its annotations (``msgspec.inspect``), so a new
wire type is covered without touching the tests. A field type the generic builder
does not know raises, so such a type cannot slip through untested.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

import msgspec
import msgspec.inspect as mi
import numpy as np
from hypothesis import reject
from hypothesis import strategies as st

from mint_async import InvalidInputError, _codec
from mint_async import types as t

__all__ = [
    "OVERRIDES",
    "WIRE_STRUCTS",
    "garbage_bodies",
    "json_values",
    "strategy_for",
    "tensors",
]

WIRE_STRUCTS: list[type[msgspec.Struct]] = sorted(
    {
        obj
        for name in t.__all__
        if isinstance(obj := getattr(t, name), type) and issubclass(obj, msgspec.Struct)
    },
    key=lambda tp: tp.__name__,
)
"""Every msgspec Struct exported by ``mint_async.types`` (aliases once), by name."""

INT64 = st.integers(-(2**63), 2**63 - 1)
token_ids = st.integers(min_value=0, max_value=2**31 - 1)
f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
finite = st.floats(allow_nan=False, allow_infinity=False)
names = st.text(min_size=1, max_size=12)

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | INT64 | finite | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
"""JSON values msgspec round-trips exactly (int64 integers, finite floats)."""


# ---------------------------------------------------------------------------
# Hand-written strategies (constructors that validate)
# ---------------------------------------------------------------------------


@st.composite
def model_inputs(draw: st.DrawFn) -> t.ModelInput:
    chunks: list[t.ModelInputChunk] = []
    for kind in draw(st.lists(st.sampled_from(["text", "np", "image", "pointer"]), max_size=4)):
        if kind == "text":
            chunks.append(t.EncodedTextChunk(tokens=draw(st.lists(token_ids, max_size=20))))
        elif kind == "np":
            chunks.append(
                t.EncodedTextChunk(
                    tokens=np.array(draw(st.lists(token_ids, max_size=20)), dtype=np.int64)
                )
            )
        elif kind == "image":
            chunks.append(
                t.ImageChunk(
                    data=draw(st.binary(max_size=32)),
                    format=draw(st.sampled_from(["png", "jpeg"])),
                    expected_tokens=draw(st.none() | st.integers(0, 100)),
                )
            )
        else:
            chunks.append(
                t.ImageAssetPointerChunk(
                    format="jpeg", location=draw(names), expected_tokens=draw(st.integers(0, 9))
                )
            )
    return t.ModelInput(chunks=chunks)


def _values(dtype: t.TensorDtype, n: int) -> st.SearchStrategy[list[Any]]:
    element: st.SearchStrategy[Any] = INT64 if dtype == "int64" else f32
    return st.lists(element, min_size=n, max_size=n)


@st.composite
def tensors(draw: st.DrawFn, rows: int | None = None) -> t.TensorData:
    """A dense tensor (list or numpy data, shape given or not) or a sparse CSR one."""
    n = rows if rows is not None else draw(st.integers(0, 16))
    dtype: t.TensorDtype = draw(st.sampled_from(["int64", "float32"]))
    if draw(st.integers(0, 3)) == 0:
        # sparse CSR: per row, a sorted set of occupied columns
        cols = draw(st.integers(1, 6))
        occupied = [
            sorted(draw(st.sets(st.integers(0, cols - 1), max_size=cols))) for _ in range(n)
        ]
        crow = [0]
        for row in occupied:
            crow.append(crow[-1] + len(row))
        data: Any = draw(_values(dtype, crow[-1]))
        if draw(st.booleans()):
            data = np.array(data, dtype=dtype)
        return t.TensorData(
            data=data,
            dtype=dtype,
            shape=[n, cols],
            sparse_crow_indices=crow,
            sparse_col_indices=[c for row in occupied for c in row],
        )
    data = draw(_values(dtype, n))
    if draw(st.booleans()):
        data = np.array(data, dtype=dtype)
    shape = draw(st.sampled_from([None, [n]])) if rows is None else [n]
    return t.TensorData(data=data, dtype=dtype, shape=shape)


@st.composite
def mint_tensors(draw: st.DrawFn) -> t.MintTensorData:
    dtype: t.TensorDtype = draw(st.sampled_from(["int64", "float32"]))
    n = draw(st.integers(0, 8))
    return t.MintTensorData(
        data=draw(_values(dtype, n)), shape=draw(st.sampled_from([None, [n]])), dtype=dtype
    )


@st.composite
def tilings(draw: st.DrawFn, length: int) -> list[t.ProvenanceSpan]:
    """Provenance runs whose lengths add up to ``length``."""
    spans: list[t.ProvenanceSpan] = []
    left = length
    while left > 0 or (not spans and draw(st.booleans())):
        n = draw(st.integers(0, left))
        seq, offset = draw(names), draw(st.integers(0, 2**40))
        if draw(st.booleans()):
            spans.append(t.SampledProvenanceSpan(sequence_id=seq, offset=offset, length=n))
        else:
            spans.append(t.PromptProvenanceSpan(sequence_id=seq, offset=offset, length=n))
        left -= n
    return spans


@st.composite
def datums(draw: st.DrawFn) -> t.Datum:
    tokens = draw(st.lists(token_ids, min_size=1, max_size=16))
    keys = draw(st.lists(names, max_size=3, unique=True))
    provenance = draw(st.booleans())
    return t.Datum(
        model_input=t.ModelInput.from_ints(tokens),
        loss_fn_inputs={k: draw(tensors(rows=len(tokens))) for k in keys},
        # No target_tokens among the keys, so only the input tiling is checked.
        model_input_spans=draw(tilings(len(tokens))) if provenance else None,
        loss_fn_input_spans=draw(tilings(draw(st.integers(0, 4)))) if provenance else None,
    )


sampling_params = st.builds(
    t.SamplingParams,
    max_tokens=st.none() | st.integers(0, 4096),
    seed=st.none() | st.integers(0, 2**63),
    stop=st.none() | names | st.lists(names, max_size=3) | st.lists(token_ids, max_size=3),
    temperature=st.floats(0, 5),
    top_k=st.just(-1) | st.integers(1, 100),
    top_p=st.floats(0.01, 1),
)

adam_params = st.builds(
    t.AdamParams,
    learning_rate=st.floats(0, 1),
    beta1=st.floats(0, 0.999),
    beta2=st.floats(0, 0.999),
    eps=st.floats(0, 1e-3),
    weight_decay=st.floats(0, 1),
    grad_clip_norm=st.floats(0, 10),
)


@st.composite
def sampled_sequences(draw: st.DrawFn) -> t.SampledSequence:
    toks = draw(st.lists(token_ids, max_size=12))
    lps = draw(st.none() | st.lists(f32, min_size=len(toks), max_size=len(toks)))
    row = st.none() | st.lists(st.tuples(token_ids, f32), min_size=1, max_size=3)
    topk = draw(st.none() | st.lists(row, min_size=len(toks), max_size=len(toks)))
    return t.SampledSequence(
        stop_reason=draw(st.sampled_from(["stop", "length"])),
        tokens_np=toks,
        logprobs_np=lps,
        topk_logprobs=topk,
        sequence_id=draw(st.none() | names),
    )


@st.composite
def sample_responses(draw: st.DrawFn) -> t.SampleResponse:
    plp = draw(st.none() | st.lists(st.none() | st.floats(-50, 0), max_size=6))
    topk = draw(
        st.none()
        | st.lists(
            st.none() | st.lists(st.tuples(token_ids, st.floats(-50, 0)), max_size=3), max_size=4
        )
    )
    return t.SampleResponse(
        sequences=draw(st.lists(sampled_sequences(), max_size=4)),
        prompt_logprobs=plp,
        topk_prompt_logprobs=topk,
        prompt_cache_hit_tokens=draw(st.none() | st.integers(0, 10**6)),
        target_prompt_logprobs=draw(st.none() | tensors()),
        prompt_alt_tokens=draw(
            st.none() | st.builds(t.PromptAltTokens, tokens=tensors(), logprobs=tensors())
        ),
    )


@st.composite
def fb_outputs(draw: st.DrawFn) -> t.ForwardBackwardOutput:
    outs = [{"logprobs": draw(tensors())} for _ in range(draw(st.integers(0, 3)))]
    metrics = draw(
        st.dictionaries(names.map(lambda s: f"{s}:sum"), st.floats(-1e6, 1e6), max_size=3)
    )
    return t.ForwardBackwardOutput(
        loss_fn_output_type="ArrayRecord", loss_fn_outputs=outs, metrics=metrics
    )


@st.composite
def fb_inputs(draw: st.DrawFn) -> t.ForwardBackwardInput:
    return t.ForwardBackwardInput(
        data=draw(st.lists(datums(), max_size=3)),
        loss_fn=draw(st.sampled_from(sorted(t.LOSS_FNS))),
        loss_fn_config=draw(st.none() | st.dictionaries(names, st.floats(-10, 10), max_size=2)),
    )


@st.composite
def sample_requests(draw: st.DrawFn) -> t.SampleRequest:
    session = draw(st.booleans())
    prompt = draw(model_inputs())
    prompt_logprobs = draw(st.booleans())
    # The 0.38 extras are checked against the prompt's length (when it is known).
    length = sum(
        len(c.tokens) if isinstance(c, t.EncodedTextChunk) else (c.expected_tokens or 0)
        for c in prompt.chunks
    )
    rows = max(length - 1, 0)
    k = draw(st.integers(0, 3))
    target = draw(
        st.none()
        | st.lists(st.integers(-1, 2**40), min_size=rows * k, max_size=rows * k).map(
            lambda ids: t.TensorData(data=ids, dtype="int64", shape=[rows, k])
        )
    )
    last_n = (
        draw(st.none() | st.integers(1, length - 1)) if prompt_logprobs and length >= 2 else None
    )
    return t.SampleRequest(
        num_samples=draw(st.integers(1, 8)),
        prompt=prompt,
        sampling_params=draw(sampling_params),
        sampling_session_id=draw(names) if session else None,
        seq_id=draw(st.integers(0, 2**40)) if session else draw(st.none() | st.integers(0, 9)),
        base_model=draw(st.none() | names),
        prompt_logprobs=prompt_logprobs,
        topk_prompt_logprobs=draw(st.integers(0, 20)),
        topk_sample_logprobs=draw(st.integers(0, 20)),
        target_prompt_logprobs=target,
        prompt_alt_tokens_k=draw(st.integers(0, 4)),
        prompt_logprobs_last_n=last_n,
        record_stability_info=draw(st.booleans()),
    )


@st.composite
def interpolate_requests(draw: st.DrawFn) -> t.InterpolateCheckpointsRequest:
    paths = draw(st.lists(names, min_size=1, max_size=4))
    return t.InterpolateCheckpointsRequest(
        source_paths=paths,
        coefficients=draw(st.lists(finite, min_size=len(paths), max_size=len(paths))),
        output_path=draw(st.none() | names),
    )


def _with_fields(tp: type[Any], **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``tp`` built generically, with the named fields drawn from narrower strategies."""
    return st.deferred(lambda: _generic(tp, fields))


OVERRIDES: dict[type[Any], st.SearchStrategy[Any]] = {
    t.AdamParams: adam_params,
    t.Datum: datums(),
    t.ForwardBackwardInput: fb_inputs(),
    t.ForwardBackwardOutput: fb_outputs(),
    t.InterpolateCheckpointsRequest: interpolate_requests(),
    t.LoraConfig: st.builds(
        t.LoraConfig, rank=st.integers(1, 64), seed=st.none() | st.integers(0, 2**40)
    ),
    t.MintTensorData: mint_tensors(),
    t.ModelInput: model_inputs(),
    t.SampleRequest: sample_requests(),
    t.SampleResponse: sample_responses(),
    t.SampledSequence: sampled_sequences(),
    t.SamplingParams: sampling_params,
    t.TensorData: tensors(),
    t.ImageChunk: _with_fields(t.ImageChunk, expected_tokens=st.none() | st.integers(0, 2**31)),
    t.SetCheckpointTTLRequest: _with_fields(
        t.SetCheckpointTTLRequest, ttl_seconds=st.none() | st.integers(1, 2**40)
    ),
    t.ForwardBackwardReverseKLRequest: _with_fields(
        t.ForwardBackwardReverseKLRequest, temperature=st.floats(0.01, 10)
    ),
    t.CreateSamplingSessionRequest: _with_fields(t.CreateSamplingSessionRequest, base_model=names),
}
"""Structs whose constructors reject most arbitrary field values."""


# ---------------------------------------------------------------------------
# The generic builder
# ---------------------------------------------------------------------------


def _for_type(info: mi.Type) -> st.SearchStrategy[Any]:
    """A strategy for values msgspec encodes and decodes back unchanged."""
    match info:
        case mi.StructType(cls=cls):
            return strategy_for(cls)
        case mi.UnionType(types=types):
            return st.one_of([_for_type(member) for member in types])
        case mi.ListType(item_type=item):
            return st.lists(_for_type(item), max_size=3)
        case mi.TupleType(item_types=items):
            return st.tuples(*(_for_type(item) for item in items))
        case mi.DictType(key_type=key, value_type=value):
            return st.dictionaries(_for_type(key), _for_type(value), max_size=3)
        case mi.LiteralType(values=values):
            return st.sampled_from(values)
        case mi.IntType():
            return INT64
        case mi.FloatType():
            return finite
        case mi.StrType():
            return st.text(max_size=8)
        case mi.BoolType():
            return st.booleans()
        case mi.NoneType():
            return st.none()
        case mi.BytesType():
            return st.binary(max_size=16)
        case mi.DateTimeType():
            return st.datetimes(timezones=st.none() | st.just(UTC))
        case mi.AnyType():
            return json_values
        case _:
            msg = f"no generic strategy for {info!r}: add the Struct to OVERRIDES"
            raise NotImplementedError(msg)


def _generic(tp: type[Any], fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    info = mi.type_info(tp)
    assert isinstance(info, mi.StructType)
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field in info.fields:
        strategy = fields[field.name] if field.name in fields else _for_type(field.type)
        (required if field.required else optional)[field.name] = strategy
    return st.fixed_dictionaries(required, optional=optional).map(lambda kw: _build(tp, kw))


def _build(tp: type[Any], kwargs: dict[str, Any]) -> Any:
    try:
        return tp(**kwargs)
    except InvalidInputError:
        reject()


_cache: dict[type[Any], st.SearchStrategy[Any]] = {}


def strategy_for(tp: type[Any]) -> st.SearchStrategy[Any]:
    """Valid instances of the wire Struct ``tp`` (hand-written or built from its fields)."""
    strategy = OVERRIDES.get(tp, _cache.get(tp))
    if strategy is None:
        strategy = _cache[tp] = st.deferred(lambda: _generic(tp, {}))
    return strategy


# ---------------------------------------------------------------------------
# Garbage
# ---------------------------------------------------------------------------


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a parsed JSON document a value sits (the root is ``()``)."""
    out = [prefix]
    if isinstance(value, dict):
        mapping: dict[Any, Any] = value  # pyright: ignore[reportUnknownVariableType]
        for key, child in mapping.items():
            out.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        items: list[Any] = value  # pyright: ignore[reportUnknownVariableType]
        for i, child in enumerate(items):
            out.extend(_paths(child, (*prefix, i)))
    return out


@st.composite
def _mutated(draw: st.DrawFn, tp: type[Any]) -> bytes:
    """A valid body of ``tp`` with one value replaced by a wrong-typed one, or removed."""
    doc = json.loads(_codec.encode(draw(strategy_for(tp))))
    path = draw(st.sampled_from(_paths(doc)))
    if not path:
        return _dumps(draw(json_values))
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(json_values | st.integers(-(2**70), 2**70))
    return _dumps(doc)


def _deep(depth: int, opener: str) -> bytes:
    """JSON nested ``depth`` levels deep (msgspec parses, and skips, nesting recursively)."""
    closer = {"[": "]", '{"a":': "}"}[opener]
    return (opener * depth + "0" + closer * depth).encode()


deep_bodies = st.builds(_deep, st.integers(500, 20_000), st.sampled_from(["[", '{"a":']))


def garbage_bodies(tp: type[Any]) -> st.SearchStrategy[bytes]:
    """Random bytes, random JSON, deeply nested JSON, and ``tp`` bodies with one field broken."""
    return (
        st.binary(max_size=64)
        | json_values.map(_dumps)
        | deep_bodies
        | deep_bodies.map(lambda body: b'{"error":' + body + b"}")
        | _mutated(tp)
    )
