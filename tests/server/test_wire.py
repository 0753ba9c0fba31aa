"""The server's binary wire: protobuf/zstd bodies, negotiated protobuf results, the 0.38 wire."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import numpy as np
import pytest
import zstandard

from mint_async import _binary
from mint_async import types as t
from mint_async._codec import decode
from mint_async.cli import build_parser
from mint_async.server import ServerConfig
from mint_async.server._cli import config_from_args
from mint_async.server.backends import ExecutionPolicy
from mint_async.server.backends._bigram import SyntheticModel
from mint_async.server.backends._tiny_tokenizer import ensure_tiny_tokenizer
from mint_async.server.backends.synthetic import SyntheticBackend
from mint_async.testing import serve_in_process

from ._support import Api, fb_body, optim_body, running, sample_body


class RecordingBackend(SyntheticBackend):
    """The synthetic backend in worker threads, noting whether its input arrays are writable."""

    def __init__(self) -> None:
        super().__init__(
            tokenizer_dir=ensure_tiny_tokenizer(),
            execution=ExecutionPolicy(threaded=True, max_concurrency=1),
        )
        self.writable: list[bool] = []

    def forward_backward(
        self,
        model: SyntheticModel,
        data: Sequence[t.Datum],
        loss_fn: str,
        loss_fn_config: Mapping[str, float],
        *,
        backward: bool,
    ) -> t.ForwardBackwardOutput:
        """Record the arrays' flags, then compute."""
        for datum in data:
            for chunk in datum.model_input.chunks:
                assert isinstance(chunk, t.EncodedTextChunk)
                self.writable.append(np.asarray(chunk.tokens).flags.writeable)
            self.writable += [td.data.flags.writeable for td in datum.loss_fn_inputs.values()]
        return super().forward_backward(model, data, loss_fn, loss_fn_config, backward=backward)


pytestmark = pytest.mark.anyio

PROTOBUF = "application/x-protobuf"
BOTH = "application/x-protobuf, application/json"


def fb_request(model_id: str, seq_id: int, *, forward: bool = False) -> bytes:
    """A forward_backward body in protobuf (``forward_only`` when ``forward``)."""
    fbi = decode(
        t.ForwardBackwardInput,
        json.dumps(fb_body(model_id, seq_id)["forward_backward_input"]).encode(),
    )
    if forward:
        return _binary.encode_forward_backward_request(
            t.ForwardRequest(forward_input=fbi, model_id=model_id, seq_id=seq_id)
        )
    return _binary.encode_forward_backward_request(
        t.ForwardBackwardRequest(forward_backward_input=fbi, model_id=model_id, seq_id=seq_id)
    )


async def post_body(
    api: Api, path: str, body: bytes, *, zstd: bool = False, headers: dict[str, str] | None = None
) -> httpx.Response:
    """POST a raw body as protobuf (zstd-compressed if asked)."""
    sent = {"Content-Type": PROTOBUF, **(headers or {})}
    if zstd:
        body = zstandard.ZstdCompressor().compress(body)
        sent["Content-Encoding"] = "zstd"
    return await api.http.post(f"/api/v1/{path}", content=body, headers=sent)


async def poll(api: Api, request_id: str, accept: str | None, **extra: Any) -> httpx.Response:
    """One retrieve_future until the future finished, with the given ``Accept``."""
    headers = {} if accept is None else {"Accept": accept}
    body = {"request_id": request_id, "allow_metadata_only": False, **extra}
    while True:
        r = await api.http.post("/api/v1/retrieve_future", json=body, headers=headers)
        assert r.status_code == 200, r.text
        if "protobuf" in r.headers["content-type"] or r.json().get("type") != "try_again":
            return r


async def test_protobuf_and_zstd_bodies_match_json() -> None:
    """A forward_backward as protobuf, and as zstd protobuf, computes what the JSON body does."""
    async with running() as (server, api):
        mids = [await api.model(await api.session()) for _ in range(3)]
        by_json = await api.run("forward_backward", fb_body(mids[0], 1))
        promises = [
            await post_body(api, "forward_backward", fb_request(mids[1], 1)),
            await post_body(api, "forward_backward", fb_request(mids[2], 1), zstd=True),
        ]
        for promise in promises:
            assert promise.status_code == 200, promise.text
            out = await api.result(promise.json()["request_id"])
            assert out["metrics"] == pytest.approx(by_json["metrics"])
            assert out["loss_fn_outputs"] == by_json["loss_fn_outputs"]
        assert dict(server.statistics().fwdbwd_bodies) == {
            "json": 1,
            "protobuf": 1,
            "protobuf+zstd": 1,
        }


