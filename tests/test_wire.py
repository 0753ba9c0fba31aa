"""The binary wire from the client's side: Accept offers, protobuf bodies, zstd, modes, the 415 switch."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import httpx
import orjson
import pytest

import mint_async
from mint_async import _binary, _codec
from mint_async import types as t

from .mock_server import API_KEY, json_response
from .test_clients import TrainingMock, make_datum

pytestmark = pytest.mark.anyio


class BinaryMock(TrainingMock):
    """Decodes protobuf bodies and answers polls in protobuf when the client accepts it."""

    def __init__(self) -> None:
        super().__init__()
        self.binary_bodies: list[
            tuple[str, t.ForwardBackwardRequest | t.ForwardRequest, str | None]
        ] = []

    def promise(self, request: httpx.Request) -> dict[str, str]:
        if request.headers.get("content-type") == "application/x-protobuf":
            body = request.content
            encoding = request.headers.get("content-encoding")
            if encoding == "zstd":
                body = _binary.zstd_decompress(body, max_size=1 << 24)
            decoded = _binary.decode_forward_backward_request(body)
            path = request.url.path.split("/api/v1/", 1)[1]
            self.binary_bodies.append((path, decoded, encoding))
            self.counter += 1
            rid = f"req-{self.counter}"
            n = len(
                (
                    decoded.forward_backward_input
                    if isinstance(decoded, t.ForwardBackwardRequest)
                    else decoded.forward_input
                ).data
            )
            self.results[rid] = {
                **self.result_for("forward_backward", {"forward_backward_input": {"data": [0] * n}})
            }
            return {"request_id": rid}
        return super().promise(request)

    def retrieve(self, request: httpx.Request) -> Any:
        result = super().retrieve(request)
        if "application/x-protobuf" not in request.headers.get("accept", ""):
            return result
        if "sequences" in result:
            return httpx.Response(
                200,
                content=_binary.encode_sample_response(
                    _codec.decode(t.SampleResponse, orjson.dumps(result))
                ),
                headers={"content-type": "application/x-protobuf"},
            )
        if "loss_fn_outputs" in result:
            out = _codec.decode(t.ForwardBackwardOutput, orjson.dumps(result))
            return httpx.Response(
                200,
                content=_binary.encode_forward_backward_output(out),
                headers={"content-type": "application/x-protobuf"},
            )
        return result


async def test_auto_offers_protobuf_results_and_decodes_them() -> None:
    """auto: JSON bodies, but polls of forward_backward and sample accept protobuf, which decodes."""
    mock = BinaryMock()
    mock.script("create_sampling_session", {"sampling_session_id": "s:sample:0"})
    async with mock.service() as svc:
        tc = await svc.create_lora_training_client()
        out = await (await tc.forward_backward([make_datum()]))
        sc = await svc.create_sampling_client()
        resp = await sc.sample(t.ModelInput.from_ints([1]), 2)
    assert out.loss == 1.0 and out.loss_fn_outputs[0]["logprobs"].tolist() == [-1.0, -2.0]
    assert resp.sequences[1].tokens == [1, 2]
    accepts = {
        c.headers["x-tinker-request-type"]: c.headers["accept"]
        for c in mock.calls("retrieve_future")
    }
    assert accepts == {
        "CreateModel": "application/json",
        "ForwardBackward": "application/x-protobuf, application/json",
        "Sample": "application/x-protobuf, application/json",
    }
    assert mock.binary_bodies == []  # bodies stay JSON unless the server asks


@pytest.mark.parametrize("compress", [False, True])
async def test_server_asks_for_protobuf_bodies(compress: bool) -> None:
    """proto_write_fwdbwd sends forward_backward as protobuf (zstd with proto_compress_fwdbwd)."""
    mock = BinaryMock()
    mock.script("client/config", {"proto_write_fwdbwd": True, "proto_compress_fwdbwd": compress})
    async with mock.service() as svc:
        tc = await svc.create_lora_training_client()
        out = await (
            await tc.forward_backward(
                [make_datum(), make_datum()], "ppo", {"clip_low_threshold": 0.8}
            )
        )
        await (await tc.forward([make_datum()]))
    assert out.metrics == {"loss:sum": 2.0}
    path, req, encoding = mock.binary_bodies[0]
    assert path == "forward_backward" and encoding == ("zstd" if compress else None)
    assert isinstance(req, t.ForwardBackwardRequest) and req.seq_id == 1
    assert req.forward_backward_input.loss_fn == "ppo"
    config = req.forward_backward_input.loss_fn_config
    assert config is not None and config["clip_low_threshold"] == pytest.approx(0.8)
    assert req.forward_backward_input.data[0] == make_datum()
    # 0.22 keeps `forward` as JSON on /forward even when forward_backward is binary.
    assert [b["seq_id"] for b in mock.bodies("forward")] == [2]


async def test_json_mode_never_offers_protobuf() -> None:
    """wire='json' sends and accepts JSON only."""
    mock = BinaryMock()
    mock.script("client/config", {"proto_write_fwdbwd": True})
    async with mock.service(wire="json") as svc:
        tc = await svc.create_lora_training_client()
        await (await tc.forward_backward([make_datum()]))
    assert mock.binary_bodies == []
    assert all(c.headers["accept"] == "application/json" for c in mock.calls("retrieve_future"))


async def test_binary_mode_sends_forward_as_forward_only() -> None:
    """wire='binary' sends forward to forward_backward with forward_only, as tinker 0.38 does."""
    mock = BinaryMock()
    async with mock.service(wire="binary") as svc:
        tc = await svc.create_lora_training_client()
        out = await (await tc.forward([make_datum()]))
        pointer = t.Datum(
            model_input=t.ModelInput(
                chunks=[t.ImageAssetPointerChunk(format="png", location="x", expected_tokens=2)]
            ),
            loss_fn_inputs={"target_tokens": [1, 2]},
        )
        with pytest.raises(mint_async.InvalidInputError, match="image_asset_pointer"):
            await tc.forward_backward([pointer])
        assert tc.next_seq_id == 2  # rejected before taking a seq_id
    assert out.loss == 1.0
    path, req, _ = mock.binary_bodies[0]
    assert path == "forward_backward" and isinstance(req, t.ForwardRequest)
    assert mock.calls("forward") == []


def refuse_json_bodies(mock: BinaryMock) -> None:
    """Make ``mock`` answer JSON forward_backward bodies with 415, as a 0.38-wire server does."""
    original = mock.promise

    def picky(request: httpx.Request) -> Any:
        if request.headers.get("content-type") != "application/x-protobuf":
            return json_response(415, {"detail": "protobuf required"})
        return original(request)

    mock.routes["forward_backward"] = picky


def json_fwdbwd_requests(mock: BinaryMock) -> list[t.ForwardBackwardRequest]:
    """The forward_backward requests ``mock`` received as JSON (the refused ones), in order."""
    return [
        _codec.decode(t.ForwardBackwardRequest, c.content)
        for c in mock.calls("forward_backward")
        if c.headers.get("content-type") == "application/json"
    ]


async def test_415_switches_auto_mode_to_protobuf() -> None:
    """A server refusing JSON bodies (415) gets the same request (same seq_id) as protobuf, then always."""
    mock = BinaryMock()
    refuse_json_bodies(mock)
    async with mock.service() as svc:
        tc = await svc.create_lora_training_client()
        first = await tc.forward_backward([make_datum()])
        second = await tc.forward_backward([make_datum()])
        await first
        await second
    assert [r.seq_id for _, r, _ in mock.binary_bodies] == [1, 2]
    assert len(mock.calls("forward_backward")) == 3  # one refused JSON attempt, then protobuf only


@pytest.mark.parametrize("parallel", [False, True], ids=["sequential", "parallel"])
async def test_415_resends_every_chunk_of_a_split_batch(parallel: bool) -> None:
    """Every JSON chunk of a split batch refused with 415 is resent once as protobuf, same request and seq_id."""
    mock = BinaryMock()
    mock.script("client/config", {"fwdbwd_max_chunk_len": 1, "parallel_fwdbwd_chunks": parallel})
    refuse_json_bodies(mock)
    batch = [make_datum(1), make_datum(2), make_datum(3)]
    async with mock.service() as svc:
        tc = await svc.create_lora_training_client()
        out = await (await tc.forward_backward(batch))
        after = await (await tc.forward_backward([make_datum()]))
    # Three chunks of one datum each, combined in batch order.
    assert len(out.loss_fn_outputs) == 3 and out.metrics == {"loss:sum": 3.0}
    assert out.loss_fn_outputs[2]["logprobs"].tolist() == [-1.0, -2.0]
    assert after.metrics == {"loss:sum": 1.0}
    refused = {r.seq_id: r for r in json_fwdbwd_requests(mock)}
    resent = {r.seq_id: r for _, r, _ in mock.binary_bodies if r.seq_id in refused}
    # Each chunk met the 415 once and went again as the very same request.
    assert sorted(refused) == [1, 2, 3] == sorted(resent)
    assert len(mock.calls("forward_backward")) == 3 + 3 + 1  # the next batch: protobuf only
    for seq_id, request in refused.items():
        assert resent[seq_id] == request
        assert request.forward_backward_input.data == [batch[seq_id - 1]]
    if not parallel:
        assert [r.seq_id for _, r, _ in mock.binary_bodies] == [1, 2, 3, 4]


@pytest.mark.parametrize("wire", ["json", "binary"])
async def test_415_raises_outside_auto_mode(wire: str) -> None:
    """wire='json' (no switching) and a refused protobuf body raise APIStatusError 415, sent once."""
    mock = BinaryMock()
    mock.routes["forward_backward"] = lambda _: json_response(415, {"detail": "no"})
    async with mock.service(wire=wire) as svc:
        tc = await svc.create_lora_training_client()
        with pytest.raises(mint_async.APIStatusError) as info:
            await tc.forward_backward([make_datum()])
    assert info.value.status_code == 415
    assert len(mock.calls("forward_backward")) == 1


@pytest.mark.parametrize("wire", ["auto", "json", "binary"])
async def test_mint_wire_env_selects_the_wire(monkeypatch: pytest.MonkeyPatch, wire: str) -> None:
    """MINT_WIRE picks the wire mode when no wire= argument is given."""
    monkeypatch.setenv("MINT_WIRE", wire)
    assert mint_async.ClientConfig.resolve(api_key=API_KEY).wire == wire


async def test_mint_wire_unset_or_empty_means_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without MINT_WIRE (or with it empty) the wire is auto."""
    monkeypatch.delenv("MINT_WIRE", raising=False)
    assert mint_async.ClientConfig.resolve(api_key=API_KEY).wire == "auto"
    monkeypatch.setenv("MINT_WIRE", "")
    assert mint_async.ClientConfig.resolve(api_key=API_KEY).wire == "auto"


