"""The seq_id gate and chunking: ids in order, submissions serialized, gaps detected, metrics combined."""

from __future__ import annotations

import anyio
import anyio.abc
import numpy as np
import pytest

from mint_async import SequenceBrokenError
from mint_async import types as t
from mint_async._chunking import combine_outputs, estimate_bytes, split_batch
from mint_async._ordering import SequenceGate

pytestmark = pytest.mark.anyio


async def test_turns_run_in_reservation_order() -> None:
    """Submissions run in the order seq_ids were reserved, even if later ones are ready first."""
    gate = SequenceGate()
    order: list[int] = []

    async def op(
        delay: float,
        count: int,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        # started() runs before the reservation, which happens before the first await
        # in turn(): each op has its ids before the next op is started.
        task_status.started()
        async with gate.turn(count) as ids:
            await anyio.sleep(delay)
            order.extend(ids)

    async with anyio.create_task_group() as tg:
        await tg.start(op, 0.05, 2)
        await tg.start(op, 0.0, 1)
        await tg.start(op, 0.0, 3)
    assert order == [1, 2, 3, 4, 5, 6]
    assert gate.next_seq_id == 7


async def test_cancelled_caller_still_submits() -> None:
    """A caller cancelled while waiting for its turn still completes its submission (no gap)."""
    gate = SequenceGate()
    submitted: list[int] = []
    first_in_turn = anyio.Event()
    release = anyio.Event()

    async def first() -> None:
        async with gate.turn(1) as ids:
            first_in_turn.set()
            await release.wait()
            submitted.extend(ids)

    async def second() -> None:
        async with gate.turn(1) as ids:
            submitted.extend(ids)

    async def release_later() -> None:
        await anyio.sleep(0.05)
        release.set()

    scope = anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        tg.start_soon(first)
        await first_in_turn.wait()
        tg.start_soon(release_later)
        with anyio.move_on_after(0.01) as scope:
            # second() is cancelled while waiting for its turn; the shield lets it
            # finish submitting once first() is done, then the cancellation lands.
            await second()
    assert scope.cancelled_caught
    assert submitted == [1, 2]
    assert not gate.broken


async def test_failed_submission_breaks_the_sequence() -> None:
    """A submission that fails leaves a gap: later turns raise SequenceBrokenError."""
    gate = SequenceGate()
    with pytest.raises(RuntimeError, match="boom"):
        async with gate.turn(1):
            raise RuntimeError("boom")
    assert gate.broken
    with pytest.raises(SequenceBrokenError, match=r"seq_ids 1\.\.1"):
        async with gate.turn(1):
            pass


async def test_zero_count_turn_waits_without_ids() -> None:
    """turn(0) orders a request after earlier submissions without taking a seq_id."""
    gate = SequenceGate()
    async with gate.turn(0) as ids:
        assert ids == []
    assert gate.next_seq_id == 1


def _datum(n: int) -> t.Datum:
    return t.Datum(
        model_input=t.ModelInput.from_ints(np.arange(n)),
        loss_fn_inputs={"target_tokens": np.arange(n), "weights": np.ones(n, dtype=np.float32)},
    )


def test_split_by_count_and_bytes() -> None:
    """Chunks respect both the datum count and the byte estimate, keeping order."""
    data = [_datum(10) for _ in range(7)]
    assert [len(c) for c in split_batch(data, max_len=3)] == [3, 3, 1]
    per = estimate_bytes(data[0])
    assert per == 10 * (10 + 10 + 10)
    assert [len(c) for c in split_batch(data, max_bytes=2 * per)] == [2, 2, 2, 1]
    big = [_datum(1000)]
    assert split_batch(big, max_bytes=10) == [big]  # one oversized datum is still sent


def _out(n: int, metrics: dict[str, float]) -> t.ForwardBackwardOutput:
    outs = [{"logprobs": t.TensorData(data=[float(i)], dtype="float32")} for i in range(n)]
    return t.ForwardBackwardOutput(
        loss_fn_output_type="ArrayRecord", loss_fn_outputs=outs, metrics=metrics
    )


def test_combine_metrics_by_suffix() -> None:
    """Metrics combine per protocol §8.4; outputs are concatenated in order."""
    a = _out(
        1,
        {
            "loss:sum": 1.0,
            "acc:mean": 1.0,
            "m:min": 3.0,
            "m:max": 3.0,
            "s:slack": 1.0,
            "u:unique": 7.0,
            "x:weird": 1.0,
            "only_a:sum": 1,
        },
    )
    b = _out(
        3,
        {
            "loss:sum": 2.0,
            "acc:mean": 0.0,
            "m:min": 1.0,
            "m:max": 1.0,
            "s:slack": 3.0,
            "u:unique": 8.0,
            "x:weird": 2.0,
        },
    )
    out = combine_outputs([a, b])
    assert len(out.loss_fn_outputs) == 4
    assert out.metrics["loss:sum"] == 3.0
    assert out.metrics["acc:mean"] == pytest.approx(0.25)
    assert out.metrics["m:min"] == 1.0 and out.metrics["m:max"] == 3.0
    assert out.metrics["s:slack"] == pytest.approx(3.0 - 2.5)
    assert out.metrics["u:unique"] == 7.0 and out.metrics["u:unique_1"] == 8.0
    assert "x:weird" not in out.metrics and "only_a:sum" not in out.metrics


def test_single_chunk_passes_metrics_through() -> None:
    """One chunk's metrics are returned unchanged (even odd keys)."""
    a = _out(2, {"loss": 1.0, "loss:sum": 2.0})
    assert combine_outputs([a]) is a


def test_model_input_size_estimate() -> None:
    """Model inputs are estimated as the SDK does: 10 bytes a token, images by their size."""
    from mint_async._chunking import estimate_input_bytes

    mi = t.ModelInput(
        chunks=[
            t.EncodedTextChunk(tokens=[1, 2, 3]),
            t.ImageChunk(data=b"x" * 50, format="png"),
            t.ImageAssetPointerChunk(format="jpeg", location="gs://b/i.jpg"),
        ]
    )
    assert estimate_input_bytes(mi) == 30 + 50 + len("gs://b/i.jpg")
