"""Client behaviour at the wire level, against a scripted mock server (seq_ids, order, resubmission)."""

from __future__ import annotations

import pickle
import sys
from typing import Any

import anyio
import httpx
import numpy as np
import orjson
import pytest

import mint_async
from mint_async import types as t

from .mock_server import MockServer, json_response

pytestmark = pytest.mark.anyio

FB_RESULT: dict[str, Any] = {
    "loss_fn_output_type": "ArrayRecord",
    "loss_fn_outputs": [{"logprobs": {"data": [-1.0, -2.0], "dtype": "float32", "shape": [2]}}],
    "metrics": {"loss:sum": 3.0},
}


def make_datum(n: int = 2) -> t.Datum:
    return t.Datum(
        model_input=t.ModelInput.from_ints(list(range(n))),
        loss_fn_inputs={"target_tokens": list(range(1, n + 1)), "weights": [1.0] * n},
    )


class TrainingMock(MockServer):
    """Answers training submissions with sequential promises and results by request id."""

    def __init__(self) -> None:
        super().__init__()
        self.results: dict[str, Any] = {}
        self.counter = 0
        for path in (
            "create_model",
            "forward_backward",
            "forward",
            "optim_step",
            "save_weights",
            "load_weights",
            "save_weights_for_sampler",
            "asample",
            "mint/forward_backward_reverse_kl",
            "mint/checkpoints/interpolate",
        ):
            self.routes[path] = self.promise
        self.routes["retrieve_future"] = self.retrieve

    def promise(self, request: httpx.Request) -> dict[str, str]:
        self.counter += 1
        rid = f"req-{self.counter}"
        body = orjson.loads(request.content)
        path = request.url.path.split("/api/v1/", 1)[1]
        self.results[rid] = self.result_for(path, body)
        return {"request_id": rid}

    def result_for(self, path: str, body: dict[str, Any]) -> Any:
        if path == "create_model":
            return {"model_id": f"sess1:train:{body['model_seq_id']}"}
        if path in ("forward_backward", "forward"):
            key = "forward_backward_input" if path == "forward_backward" else "forward_input"
            n = len(body[key]["data"])
            return {
                **FB_RESULT,
                "loss_fn_outputs": FB_RESULT["loss_fn_outputs"] * n,
                "metrics": {"loss:sum": float(n)},
            }
        if path == "optim_step":
            return {"metrics": {"lr:mean": body["adam_params"]["learning_rate"]}}
        if path == "save_weights":
            return {"path": f"tinker://{body['model_id']}/weights/{body['path']}"}
        if path == "save_weights_for_sampler":
            if "path" in body:
                return {"path": f"tinker://{body['model_id']}/sampler_weights/{body['path']}"}
            return {"sampling_session_id": f"sess1:sample:{body['sampling_session_seq_id']}"}
        if path == "asample":
            return {
                "sequences": [{"stop_reason": "length", "tokens": [1, 2], "logprobs": [-0.1, -0.2]}]
                * body["num_samples"]
            }
        if path == "mint/forward_backward_reverse_kl":
            return {
                "outputs": [{"loss": {"data": [0.5], "shape": [1], "dtype": "float32"}}],
                "metrics": {"loss:sum": 0.5},
            }
        if path == "mint/checkpoints/interpolate":
            return {
                "path": "tinker://x/sampler_weights/mix",
                "source_paths": body["source_paths"],
                "coefficients": body["coefficients"],
            }
        return {}

    def retrieve(self, request: httpx.Request) -> Any:
        rid = orjson.loads(request.content)["request_id"]
        return self.results[rid]

    def submissions(self, path: str) -> list[dict[str, Any]]:
        return self.bodies(path)


async def test_session_and_create_model() -> None:
    """Entering creates a session; create_model carries the session and increasing model_seq_ids."""
    mock = TrainingMock()
    async with mock.service(tags=("b", "a")) as svc:
        assert svc.session_id == "sess1"
        tc1 = await svc.create_lora_training_client("Qwen/Qwen3-0.6B", rank=8, seed=3)
        tc2 = await svc.create_lora_training_client()
    assert mock.bodies("create_session") == [
        {"type": "create_session", "tags": ["b", "a"], "user_metadata": {}, "sdk_version": "0.22.0"}
    ]
    created = mock.submissions("create_model")
    assert [c["model_seq_id"] for c in created] == [0, 1]
    assert created[0]["lora_config"] == {
        "rank": 8,
        "seed": 3,
        "train_unembed": True,
        "train_mlp": True,
        "train_attn": True,
    }
    assert created[1]["lora_config"]["rank"] == 16 and created[1]["base_model"] == "Qwen/Qwen3-0.6B"
    assert (tc1.model_id, tc2.model_id) == ("sess1:train:0", "sess1:train:1")


