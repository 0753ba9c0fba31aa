"""The client's main flows against the server on every wire: JSON, protobuf, protobuf+zstd, the 0.38 wire.

One loopback server per mode (module-scoped): the client runs in ``wire="auto"``
against the first three (the server's ``client/config`` decides) and in
``wire="binary"`` against ``--wire 0.38``. Each flow checks the server saw the
bodies and answered the results in that mode's encodings; a last test runs one
deterministic scenario on every wire and compares the numbers. (The modes live in
``_support``; test_client_server and test_pipeline run whole in the first three.)
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

import mint_async
from mint_async import ServiceClient
from mint_async import types as t
from mint_async._config import WireMode
from mint_async.server import FaultConfig, ServerConfig
from mint_async.testing import LoopbackServer, serve_loopback

from ._support import MODES, Mode, check_wire, rl_datum, sft_datum
from .test_faults import FAULTS

pytestmark = pytest.mark.anyio

BASE = "Qwen/Qwen3-0.6B"


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, LoopbackServer]]:
    """One loopback server per mode, for the whole module."""
    with contextlib.ExitStack() as stack:
        yield {
            mode.name: stack.enter_context(
                serve_loopback(mode.config(ServerConfig(poll_hold=5.0, track_executions=True)))
            )
            for mode in MODES
        }


@pytest.fixture(params=MODES, ids=[m.name for m in MODES])
def mode(request: pytest.FixtureRequest) -> Mode:
    """Each wire mode in turn."""
    return request.param  # type: ignore[no-any-return]


def service(server: LoopbackServer, wire: WireMode) -> ServiceClient:
    return ServiceClient(base_url=server.base_url, api_key=server.api_key, wire=wire)


async def test_training_round_trip(servers: dict[str, LoopbackServer], mode: Mode) -> None:
    """Pipelined forward_backward/optim_step lower the loss; forward returns per-token logprobs."""
    server = servers[mode.name]
    batch = [sft_datum([1, 2, 3, 4], [7, 8, 9]) for _ in range(4)]
    async with mode.service(server) as svc:
        tc = await svc.create_lora_training_client(BASE, rank=8, seed=1)
        losses: list[float] = []
        for _ in range(6):
            fb = await tc.forward_backward(batch, "cross_entropy")
            opt = await tc.optim_step(t.AdamParams(learning_rate=0.1))
            losses.append((await fb).loss)
            await opt
        assert losses[-1] < losses[0]
        fwd = await (await tc.forward(batch[:1]))
        lp = fwd.loss_fn_outputs[0]["logprobs"]
        assert lp.dtype == "float32" and lp.dims == (6,) and bool(np.all(lp.to_numpy() < 0))
        assert (await tc.get_info()).model_id == tc.model_id
    check_wire(server, mode)


async def test_every_loss(servers: dict[str, LoopbackServer], mode: Mode) -> None:
    """cross_entropy and every RL loss (with its config) run and report loss:sum on this wire."""
    server = servers[mode.name]
    clip = {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2}
    losses: list[tuple[t.LossFnType, dict[str, float] | None]] = [
        ("importance_sampling", None),
        ("ppo", clip),
        ("cispo", clip),
        ("dro", {"beta": 0.01}),
    ]
    async with mode.service(server) as svc:
        tc = await svc.create_lora_training_client(BASE, rank=4)
        ce = await (await tc.forward_backward([sft_datum([1, 2], [3, 4])], "cross_entropy"))
        assert ce.loss > 0
        for loss_fn, config in losses:
            out = await (
                await tc.forward_backward([rl_datum(5, 1.0), rl_datum(3, -0.5)], loss_fn, config)
            )
            assert "loss:sum" in out.metrics, loss_fn
            assert [o["logprobs"].dims for o in out.loss_fn_outputs] == [(5,), (3,)]
    check_wire(server, mode)


async def test_checkpoints_sampling_and_rest(
    servers: dict[str, LoopbackServer], mode: Mode, tmp_path: Path
) -> None:
    """Checkpoints, sampling (n>1, prompt and top-k logprobs), restore from state, REST reads."""
    server = servers[mode.name]
    prompt = t.ModelInput.from_ints([1, 2, 3, 4])
    async with mode.service(server) as svc:
        tc = await svc.create_lora_training_client(BASE, rank=8)
        await (await tc.forward_backward([sft_datum([1, 2, 3], [4, 5])]))
        await (await tc.optim_step())
        state = await (await tc.save_state("ckpt-1"))
        sampler = await (await tc.save_weights_for_sampler("s1"))
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
        assert resp.prompt_logprobs is not None and resp.prompt_logprobs[0] is None
        assert len(resp.prompt_logprobs) == 4
        assert resp.topk_prompt_logprobs is not None and resp.topk_prompt_logprobs[0] is None
        assert all(len(row or []) == 2 for row in resp.topk_prompt_logprobs[1:])
        lps = await sc.compute_logprobs(prompt)
        assert lps[1:] == pytest.approx(resp.prompt_logprobs[1:], rel=1e-6)
        snap = await tc.save_weights_and_get_sampling_client()
        greedy = await snap.sample(prompt, 1, t.SamplingParams(max_tokens=5, temperature=0.0))
        assert greedy.sequences[0].tokens == resp.sequences[0].tokens  # same weights

        rest = svc.create_rest_client()
        ckpts = await rest.list_checkpoints(tc.model_id)
        assert {c.checkpoint_id for c in ckpts.checkpoints} >= {
            "weights/ckpt-1",
            "sampler_weights/s1",
        }
        info = await rest.get_weights_info_by_tinker_path(state.path)
        assert info.base_model == BASE and info.lora_rank == 8
        archive = await rest.download_checkpoint(state.path, tmp_path)
        assert archive.stat().st_size > 0
        fresh = await svc.create_training_client_from_state(state.path)
        a = await (await tc.forward([sft_datum([1, 2, 3], [4, 5])]))
        b = await (await fresh.forward([sft_datum([1, 2, 3], [4, 5])]))
        assert a.loss_fn_outputs[0]["logprobs"] == b.loss_fn_outputs[0]["logprobs"]
    check_wire(server, mode)


async def test_faults_complete_exactly_once(mode: Mode) -> None:
    """Under every absorbable fault, samples and training steps complete, each executed once, in order."""
    config = mode.config(ServerConfig(faults=FaultConfig.parse(FAULTS), poll_hold=2.0))
    samples, steps = 150, 15
    with serve_loopback(config) as faulty:
        results: list[t.SampleResponse] = []
        losses: list[float] = []
        async with mode.service(faulty) as svc:
            tc = await svc.create_lora_training_client(BASE, rank=4)
            sc = await svc.create_sampling_client(base_model=BASE)
            limiter = anyio.CapacityLimiter(32)
            params = t.SamplingParams(max_tokens=4)

            async def one_sample(i: int) -> None:
                async with limiter:
                    res = await sc.sample(t.ModelInput.from_ints([1, 2, i % 50 + 3]), 2, params)
                    results.append(res)

            async def train() -> None:
                for step in range(steps):
                    datum = sft_datum([1 + step % 7, 2], [3, 4])
                    fb = await tc.forward_backward([datum])
                    opt = await tc.optim_step(t.AdamParams(learning_rate=1e-3))
                    losses.append((await fb).loss)
                    await opt
                    if step % 5 == 0:
                        await (await tc.forward([datum]))

            async with anyio.create_task_group() as tg:
                tg.start_soon(train)
                for i in range(samples):
                    tg.start_soon(one_sample, i)
            model_id = tc.model_id
        assert len(results) == samples and all(len(r.sequences) == 2 for r in results)
        assert len(losses) == steps
        counts = faulty.execution_counts()
        assert all(n == 1 for n in counts.values()), {k: v for k, v in counts.items() if v != 1}
        seqs = [
            int(m.group(1))
            for rid in counts
            if (m := re.fullmatch(re.escape(model_id) + r":(\d+)", rid))
        ]
        assert seqs == sorted(seqs) and seqs[-1] == 2 * steps + 3
        fired = faulty.statistics().faults
        assert fired.get("drop_after_accept", 0) > 0 and fired.get("retrieve_410", 0) > 0, fired
        check_wire(faulty, mode)


async def _scenario(server: LoopbackServer, mode: Mode) -> dict[str, Any]:
    """A deterministic run: seeded LoRA, three steps, forward logprobs, greedy and seeded samples."""
    batch = [sft_datum([1, 2, 3], [9, 8, 7, 6]), sft_datum([4, 5], [6, 7])]
    prompt = t.ModelInput.from_ints([3, 1, 4, 1, 5])
    async with mode.service(server) as svc:
        tc = await svc.create_lora_training_client(BASE, rank=4, seed=7)
        losses: list[float] = []
        for _ in range(3):
            fb = await tc.forward_backward(batch, "cross_entropy")
            opt = await tc.optim_step(t.AdamParams(learning_rate=0.05))
            losses.append((await fb).metrics["loss:sum"])
            await opt
        fwd = await (await tc.forward(batch))
        sc = await tc.save_weights_and_get_sampling_client()
        greedy = await sc.sample(
            prompt,
            2,
            t.SamplingParams(max_tokens=6, temperature=0.0),
            include_prompt_logprobs=True,
            topk_prompt_logprobs=3,
        )
        seeded = await sc.sample(prompt, 3, t.SamplingParams(max_tokens=6, seed=5))
    return {
        "losses": losses,
        "logprobs": [o["logprobs"].to_numpy().tolist() for o in fwd.loss_fn_outputs],
        "greedy": [s.tokens for s in greedy.sequences],
        "prompt_logprobs": greedy.prompt_logprobs,
        "topk": greedy.topk_prompt_logprobs,
        "seeded": [(s.tokens, s.logprobs, s.stop_reason) for s in seeded.sequences],
    }


async def test_results_identical_across_wires(servers: dict[str, LoopbackServer]) -> None:
    """The same seeded scenario gives the same losses, logprobs and samples on every wire."""
    runs = {mode.name: await _scenario(servers[mode.name], mode) for mode in MODES}
    reference = runs["json"]
    for name, run in runs.items():
        assert run["greedy"] == reference["greedy"], name
        assert [s[0] for s in run["seeded"]] == [s[0] for s in reference["seeded"]], name
        for (_, lps, _), (_, ref_lps, _) in zip(run["seeded"], reference["seeded"], strict=True):
            assert lps == pytest.approx(ref_lps, rel=1e-6), name
        assert run["losses"] == pytest.approx(reference["losses"], rel=1e-6), name
        assert run["logprobs"] == reference["logprobs"], name  # float32 both ways: exact
        assert run["prompt_logprobs"][0] is None, name
        assert run["prompt_logprobs"][1:] == pytest.approx(
            reference["prompt_logprobs"][1:], rel=1e-6
        )
        for row, ref_row in zip(run["topk"], reference["topk"], strict=True):
            assert (row is None) == (ref_row is None), name
            if row is not None and ref_row is not None:
                assert [tok for tok, _ in row] == [tok for tok, _ in ref_row], name
                assert [lp for _, lp in row] == pytest.approx([lp for _, lp in ref_row], rel=1e-6)


async def test_auto_client_switches_on_415() -> None:
    """wire=auto against the 0.38 wire: the refused JSON body is resent as protobuf, same seq_id, once."""
    with serve_loopback(ServerConfig(wire="0.38")) as server:
        async with service(server, "auto") as svc:
            tc = await svc.create_lora_training_client(BASE, rank=4)
            first = await (await tc.forward_backward([sft_datum([1, 2], [3, 4])]))
            second = await (await tc.forward_backward([sft_datum([1, 2], [3, 4])]))
            fwd = await (await tc.forward([sft_datum([1, 2], [3, 4])]))
        assert first.loss > 0 and second.loss > 0 and fwd.loss > 0
        stats = server.statistics()
        assert stats.rejected == 1  # one 415, then protobuf for good
        assert dict(stats.fwdbwd_bodies) == {"protobuf": 2, "json": 1}
        assert all(n == 1 for n in server.execution_counts().values())


async def test_json_client_against_a_binary_server() -> None:
    """wire=json gets JSON both ways from a proto+zstd server; wire=binary is refused nothing either."""
    config = ServerConfig(proto_write_fwdbwd=True, proto_compress_fwdbwd=True)
    with serve_loopback(config) as server:
        for wire in ("json", "binary"):
            async with service(server, wire) as svc:
                tc = await svc.create_lora_training_client(BASE, rank=4)
                out = await (await tc.forward_backward([sft_datum([1, 2], [3, 4])]))
                assert out.loss > 0
            stats = server.statistics()
            expected = {"json": 1} if wire == "json" else {"json": 1, "protobuf+zstd": 1}
            assert dict(stats.fwdbwd_bodies) == expected
        assert dict(server.statistics().results_sent) == {"json": 1, "protobuf": 1}
    with pytest.raises(mint_async.InvalidInputError):
        ServiceClient(base_url="http://127.0.0.1:1", api_key="sk-x", wire="xml")
