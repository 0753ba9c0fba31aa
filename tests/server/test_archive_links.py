"""Signed archive links are checked against the checkpoint's current state when used."""

from __future__ import annotations

import pytest

from mint_async.server import ServerConfig

from ._support import Api, running

pytestmark = pytest.mark.anyio


async def test_unpublish_and_delete_revoke_archive_links() -> None:
    """Another user's link stops at unpublish (the owner's does not); every link stops at delete."""
    async with running(ServerConfig(api_keys=("sk-a", "sk-b"))) as (server, api):
        mid = await api.model(await api.session())
        body = {"model_id": mid, "path": "c", "seq_id": 1, "type": "save_weights"}
        await api.run("save_weights", body)
        base = f"training_runs/{mid}/checkpoints/weights/c"
        assert (await api.http.post(f"/api/v1/{base}/publish")).status_code == 200
        async with (
            server.client(headers={"X-API-Key": "sk-b"}) as other_http,
            server.client(headers={"X-API-Key": ""}) as anonymous,
        ):
            other = Api(other_http)
            theirs = (await other.get(f"{base}/archive")).headers["location"]
            mine = (await api.get(f"{base}/archive")).headers["location"]
            assert (await anonymous.get(theirs)).status_code == 200
            assert (await api.http.delete(f"/api/v1/{base}/publish")).status_code == 200
            revoked = await anonymous.get(theirs)
            assert revoked.status_code == 404, revoked.text
            assert (await anonymous.get(mine)).status_code == 200
            assert (await api.http.post(f"/api/v1/{base}/publish")).status_code == 200
            assert (await anonymous.get(theirs)).status_code == 200  # readable again: shared again
            assert (await api.http.delete(f"/api/v1/{base}")).status_code == 200
            for link in (theirs, mine):
                assert (await anonymous.get(link)).status_code == 404
