"""Every endpoint of the server, in-process, on asyncio and trio."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from mint_async import types as t
from mint_async._codec import decode
from mint_async.server import LatencyConfig, ServerConfig
from mint_async.server._auth import owner_of_key

from ._support import BASE_MODEL, TOKENS, Api, datum, fb_body, optim_body, running, sample_body

pytestmark = pytest.mark.anyio


async def test_bootstrap_endpoints() -> None:
    """client/config enables the JWT exchange; the JWT works as a credential; telemetry and health."""
    async with running() as (server, api):
        r = await api.post("client/config", {"sdk_version": "0.22.0"})
        assert r.json() == {"pjwt_auth_enabled": True}
        jwt = (await api.ok("auth/token", {}))["jwt"]
        r = await api.post(
            "create_session",
            {"tags": ["a"], "user_metadata": {}, "sdk_version": "0.22.0", "type": "create_session"},
            headers={"X-API-Key": jwt},
        )
        assert r.status_code == 200 and r.json()["session_id"].startswith("sess-")
        refreshed = await api.post("auth/token", {}, headers={"X-API-Key": jwt})
        assert refreshed.status_code == 200
        event = {
            "event": "SESSION_START",
            "event_id": "e",
            "event_session_index": 0,
            "severity": "INFO",
            "timestamp": "2026-01-01T00:00:00Z",
        }
        assert (
            await api.ok(
                "telemetry",
                {
                    "events": [event],
                    "platform": "Linux",
                    "sdk_version": "0.22.0",
                    "session_id": "s",
                },
            )
        ) == {"status": "accepted"}
        caps = decode(
            t.GetServerCapabilitiesResponse, (await api.get("get_server_capabilities")).content
        )
        assert BASE_MODEL in [m.model_name for m in caps.supported_models]
        health = await server.client(headers={"X-API-Key": ""}).get("/api/v1/healthz")
        assert health.json() == {"status": "ok"}
        assert server.statistics().telemetry_events == 1


async def test_credentials_are_checked() -> None:
    """Unknown keys get 401 with a body; a bad JWT also gets WWW-Authenticate invalid_token."""
    async with running() as (_, api):
        r = await api.post("create_session", {}, headers={"X-API-Key": "sk-wrong"})
        assert r.status_code == 401 and r.json()["detail"] == "invalid API key"
        r = await api.post("create_session", {}, headers={"X-API-Key": "eyJ.bad.token"})
        assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]


async def test_bad_bodies_answer_400_with_a_body() -> None:
    """Undecodable or invalid bodies answer 400 with JSON and a non-zero Content-Length."""
    async with running() as (_, api):
        for path, body in (
            ("create_session", b"not json"),
            ("asample", b'{"num_samples": 0}'),
            ("optim_step", b"{}"),
        ):
            r = await api.http.post(f"/api/v1/{path}", content=body)
            assert r.status_code == 400, path
            assert int(r.headers["content-length"]) == len(r.content) > 0 and "detail" in r.json()


async def test_unknown_paths_and_methods() -> None:
    """404 for unknown endpoints, 405 for a wrong method on a known one."""
    async with running() as (_, api):
        assert (await api.get("nope")).status_code == 404
        assert (await api.get("asample")).status_code == 405


async def test_training_flow_and_model_info() -> None:
    """create_model, get_info, forward, forward_backward, optim_step; loss falls on repeated data."""
    async with running() as (_, api):
        sid = await api.session()
        mid = await api.model(sid, rank=16)
        assert mid == f"{sid}:train:0"
        info = decode(
            t.GetInfoResponse,
            (await api.post("get_info", {"model_id": mid, "type": "get_info"})).content,
        )
        assert info.lora_rank == 16 and info.model_data.model_name == BASE_MODEL
        assert info.model_data.tokenizer_id is not None
        first = await api.run("forward", fb_body(mid, 1, key="forward_input"))
        fb = decode(
            t.ForwardBackwardOutput, _json(await api.run("forward_backward", fb_body(mid, 2)))
        )
        assert fb.metrics["loss:sum"] == pytest.approx(first["metrics"]["loss:sum"])
        assert set(fb.loss_fn_outputs[0]) == {"logprobs"}
        opt = await api.run("optim_step", optim_body(mid, 3))
        assert opt["metrics"]["step:max"] == 1
        after = await api.run("forward", fb_body(mid, 4, key="forward_input"))
        assert after["metrics"]["loss:sum"] < first["metrics"]["loss:sum"]


async def test_rl_losses() -> None:
    """importance_sampling, ppo, cispo and dro run with their conventional inputs; bad inputs fail as user errors."""
    async with running() as (_, api):
        mid = await api.model(await api.session())
        n = len(TOKENS) - 1
        rl = [datum(logprobs=[-1.0] * n, advantages=[0.5] * n)]
        for seq, loss_fn in enumerate(("importance_sampling", "ppo", "cispo", "dro"), start=1):
            out = await api.run("forward_backward", fb_body(mid, seq, loss_fn=loss_fn, data=rl))
            assert "loss:sum" in out["metrics"], out
        failed = await api.run("forward_backward", fb_body(mid, 5, loss_fn="ppo"))
        assert failed["category"] == "user" and "logprobs" in failed["error"]


async def test_checkpoints_weights_and_sampling() -> None:
    """save_weights, load_weights (with and without optimizer), named and ephemeral sampler saves, sampling."""
    async with running() as (_, api):
        sid = await api.session()
        mid = await api.model(sid)
        saved = await api.run(
            "save_weights", {"model_id": mid, "path": "c1", "seq_id": 1, "type": "save_weights"}
        )
        assert saved == {"type": "save_weights", "path": f"tinker://{mid}/weights/c1"}
        exists = await api.run(
            "save_weights", {"model_id": mid, "path": "c1", "seq_id": 2, "type": "save_weights"}
        )
        assert exists["category"] == "user" and "exists" in exists["error"]
        for seq, optimizer in ((3, False), (4, True)):
            loaded = await api.run(
                "load_weights",
                {
                    "model_id": mid,
                    "path": saved["path"],
                    "seq_id": seq,
                    "optimizer": optimizer,
                    "type": "load_weights",
                },
            )
            assert loaded["path"] == saved["path"]
        named = await api.run(
            "save_weights_for_sampler",
            {"model_id": mid, "path": "s1", "seq_id": 5, "type": "save_weights_for_sampler"},
        )
        assert named["path"] == f"tinker://{mid}/sampler_weights/s1"
        no_opt = await api.run(
            "load_weights",
            {
                "model_id": mid,
                "path": named["path"],
                "seq_id": 6,
                "optimizer": True,
                "type": "load_weights",
            },
        )
        assert no_opt["category"] == "user"
        ephemeral = await api.run(
            "save_weights_for_sampler",
            {
                "model_id": mid,
                "seq_id": 7,
                "sampling_session_seq_id": 1,
                "type": "save_weights_for_sampler",
            },
        )
        assert ephemeral["sampling_session_id"] == f"{sid}:sample:1"
        for sampler in (
            ephemeral["sampling_session_id"],
            await api.sampler(sid, seq=2, model_path=named["path"]),
        ):
            res = decode(
                t.SampleResponse,
                _json(await api.run("asample", sample_body(sampler, 0, num_samples=3))),
            )
            assert len(res.sequences) == 3 and all(len(s.tokens) <= 4 for s in res.sequences)
        got = (await api.get(f"samplers/{sid}:sample:2")).json()
        info = (await api.post("get_info", {"model_id": mid, "type": "get_info"})).json()
        assert got == {
            "sampler_id": f"{sid}:sample:2",
            "base_model": BASE_MODEL,
            "model_path": named["path"],
            "tokenizer_id": info["model_data"]["tokenizer_id"],  # so get_tokenizer() works offline
        }
        missing = await api.post(
            "create_sampling_session",
            {
                "session_id": sid,
                "sampling_session_seq_id": 3,
                "model_path": f"tinker://{mid}/weights/none",
                "type": "create_sampling_session",
            },
        )
        assert missing.status_code == 404


async def test_sampling_prompt_logprobs_and_defaults() -> None:
    """Prompt logprobs (first null), top-k prompt logprobs, and the default max_tokens."""
    async with running(ServerConfig(default_max_tokens=5)) as (_, api):
        sampler = await api.sampler(await api.session())
        body = sample_body(sampler, 0, stop=[])
        del body["sampling_params"]["max_tokens"]
        body.update(prompt_logprobs=True, topk_prompt_logprobs=3)
        res = decode(t.SampleResponse, _json(await api.run("asample", body)))
        assert len(res.sequences[0].tokens) == 5
        assert (
            res.prompt_logprobs is not None
            and res.prompt_logprobs[0] is None
            and len(res.prompt_logprobs) == 4
        )
        assert res.topk_prompt_logprobs is not None and all(
            row is not None and len(row) == 3 for row in res.topk_prompt_logprobs[1:]
        )
        logprobs = await api.run(
            "asample",
            {
                **body,
                "seq_id": 1,
                "sampling_params": {"max_tokens": 1, "temperature": 1.0, "top_k": -1, "top_p": 1.0},
            },
        )
        assert logprobs["prompt_logprobs"] == pytest.approx(res.prompt_logprobs)
        # Beyond the context: refused at submission (issue 12), naming the limit.
        too_long = await api.post("asample", sample_body(sampler, 2, max_tokens=100_000))
        assert too_long.status_code == 400
        assert "max_context_length" in too_long.json()["detail"]


async def test_unload_model() -> None:
    """unload_model runs after earlier requests; afterwards the model is gone (404)."""
    async with running() as (_, api):
        mid = await api.model(await api.session())
        fb = await api.submit("forward_backward", fb_body(mid, 1))
        unloaded = await api.run("unload_model", {"model_id": mid, "type": "unload_model"})
        assert unloaded == {"type": "unload_model", "model_id": mid}
        assert "loss:sum" in (await api.result(fb))["metrics"]
        assert (await api.post("forward_backward", fb_body(mid, 2))).status_code == 404


async def test_rest_runs_checkpoints_and_pagination() -> None:
    """training_runs with cursors, a run, its checkpoints, user checkpoints, weights_info."""
    async with running() as (_, api):
        sid = await api.session()
        mids = [await api.model(sid, model_seq_id=i) for i in range(3)]
        path = (
            await api.run(
                "save_weights",
                {"model_id": mids[0], "path": "c", "seq_id": 1, "type": "save_weights"},
            )
        )["path"]
        page = decode(
            t.TrainingRunsResponse,
            (await api.get("training_runs", params={"limit": 2, "offset": 1})).content,
        )
        assert (
            page.cursor == t.Cursor(offset=1, limit=2, total_count=3)
            and len(page.training_runs) == 2
        )
        run = decode(t.TrainingRun, (await api.get(f"training_runs/{mids[0]}")).content)
        assert run.last_checkpoint is not None and run.last_checkpoint.tinker_path == path
        listed = decode(
            t.CheckpointsListResponse,
            (await api.get(f"training_runs/{mids[0]}/checkpoints")).content,
        )
        assert [c.checkpoint_id for c in listed.checkpoints] == ["weights/c"]
        mine = decode(t.CheckpointsListResponse, (await api.get("checkpoints")).content)
        assert mine.cursor is not None and mine.cursor.total_count == 1
        info = await api.ok("weights_info", {"tinker_path": path})
        assert info["base_model"] == BASE_MODEL and info["lora_rank"] == 8
        assert (await api.get("training_runs", params={"access_scope": "all"})).status_code == 400
        assert (await api.get("training_runs/nope")).status_code == 404


async def test_publish_ttl_delete_and_archive() -> None:
    """publish/unpublish with 409 on repeats, TTL set and cleared, archive 302 to a real tar.gz, delete."""
    async with running() as (server, api):
        mid = await api.model(await api.session())
        await api.run(
            "save_weights", {"model_id": mid, "path": "c", "seq_id": 1, "type": "save_weights"}
        )
        base = f"training_runs/{mid}/checkpoints/weights/c"
        assert (await api.http.post(f"/api/v1/{base}/publish")).status_code == 200
        assert (await api.http.post(f"/api/v1/{base}/publish")).status_code == 409
        assert (await api.http.delete(f"/api/v1/{base}/publish")).status_code == 200
        assert (await api.http.delete(f"/api/v1/{base}/publish")).status_code == 409
        assert (
            await api.http.put(f"/api/v1/{base}/ttl", json={"ttl_seconds": 3600})
        ).status_code == 200
        ckpt = decode(
            t.CheckpointsListResponse, (await api.get(f"training_runs/{mid}/checkpoints")).content
        ).checkpoints[0]
        assert ckpt.expires_at is not None
        assert (
            await api.http.put(f"/api/v1/{base}/ttl", json={"ttl_seconds": 0})
        ).status_code == 400
        assert (
            await api.http.put(f"/api/v1/{base}/ttl", json={"ttl_seconds": None})
        ).status_code == 200
        redirect = await api.get(f"{base}/archive")
        assert redirect.status_code == 302 and "expires" in redirect.headers
        download = await server.client(headers={"X-API-Key": ""}).get(redirect.headers["location"])
        with tarfile.open(fileobj=io.BytesIO(download.content), mode="r:gz") as tar:
            assert sorted(tar.getnames()) == ["c/lora.npz", "c/model.json", "c/optimizer.npz"]
        forged = redirect.headers["location"][:-3] + "abc"
        assert (await api.http.get(forged)).status_code == 403
        assert (await api.http.delete(f"/api/v1/{base}")).status_code == 200
        assert (await api.http.delete(f"/api/v1/{base}")).status_code == 404


async def test_other_users_see_only_public_checkpoints() -> None:
    """Another API key cannot read a private checkpoint, can read it once public."""
    async with running(ServerConfig(api_keys=("sk-a", "sk-b"))) as (server, api):
        mid = await api.model(await api.session())
        path = (
            await api.run(
                "save_weights", {"model_id": mid, "path": "c", "seq_id": 1, "type": "save_weights"}
            )
        )["path"]
        other = Api(server.client(headers={"X-API-Key": "sk-b"}))
        assert (await other.post("weights_info", {"tinker_path": path})).status_code == 404
        assert (await other.get(f"training_runs/{mid}")).status_code == 404
        assert (await other.post("forward_backward", fb_body(mid, 2))).status_code == 404
        await api.http.post(f"/api/v1/training_runs/{mid}/checkpoints/weights/c/publish")
        assert (await other.post("weights_info", {"tinker_path": path})).status_code == 200
        runs = (await other.get("training_runs", params={"access_scope": "accessible"})).json()
        assert [r["training_run_id"] for r in runs["training_runs"]] == [mid]


async def test_audit_log() -> None:
    """GET audit: own events only, a public checkpoint's read by another key in the owner's log, 400s."""
    async with running(ServerConfig(api_keys=("sk-a", "sk-b"))) as (server, api):
        mid = await api.model(await api.session())
        path = (
            await api.run(
                "save_weights", {"model_id": mid, "path": "c", "seq_id": 1, "type": "save_weights"}
            )
        )["path"]
        other = Api(server.client(headers={"X-API-Key": "sk-b"}))
        await api.http.post(f"/api/v1/training_runs/{mid}/checkpoints/weights/c/publish")
        other_sampler = await other.sampler(await other.session(), model_path=path)
        assert other_sampler
        entries = (await api.get("audit")).json()["entries"]
        assert [(e["event"], e.get("tinker_path"), e.get("purpose")) for e in entries] == [
            ("training_run_created", None, None),
            ("checkpoint_saved", path, None),
            ("checkpoint_published", path, None),
            ("checkpoint_read", path, "sampling"),
        ]
        details = [e["event_details"] for e in entries]
        assert details[1]["checkpoint_type"] == "training" and details[1]["size_bytes"] > 0
        assert details[3]["actor"] == owner_of_key("sk-b") != details[2]["actor"]
        assert (await other.get("audit")).json() == {"entries": []}  # b owns nothing
        checkpoints_only = await api.get("audit", params={"event_type": "checkpoints"})
        assert checkpoints_only.json()["entries"] == entries[1:]  # not training_run_created
        assert (await api.get("audit", params={"event_type": "teams"})).json() == {"entries": []}
        assert (await api.get("audit", params={"event_type": "nope"})).status_code == 400
        assert (await api.get("audit", params={"day": "22-11-2026"})).status_code == 400
        parsed = decode(t.AuditLogResponse, (await api.get("audit")).content)
        assert parsed.entries[0].timestamp.tzinfo is not None


async def test_session_endpoints() -> None:
    """GET sessions, GET sessions/{id}, PUT project, heartbeat, and 0.38's finish."""
    async with running() as (server, api):
        sid = await api.session()
        mid = await api.model(sid)
        sampler = await api.sampler(sid)
        assert sid in (await api.get("sessions")).json()["sessions"]
        assert (await api.get(f"sessions/{sid}")).json() == {
            "training_run_ids": [mid],
            "sampler_ids": [sampler],
        }
        assert (
            await api.http.put(f"/api/v1/sessions/{sid}/project", json={"project_id": "p"})
        ).status_code == 200
        assert (
            await api.ok("session_heartbeat", {"session_id": sid, "type": "session_heartbeat"})
        ) == {"type": "session_heartbeat"}
        assert server.statistics().heartbeats == 1
        assert (
            await api.http.post(
                f"/api/v1/sessions/{sid}/finish",
                json={"reason": {"type": "success"}, "detail": None},
            )
        ).status_code == 200
        assert (
            await api.post("session_heartbeat", {"session_id": sid, "type": "session_heartbeat"})
        ).status_code == 410