async def test_closed_client_refuses_use_and_reuse() -> None:
    """After exit, methods raise ClientClosedError and the client cannot be re-entered."""
    mock = TrainingMock()
    svc = mock.service()
    async with svc:
        pass
    with pytest.raises(mint_async.ClientClosedError):
        await svc.create_lora_training_client()
    with pytest.raises(mint_async.ClientClosedError):
        async with svc:
            pass


async def test_pipelined_training_ops_take_consecutive_seq_ids() -> None:
    """fb, optim, save take seq_ids 1, 2, 3 in submission order; results come later."""
    mock = TrainingMock()
    async with mock.service() as svc:
        tc = await svc.create_lora_training_client()
        fb = await tc.forward_backward([make_datum()], "cross_entropy")
        opt = await tc.optim_step(t.AdamParams(learning_rate=0.01))
        save = await tc.save_state("ckpt-1")
        assert len(mock.calls("retrieve_future")) == 1  # only create_model's poll so far
        assert (await fb).loss == 1.0
        assert (await opt).metrics == {"lr:mean": 0.01}
        assert (await save).path == "tinker://sess1:train:0/weights/ckpt-1"
    assert [b["seq_id"] for b in mock.submissions("forward_backward")] == [1]
    assert mock.submissions("optim_step")[0]["seq_id"] == 2
    assert mock.submissions("save_weights")[0]["seq_id"] == 3
    order = [r.url.path.rsplit("/", 1)[-1] for r in mock.requests if "retrieve" not in r.url.path]
    assert order.index("forward_backward") < order.index("optim_step") < order.index("save_weights")


async def test_training_pipeline_window_shrinks_on_429s() -> None:
    """429s on a pipelined training submission shrink the window; the op still succeeds, once."""
    mock = TrainingMock()
    limited = {"left": 2}

    def forward_backward(request: httpx.Request) -> Any:
        if limited["left"]:
            limited["left"] -= 1
            return json_response(429, {"detail": "slow down"}, {"retry-after-ms": "0"})
        return mock.promise(request)

    mock.routes["forward_backward"] = forward_backward
    async with mock.service() as svc:
        tc = await svc.create_lora_training_client()
        async with tc.pipeline(max_in_flight=8) as pipe:
            fb = await pipe.forward_backward([make_datum()])
            opt = await pipe.optim_step(t.AdamParams(learning_rate=0.01))
            assert (await fb).loss == 1.0 and (await opt).metrics == {"lr:mean": 0.01}
            stats = pipe.statistics()
        outside = await tc.forward_backward([make_datum()])  # no pipeline: no hook left behind
        await outside
    assert stats.rate_limited == 2 and stats.retries == 2 and stats.window_decreases >= 1
    assert stats.window < 8
    assert [b["seq_id"] for b in mock.submissions("forward_backward")] == [1, 1, 1, 3]


async def test_chunks_share_a_turn_first_chunk_last() -> None:
    """A batch beyond the chunk limit is split; chunks get consecutive seq_ids, the first is sent last."""
    mock = TrainingMock()
    mock.script("client/config", {"fwdbwd_max_chunk_len": 2})
    async with mock.service() as svc:
        tc = await svc.create_lora_training_client()
        fut = await tc.forward_backward([make_datum() for _ in range(5)])
        opt = await tc.optim_step()
        out = await fut
        await opt
    subs = mock.submissions("forward_backward")
    assert sorted(s["seq_id"] for s in subs) == [1, 2, 3]
    assert subs[-1]["seq_id"] == 1  # the first chunk goes last
    sizes = {s["seq_id"]: len(s["forward_backward_input"]["data"]) for s in subs}
    assert sizes == {1: 2, 2: 2, 3: 1}
    assert mock.submissions("optim_step")[0]["seq_id"] == 4
    assert len(out.loss_fn_outputs) == 5 and out.metrics["loss:sum"] == 5.0
    assert isinstance(fut, mint_async.ForwardBackwardFuture) and len(fut.parts) == 3


