"""tinker 0.38's sampling and training features on the local server, on both backends.

Over the raw protocol (JSON requests, protobuf bodies and results on the 0.38
wire): ``sample_sequence_ids``, per-token top-k sample logprobs, target prompt
logprobs (dense and sparse), ``prompt_logprobs_last_n``, ``prompt_alt_tokens_k``,
samples recorded with ``record_stability_info`` and the ``stable_reinforce``
loss over provenance spans, ``gspo``; the same on the default (0.22) wire, in
JSON results and bodies; the documented ``tml-`` default key.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest

from mint_async import InvalidInputError, _binary, _codec
from mint_async import types as t
from mint_async.server import (
    DEFAULT_API_KEY,
    DEFAULT_TINKER_API_KEY,
    ServerConfig,
)
from mint_async.server._auth import owner_of_key
from mint_async.server._cli import default_key_exposure
from mint_async.server._stability import StabilityRecords
from mint_async.server.backends import Backend, BackendOptions, create_backend
from mint_async.testing import serve_in_process

from ._support import TOKENS, Api, Json, create_model_body, sample_body

pytestmark = pytest.mark.anyio

PROTOBUF = {"accept": _binary.PROTOBUF_CONTENT_TYPE}
PROMPT = TOKENS[:4]


@pytest.fixture(scope="module", params=["synthetic", "torch"])
def backend(request: pytest.FixtureRequest) -> Backend[Any, Any]:
    """One backend instance per module and kind (torch: skipped without the extra)."""
    name: str = request.param
    if name == "torch":
        pytest.importorskip("torch")
    return create_backend(name, BackendOptions(seed=0))


@asynccontextmanager
async def running(backend: Backend[Any, Any], **config: Any) -> AsyncGenerator[Api]:
    """An in-process server over ``backend`` (0.38 wire unless ``wire`` says otherwise)."""
    settings: dict[str, Any] = {"wire": "0.38", **config}
    async with (
        serve_in_process(ServerConfig(**settings), backend=backend) as server,
        server.client() as http,
    ):
        yield Api(http)


async def sample_038(api: Api, body: Json) -> tuple[list[str], t.SampleResponse]:
    """Submit an asample body and fetch its result as protobuf (the 0.38 wire)."""
    promise = await api.ok("asample", body)
    while True:
        r = await api.http.post(
            "/api/v1/retrieve_future",
            json={"request_id": promise["request_id"], "allow_metadata_only": False},
            headers=PROTOBUF,
        )
        assert r.status_code == 200, r.text
        if r.headers["content-type"] == _binary.PROTOBUF_CONTENT_TYPE:
            return list(promise["sample_sequence_ids"]), _binary.decode_sample_response(r.content)
        assert r.json().get("type") == "try_again", r.text


async def fb_038(api: Api, req: t.ForwardBackwardRequest) -> Json | t.ForwardBackwardOutput:
    """Submit a protobuf forward_backward; the output, or the failure's JSON."""
    r = await api.http.post(
        "/api/v1/forward_backward",
        content=_binary.encode_forward_backward_request(req),
        headers={"content-type": _binary.PROTOBUF_CONTENT_TYPE},
    )
    assert r.status_code == 200, r.text
    request_id = r.json()["request_id"]
    while True:
        r = await api.http.post(
            "/api/v1/retrieve_future",
            json={"request_id": request_id, "allow_metadata_only": False},
            headers=PROTOBUF,
        )
        if r.headers["content-type"] == _binary.PROTOBUF_CONTENT_TYPE:
            return _binary.decode_forward_backward_output(r.content)
        data: Json = r.json()
        if data.get("type") != "try_again":
            return data


def extras_body(sampler: str, seq: int, **fields: Any) -> Json:
    """A greedy-free asample body over PROMPT with the given 0.38 fields."""
    body = sample_body(sampler, seq, max_tokens=5, seed=11)
    body.update(fields)
    return body


# ---------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------