async def test_explicit_wire_argument_beats_mint_wire(monkeypatch: pytest.MonkeyPatch) -> None:
    """wire=... given to resolve or to ServiceClient wins over MINT_WIRE."""
    monkeypatch.setenv("MINT_WIRE", "binary")
    assert mint_async.ClientConfig.resolve(api_key=API_KEY, wire="json").wire == "json"
    mock = BinaryMock()
    async with mint_async.ServiceClient(
        api_key=API_KEY, base_url="http://mock.invalid", transport=mock.transport, wire="json"
    ) as svc:
        tc = await svc.create_lora_training_client()
        await (await tc.forward([make_datum()]))
    assert mock.binary_bodies == [] and len(mock.calls("forward")) == 1


async def test_mint_wire_binary_reaches_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ServiceClient built from the environment with MINT_WIRE=binary sends protobuf bodies."""
    monkeypatch.setenv("MINT_WIRE", "binary")
    mock = BinaryMock()
    async with mint_async.ServiceClient(
        api_key=API_KEY, base_url="http://mock.invalid", transport=mock.transport
    ) as svc:
        tc = await svc.create_lora_training_client()
        await (await tc.forward([make_datum()]))
    [(path, req, _)] = mock.binary_bodies
    assert path == "forward_backward" and isinstance(req, t.ForwardRequest)
    assert mock.calls("forward") == []


@pytest.mark.parametrize("value", ["xml", "JSON", "protobuf"])
async def test_bad_mint_wire_is_a_typed_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """An unknown MINT_WIRE raises InvalidInputError naming the value, before any request."""
    monkeypatch.setenv("MINT_WIRE", value)
    with pytest.raises(mint_async.InvalidInputError, match=f"wire must be .*{value!r}"):
        mint_async.ClientConfig.resolve(api_key=API_KEY)
    mock = BinaryMock()
    with pytest.raises(mint_async.InvalidInputError, match="wire must be"):
        mint_async.ServiceClient(
            api_key=API_KEY, base_url="http://mock.invalid", transport=mock.transport
        )
    assert mock.requests == []


@pytest.mark.parametrize("kind", ["forward_backward", "sample"])
async def test_corrupt_protobuf_result_is_a_validation_error(kind: str) -> None:
    """A protobuf result body that does not parse raises APIResponseValidationError, not a hang or a retry."""
    mock = BinaryMock()
    mock.script("create_sampling_session", {"sampling_session_id": "s:sample:0"})
    original = mock.retrieve

    def corrupt(request: httpx.Request) -> Any:
        answer = original(request)
        if isinstance(answer, httpx.Response):  # a protobuf result: garble it
            return httpx.Response(
                200,
                content=b"\xff\xff\xff\xff not protobuf",
                headers={"content-type": "application/x-protobuf"},
            )
        return answer

    mock.routes["retrieve_future"] = corrupt
    async with mock.service() as svc:
        tc = await svc.create_lora_training_client()
        sc = await svc.create_sampling_client()
        if kind == "forward_backward":
            fut: Awaitable[object] = await tc.forward_backward([make_datum()])
        else:
            fut = sc.sample(t.ModelInput.from_ints([1]), 1)
        with pytest.raises(
            mint_async.APIResponseValidationError, match="undecodable binary result"
        ):
            await fut
    polls = [
        c
        for c in mock.calls("retrieve_future")
        if c.headers["x-tinker-request-type"] != "CreateModel"
    ]
    assert len(polls) == 1  # a corrupt body is not polled again