async def test_sequential_chunks_when_parallel_disabled() -> None:
    """With parallel_fwdbwd_chunks=false, chunks are submitted in seq_id order."""
    mock = TrainingMock()
    mock.script("client/config", {"fwdbwd_max_chunk_len": 1, "parallel_fwdbwd_chunks": False})
    async with mock.service() as svc:
        tc = await svc.create_lora_training_client()
        await (await tc.forward([make_datum(), make_datum(), make_datum()]))
    assert [s["seq_id"] for s in mock.submissions("forward")] == [1, 2, 3]


async def test_failed_submission_breaks_training_client() -> None:
    """A submission that fails for good makes later operations raise SequenceBrokenError."""
    mock = TrainingMock()
    async with mock.service(retry=mint_async.RetryPolicy(max_retries=1)) as svc:
        tc = await svc.create_lora_training_client()
        mock.script("optim_step", json_response(503, {"detail": "down"}))
        with pytest.raises(mint_async.InternalServerError):
            await tc.optim_step()
        with pytest.raises(mint_async.SequenceBrokenError, match=r"seq_ids 1\.\.1"):
            await tc.forward_backward([make_datum()])
    assert [b["seq_id"] for b in mock.submissions("optim_step")] == [
        1,
        1,
    ]  # retried with the same seq_id


async def test_invalid_batches_rejected_before_sending() -> None:
    """Bad input raises InvalidInputError and takes no seq_id."""
    mock = TrainingMock()
    async with mock.service() as svc:
        tc = await svc.create_lora_training_client()
        with pytest.raises(mint_async.InvalidInputError):
            await tc.forward_backward([])
        with pytest.raises(mint_async.InvalidInputError):
            await tc.forward_backward([make_datum()], "mse")  # type: ignore[arg-type]
        with pytest.raises(mint_async.InvalidInputError):
            await tc.forward_backward(make_datum())  # type: ignore[arg-type]
        with pytest.raises(mint_async.InvalidInputError):
            await tc.save_state("a/b")
        with pytest.raises(mint_async.InvalidInputError):
            await tc.load_state("")
        assert tc.next_seq_id == 1
    assert mock.calls("forward_backward") == []


async def test_sampler_weights_and_sampling_clients() -> None:
    """Named and ephemeral sampler saves use the right forms; the ephemeral one yields a client."""
    mock = TrainingMock()
    mock.routes["get_info"] = lambda r: {
        "model_id": "sess1:train:0",
        "model_data": {"tokenizer_id": "/nonexistent/tok"},
    }
    async with mock.service() as svc:
        tc = await svc.create_lora_training_client()
        named = await (await tc.save_weights_for_sampler("s1"))
        assert named.path == "tinker://sess1:train:0/sampler_weights/s1"
        sc = await tc.save_weights_and_get_sampling_client()
        assert sc.sampling_session_id == "sess1:sample:0"
    forms = mock.submissions("save_weights_for_sampler")
    assert forms[0] == {
        "type": "save_weights_for_sampler",
        "model_id": "sess1:train:0",
        "seq_id": 1,
        "path": "s1",
    }
    assert forms[1] == {
        "type": "save_weights_for_sampler",
        "model_id": "sess1:train:0",
        "seq_id": 2,
        "sampling_session_seq_id": 0,
    }


async def test_sample_request_ids_are_deterministic() -> None:
    """Sample seq_ids count from 0 and request ids are <sampling_session_id>:<seq_id>."""
    mock = TrainingMock()
    mock.script("create_sampling_session", {"sampling_session_id": "sess1:sample:0"})
    async with mock.service() as svc:
        sc = await svc.create_sampling_client(base_model="Qwen/Qwen3-0.6B")
        prompt = t.ModelInput.from_ints([1, 2, 3])
        futs = [await sc.submit_sample(prompt, 2, t.SamplingParams(max_tokens=2)) for _ in range(3)]
        assert [f.request_id for f in futs] == [
            "sess1:sample:0:0",
            "sess1:sample:0:1",
            "sess1:sample:0:2",
        ]
        resp = await futs[0]
        assert len(resp.sequences) == 2 and resp.sequences[0].tokens == [1, 2]
        assert (await sc.sample(prompt, 1)).sequences[0].logprobs == pytest.approx([-0.1, -0.2])
    bodies = mock.submissions("asample")
    assert [b["seq_id"] for b in bodies] == [0, 1, 2, 3]
    assert all(c.headers["x-tinker-sampling-backpressure"] == "1" for c in mock.calls("asample"))
    assert bodies[0]["sampling_params"] == {
        "max_tokens": 2,
        "temperature": 1.0,
        "top_k": -1,
        "top_p": 1.0,
    }