async def test_backends_get_writable_arrays_and_threads_encode_protobuf() -> None:
    """Protobuf inputs reach a (threaded) backend as writable arrays; its result is encoded as protobuf."""
    backend = RecordingBackend()
    config = ServerConfig(proto_write_fwdbwd=True)
    async with serve_in_process(config, backend=backend) as server, server.client() as http:
        api = Api(http)
        mid = await api.model(await api.session())
        promise = await post_body(api, "forward_backward", fb_request(mid, 1))
        answer = await poll(api, promise.json()["request_id"], BOTH)
        assert answer.headers["content-type"] == PROTOBUF
        assert "loss:sum" in _binary.decode_forward_backward_output(answer.content).metrics
    assert backend.writable == [True, True, True]


async def test_forward_only_body_is_a_forward() -> None:
    """forward_only protobuf (and any protobuf posted to /forward) runs as a forward: optim_step changes nothing."""
    async with running() as (server, api):
        mid = await api.model(await api.session())
        first = await post_body(api, "forward_backward", fb_request(mid, 1, forward=True))
        before = await api.result(first.json()["request_id"])
        await api.run("optim_step", optim_body(mid, 2))
        second = await post_body(api, "forward", fb_request(mid, 3, forward=True))
        after = await api.result(second.json()["request_id"])
        assert after["metrics"] == pytest.approx(before["metrics"])
        third = await post_body(api, "forward", fb_request(mid, 4))  # no forward_only flag
        await api.result(third.json()["request_id"])
        await api.run("optim_step", optim_body(mid, 5))
        last = await post_body(api, "forward", fb_request(mid, 6, forward=True))
        assert (await api.result(last.json()["request_id"]))["metrics"] == after["metrics"]
        assert server.statistics().executed["forward"] == 4


async def test_bad_bodies() -> None:
    """Bad protobuf or zstd answers 400 with a body (the named slot freed); unknown encodings 415."""
    async with running(ServerConfig(max_body_bytes=1 << 16)) as (_, api):
        mid = await api.model(await api.session())
        bad_loss = fb_request(mid, 1).replace(b"cross_entropy", b"no_such_loss!")
        r = await post_body(api, "forward_backward", bad_loss)
        assert r.status_code == 400 and "loss function" in r.json()["detail"]
        r = await post_body(api, "forward_backward", b"\xff\xff not protobuf")
        assert r.status_code == 400 and int(r.headers["content-length"]) > 0
        r = await api.http.post(
            "/api/v1/forward_backward",
            content=b"garbage",
            headers={"Content-Type": PROTOBUF, "Content-Encoding": "zstd"},
        )
        assert r.status_code == 400 and "zstd" in r.json()["detail"]
        bomb = zstandard.ZstdCompressor().compress(b"\0" * (1 << 17))
        r = await api.http.post(
            "/api/v1/forward_backward",
            content=bomb,
            headers={"Content-Type": PROTOBUF, "Content-Encoding": "zstd"},
        )
        assert r.status_code == 400 and "allowed" in r.json()["detail"]
        r = await post_body(
            api, "forward_backward", fb_request(mid, 2), headers={"Content-Encoding": "br"}
        )
        assert r.status_code == 415
        # seq_id 1 was used up by the 400, seq_id 2 was not by the 415: 2 runs now.
        ok = await post_body(api, "forward_backward", fb_request(mid, 2))
        assert "loss:sum" in (await api.result(ok.json()["request_id"]))["metrics"]


async def test_results_are_negotiated_per_poll() -> None:
    """JSON server: protobuf only to polls taking nothing else; protobuf server: whenever offered."""
    for config, both_gets_protobuf in (
        (ServerConfig(), False),
        (ServerConfig(proto_write_fwdbwd=True), True),
    ):
        async with running(config) as (server, api):
            mid = await api.model(await api.session())
            rid = await api.submit("forward_backward", fb_body(mid, 1))
            as_json = await poll(api, rid, None)
            expected = decode(t.ForwardBackwardOutput, as_json.content)
            for accept, protobuf in (
                (BOTH, both_gets_protobuf),
                (PROTOBUF, True),
                ("application/json", False),
                ("application/x-protobuf;q=0, application/json", False),
            ):
                r = await poll(api, rid, accept)
                assert (r.headers["content-type"] == PROTOBUF) is protobuf, accept
                got = (
                    _binary.decode_forward_backward_output(r.content)
                    if protobuf
                    else decode(t.ForwardBackwardOutput, r.content)
                )
                assert got.metrics == pytest.approx(expected.metrics)
                assert got.loss_fn_outputs[0]["logprobs"] == expected.loss_fn_outputs[0]["logprobs"]
            sampler = await api.sampler(await api.session())
            srid = await api.submit("asample", sample_body(sampler, 0, num_samples=2))
            sampled = _binary.decode_sample_response((await poll(api, srid, PROTOBUF)).content)
            assert len(sampled.sequences) == 2
            # Every delivered poll of those results was counted by its encoding.
            assert sum(server.statistics().results_sent.values()) == 6