async def test_sample_fields_on_the_038_wire(backend: Backend[Any, Any]) -> None:
    """Every 0.38 sampling field, checked against the model's own prompt logprobs."""
    async with running(backend) as api:
        sampler = await api.sampler(await api.session())
        _, full = await sample_038(
            api, extras_body(sampler, 0, prompt_logprobs=True, topk_prompt_logprobs=3)
        )
        assert full.prompt_logprobs is not None and full.topk_prompt_logprobs is not None
        lps = full.prompt_logprobs

        # prompt_logprobs_last_n: the earlier entries are None (top-k too), the rest unchanged.
        _, last = await sample_038(
            api,
            extras_body(
                sampler, 1, prompt_logprobs=True, topk_prompt_logprobs=3, prompt_logprobs_last_n=2
            ),
        )
        assert last.prompt_logprobs is not None and last.topk_prompt_logprobs is not None
        assert last.prompt_logprobs[:2] == [None, None]
        assert last.prompt_logprobs[2:] == pytest.approx(lps[2:], abs=1e-5)
        assert last.topk_prompt_logprobs[:2] == [None, None]
        assert last.topk_prompt_logprobs[2:] == full.topk_prompt_logprobs[2:]

        # target_prompt_logprobs: [len(prompt) - 1, K] ids, -1 asks for nothing (0.0 back).
        ids = [[PROMPT[1], -1], [PROMPT[2], 5], [-1, PROMPT[3]]]
        target = t.TensorData(data=np.array(ids).reshape(-1), dtype="int64", shape=[3, 2])
        ids_, got = await sample_038(
            api, extras_body(sampler, 2, target_prompt_logprobs=_json(target), num_samples=2)
        )
        assert len(ids_) == 2 and len(set(ids_)) == 2
        assert got.target_prompt_logprobs is not None
        values = got.target_prompt_logprobs.to_numpy()
        assert values.shape == (3, 2) and got.target_prompt_logprobs.dtype == "float32"
        assert values[0, 0] == pytest.approx(lps[1], abs=1e-5)
        assert values[1, 0] == pytest.approx(lps[2], abs=1e-5)
        assert values[2, 1] == pytest.approx(lps[3], abs=1e-5)
        assert values[0, 1] == values[2, 0] == 0.0
        assert values[1, 1] < 0

        # Sparse CSR requests come back sparse, with the same indices.
        # Only listed cells ask for anything (unlisted ones are not token 0).
        sparse = t.TensorData(
            data=[PROMPT[2], 0],
            dtype="int64",
            shape=[3, 2],
            sparse_crow_indices=[0, 0, 1, 2],
            sparse_col_indices=[0, 1],
        )
        _, got_sparse = await sample_038(
            api, extras_body(sampler, 3, target_prompt_logprobs=_json(sparse))
        )
        out = got_sparse.target_prompt_logprobs
        assert out is not None and out.is_sparse
        assert out.sparse_crow_indices == sparse.sparse_crow_indices
        assert out.sparse_col_indices == sparse.sparse_col_indices
        dense = out.to_numpy()
        assert dense[1, 0] == pytest.approx(lps[2], abs=1e-5)
        assert dense[2, 1] < 0  # token 0, listed, has a logprob
        assert dense[0].tolist() == [0.0, 0.0]

        # Per-token top-k of the samples: sorted, at temperature 1, holding the sampled token.
        _, topk = await sample_038(api, extras_body(sampler, 4, topk_sample_logprobs=4))
        seq = topk.sequences[0]
        assert seq.topk_logprobs is not None and seq.logprobs is not None
        assert len(seq.topk_logprobs) == len(seq.tokens) > 0
        for token, lp, row in zip(seq.tokens, seq.logprobs, seq.topk_logprobs, strict=True):
            assert row is not None and len(row) == 4
            row_lps = [cell[1] for cell in row]
            assert row_lps == sorted(row_lps, reverse=True)
            assert lp <= row_lps[0] + 1e-5
            by_token = dict(row)
            if token in by_token:
                assert by_token[token] == pytest.approx(lp, abs=1e-5)

        # prompt_alt_tokens_k: k draws per row; their logprobs are the model's.
        _, alt = await sample_038(api, extras_body(sampler, 5, prompt_alt_tokens_k=3))
        assert alt.prompt_alt_tokens is not None
        tokens = alt.prompt_alt_tokens.tokens.to_numpy()
        alt_lps = alt.prompt_alt_tokens.logprobs.to_numpy()
        assert tokens.shape == alt_lps.shape == (3, 3)
        check = t.TensorData(data=tokens.reshape(-1), dtype="int64", shape=[3, 3])
        _, scored = await sample_038(
            api, extras_body(sampler, 6, target_prompt_logprobs=_json(check))
        )
        assert scored.target_prompt_logprobs is not None
        np.testing.assert_allclose(scored.target_prompt_logprobs.to_numpy(), alt_lps, atol=1e-5)
        # Same seed, same draws; temperature 0 repeats the most likely token.
        _, again = await sample_038(api, extras_body(sampler, 7, prompt_alt_tokens_k=3))
        assert again.prompt_alt_tokens is not None
        np.testing.assert_array_equal(again.prompt_alt_tokens.tokens.to_numpy(), tokens)
        greedy = extras_body(sampler, 8, prompt_alt_tokens_k=2)
        greedy["sampling_params"]["temperature"] = 0.0
        _, cold = await sample_038(api, greedy)
        assert cold.prompt_alt_tokens is not None
        best = [row[0][0] for row in full.topk_prompt_logprobs[1:] if row]
        assert cold.prompt_alt_tokens.tokens.to_numpy().tolist() == [[b, b] for b in best]