async def test_sample_backpressure_keeps_seq_id_and_410_takes_a_new_one() -> None:
    """429 on asample resubmits the same seq_id; a future lost by the server (410) gets a new one."""
    mock = TrainingMock()
    mock.script("create_sampling_session", {"sampling_session_id": "s:sample:0"})
    answers = [json_response(429, {"detail": "busy"}), json_response(429, {"detail": "busy"})]

    def asample(request: httpx.Request) -> Any:
        return answers.pop(0) if answers else mock.promise(request)

    mock.routes["asample"] = asample
    lost = {"req-1"}

    def retrieve(request: httpx.Request) -> Any:
        rid = orjson.loads(request.content)["request_id"]
        if rid in lost:
            lost.discard(rid)
            return json_response(410, {"detail": "expired"})
        return mock.results[rid]

    mock.routes["retrieve_future"] = retrieve
    async with mock.service() as svc:
        sc = await svc.create_sampling_client()
        fut = await sc.submit_sample(t.ModelInput.from_ints([1]), 1)
        await fut
        assert fut.resubmits == 1 and fut.request_id == "s:sample:0:1"
    assert [b["seq_id"] for b in mock.submissions("asample")] == [0, 0, 0, 1]


async def test_sampling_next_seq_id_is_a_deprecated_alias_of_reserve_seq_id() -> None:
    """SamplingClient.next_seq_id() warns (DeprecationWarning) and still reserves, like reserve_seq_id()."""
    mock = TrainingMock()
    mock.script("create_sampling_session", {"sampling_session_id": "s:sample:0"})
    async with mock.service() as svc:
        sc = await svc.create_sampling_client()
        assert sc.reserve_seq_id() == 0
        with pytest.warns(DeprecationWarning, match="reserve_seq_id"):
            assert sc.next_seq_id() == 1
        assert sc.reserve_seq_id() == 2  # the alias took one


async def test_sampling_client_pickles_with_namespaces() -> None:
    """Unpickled copies draw seq_ids from their own namespace: random, or pinned with with_seq_namespace."""
    mock = TrainingMock()
    mock.script("create_sampling_session", {"sampling_session_id": "s:sample:0"})
    async with mock.service() as svc:
        sc = await svc.create_sampling_client()
        assert sc.reserve_seq_id() == 0
        copy = pickle.loads(pickle.dumps(sc))
        assert (
            isinstance(copy, mint_async.SamplingClient) and copy.sampling_session_id == "s:sample:0"
        )
        assert 1 <= copy.seq_namespace < 10**9
        pinned = pickle.loads(pickle.dumps(sc.with_seq_namespace(7)))
        assert [pinned.reserve_seq_id() for _ in range(2)] == [7 * 10**9, 7 * 10**9 + 1]
        again = pickle.loads(pickle.dumps(sc.with_seq_namespace(7)))
        assert again.reserve_seq_id() == 7 * 10**9  # deterministic per namespace
        await copy.aclose()
        await pinned.aclose()
        await again.aclose()
    with pytest.raises(mint_async.InvalidInputError):
        sc.with_seq_namespace(10**9)


async def test_unpickled_copy_samples_on_its_own_connection() -> None:
    """An unpickled client reconnects lazily and samples without a ServiceClient."""
    mock = TrainingMock()
    mock.script("create_sampling_session", {"sampling_session_id": "s:sample:0"})
    async with mock.service() as svc:
        payload = pickle.dumps((await svc.create_sampling_client()).with_seq_namespace(3))
    copy: mint_async.SamplingClient = pickle.loads(payload)
    # The copy builds its own httpx transport; point it at the mock instead.
    copy._ctx.transport._user_transport = mock.transport  # pyright: ignore[reportPrivateUsage]
    async with copy:
        resp = await copy.sample(t.ModelInput.from_ints([5]), 1)
    assert resp.sequences[0].tokens == [1, 2]
    assert mock.submissions("asample")[-1]["seq_id"] == 3 * 10**9