async def test_mint_reverse_kl_and_interpolation() -> None:
    """Reverse KL against a base model and a checkpoint; interpolation writes a sampleable checkpoint."""
    async with running() as (_, api):
        sid = await api.session()
        mid = await api.model(sid)
        n = 4
        item = {
            "student_input": {"chunks": [{"tokens": TOKENS[:n], "type": "encoded_text"}]},
            "reference_input": {"chunks": [{"tokens": [1, *TOKENS[:n]], "type": "encoded_text"}]},
            "target_tokens": {"data": TOKENS[1 : n + 1], "shape": [n], "dtype": "int64"},
            "weights": {"data": [1.0] * n, "shape": None, "dtype": "float32"},
        }
        body = {
            "model_id": mid,
            "reference_model_path": "Qwen/Qwen3-8B",
            "data": [item],
            "temperature": 1.0,
            "seq_id": None,
            "type": "mint_forward_backward_reverse_kl",
        }
        out = decode(
            t.ForwardBackwardReverseKLResponse,
            _json(await api.run("mint/forward_backward_reverse_kl", body)),
        )
        assert out.metrics["loss:sum"] > 0 and out.outputs[0].loss.shape == [n]
        paths = [
            (
                await api.run(
                    "save_weights_for_sampler",
                    {
                        "model_id": mid,
                        "path": name,
                        "seq_id": i,
                        "type": "save_weights_for_sampler",
                    },
                )
            )["path"]
            for i, name in ((1, "a"), (2, "b"))
        ]
        sequenced = await api.run(
            "mint/forward_backward_reverse_kl",
            {**body, "reference_model_path": paths[0], "seq_id": 3},
        )
        assert sequenced["metrics"]["loss:sum"] == pytest.approx(0.0, abs=1e-9)
        mixed = await api.run(
            "mint/checkpoints/interpolate",
            {
                "source_paths": paths,
                "coefficients": [0.3, 0.7],
                "output_path": None,
                "output_checkpoint_type": "sampler",
                "type": "mint_interpolate_checkpoints",
            },
        )
        assert mixed["path"].startswith(f"tinker://{mid}/sampler_weights/interpolated-") and mixed[
            "coefficients"
        ] == [0.3, 0.7]
        sampler = await api.sampler(sid, model_path=mixed["path"])
        assert (await api.run("asample", sample_body(sampler, 0)))["type"] == "sample"
        bad = await api.run(
            "mint/checkpoints/interpolate",
            {
                "source_paths": [f"tinker://{mid}/sampler_weights/zz"],
                "coefficients": [1.0],
                "output_path": None,
                "output_checkpoint_type": "sampler",
                "type": "mint_interpolate_checkpoints",
            },
        )
        assert bad["category"] == "user"


