"""RestClient methods not covered by the round trip in test_client_server, over loopback, on asyncio and trio."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import msgspec
import pytest

import mint_async
from mint_async import types as t
from mint_async.testing import LoopbackServer

from ._support import OTHER_KEY, serve_two_users, service

pytestmark = pytest.mark.anyio

BASE = "Qwen/Qwen3-0.6B"


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    """One loopback server for the module, with a second user's key."""
    with serve_two_users() as srv:
        yield srv


class RecordingTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, keeping the method, path and body of every request."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, str, bytes]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path, request.content))
        return await super().handle_async_request(request)


async def test_list_user_checkpoints_pages_newest_first(server: LoopbackServer) -> None:
    """list_user_checkpoints lists every checkpoint of the caller (not others'), newest first, in pages."""
    async with service(server) as svc, service(server, OTHER_KEY) as other:
        tc = await svc.create_lora_training_client(BASE, rank=4)
        paths = [(await (await tc.save_state(f"u{i}"))).path for i in range(3)]
        paths.append((await (await tc.save_weights_for_sampler("u-sampler"))).path)
        rest = svc.create_rest_client()
        everything = await rest.list_user_checkpoints(limit=1000)
        listed = [c.tinker_path for c in everything.checkpoints]
        mine = [p for p in listed if p in paths]
        assert mine == paths[::-1]  # newest first
        times = [c.time for c in everything.checkpoints]
        assert times == sorted(times, reverse=True)
        assert everything.cursor is not None and everything.cursor.total_count == len(listed)

        first = await rest.list_user_checkpoints(limit=2)
        second = await rest.list_user_checkpoints(limit=2, offset=2)
        assert [c.tinker_path for c in first.checkpoints + second.checkpoints] == listed[:4]
        assert second.cursor is not None and second.cursor.offset == 2

        others = await other.create_rest_client().list_user_checkpoints()
        assert not {c.tinker_path for c in others.checkpoints} & set(paths)
        with pytest.raises(mint_async.InvalidInputError):
            await rest.list_user_checkpoints(limit=0)


async def test_delete_checkpoint_by_ids(server: LoopbackServer) -> None:
    """delete_checkpoint(run, checkpoint_id) removes exactly that checkpoint; deleting again is a 404."""
    async with service(server) as svc:
        tc = await svc.create_lora_training_client(BASE, rank=4)
        gone = await (await tc.save_state("gone"))
        kept = await (await tc.save_weights_for_sampler("kept"))
        rest = svc.create_rest_client()
        await rest.delete_checkpoint(tc.model_id, "weights/gone")
        ids = {c.checkpoint_id for c in (await rest.list_checkpoints(tc.model_id)).checkpoints}
        assert ids == {"sampler_weights/kept"}
        assert (await rest.get_weights_info_by_tinker_path(kept.path)).lora_rank == 4
        with pytest.raises(mint_async.NotFoundError):
            await rest.get_weights_info_by_tinker_path(gone.path)
        with pytest.raises(mint_async.NotFoundError):
            await rest.delete_checkpoint(tc.model_id, "weights/gone")


async def test_get_checkpoint_archive_url_by_ids(server: LoopbackServer) -> None:
    """get_checkpoint_archive_url(run, id) gives a signed, expiring URL serving the checkpoint's tar.gz."""
    async with service(server) as svc:
        tc = await svc.create_lora_training_client(BASE, rank=4)
        await (await tc.save_state("arch"))
        rest = svc.create_rest_client()
        where = await rest.get_checkpoint_archive_url(tc.model_id, "weights/arch")
        assert isinstance(where, t.CheckpointArchiveUrlResponse)
        now = datetime.now(UTC)
        assert now < where.expires <= now + timedelta(minutes=16)
        assert where.url.startswith(server.base_url)
        async with httpx.AsyncClient() as plain:  # no API key: the URL itself is the credential
            archive = await plain.get(where.url)
        assert archive.status_code == 200
        with tarfile.open(fileobj=io.BytesIO(archive.content), mode="r:gz") as tar:
            assert tar.getnames()
        with pytest.raises(mint_async.NotFoundError):
            await rest.get_checkpoint_archive_url(tc.model_id, "weights/no-such")


async def test_get_training_run_and_access_scope(server: LoopbackServer) -> None:
    """get_training_run returns the run; another user sees it only as 'accessible' via a public checkpoint."""
    async with service(server) as svc, service(server, OTHER_KEY) as other:
        tc = await svc.create_lora_training_client(BASE, rank=8, user_metadata={"team": "a"})
        state = await (await tc.save_state("shared"))
        await (await tc.save_weights_for_sampler("private"))
        rest, other_rest = svc.create_rest_client(), other.create_rest_client()
        run = await rest.get_training_run(tc.model_id)
        assert (run.training_run_id, run.base_model, run.lora_rank) == (tc.model_id, BASE, 8)
        assert run.user_metadata == {"team": "a"}
        assert run.last_checkpoint is not None and run.last_checkpoint.tinker_path == state.path
        assert run.last_sampler_checkpoint is not None
        assert run.model_owner != ""

        with pytest.raises(mint_async.NotFoundError):
            await other_rest.get_training_run(tc.model_id, "accessible")  # nothing public yet
        await rest.publish_checkpoint_from_tinker_path(state.path)
        seen = await other_rest.get_training_run(tc.model_id, access_scope="accessible")
        assert seen.training_run_id == tc.model_id and seen.model_owner == run.model_owner
        assert seen.last_checkpoint is not None and seen.last_checkpoint.public
        assert seen.last_sampler_checkpoint is None  # the private sampler checkpoint stays hidden
        with pytest.raises(mint_async.NotFoundError):
            await other_rest.get_training_run(tc.model_id)  # "owned" is the default
        with pytest.raises(mint_async.InvalidInputError):
            await rest.get_training_run(tc.model_id, "everyone")  # type: ignore[arg-type]


async def test_assign_session_project(server: LoopbackServer) -> None:
    """assign_session_project PUTs the project for the session; unknown or foreign sessions are 404s."""
    recorder = RecordingTransport()
    async with (
        service(server, project_id="p-start", transport=recorder) as svc,
        service(server, OTHER_KEY) as other,
    ):
        rest = svc.create_rest_client()
        await rest.assign_session_project(svc.session_id, "p-moved")
        put = [r for r in recorder.requests if r[0] == "PUT"]
        assert [(path, msgspec.json.decode(body)) for _, path, body in put] == [
            (f"/api/v1/sessions/{svc.session_id}/project", {"project_id": "p-moved"})
        ]
        created = next(
            body for _, path, body in recorder.requests if path.endswith("create_session")
        )
        assert msgspec.json.decode(created)["project_id"] == "p-start"
        with pytest.raises(mint_async.NotFoundError):
            await rest.assign_session_project("no-such-session", "p")
        with pytest.raises(mint_async.NotFoundError):
            await other.create_rest_client().assign_session_project(svc.session_id, "p-stolen")