async def test_reverse_kl_and_interpolate_bodies() -> None:
    """MinT extras send their documented bodies (explicit nulls, no seq_id unless given)."""
    mock = TrainingMock()
    async with mock.service() as svc:
        tc = await svc.create_lora_training_client()
        datum = t.ReverseKLDatum(
            student_input=t.ModelInput.from_ints([1, 2]),
            reference_input=t.ModelInput.from_ints([3, 1, 2]),
            target_tokens=[2, 5],
            weights=[1.0, 1.0],
        )
        out = await (await tc.forward_backward_reverse_kl("tinker://x/sampler_weights/t", [datum]))
        assert out.metrics == {"loss:sum": 0.5}
        mix = await svc.interpolate_checkpoints(
            ["tinker://a/sampler_weights/x", "tinker://b/sampler_weights/y"], [0.5, 0.5]
        )
        assert mix.path == "tinker://x/sampler_weights/mix"
        assert tc.next_seq_id == 1  # reverse KL took no seq_id
    kl = mock.submissions("mint/forward_backward_reverse_kl")[0]
    assert (
        kl["seq_id"] is None
        and kl["temperature"] == 1.0
        and kl["type"] == "mint_forward_backward_reverse_kl"
    )
    assert mock.submissions("mint/checkpoints/interpolate")[0]["output_path"] is None
    polls = [
        c
        for c in mock.calls("retrieve_future")
        if c.headers["x-tinker-request-type"].startswith("Mint")
    ]
    assert {c.headers["x-tinker-request-type"] for c in polls} == {
        "MintForwardBackwardReverseKL",
        "MintInterpolateCheckpoints",
    }


async def test_heartbeats_sent_and_stop_on_404() -> None:
    """The session is heartbeated; a server without the endpoint (404) just stops getting them."""
    mock = TrainingMock()
    mock.script("session_heartbeat", {}, {}, json_response(404, {"detail": "no"}))
    async with mock.service(heartbeat_interval=0.01):
        await anyio.sleep(0.2)
    assert len(mock.calls("session_heartbeat")) == 3
    assert mock.bodies("session_heartbeat")[0] == {
        "type": "session_heartbeat",
        "session_id": "sess1",
    }


async def test_custom_loss_weights_are_negative_gradients() -> None:
    """forward_backward_custom sends weights = -dloss/dlogprobs and reports the custom loss."""
    torch = pytest.importorskip("torch")
    mock = TrainingMock()

    def loss_fn(data: list[t.Datum], logprobs: list[Any]) -> tuple[Any, dict[str, float]]:
        loss = sum(((lp - 1.0) ** 2).sum() for lp in logprobs)
        return loss, {"custom:mean": 7.0}

    async with mock.service() as svc:
        tc = await svc.create_lora_training_client()
        out = await (await tc.forward_backward_custom([make_datum()], loss_fn))
    fwd = mock.submissions("forward")[0]["forward_input"]
    assert fwd["data"][0]["loss_fn_inputs"]["weights"]["data"] == [0.0, 0.0]
    bwd = mock.submissions("forward_backward")[0]["forward_backward_input"]
    # logprobs [-1, -2]: d/dlp (lp-1)^2 = 2(lp-1) = [-4, -6] → weights [4, 6]
    assert bwd["data"][0]["loss_fn_inputs"]["weights"]["data"] == [4.0, 6.0]
    assert out.metrics["loss:sum"] == pytest.approx(4.0 + 9.0)
    assert out.metrics["custom:mean"] == 7.0
    assert torch.is_tensor(torch.tensor(out.loss_fn_outputs[0]["logprobs"].to_numpy()))


