"""copy_weights (tinker 0.38) through ServiceClient, RestClient and their sync twins, over loopback."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

import mint_async
from mint_async import ServiceClient
from mint_async import sync as mint_sync
from mint_async import types as t
from mint_async.testing import LoopbackServer

from ._support import OTHER_KEY, serve_two_users, service, sft_datum

pytestmark = pytest.mark.anyio

BASE = "Qwen/Qwen3-0.6B"
PROMPT = t.ModelInput.from_ints([1, 2, 3, 4, 5])


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    """One loopback server for the module, with a second user's key."""
    with serve_two_users() as srv:
        yield srv


class RecordingTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, keeping the path and headers of every request."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await super().handle_async_request(request)


async def _trained(svc: ServiceClient) -> mint_async.TrainingClient:
    """A run one optimizer step away from its (zero-delta) start, so its weights are its own."""
    tc = await svc.create_lora_training_client(BASE, rank=4)
    await (await tc.forward_backward([sft_datum([1, 2, 3], [4, 5])]))
    await (await tc.optim_step(t.AdamParams(learning_rate=0.1)))
    return tc


async def test_service_copy_lands_in_the_session_and_trains_and_samples(
    server: LoopbackServer,
) -> None:
    """No project: the copy is this session's next run; a client from it has the same weights."""
    transport = RecordingTransport()
    async with service(server, transport=transport) as svc:
        tc = await _trained(svc)
        state = await (await tc.save_state("orig"))
        sampler = await (await tc.save_weights_for_sampler("orig-s"))
        copy = await svc.copy_weights(state.path)
        copy_s = await svc.copy_weights(sampler.path, ttl_seconds=3600)
        assert copy == f"tinker://{svc.session_id}:train:1/weights/orig"
        assert copy_s == f"tinker://{svc.session_id}:train:2/sampler_weights/orig-s"
        rest = svc.create_rest_client()
        session = await rest.get_session(svc.session_id or "")
        assert {f"{svc.session_id}:train:1", f"{svc.session_id}:train:2"} <= set(
            session.training_run_ids
        )
        # The next training client takes the slot after the copies (one counter, as tinker's).
        after = await svc.create_lora_training_client(BASE, rank=4)
        assert after.model_id == f"{svc.session_id}:train:3"
        listed = (await rest.list_checkpoints(f"{svc.session_id}:train:2")).checkpoints
        assert [c.tinker_path for c in listed] == [copy_s] and listed[0].expires_at is not None

        from_copy = await svc.create_training_client_from_state(copy)
        datum = [sft_datum([1, 2, 3], [4, 5])]
        a = await (await tc.forward(datum))
        b = await (await from_copy.forward(datum))
        assert a.loss_fn_outputs[0]["logprobs"] == b.loss_fn_outputs[0]["logprobs"]
        fresh = await (await after.forward(datum))
        assert fresh.loss_fn_outputs[0]["logprobs"] != a.loss_fn_outputs[0]["logprobs"]

        sc_orig = await svc.create_sampling_client(model_path=sampler.path)
        sc_copy = await svc.create_sampling_client(model_path=copy_s)
        assert await sc_copy.compute_logprobs(PROMPT) == await sc_orig.compute_logprobs(PROMPT)
    sent = [r for r in transport.requests if r.url.path == "/api/v1/copy_weights"]
    assert len(sent) == 2
    keys = [r.headers["x-idempotency-key"] for r in sent]
    assert len(set(keys)) == 2 and not any(k.startswith("mint-async-") for k in keys)


async def test_rest_copy_into_a_project(server: LoopbackServer) -> None:
    """RestClient.copy_weights: the configured project by default; a new run outside the session."""
    async with service(server, project_id="proj-a") as svc:
        tc = await _trained(svc)
        state = await (await tc.save_state("p"))
        rest = svc.create_rest_client()
        copy = await rest.copy_weights(state.path)
        explicit = await svc.copy_weights(state.path)  # the project too, as tinker 0.38
        other_project = await rest.copy_weights(state.path, "proj-b", ttl_seconds=86400)
        runs = {p.removeprefix("tinker://").split("/")[0] for p in (copy, explicit, other_project)}
        assert len(runs) == 3 and all(r.startswith("copy-") for r in runs)
        session = await rest.get_session(svc.session_id or "")
        assert not runs & set(session.training_run_ids)
        info = await rest.get_weights_info_by_tinker_path(other_project)
        assert info.base_model == BASE and info.lora_rank == 4


async def test_bad_input_is_refused_before_sending(server: LoopbackServer) -> None:
    """No destination, a token, a bad TTL, a bad path: InvalidInputError, nothing sent."""
    transport = RecordingTransport()
    async with service(server, transport=transport) as svc:
        rest = svc.create_rest_client()
        path = "tinker://run:train:0/weights/x"
        with pytest.raises(mint_async.InvalidInputError, match="destination_project_id"):
            await rest.copy_weights(path)
        with pytest.raises(mint_async.InvalidInputError, match="weights_access_token"):
            await rest.copy_weights(path, "p", weights_access_token="tok")
        with pytest.raises(mint_async.InvalidInputError, match="weights_access_token"):
            await svc.copy_weights(path, weights_access_token="tok")
        for ttl in (60, 10 * 366 * 86400, True):
            with pytest.raises(mint_async.InvalidInputError, match="ttl_seconds"):
                await svc.copy_weights(path, ttl_seconds=ttl)
        with pytest.raises(mint_async.InvalidInputError):
            await svc.copy_weights("tinker://run/bogus/x")
        tc = await svc.create_lora_training_client(BASE, rank=4)
        assert tc.model_id.endswith(":train:0")  # refused copies took no slot
    assert not [r for r in transport.requests if r.url.path == "/api/v1/copy_weights"]


async def test_others_checkpoints_only_once_published(server: LoopbackServer) -> None:
    """Another user's private checkpoint is NotFoundError; published, it is copied into theirs."""
    async with service(server) as owner, service(server, OTHER_KEY) as other:
        tc = await _trained(owner)
        state = await (await tc.save_state("shared"))
        with pytest.raises(mint_async.NotFoundError):
            await other.copy_weights(state.path)
        with pytest.raises(mint_async.NotFoundError):
            await owner.copy_weights(f"tinker://{tc.model_id}/weights/missing")
        await owner.create_rest_client().publish_checkpoint_from_tinker_path(state.path)
        copy = await other.copy_weights(state.path)
        assert copy.startswith(f"tinker://{other.session_id}:train:")
        mine = await other.create_rest_client().get_training_run_by_tinker_path(copy)
        assert (
            mine.model_owner
            != (await owner.create_rest_client().get_training_run(tc.model_id)).model_owner
        )
        trained = await other.create_training_client_from_state(copy)
        await (await trained.forward_backward([sft_datum([1, 2], [3])]))


def test_sync_twins_copy(server: LoopbackServer) -> None:
    """The blocking ServiceClient and RestClient copy too."""
    with mint_sync.ServiceClient(base_url=server.base_url, api_key=server.api_key) as svc:
        tc = svc.create_lora_training_client(BASE, rank=4)
        state = tc.save_state("sync").result()
        copy = svc.copy_weights(state.path)
        assert copy.endswith("/weights/sync") and svc.aio.session_id in copy
        in_project = svc.create_rest_client().copy_weights(
            state.path, "proj-sync", ttl_seconds=3600
        )
        assert in_project.startswith("tinker://copy-") and in_project.endswith("/weights/sync")