def _json(td: t.TensorData) -> Json:
    out: Json = {"data": td.data.tolist(), "dtype": td.dtype, "shape": list(td.dims)}
    if td.sparse_crow_indices is not None:
        out["sparse_crow_indices"] = td.sparse_crow_indices
        out["sparse_col_indices"] = td.sparse_col_indices
    return out


async def test_bad_038_sampling_fields_answer_400(backend: Backend[Any, Any]) -> None:
    """Shapes and ranges the request type checks are refused at submission."""
    async with running(backend) as api:
        sampler = await api.sampler(await api.session())
        cases: list[tuple[Json, str]] = [
            ({"prompt_logprobs_last_n": 2}, "set prompt_logprobs"),
            ({"prompt_logprobs": True, "prompt_logprobs_last_n": 4}, "at most"),
            (
                {"target_prompt_logprobs": {"data": [1, 2], "dtype": "int64", "shape": [2, 1]}},
                "rows",
            ),
            ({"target_prompt_logprobs": {"data": [1.0], "dtype": "float32"}}, "int64"),
            ({"prompt_alt_tokens_k": -1}, "prompt_alt_tokens_k"),
            ({"topk_sample_logprobs": -1}, "topk_sample_logprobs"),
        ]
        for i, (fields, needle) in enumerate(cases):
            r = await api.post("asample", extras_body(sampler, i, **fields))
            assert r.status_code == 400 and needle in r.text, (fields, r.text)
        # The arrays the extras build are bounded like top-k prompt logprobs (--limits).
        r = await api.post("asample", extras_body(sampler, 7, topk_sample_logprobs=10**9))
        assert r.status_code == 400 and "topk_sample_logprobs" in r.text, r.text
        r = await api.post("asample", extras_body(sampler, 8, prompt_alt_tokens_k=10**9))
        assert r.status_code == 400 and "prompt_alt_tokens_k" in r.text, r.text
        # Ids beyond the vocabulary fail the request (the backend knows the vocabulary).
        big = {"data": [10**9, -1, -1], "dtype": "int64", "shape": [3, 1]}
        promise = await api.ok("asample", extras_body(sampler, 9, target_prompt_logprobs=big))
        failed = await api.result(promise["request_id"])
        assert failed["category"] == "user" and "vocabulary" in failed["error"]


async def test_the_022_wire_serves_the_038_fields_in_json(backend: Backend[Any, Any]) -> None:
    """The default wire: JSON results carry the 0.38 fields, JSON bodies carry provenance."""
    async with running(backend, wire="0.22") as api:
        session = await api.session()
        model_id = await api.model(session)
        sampler = await api.sampler(session)
        target = {"data": [PROMPT[1], PROMPT[2], PROMPT[3]], "dtype": "int64", "shape": [3, 1]}
        promise = await api.ok(
            "asample",
            extras_body(
                sampler,
                0,
                topk_sample_logprobs=2,
                target_prompt_logprobs=target,
                prompt_alt_tokens_k=1,
                record_stability_info=True,
                prompt_logprobs=True,
                prompt_logprobs_last_n=1,
            ),
        )
        raw = await api.result(promise["request_id"])  # a JSON poll answers JSON
        result = _codec.decode(t.SampleResponse, _codec.encode(raw))
        assert result.prompt_logprobs is not None and result.prompt_logprobs[:3] == [None] * 3
        seq = result.sequences[0]
        assert seq.topk_logprobs is not None and len(seq.topk_logprobs) == len(seq.tokens)
        assert result.target_prompt_logprobs is not None
        assert result.target_prompt_logprobs.to_numpy()[2, 0] == pytest.approx(
            result.prompt_logprobs[3], abs=1e-5
        )
        assert result.prompt_alt_tokens is not None

        # stable_reinforce with its provenance in a JSON body (mint_async's extension).
        sid = promise["sample_sequence_ids"][0]
        datum = _rollout(sid, PROMPT, list(seq.tokens), 1.0)
        request = t.ForwardBackwardRequest(
            forward_backward_input=t.ForwardBackwardInput(data=[datum], loss_fn="stable_reinforce"),
            model_id=model_id,
            seq_id=1,
        )
        out = await api.run("forward_backward", json.loads(_codec.encode(request)))
        assert "loss:sum" in out["metrics"], out
        body = {
            "forward_backward_input": {
                "data": [_rl_datum_json([1.0, 0.5, -0.5])],
                "loss_fn": "gspo",
            },
            "model_id": model_id,
            "seq_id": 2,
        }
        out = await api.run("forward_backward", body)
        assert "loss:sum" in out["metrics"], out