async def test_archive_url_and_download(tmp_path: Any) -> None:
    """The archive 302 becomes a URL; download_checkpoint streams it to disk and checks sizes."""
    mock = TrainingMock()
    payload = b"x" * 5000
    mock.routes["training_runs/r:train:0/checkpoints/weights/c1/archive"] = lambda r: (
        httpx.Response(
            302,
            headers={
                "location": "http://mock.invalid/files/c1.tar.gz",
                "expires": "Wed, 21 Oct 2099 07:28:00 GMT",
            },
        )
    )

    def files(request: httpx.Request) -> httpx.Response:
        assert "x-api-key" in request.headers  # same server: the key goes along
        return httpx.Response(200, content=payload, headers={"content-length": str(len(payload))})

    mock.routes["../files/c1.tar.gz"] = files
    original = mock.handle

    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/files/c1.tar.gz":
            return files(request)
        return await original(request)

    mock.handle = handle  # type: ignore[method-assign]
    async with mock.service() as svc:
        rest = svc.create_rest_client()
        where = await rest.get_checkpoint_archive_url_from_tinker_path(
            "tinker://r:train:0/weights/c1"
        )
        assert isinstance(where, t.CheckpointArchiveUrlResponse)
        assert where.url.endswith("/files/c1.tar.gz") and where.expires.year == 2099
        seen: list[tuple[int, int | None]] = []
        path = await rest.download_checkpoint(
            "tinker://r:train:0/weights/c1",
            tmp_path,
            progress=lambda done, total: seen.append((done, total)),
        )
    assert path.read_bytes() == payload and path.name == "c1.tar.gz"
    assert seen[-1] == (5000, 5000)


async def test_per_file_checkpoint_urls(tmp_path: Any) -> None:
    """A CheckpointFilesResponse answer downloads each file and verifies its size."""
    mock = TrainingMock()
    mock.routes["training_runs/r:train:0/checkpoints/weights/c1/archive"] = lambda r: {
        "presigned_urls": [
            {"url": "http://mock.invalid/f/a.bin", "relative_file_name": "a.bin", "size_bytes": 3},
            {
                "url": "http://mock.invalid/f/sub/b.bin",
                "relative_file_name": "sub/b.bin",
                "size_bytes": 4,
            },
        ]
    }
    original = mock.handle

    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/f/"):
            return httpx.Response(
                200, content=b"abc" if request.url.path.endswith("a.bin") else b"defg"
            )
        return await original(request)

    mock.handle = handle  # type: ignore[method-assign]
    async with mock.service() as svc:
        out = await svc.create_rest_client().download_checkpoint(
            "tinker://r:train:0/weights/c1", tmp_path / "ck"
        )
    assert (out / "a.bin").read_bytes() == b"abc" and (
        out / "sub" / "b.bin"
    ).read_bytes() == b"defg"


async def test_download_size_mismatch_is_an_error(tmp_path: Any) -> None:
    """A truncated download raises DownloadError and leaves no partial file."""
    mock = TrainingMock()
    mock.routes["training_runs/r:train:0/checkpoints/weights/c1/archive"] = lambda r: {
        "presigned_urls": [
            {"url": "http://mock.invalid/f/a.bin", "relative_file_name": "a.bin", "size_bytes": 10}
        ]
    }
    original = mock.handle

    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/f/"):
            return httpx.Response(200, content=b"short")
        return await original(request)

    mock.handle = handle  # type: ignore[method-assign]
    async with mock.service() as svc:
        with pytest.raises(mint_async.DownloadError, match="expected 10"):
            await svc.create_rest_client().download_checkpoint(
                "tinker://r:train:0/weights/c1", tmp_path / "ck"
            )
    assert list((tmp_path / "ck").iterdir()) == []


async def test_wandb_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """wandb=... without the wandb package says how to install it."""
    monkeypatch.setitem(sys.modules, "wandb", None)  # makes `import wandb` fail
    mock = TrainingMock()
    async with mock.service() as svc:
        with pytest.raises(mint_async.WandbUnavailableError, match=r"mint-async\[wandb\]"):
            await svc.create_lora_training_client(wandb=t.WandbConfig(project="p"))
    assert mock.calls("create_model") == []


def test_numpy_in_datum_survives_the_wire() -> None:
    """A Datum built from numpy arrays encodes exactly like one built from lists."""
    from mint_async import _codec

    a = t.Datum(
        model_input=t.ModelInput.from_ints(np.array([0, 1])),
        loss_fn_inputs={"target_tokens": np.array([1, 2]), "weights": np.ones(2)},
    )
    assert orjson.loads(_codec.encode(a)) == orjson.loads(_codec.encode(make_datum()))


