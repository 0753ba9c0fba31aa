"""Checkpoint state over the wire: TTL expiry by the sweeper, and what load_weights does to AdamW."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from mint_async.server import ServerConfig

from ._support import Api, Json, fb_body, optim_body, running

pytestmark = pytest.mark.anyio


def save_body(kind: str, model_id: str, name: str, seq_id: int, ttl: int | None = None) -> Json:
    """A save_weights / save_weights_for_sampler body (``ttl_seconds`` when ``ttl`` is given)."""
    body: Json = {"model_id": model_id, "path": name, "seq_id": seq_id, "type": kind}
    if ttl is not None:
        body["ttl_seconds"] = ttl
    return body


def load_body(model_id: str, path: str, seq_id: int, *, optimizer: bool) -> Json:
    """A load_weights body."""
    return {
        "model_id": model_id,
        "path": path,
        "seq_id": seq_id,
        "optimizer": optimizer,
        "type": "load_weights",
    }


async def audit_events(api: Api) -> list[tuple[Any, Any]]:
    """The caller's audit log as (event, tinker_path) pairs."""
    return [(e["event"], e.get("tinker_path")) for e in (await api.get("audit")).json()["entries"]]


async def test_checkpoints_with_a_ttl_expire(tmp_path: Path) -> None:
    """Both save kinds with ttl_seconds vanish (listings, weights_info 404, load fails, files gone) and are audited as expired."""
    async with running(ServerConfig(data_dir=tmp_path, sweep_interval=0.05)) as (_, api):
        mid = await api.model(await api.session())
        short = [
            (await api.run(kind, save_body(kind, mid, name, seq, ttl=1)))["path"]
            for seq, kind, name in (
                (1, "save_weights", "brief"),
                (2, "save_weights_for_sampler", "brief-s"),
            )
        ]
        keep = (await api.run("save_weights", save_body("save_weights", mid, "keep", 3)))["path"]
        # Event-based: wait (liveness bound only) for the sweeper to audit both expiries.
        with anyio.fail_after(30):
            while not {("checkpoint_expired", p) for p in short} <= set(await audit_events(api)):
                await anyio.sleep(0.05)
        listed = (await api.get(f"training_runs/{mid}/checkpoints")).json()["checkpoints"]
        assert [c["tinker_path"] for c in listed] == [keep]
        mine = (await api.get("checkpoints")).json()["checkpoints"]
        assert [c["tinker_path"] for c in mine] == [keep]
        for path in short:
            gone = await api.post("weights_info", {"tinker_path": path})
            assert gone.status_code == 404 and gone.json()["detail"]
        failed = await api.run("load_weights", load_body(mid, short[0], 4, optimizer=False))
        assert failed["category"] == "user" and "not found" in failed["error"]
        assert (await api.post("weights_info", {"tinker_path": keep})).status_code == 200
        assert sorted(p.parent.parent.name for p in tmp_path.rglob("lora.npz")) == ["keep"]
        expired = [p for e, p in await audit_events(api) if e == "checkpoint_expired"]
        assert sorted(expired) == sorted(short)  # each once, and not the one without a TTL


async def test_load_weights_without_optimizer_resets_adamw() -> None:
    """After load_weights(optimizer=False) AdamW restarts at step 1; with the optimizer it continues."""
    async with running() as (_, api):
        mid = await api.model(await api.session())
        seq = 0

        async def train_step() -> float:
            nonlocal seq
            await api.run("forward_backward", fb_body(mid, seq + 1))
            out = await api.run("optim_step", optim_body(mid, seq + 2))
            seq += 2
            step: float = out["metrics"]["step:max"]
            return step

        assert [await train_step(), await train_step()] == [1, 2]
        seq += 1
        path = (await api.run("save_weights", save_body("save_weights", mid, "c", seq)))["path"]
        assert await train_step() == 3
        for optimizer, expected in ((False, [1, 2]), (True, [3, 4])):
            seq += 1
            loaded = await api.run("load_weights", load_body(mid, path, seq, optimizer=optimizer))
            assert loaded["path"] == path
            assert [await train_step(), await train_step()] == expected, optimizer