def _rl_datum_json(advantages: list[float]) -> Json:
    tokens = TOKENS[: len(advantages) + 1]
    n = len(advantages)

    def td(values: list[float], dtype: str) -> Json:
        return {"data": values, "dtype": dtype, "shape": [n]}

    return {
        "model_input": {"chunks": [{"tokens": tokens[:-1], "type": "encoded_text"}]},
        "loss_fn_inputs": {
            "target_tokens": {"data": tokens[1:], "dtype": "int64", "shape": [n]},
            "logprobs": td([-1.0] * n, "float32"),
            "advantages": td(advantages, "float32"),
        },
    }


# ---------------------------------------------------------------------------
# stable_reinforce over recorded samples
# ---------------------------------------------------------------------------


def _rollout(
    sequence_id: str, prompt: list[int], sampled: list[int], advantage: float, **extra: Any
) -> t.Datum:
    """The datum of one rollout (prompt then sampled tokens), with its provenance."""
    full = prompt + sampled
    n_prompt = len(prompt)
    targets = full[1:]
    advantages = [0.0] * (n_prompt - 1) + [advantage] * len(sampled)
    datum = t.Datum(
        model_input=t.ModelInput.from_ints(full[:-1]),
        loss_fn_inputs={"target_tokens": targets, "advantages": advantages, **extra},
    )
    return datum.with_provenance(
        model_input=[
            t.PromptProvenanceSpan(sequence_id=sequence_id, length=n_prompt),
            t.SampledProvenanceSpan(sequence_id=sequence_id, length=len(sampled) - 1),
        ],
        loss_fn_inputs=[
            t.PromptProvenanceSpan(sequence_id=sequence_id, offset=1, length=n_prompt - 1),
            t.SampledProvenanceSpan(sequence_id=sequence_id, length=len(sampled)),
        ],
    )


def _fb(
    model_id: str, seq_id: int, data: list[t.Datum], **config: float
) -> t.ForwardBackwardRequest:
    return t.ForwardBackwardRequest(
        forward_backward_input=t.ForwardBackwardInput(
            data=data, loss_fn="stable_reinforce", loss_fn_config=config or None
        ),
        model_id=model_id,
        seq_id=seq_id,
    )


async def test_stable_reinforce_trains_on_recorded_samples(backend: Backend[Any, Any]) -> None:
    """Recorded logprobs (not the client's) weigh the sampled tokens; prompt rows get no weight."""
    async with running(backend) as api:
        session = await api.session()
        model_id = await api.model(session)
        sampler = await api.sampler(session)
        ids, res = await sample_038(
            api, extras_body(sampler, 0, num_samples=2, record_stability_info=True)
        )
        seqs = [s for s in res.sequences if len(s.tokens) >= 2]
        assert seqs, "the samples are too short to train on"
        data = [
            _rollout(
                sid, PROMPT, s.tokens, adv, logprobs=[-50.0] * (len(PROMPT) - 1 + len(s.tokens))
            )
            for sid, s, adv in zip(ids, res.sequences, (1.0, -0.5), strict=True)
            if len(s.tokens) >= 2
        ]
        out = await fb_038(api, _fb(model_id, 1, data))
        assert isinstance(out, t.ForwardBackwardOutput), out
        # The run is the base model (LoRA B = 0): ratio 1, so loss = -sum A * lp over
        # sampled tokens, whatever logprobs the client sent.
        expected = 0.0
        for datum, seq, result in zip(data, seqs, out.loss_fn_outputs, strict=True):
            lp = result["logprobs"].to_numpy()
            n = len(seq.tokens)
            assert seq.logprobs is not None
            np.testing.assert_allclose(lp[-n:], seq.logprobs, atol=1e-4)
            adv = datum.loss_fn_inputs["advantages"].to_numpy()
            expected -= float((adv[-n:] * lp[-n:]).sum())
        assert out.metrics["loss:sum"] == pytest.approx(expected, rel=1e-4, abs=1e-4)

        # A penalty on drifting from the recorded logprobs is 0 on-policy.
        same = await fb_038(api, _fb(model_id, 2, data, kl_coeff=0.5))
        assert isinstance(same, t.ForwardBackwardOutput)
        assert same.metrics["loss:sum"] == pytest.approx(expected, rel=1e-4, abs=1e-4)