async def test_wandb_streams_training_metrics(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With wandb installed (offline mode), every forward_backward and optim_step metric is logged."""
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    runs: list[Any] = []
    real_init = wandb.init

    def init(**kwargs: Any) -> Any:
        run = real_init(**kwargs)
        runs.append(run)
        return run

    monkeypatch.setattr(wandb, "init", init)
    mock = TrainingMock()
    async with mock.service() as svc:
        tc = await svc.create_lora_training_client(
            wandb=t.WandbConfig(project="mint-test", name="run-1")
        )
        for _ in range(2):
            fb = await tc.forward_backward([make_datum(), make_datum()])
            opt = await tc.optim_step(t.AdamParams(learning_rate=0.5))
            await fb
            await opt
        (run,) = runs
        assert run.name == "run-1" and run.config["base_model"] == "Qwen/Qwen3-0.6B"
        summary = dict(run.summary)
    assert summary["forward_backward/loss:sum"] == 2.0
    assert summary["optim_step/lr:mean"] == 0.5


async def test_opaque_sampler_paths_pass_through() -> None:
    """Sampler and checkpoint paths the client cannot parse are sent as they are."""
    mock = TrainingMock()
    mock.script("create_sampling_session", {"sampling_session_id": "s:sample:0"})
    async with mock.service() as svc:
        await svc.create_sampling_client(model_path="mint://teacher-step-0010")
        tc = await svc.create_lora_training_client()
        await (await tc.load_state("tinker://run-without-kind"))
    assert mock.bodies("create_sampling_session")[0]["model_path"] == "mint://teacher-step-0010"
    assert mock.submissions("load_weights")[0]["path"] == "tinker://run-without-kind"


async def test_tokenizer_unreachable_hub_names_the_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub tokenizer that cannot be loaded offline raises TokenizerUnavailableError naming MINT_TOKENIZER_PATH."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MINT_TOKENIZER_PATH", raising=False)
    mock = TrainingMock()
    mock.routes["get_info"] = lambda r: {
        "model_id": "sess1:train:0",
        "model_data": {"tokenizer_id": "no-such-org/no-such-model"},
    }
    async with mock.service() as svc:
        tc = await svc.create_lora_training_client()
        with pytest.raises(mint_async.TokenizerUnavailableError, match="MINT_TOKENIZER_PATH"):
            await tc.get_tokenizer()


async def test_tokenizer_override_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """MINT_TOKENIZER_PATH points get_tokenizer at a local directory."""
    from mint_async.server.backends import _tiny_tokenizer

    monkeypatch.setenv("MINT_TOKENIZER_PATH", str(_tiny_tokenizer.ensure_tiny_tokenizer(tmp_path)))
    mock = TrainingMock()
    mock.routes["get_info"] = lambda r: {
        "model_id": "sess1:train:0",
        "model_data": {"tokenizer_id": "Qwen/Qwen3-0.6B"},
    }
    async with mock.service() as svc:
        tc = await svc.create_lora_training_client()
        tok = await tc.get_tokenizer()
    assert tok.decode(tok.encode("12 * 3")) == "12 * 3"


async def test_errors_in_the_block_propagate_unwrapped() -> None:
    """An exception raised inside `async with ServiceClient()` comes out as itself, not an ExceptionGroup."""
    mock = TrainingMock()
    with pytest.raises(KeyError, match="boom"):
        async with mock.service():
            raise KeyError("boom")


async def test_cancellation_of_the_block_is_clean() -> None:
    """A timeout around `async with ServiceClient()` cancels the body and closes the client."""
    mock = TrainingMock()
    svc = mock.service(heartbeat_interval=0.01)
    with anyio.move_on_after(0.1) as scope:
        async with svc:
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    with pytest.raises(mint_async.ClientClosedError):
        await svc.create_lora_training_client()


async def test_training_observers_can_be_removed_and_pipelines_leave_none() -> None:
    """remove_queue_state_observer undoes on_queue_state_change; a closed pipeline leaves no observer."""
    mock = TrainingMock()
    async with mock.service() as svc:
        tc = await svc.create_lora_training_client()
        seen: list[str] = []

        def observer(state: t.QueueState, reason: str | None) -> None:
            seen.append(state)

        tc.on_queue_state_change(observer)
        tc.remove_queue_state_observer(observer)
        with pytest.raises(ValueError, match="not"):
            tc.remove_queue_state_observer(observer)
        for _ in range(2):
            async with tc.pipeline() as pipe:
                await (await pipe.optim_step(t.AdamParams(learning_rate=0.01)))
        assert tc._monitor._observers == []  # pyright: ignore[reportPrivateUsage]
    assert seen == []
