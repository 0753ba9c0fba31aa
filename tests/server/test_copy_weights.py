"""``POST copy_weights`` (tinker 0.38): the copy, its run and expiry, access, idempotency, refusals."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from mint_async.server import ServerConfig
from mint_async.server._auth import owner_of_key
from mint_async.server._store import CheckpointStore

from ._support import Api, running, sample_body

pytestmark = pytest.mark.anyio


async def _saved(api: Api, kind: str = "save_weights", name: str = "c") -> tuple[str, str, str]:
    """``(session_id, model_id, tinker path)`` of a fresh checkpoint of a new run."""
    sid = await api.session()
    mid = await api.model(sid)
    body = {"model_id": mid, "path": name, "seq_id": 1, "type": kind}
    return sid, mid, (await api.run(kind, body))["path"]


def _key() -> dict[str, str]:
    return {"X-Idempotency-Key": str(uuid.uuid4())}


async def test_copy_into_a_project_is_a_new_run_with_its_own_files(tmp_path: Path) -> None:
    """The copy: same kind and name, a new run of the caller, equal files, ttl honoured, audited."""
    async with running(ServerConfig(data_dir=tmp_path)) as (server, api):
        _, mid, source = await _saved(api)
        before = time.time()
        r = await api.post(
            "copy_weights",
            {"source_path": source, "destination_project_id": "proj", "ttl_seconds": 7200},
            headers=_key(),
        )
        assert r.status_code == 200, r.text
        copy = r.json()["tinker_path"]
        assert set(r.json()) == {"tinker_path"}
        run_id, _, rest = copy.removeprefix("tinker://").partition("/")
        assert rest == "weights/c" and run_id != mid and run_id.startswith("copy-")
        listed = (await api.get(f"training_runs/{run_id}/checkpoints")).json()["checkpoints"]
        assert [c["tinker_path"] for c in listed] == [copy]
        expires = listed[0]["expires_at"]
        assert expires is not None
        src_listed = (await api.get(f"training_runs/{mid}/checkpoints")).json()["checkpoints"]
        assert (
            src_listed[0].get("expires_at") is None
            and src_listed[0]["size_bytes"] == listed[0]["size_bytes"]
        )
        info = (await api.post("weights_info", {"tinker_path": copy})).json()
        assert (
            info["base_model"]
            == (await api.post("weights_info", {"tinker_path": source})).json()["base_model"]
        )
        events = [
            (e["event"], e.get("tinker_path")) for e in (await api.get("audit")).json()["entries"]
        ]
        assert events[-4:] == [
            ("checkpoint_read", source),
            ("training_run_created", None),
            ("checkpoint_saved", copy),
            ("checkpoint_copied", copy),
        ]
        assert await api.sampler(await api.session(), model_path=copy)
    # After a restart over the same data directory the copy is there, with its expiry.
    store = CheckpointStore(tmp_path)
    store.open()
    copy_meta = store.resolve(copy)
    assert copy_meta is not None and copy_meta.owner == owner_of_key(server.api_key)
    assert copy_meta.expires_at is not None
    assert before + 7200 <= copy_meta.expires_at <= time.time() + 7200
    assert store.run(run_id) is not None
    src_meta = store.resolve(source)
    assert src_meta is not None and src_meta.expires_at is None
    src_dir, copy_dir = store.directory(src_meta), store.directory(copy_meta)
    files = sorted(p.name for p in src_dir.iterdir() if p.name != "_checkpoint.json")
    assert files and files == sorted(
        p.name for p in copy_dir.iterdir() if p.name != "_checkpoint.json"
    )
    for name in files:
        assert (src_dir / name).read_bytes() == (copy_dir / name).read_bytes()


async def test_copy_into_a_session_slot_and_sample_from_it() -> None:
    """session_id + model_seq_id: run <session>:train:<seq>, listed by the session; a used slot is refused."""
    async with running() as (_, api):
        sid, _, source = await _saved(api, "save_weights_for_sampler", "s")
        r = await api.post(
            "copy_weights", {"source_path": source, "session_id": sid, "model_seq_id": 1}
        )
        assert r.status_code == 200, r.text
        copy = r.json()["tinker_path"]
        assert copy == f"tinker://{sid}:train:1/sampler_weights/s"
        session = (await api.get(f"sessions/{sid}")).json()
        assert f"{sid}:train:1" in session["training_run_ids"]
        again = await api.post(
            "copy_weights", {"source_path": source, "session_id": sid, "model_seq_id": 1}
        )
        assert again.status_code == 400 and "model_seq_id 1 is used" in again.text
        used = await api.post(
            "copy_weights", {"source_path": source, "session_id": sid, "model_seq_id": 0}
        )
        assert used.status_code == 400
        # Deleting the source leaves the copy whole (its files are its own links or copies).
        src_run = source.removeprefix("tinker://").split("/")[0]
        await api.http.delete(f"/api/v1/training_runs/{src_run}/checkpoints/sampler_weights/s")
        assert (await api.post("weights_info", {"tinker_path": source})).status_code == 404
        sampler = await api.sampler(sid, seq=5, model_path=copy)
        answer = await api.run("asample", sample_body(sampler, 0))
        assert len(answer["sequences"]) == 1


async def test_idempotency_key_answers_the_first_copy() -> None:
    """A repeated X-Idempotency-Key gives the same path (one copy); reuse for another body is 400."""
    async with running() as (server, api):
        _, _, source = await _saved(api)
        body = {"source_path": source, "destination_project_id": "p"}
        headers = _key()
        first = await api.post("copy_weights", body, headers=headers)
        second = await api.post("copy_weights", body, headers=headers)
        assert first.status_code == second.status_code == 200
        assert first.json() == second.json()
        mine = (await api.get("checkpoints")).json()["checkpoints"]
        copies = [c["tinker_path"] for c in mine if c["tinker_path"].startswith("tinker://copy-")]
        assert copies == [first.json()["tinker_path"]]
        other = await api.post("copy_weights", {**body, "ttl_seconds": 3600}, headers=headers)
        assert other.status_code == 400 and "reused" in other.text
        fresh = await api.post("copy_weights", body, headers=_key())
        assert fresh.status_code == 200 and fresh.json() != first.json()
        # Another user replaying the key does not get this user's answer.
        intruder = Api(server.client(headers={"X-API-Key": "sk-other"}))
        assert (await intruder.post("copy_weights", body, headers=headers)).status_code == 401


async def test_only_readable_checkpoints_are_copied() -> None:
    """Another user's private checkpoint is 404 (as every checkpoint route); once published, copyable."""
    async with running(ServerConfig(api_keys=("sk-a", "sk-b"))) as (server, api):
        _, mid, source = await _saved(api)
        other = Api(server.client(headers={"X-API-Key": "sk-b"}))
        body = {"source_path": source, "destination_project_id": "p"}
        assert (await other.post("copy_weights", body)).status_code == 404
        missing = {**body, "source_path": f"tinker://{mid}/weights/nope"}
        assert (await api.post("copy_weights", missing)).status_code == 404
        await api.http.post(f"/api/v1/training_runs/{mid}/checkpoints/weights/c/publish")
        r = await other.post("copy_weights", body)
        assert r.status_code == 200, r.text
        copy = r.json()["tinker_path"]
        run_id = copy.removeprefix("tinker://").split("/")[0]
        # The copy is b's (private to b), not a's.
        assert (await other.get(f"training_runs/{run_id}")).status_code == 200
        assert (await api.get(f"training_runs/{run_id}")).status_code == 404
        assert (await api.post("weights_info", {"tinker_path": copy})).status_code == 404
        reads = [
            e for e in (await api.get("audit")).json()["entries"] if e["event"] == "checkpoint_read"
        ]
        assert reads[-1]["purpose"] == "copy_weights"
        assert reads[-1]["event_details"]["actor"] == owner_of_key("sk-b")