async def test_complete_metadata_reports_the_size_sent() -> None:
    """complete_metadata announces the size of the encoding the poll's Accept will get."""
    async with running(ServerConfig(proto_write_fwdbwd=True, metadata_threshold=10)) as (_, api):
        mid = await api.model(await api.session())
        rid = await api.submit("forward_backward", fb_body(mid, 1))
        for accept, content_type in ((BOTH, PROTOBUF), ("application/json", "application/json")):
            meta = await poll(api, rid, accept, allow_metadata_only=True)
            size = meta.json()["response_payload_size"]
            full = await poll(api, rid, accept)
            assert full.headers["content-type"] == content_type and len(full.content) == size
            rid = await api.submit("forward_backward", fb_body(mid, 2))


async def test_038_wire_refuses_json_bodies() -> None:
    """wire=0.38: a JSON forward_backward answers 415 with a body and keeps its seq_id for the resend."""
    async with running(ServerConfig(wire="0.38")) as (server, api):
        config = await api.ok("client/config", {"sdk_version": "0.38.0"})
        assert config == {"pjwt_auth_enabled": True}
        mid = await api.model(await api.session())
        r = await api.post("forward_backward", fb_body(mid, 1))
        assert r.status_code == 415 and "protobuf" in r.json()["detail"]
        assert int(r.headers["content-length"]) == len(r.content) > 0
        promise = await post_body(api, "forward_backward", fb_request(mid, 1))
        out = await poll(api, promise.json()["request_id"], BOTH)
        assert out.headers["content-type"] == PROTOBUF
        forward = await api.run(
            "forward", fb_body(mid, 2, key="forward_input")
        )  # JSON /forward stays
        assert "loss:sum" in forward["metrics"]
        assert dict(server.statistics().fwdbwd_bodies) == {"protobuf": 1, "json": 1}


async def test_config_flags_and_dynamic_config() -> None:
    """client/config carries the proto flags as configured; client/dynamic_config answers defaults."""
    config = ServerConfig(proto_write_fwdbwd=True, proto_compress_fwdbwd=True)
    async with running(config) as (_, api):
        answer = await api.ok("client/config", {"sdk_version": "0.22.0"})
        assert answer["proto_write_fwdbwd"] is True and answer["proto_compress_fwdbwd"] is True
        dynamic = await api.ok("client/dynamic_config", {"sdk_version": "0.38.0"})
        assert dynamic["refresh_interval_sec"] == 300 and dynamic["sample_cancel_enabled"] is False


def test_config_and_cli_options() -> None:
    """--proto/--zstd/--wire map to ServerConfig; results follow the body flag unless set; bad wire refused."""
    args = build_parser().parse_args(["serve", "--proto", "--zstd", "--wire", "0.38"])
    config = config_from_args(args)
    assert config.proto_write_fwdbwd and config.proto_compress_fwdbwd and config.wire == "0.38"
    assert config.binary_results and config.binary_bodies_only
    plain = config_from_args(build_parser().parse_args(["serve"]))
    assert not plain.binary_results and not plain.binary_bodies_only
    assert ServerConfig(wire="0.38", proto_results=False).binary_results is False
    with pytest.raises(ValueError, match="wire"):
        ServerConfig(wire="0.25")  # type: ignore[arg-type]


async def test_sample_sequence_ids_and_empty_stop() -> None:
    """Promises carry one sequence id per sample, the same on a resubmission; stop=[] disables EOS."""
    async with running() as (_, api):
        sampler = await api.sampler(await api.session())
        body = sample_body(sampler, 0, num_samples=3, max_tokens=40, stop=[], temperature=2.0)
        first = await api.ok("asample", body)
        again = await api.ok("asample", body)
        assert first["sample_sequence_ids"] == again["sample_sequence_ids"]
        assert len(set(first["sample_sequence_ids"])) == 3
        res = decode(t.SampleResponse, json.dumps(await api.result(first["request_id"])).encode())
        assert [len(s.tokens) for s in res.sequences] == [40, 40, 40]
        assert {s.stop_reason for s in res.sequences} == {"length"}


async def test_retrieve_futures_reports_protobuf_sizes() -> None:
    """retrieve_futures announces the size of the protobuf answer its poller (0.38) will fetch."""
    async with running(ServerConfig(enable_retrieve_futures=True)) as (_, api):
        sampler = await api.sampler(await api.session())
        rid = await api.submit("asample", sample_body(sampler, 0, num_samples=2))
        target = {"type": "sampling_session", "sampling_session_id": sampler}
        events: list[dict[str, Any]] = []
        while not events:
            events = (await api.ok("retrieve_futures", {"target": target}))["completions"]
        fetched = await poll(api, rid, PROTOBUF)
        assert events[0]["response_payload_uncompressed_size"] == len(fetched.content)
        assert np.asarray(
            _binary.decode_sample_response(fetched.content).sequences[0].tokens_np
        ).size