async def test_retrieve_futures_behind_its_flag() -> None:
    """retrieve_futures is 404 by default; enabled, it reports completions after a cursor."""
    async with running() as (_, api):
        assert (await api.post("retrieve_futures", {})).status_code == 404
    async with running(ServerConfig(enable_retrieve_futures=True)) as (_, api):
        assert (await api.ok("client/config", {"sdk_version": "0.38.0"}))[
            "sample_use_retrieve_futures"
        ] is True
        sampler = await api.sampler(await api.session())
        rids = [await api.submit("asample", sample_body(sampler, seq)) for seq in range(3)]
        seen: list[str] = []
        cursor = 0
        target = {
            "type": "sampling_session",
            "sampling_session_id": sampler,
            "cloned_sampler_id": 0,
        }
        body: dict[str, object] = {"target": target}
        while len(seen) < 3:
            body = {"target": target, "prev_cursor": cursor, "retrieved_request_ids": seen}
            answer = await api.ok("retrieve_futures", body)
            seen += [c["request_id"] for c in answer["completions"] if c["state"] == "finished"]
            cursor = answer["cursor"]
        assert sorted(seen) == sorted(rids)
        quick = await api.ok("retrieve_futures", {**body, "prev_cursor": cursor, "timeout": 0})
        assert quick["completions"] == []


async def test_cancel_future() -> None:
    """cancel_future fails an unfinished request, which then never executes."""
    async with running(ServerConfig(capacity=1, latency=LatencyConfig.parse("sample=0.3"))) as (
        server,
        api,
    ):
        sampler = await api.sampler(await api.session())
        first = await api.submit("asample", sample_body(sampler, 0))
        second = await api.submit("asample", sample_body(sampler, 1))
        assert (await api.ok("cancel_future", {"request_id": second}))["cancelled"] is True
        assert (await api.result(second))["error"] == "cancelled by the client"
        assert (await api.result(first))["type"] == "sample"
        assert server.executions(second) == 0


def _json(data: dict[str, object]) -> bytes:
    """Re-encode a decoded JSON answer (to decode it into a wire Struct)."""
    return json.dumps(data).encode()