@pytest.mark.parametrize(
    ("extra", "headers", "needle"),
    [
        (
            {"destination_project_id": "p", "weights_access_token": "tok"},
            {},
            "weights_access_token",
        ),
        (
            {"destination_project_id": "p"},
            {"X-Tinker-Weights-Access-Token": "tok"},
            "weights_access_token",
        ),
        ({}, {}, "destination_project_id"),
        ({"session_id": "x"}, {}, "model_seq_id"),
        ({"model_seq_id": 3}, {}, "needs session_id"),
        ({"destination_project_id": "p", "ttl_seconds": 60}, {}, "ttl_seconds"),
        ({"destination_project_id": "p", "ttl_seconds": 10 * 366 * 86400}, {}, "ttl_seconds"),
    ],
)
async def test_bad_requests_answer_400(
    extra: dict[str, object], headers: dict[str, str], needle: str
) -> None:
    """Unsupported access tokens, a missing destination, a half session slot, a TTL out of range."""
    async with running() as (_, api):
        _, _, source = await _saved(api)
        r = await api.post("copy_weights", {"source_path": source, **extra}, headers=headers)
        assert r.status_code == 400 and needle in r.text, r.text
        bad_path = await api.post(
            "copy_weights", {"source_path": "tinker://x/bogus/y", "destination_project_id": "p"}
        )
        assert bad_path.status_code == 400


async def test_another_users_session_is_404() -> None:
    """A session_id of someone else is not found."""
    async with running(ServerConfig(api_keys=("sk-a", "sk-b"))) as (server, api):
        sid, _, source = await _saved(api)
        other = Api(server.client(headers={"X-API-Key": "sk-b"}))
        await api.http.post(
            f"/api/v1/training_runs/{source.split('/')[2]}/checkpoints/weights/c/publish"
        )
        r = await other.post(
            "copy_weights", {"source_path": source, "session_id": sid, "model_seq_id": 4}
        )
        assert r.status_code == 404
