"""The async client against the local reference server over real HTTP (loopback), on asyncio and trio.

Every test runs in each of the wire modes of ``_support.WIRES`` — JSON, protobuf
(server ``--proto``) and protobuf+zstd (``--proto --zstd``), the client in
``wire="auto"`` — against one module-scoped server per mode, and checks from the
server's counters that its bodies and results travelled in that mode's encodings.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

import mint_async
from mint_async import ServiceClient
from mint_async import types as t
from mint_async.server import ServerConfig
from mint_async.testing import LoopbackServer, serve_loopback

from ._support import WIRES, Mode, check_wire, rl_datum, sft_datum

pytestmark = pytest.mark.anyio

BASE = "Qwen/Qwen3-0.6B"


@pytest.fixture(scope="module", params=WIRES, ids=[m.name for m in WIRES])
def mode(request: pytest.FixtureRequest) -> Mode:
    """Each wire mode in turn (module-scoped: the tests are grouped by mode)."""
    return cast("Mode", request.param)


@pytest.fixture(scope="module")
def server(mode: Mode) -> Iterator[LoopbackServer]:
    """One loopback server per wire mode for the module (uvicorn in a thread)."""
    with serve_loopback(mode.config(ServerConfig(poll_hold=5.0))) as srv:
        yield srv


async def test_training_round_trip(server: LoopbackServer, mode: Mode) -> None:
    """create → forward_backward/optim_step pipelined → loss falls → get_info and tokenizer offline."""
    batch = [sft_datum([1, 2, 3, 4], [7, 8, 9]) for _ in range(4)]
    before = server.statistics()
    async with mode.service(server) as svc:
        tc = await svc.create_lora_training_client(BASE, rank=8, seed=1)
        losses: list[float] = []
        for _ in range(8):
            fb = await tc.forward_backward(batch, "cross_entropy")
            opt = await tc.optim_step(t.AdamParams(learning_rate=0.1))
            losses.append((await fb).loss)
            await opt
        assert losses[-1] < losses[0]
        info = await tc.get_info()
        assert info.model_id == tc.model_id and info.model_data.tokenizer_id
        tokenizer = await tc.get_tokenizer()
        assert tokenizer.decode(tokenizer.encode("What is 3 * 4?")) == "What is 3 * 4?"
        fwd = await (await tc.forward(batch[:1]))
        lp = fwd.loss_fn_outputs[0]["logprobs"]
        assert lp.dtype == "float32" and lp.dims == (6,)
    check_wire(server, mode, since=before)


@pytest.mark.parametrize(
    ("loss_fn", "config"),
    [
        ("importance_sampling", None),
        ("ppo", {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2}),
        ("cispo", {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2}),
        ("dro", {"beta": 0.01}),
    ],
)
async def test_rl_losses(
    server: LoopbackServer, mode: Mode, loss_fn: t.LossFnType, config: dict[str, float] | None
) -> None:
    """Every RL loss function runs with the conventional inputs and reports loss:sum."""
    before = server.statistics()
    async with mode.service(server) as svc:
        tc = await svc.create_lora_training_client(BASE, rank=4)
        out = await (
            await tc.forward_backward([rl_datum(5, 1.0), rl_datum(3, -0.5)], loss_fn, config)
        )
    assert "loss:sum" in out.metrics
    assert [o["logprobs"].dims for o in out.loss_fn_outputs] == [(5,), (3,)]
    check_wire(server, mode, since=before)


async def test_custom_loss(server: LoopbackServer, mode: Mode) -> None:
    """forward_backward_custom runs a client-side torch loss end to end (forward, then its gradients)."""
    torch = pytest.importorskip("torch")

    def loss_fn(data: list[t.Datum], logprobs: list[Any]) -> tuple[Any, dict[str, float]]:
        total = torch.stack([-lp.mean() for lp in logprobs]).sum()
        return total, {"n:sum": float(len(data))}

    before = server.statistics()
    async with mode.service(server) as svc:
        tc = await svc.create_lora_training_client(BASE, rank=4)
        out = await (await tc.forward_backward_custom([sft_datum([1, 2], [3, 4])], loss_fn))
        await (await tc.optim_step())
    assert out.metrics["n:sum"] == 1.0 and out.metrics["loss:sum"] > 0
    check_wire(server, mode, since=before)


async def test_checkpoints_sampling_and_rest(
    server: LoopbackServer, mode: Mode, tmp_path: Path
) -> None:
    """save/load state, sampler weights, sampling (n>1, prompt and top-k logprobs), REST, archive, audit log."""
    prompt = t.ModelInput.from_ints([1, 2, 3, 4])
    started = datetime.now(UTC).date()
    before = server.statistics()
    async with mode.service(server) as svc:
        tc = await svc.create_lora_training_client(BASE, rank=8)
        await (await tc.forward_backward([sft_datum([1, 2, 3], [4, 5])]))
        await (await tc.optim_step())
        state = await (await tc.save_state("ckpt-1"))
        assert state.path == f"tinker://{tc.model_id}/weights/ckpt-1"
        sampler = await (await tc.save_weights_for_sampler("s1"))
        assert sampler.path == f"tinker://{tc.model_id}/sampler_weights/s1"
        await (await tc.load_state(state.path))
        await (await tc.load_state_with_optimizer(state.path))

        sc = await tc.create_sampling_client(sampler.path)
        resp = await sc.sample(
            prompt,
            3,
            t.SamplingParams(max_tokens=5, temperature=0.0),
            include_prompt_logprobs=True,
            topk_prompt_logprobs=2,
        )
        assert len(resp.sequences) == 3
        assert all(s.tokens == resp.sequences[0].tokens for s in resp.sequences)  # greedy
        assert all(
            len(s.tokens) <= 5 and s.stop_reason in ("stop", "length") for s in resp.sequences
        )
        assert (
            resp.prompt_logprobs is not None
            and resp.prompt_logprobs[0] is None
            and len(resp.prompt_logprobs) == 4
        )
        assert resp.topk_prompt_logprobs is not None and resp.topk_prompt_logprobs[0] is None
        assert all(len(row or []) == 2 for row in resp.topk_prompt_logprobs[1:])
        lps = await sc.compute_logprobs(prompt)
        assert lps[0] is None and all(isinstance(x, float) for x in lps[1:])
        assert await sc.get_base_model() == BASE

        snap = await tc.save_weights_and_get_sampling_client()
        greedy = await snap.sample(prompt, 1, t.SamplingParams(max_tokens=5, temperature=0.0))
        assert greedy.sequences[0].tokens == resp.sequences[0].tokens  # same weights
        tokenizer = await snap.get_tokenizer()
        assert isinstance(tokenizer.decode(greedy.sequences[0].tokens), str)

        rest = svc.create_rest_client()
        runs = await rest.list_training_runs(limit=50)
        assert tc.model_id in {r.training_run_id for r in runs.training_runs}
        run = await rest.get_training_run_by_tinker_path(state.path)
        assert run.base_model == BASE and run.lora_rank == 8
        ckpts = await rest.list_checkpoints(tc.model_id)
        assert {c.checkpoint_id for c in ckpts.checkpoints} >= {
            "weights/ckpt-1",
            "sampler_weights/s1",
        }
        info = await rest.get_weights_info_by_tinker_path(state.path)
        assert info.base_model == BASE and info.lora_rank == 8
        await rest.publish_checkpoint_from_tinker_path(state.path)
        with pytest.raises(mint_async.ConflictError):
            await rest.publish_checkpoint_from_tinker_path(state.path)
        await rest.unpublish_checkpoint_from_tinker_path(state.path)
        await rest.set_checkpoint_ttl_from_tinker_path(state.path, 3600)
        await rest.set_checkpoint_ttl_from_tinker_path(state.path, None)
        archive = await rest.download_checkpoint(state.path, tmp_path)
        with tarfile.open(archive) as tar:
            assert tar.getnames()
        session = await rest.get_session(svc.session_id)
        assert tc.model_id in session.training_run_ids
        assert svc.session_id in (await rest.list_sessions(limit=100)).sessions
        sampler_info = await rest.get_sampler(sc.sampling_session_id)
        assert sampler_info.model_path == sampler.path
        caps = await svc.get_server_capabilities()
        assert BASE in {m.model_name for m in caps.supported_models}
        mix = await svc.interpolate_checkpoints([sampler.path, sampler.path], [0.5, 0.5])
        assert mix.path.startswith("tinker://")
        await rest.delete_checkpoint_from_tinker_path(sampler.path)
        with pytest.raises(mint_async.NotFoundError):
            await rest.get_weights_info_by_tinker_path(sampler.path)

        resumed = await svc.create_training_client_from_state_with_optimizer(state.path)
        fresh = await svc.create_training_client_from_state(state.path)
        a = await (await resumed.forward([sft_datum([1, 2, 3], [4, 5])]))
        b = await (await fresh.forward([sft_datum([1, 2, 3], [4, 5])]))
        assert a.loss_fn_outputs[0]["logprobs"] == b.loss_fn_outputs[0]["logprobs"]  # same weights

        # The log is per UTC day (default today): read every day this test ran on.
        days = sorted({started, datetime.now(UTC).date()})
        logs = [await rest.get_audit_log(day=day) for day in days]
        mine = [e for log in logs for e in log.entries if e.model_id == tc.model_id]
        ck, s1 = state.path, sampler.path
        assert [(e.event, e.tinker_path, e.purpose) for e in mine] == [
            ("training_run_created", None, None),
            ("checkpoint_saved", ck, None),
            ("checkpoint_saved", s1, None),
            *[("checkpoint_read", ck, "load_weights")] * 2,  # load_state, ..._with_optimizer
            ("checkpoint_read", s1, "sampling"),
            ("checkpoint_published", ck, None),
            ("checkpoint_unpublished", ck, None),
            *[("checkpoint_ttl_set", ck, None)] * 2,
            ("checkpoint_read", ck, "archive"),
            *[("checkpoint_read", s1, "interpolate")] * 2,
            ("checkpoint_saved", mix.path, None),
            ("checkpoint_deleted", s1, None),
            *[("checkpoint_read", ck, "load_weights")] * 2,  # the two clients created from state
        ]
        assert [e.timestamp for e in mine] == sorted(e.timestamp for e in mine)
        assert [(e.event_details or {}).get("ttl_seconds") for e in mine[8:10]] == [3600, None]
        assert all((e.event_details or {}).get("model_id") == tc.model_id for e in mine)
        checkpoint_events = await rest.get_audit_log("checkpoints")
        assert {e.event for e in checkpoint_events.entries} >= {"checkpoint_saved"}
        assert all(e.event.startswith("checkpoint_") for e in checkpoint_events.entries)
        assert (await rest.get_audit_log("teams")).entries == []
        yesterday = started - timedelta(days=1)
        assert (await rest.get_audit_log(day=yesterday)).entries == []
    check_wire(server, mode, since=before)


async def test_reverse_kl(server: LoopbackServer, mode: Mode) -> None:
    """MinT's reverse-KL forward/backward against a sampler checkpoint returns per-datum losses.

    Its body and result are JSON on every wire (§9 gives them no protobuf form);
    the check is that nothing else went out in another encoding.
    """
    before = server.statistics()
    async with mode.service(server) as svc:
        tc = await svc.create_lora_training_client(BASE, rank=4)
        teacher = await (await tc.save_weights_for_sampler("teacher"))
        datum = t.ReverseKLDatum(
            student_input=t.ModelInput.from_ints([1, 2, 3]),
            reference_input=t.ModelInput.from_ints([9, 1, 2, 3]),
            target_tokens=[2, 3, 4],
            weights=[1.0, 1.0, 1.0],
        )
        out = await (await tc.forward_backward_reverse_kl(teacher.path, [datum]))
    assert len(out.outputs) == 1 and "loss:sum" in out.metrics
    check_wire(server, mode, since=before, bodies=False, results=False)


async def test_user_errors_surface_typed(server: LoopbackServer, mode: Mode) -> None:
    """A server-side validation failure comes back as RequestFailedError(category='user') or a 4xx."""
    before = server.statistics()
    async with mode.service(server) as svc:
        tc = await svc.create_lora_training_client(BASE, rank=4)
        bad = t.Datum(
            model_input=t.ModelInput.from_ints([1, 2]), loss_fn_inputs={"weights": [1.0, 1.0]}
        )
        with pytest.raises((mint_async.RequestFailedError, mint_async.BadRequestError)) as info:
            await (await tc.forward_backward([bad], "cross_entropy"))
        if isinstance(info.value, mint_async.RequestFailedError):
            assert info.value.category == "user"
        with pytest.raises(mint_async.NotFoundError):
            await svc.create_rest_client().get_training_run("no-such-run")
    check_wire(server, mode, since=before, results=False)  # the bad body went in this wire
    with pytest.raises(mint_async.AuthenticationError):
        async with ServiceClient(base_url=server.base_url, api_key="sk-wrong"):
            pass


async def test_pickled_training_client_hands_off(server: LoopbackServer, mode: Mode) -> None:
    """An unpickled TrainingClient continues the run's seq_ids on its own connection, on the same wire."""
    import pickle

    async with mode.service(server) as svc:
        tc = await svc.create_lora_training_client(BASE, rank=4)
        await (await tc.forward_backward([sft_datum([1, 2], [3])]))
        copy: mint_async.TrainingClient = pickle.loads(pickle.dumps(tc))
        assert copy.next_seq_id == 2
        async with copy:
            await (await copy.optim_step())
            assert copy.next_seq_id == 3
            before = server.statistics()
            out = await (await copy.forward_backward([sft_datum([1, 2], [3])]))
            assert out.loss > 0 and copy.next_seq_id == 4
            check_wire(server, mode, since=before)  # the copy's own body and result


async def test_service_sampling_client_loads_its_tokenizer(
    server: LoopbackServer, mode: Mode
) -> None:
    """A sampling client made by the ServiceClient (no training client) finds its tokenizer offline."""
    before = server.statistics()
    async with mode.service(server) as svc:
        sc = await svc.create_sampling_client(base_model=BASE)
        tokenizer = await sc.get_tokenizer()
        tokens = tokenizer.encode("What is 2 * 3?")
        resp = await sc.sample(t.ModelInput.from_ints(tokens), 1, t.SamplingParams(max_tokens=3))
        assert isinstance(tokenizer.decode(resp.sequences[0].tokens), str)
    check_wire(server, mode, since=before, bodies=False)
