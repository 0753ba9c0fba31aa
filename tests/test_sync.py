"""The blocking facade (the MinT SFT guide itself runs as examples/sft_quickstart_sync.py, see test_examples)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from mint_async.testing import LoopbackServer, serve_loopback


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    """A loopback server for the module."""
    with serve_loopback() as srv:
        yield srv


@pytest.fixture
def mint_env(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment the MinT guide expects (MINT_API_KEY, MINT_BASE_URL)."""
    monkeypatch.setenv("MINT_API_KEY", server.api_key)
    monkeypatch.setenv("MINT_BASE_URL", server.base_url)


@pytest.mark.usefixtures("mint_env")
def test_sync_facade_inside_a_running_event_loop() -> None:
    """Like Jupyter: the blocking API is called from a thread that runs an asyncio loop."""

    async def notebook_cell() -> int:
        from mint_async import sync as mint
        from mint_async import types

        with mint.ServiceClient() as svc:
            sc = svc.create_sampling_client(base_model="Qwen/Qwen3-0.6B")
            out = sc.sample(
                types.ModelInput.from_ints([1, 2, 3]), 2, types.SamplingParams(max_tokens=3)
            ).result(timeout=30)
            return len(out.sequences)

    assert asyncio.run(notebook_cell()) == 2


@pytest.mark.usefixtures("mint_env")
def test_sync_facade_on_trio_and_rest() -> None:
    """The portal can run trio; REST calls and futures' request ids work through it."""
    pytest.importorskip("trio", reason="the asyncio-only test session runs without trio")
    from mint_async import sync as mint
    from mint_async import types

    with mint.ServiceClient(backend="trio") as svc:
        tc = svc.create_lora_training_client(rank=4)
        fut = tc.save_state("s1")
        assert fut.request_id is not None
        path = fut.result().path
        rest = svc.create_rest_client()
        assert any(c.tinker_path == path for c in rest.list_checkpoints(tc.model_id).checkpoints)
        info = rest.get_weights_info_by_tinker_path(path)  # via the generic passthrough
        assert info.base_model == "Qwen/Qwen3-0.6B"
        saved = rest.get_audit_log("checkpoints").entries
        assert ("checkpoint_saved", path) in {(e.event, e.tinker_path) for e in saved}
        assert tc.get_info().model_id == tc.model_id
        sc = svc.create_sampling_client()
        samples = sc.sample(
            types.ModelInput.from_ints([1, 2]), 2, types.SamplingParams(max_tokens=3)
        )
        assert samples.sequences == samples.result().sequences  # both spellings of the MinT docs
        logprobs = tc.create_sampling_client(
            tc.save_weights_for_sampler("w").result().path
        ).compute_logprobs(types.ModelInput.from_ints([1, 2, 3]))
        assert logprobs[0] is None and len(logprobs) == 3


@pytest.mark.usefixtures("mint_env")
def test_closed_sync_client_refuses_work() -> None:
    """After close(), calls raise ClientClosedError; close() is idempotent."""
    import mint_async
    from mint_async import sync as mint

    svc = mint.ServiceClient()
    svc.close()
    svc.close()
    with pytest.raises(mint_async.ClientClosedError):
        svc.create_lora_training_client()