def _drop_first(spans: list[t.ProvenanceSpan]) -> list[t.ProvenanceSpan]:
    first, rest = spans[0], spans[1:]
    if first.length == 1:
        return rest
    shorter = type(first)(
        sequence_id=first.sequence_id, offset=first.offset + 1, length=first.length - 1
    )
    return [shorter, *rest]


def _drop_last(spans: list[t.ProvenanceSpan]) -> list[t.ProvenanceSpan]:
    last, rest = spans[-1], spans[:-1]
    if last.length == 1:
        return rest
    shorter = type(last)(sequence_id=last.sequence_id, offset=last.offset, length=last.length - 1)
    return [*rest, shorter]


async def test_stable_reinforce_over_a_multi_turn_rollout(backend: Backend[Any, Any]) -> None:
    """Two sampling turns in one datum, spans built as tinker-cookbook builds them."""
    async with running(backend) as api:
        session = await api.session()
        model_id = await api.model(session)
        sampler = await api.sampler(session)
        ids1, first = await sample_038(api, extras_body(sampler, 0, record_stability_info=True))
        act1 = list(first.sequences[0].tokens)
        obs2 = [5, 19]
        prompt2 = PROMPT + act1 + obs2
        body = extras_body(sampler, 1, record_stability_info=True)
        body["prompt"] = {"chunks": [{"tokens": prompt2, "type": "encoded_text"}]}
        ids2, second = await sample_038(api, body)
        act2 = list(second.sequences[0].tokens)
        full = prompt2 + act2
        spans: list[t.ProvenanceSpan] = [
            t.PromptProvenanceSpan(sequence_id=ids1[0], length=len(PROMPT)),
            t.SampledProvenanceSpan(sequence_id=ids1[0], length=len(act1)),
            t.PromptProvenanceSpan(
                sequence_id=ids2[0], offset=len(PROMPT) + len(act1), length=len(obs2)
            ),
            t.SampledProvenanceSpan(sequence_id=ids2[0], length=len(act2)),
        ]
        advantages = [0.0] * len(PROMPT) + [1.0] * len(act1) + [0.0] * len(obs2) + [1.0] * len(act2)
        datum = t.Datum(
            model_input=t.ModelInput.from_ints(full[:-1]),
            loss_fn_inputs={"target_tokens": full[1:], "advantages": advantages[1:]},
        ).with_provenance(model_input=_drop_last(spans), loss_fn_inputs=_drop_first(spans))
        out = await fb_038(api, _fb(model_id, 1, [datum]))
        assert isinstance(out, t.ForwardBackwardOutput), out
        lp = out.loss_fn_outputs[0]["logprobs"].to_numpy()
        sampled = np.array(advantages[1:]) != 0
        assert out.metrics["loss:sum"] == pytest.approx(-float(lp[sampled].sum()), rel=1e-4)
        recorded = [*(first.sequences[0].logprobs or []), *(second.sequences[0].logprobs or [])]
        np.testing.assert_allclose(lp[sampled], recorded, atol=1e-4)


