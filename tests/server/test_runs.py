"""Creating training runs: optimizer_config (tinker 0.38) and the create-via-load load_weights."""

from __future__ import annotations

from typing import Any

import pytest

from ._support import Api, create_model_body, fb_body, running

pytestmark = pytest.mark.anyio


def load_body(session_id: str, model_seq_id: int, path: str, **extra: Any) -> dict[str, Any]:
    """A create-via-load body, as tinker 0.38 sends it (no model_id, no seq_id)."""
    return {
        "session_id": session_id,
        "model_seq_id": model_seq_id,
        "path": path,
        "optimizer": False,
        "type": "load_weights",
        **extra,
    }


async def saved(api: Api, session_id: str) -> tuple[str, str]:
    """A rank-4 run with one training step and its checkpoint: (model_id, tinker path)."""
    mid = await api.model(session_id, rank=4)
    await api.run("forward_backward", fb_body(mid, 1))
    body = {"model_id": mid, "path": "c1", "seq_id": 2, "type": "save_weights"}
    return mid, (await api.run("save_weights", body))["path"]


async def test_optimizer_config_is_checked_and_echoed() -> None:
    """adamw is accepted and echoed by get_info; other optimizers answer 400; absent stays absent."""
    async with running() as (_, api):
        sid = await api.session()
        body = {**create_model_body(sid), "optimizer_config": {"type": "adamw"}}
        mid = str((await api.run("create_model", body))["model_id"])
        info = await api.ok("get_info", {"model_id": mid, "type": "get_info"})
        assert info["optimizer_config"] == {"type": "adamw"}
        dimuon = {**create_model_body(sid, 1), "optimizer_config": {"type": "dimuon", "version": 1}}
        r = await api.post("create_model", dimuon)
        assert r.status_code == 400 and "dimuon" in r.json()["detail"]
        plain = await api.model(sid, model_seq_id=2)
        info = await api.ok("get_info", {"model_id": plain, "type": "get_info"})
        assert "optimizer_config" not in info


async def test_create_via_load() -> None:
    """load_weights with session_id/model_seq_id creates <session>:train:<n> from the checkpoint, once."""
    async with running() as (server, api):
        sid = await api.session()
        mid, path = await saved(api, sid)
        reference = await api.run("forward", fb_body(mid, 3, key="forward_input"))
        body = load_body(sid, 1, path, optimizer=True, optimizer_config={"type": "adamw"})
        promise = await api.ok("load_weights", body)
        assert promise["model_id"] == f"{sid}:train:1"
        assert (await api.ok("load_weights", body))["request_id"] == promise["request_id"]
        loaded = await api.result(promise["request_id"])
        assert loaded == {"type": "load_weights", "path": path, "model_id": f"{sid}:train:1"}
        new = f"{sid}:train:1"
        info = await api.ok("get_info", {"model_id": new, "type": "get_info"})
        assert info["lora_rank"] == 4 and info["optimizer_config"] == {"type": "adamw"}
        # The load took slot 0: the run's own requests start at seq_id 1.
        same = await api.run("forward", fb_body(new, 1, key="forward_input"))
        assert same["metrics"] == pytest.approx(reference["metrics"])
        assert server.executions(promise["request_id"]) == 1
        run = (await api.get(f"training_runs/{new}")).json()
        assert run["lora_rank"] == 4 and run["base_model"] == info["model_data"]["model_name"]


async def test_create_via_load_refusals() -> None:
    """A missing checkpoint answers 404, a malformed path or another base model 400; no run is made."""
    async with running() as (server, api):
        sid = await api.session()
        _, path = await saved(api, sid)
        missing = await api.post("load_weights", load_body(sid, 1, path.replace("c1", "nope")))
        assert missing.status_code == 404
        assert (await api.post("load_weights", load_body(sid, 1, "not-a-path"))).status_code == 400
        other = await api.post("load_weights", load_body(sid, 1, path, base_model="Other/Model"))
        assert other.status_code == 400 and "trained from" in other.json()["detail"]
        bad_opt = load_body(sid, 1, path, optimizer_config={"type": "sgd"})
        assert (await api.post("load_weights", bad_opt)).status_code == 400
        assert server.statistics().models == 1