async def test_stable_reinforce_refuses_unbacked_claims(backend: Backend[Any, Any]) -> None:
    """No provenance, unknown or unrecorded sequences, wrong tokens, another session: user errors."""
    async with running(backend) as api:
        session = await api.session()
        model_id = await api.model(session)
        sampler = await api.sampler(session)
        ids, res = await sample_038(api, extras_body(sampler, 0, record_stability_info=True))
        unrecorded_ids, unrecorded = await sample_038(api, extras_body(sampler, 1))
        tokens = list(res.sequences[0].tokens)
        good = _rollout(ids[0], PROMPT, tokens, 1.0)
        bare = t.Datum(model_input=good.model_input, loss_fn_inputs=good.loss_fn_inputs)
        wrong = _rollout(ids[0], PROMPT, [(tok + 1) % 300 for tok in tokens], 1.0)
        other_session = await api.session()
        other_model = await api.model(other_session)
        cases: list[tuple[str, int, list[t.Datum], str]] = [
            (model_id, 1, [bare], "needs provenance"),
            (model_id, 2, [_rollout("nope:0:0", PROMPT, tokens, 1.0)], "no stability record"),
            (
                model_id,
                3,
                [_rollout(unrecorded_ids[0], PROMPT, list(unrecorded.sequences[0].tokens), 1.0)],
                "no stability record",
            ),
            (model_id, 4, [wrong], "are not the tokens"),
            (other_model, 1, [good], "belong to the session that sampled them"),
        ]
        for target, seq_id, data, needle in cases:
            failed = await fb_038(api, _fb(target, seq_id, data))
            assert isinstance(failed, dict), needle
            assert failed["category"] == "user" and needle in failed["error"], failed
        # The good datum still trains afterwards (failures leave no trace).
        ok = await fb_038(api, _fb(model_id, 5, [good]))
        assert isinstance(ok, t.ForwardBackwardOutput)


# ---------------------------------------------------------------------------
# Stability records, keys
# ---------------------------------------------------------------------------


def _response(*token_lists: list[int]) -> t.SampleResponse:
    return t.SampleResponse(
        sequences=[
            t.SampledSequence(stop_reason="length", tokens_np=toks, logprobs_np=[-1.0] * len(toks))
            for toks in token_lists
        ]
    )


def test_stability_records_expire_and_stay_bounded() -> None:
    """A record lasts its retention after its last use; beyond max_tokens the oldest go."""
    prompt = np.array(PROMPT, dtype=np.int64)
    records = StabilityRecords(retention=3600.0, max_tokens=20)
    records.record(["a", "b"], _response([1, 2], [3]), session_id="s", owner="o", prompt=prompt)
    assert records.use("a", owner="o", session_id="s").tokens.tolist() == [1, 2]
    records.record(["c"], _response([4, 5, 6]), session_id="s", owner="o", prompt=prompt)
    # 6 + 5 + 7 tokens = 18; one more record drops the least recently used ("b").
    records.record(["d"], _response([7]), session_id="s", owner="o", prompt=prompt)
    assert len(records) == 3
    with pytest.raises(InvalidInputError, match="no stability record"):
        records.use("b", owner="o", session_id="s")
    with pytest.raises(InvalidInputError, match="no stability record"):
        records.use("a", owner="someone else", session_id="s")
    assert records.drop_session("s") == 3 and len(records) == 0
    expired = StabilityRecords(retention=0.0)
    expired.record(["x"], _response([1]), session_id="s", owner="o", prompt=prompt)
    with pytest.raises(InvalidInputError, match="no stability record"):
        expired.use("x", owner="o", session_id="s")


async def test_the_tml_default_key_is_the_default_user() -> None:
    """Both documented keys are accepted by default, as one user; other keys are refused."""
    assert owner_of_key(DEFAULT_TINKER_API_KEY) == owner_of_key(DEFAULT_API_KEY)
    assert owner_of_key("tml-other") != owner_of_key(DEFAULT_API_KEY)
    async with serve_in_process() as server:
        async with server.client() as http:
            session = await Api(http).session()
        headers = {"X-API-Key": DEFAULT_TINKER_API_KEY}
        async with server.client(headers=headers) as http:
            r = await http.get(f"/api/v1/sessions/{session}")
            assert r.status_code == 200, r.text
            r = await http.post("/api/v1/create_model", json=create_model_body(session))
            assert r.status_code == 200, r.text
        async with server.client(headers={"X-API-Key": "tml-not-configured"}) as http:
            r = await http.get(f"/api/v1/sessions/{session}")
            assert r.status_code == 401, r.text


def test_default_key_exposure_covers_both_documented_keys() -> None:
    """Only documented keys on a public interface is refused, in either spelling or both."""
    assert default_key_exposure(ServerConfig(), "0.0.0.0") is not None
    tml_only = ServerConfig(api_keys=(DEFAULT_TINKER_API_KEY,))
    warning = default_key_exposure(tml_only, "0.0.0.0")
    assert warning is not None and DEFAULT_TINKER_API_KEY in warning
    mixed = ServerConfig(api_keys=(DEFAULT_TINKER_API_KEY, "tml-secret"))
    assert default_key_exposure(mixed, "0.0.0.0") is None
    assert default_key_exposure(tml_only, "127.0.0.1") is None
