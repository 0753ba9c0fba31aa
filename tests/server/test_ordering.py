"""The per-model seq_id gate: strict order, buffered early arrivals, consumed slots, unsequenced items, gaps."""

from __future__ import annotations

import anyio
import pytest

from mint_async.server._ordering import SeqGate

pytestmark = pytest.mark.anyio


async def drain_ready(gate: SeqGate[str], count: int) -> list[str]:
    """Take ``count`` items that are already releasable."""
    with anyio.fail_after(5):
        return [await gate.get() for _ in range(count)]


async def test_out_of_order_arrivals_leave_in_order() -> None:
    """Items put as 3, 1, 2 come out as 1, 2, 3."""
    gate: SeqGate[str] = SeqGate(first_seq=1)
    for seq in (3, 1, 2):
        gate.put(seq, f"s{seq}")
    assert await drain_ready(gate, 3) == ["s1", "s2", "s3"]
    assert gate.next_seq == 4


async def test_early_arrival_waits_for_the_missing_slot() -> None:
    """A consumer blocked on a gap wakes when the missing slot arrives."""
    gate: SeqGate[str] = SeqGate(first_seq=1)
    gate.put(2, "s2")
    got: list[str] = []
    async with anyio.create_task_group() as tg:

        async def consume() -> None:
            got.extend([await gate.get(), await gate.get()])

        tg.start_soon(consume)
        await anyio.sleep(0.01)
        assert got == [] and gate.waiting_for == 1
        gate.put(1, "s1")
    assert got == ["s1", "s2"]


async def test_consumed_slot_is_passed_over() -> None:
    """A slot filled with None (a rejected submission) does not block later ones."""
    gate: SeqGate[str] = SeqGate(first_seq=1)
    gate.put(1, None)
    gate.put(2, "s2")
    assert await drain_ready(gate, 1) == ["s2"]
    assert gate.has(1) and gate.has(2) and not gate.has(3)


async def test_unsequenced_runs_after_what_arrived_before_it() -> None:
    """An unsequenced item goes after the contiguous run that had arrived, before later slots."""
    gate: SeqGate[str] = SeqGate(first_seq=1)
    gate.put(1, "s1")
    gate.put(2, "s2")
    gate.put(4, "s4")  # not contiguous: the item does not wait for it
    gate.put_unsequenced("u")
    gate.put(3, "s3")
    assert await drain_ready(gate, 5) == ["s1", "s2", "u", "s3", "s4"]


async def test_duplicate_put_is_refused() -> None:
    """A slot can be filled once."""
    gate: SeqGate[str] = SeqGate(first_seq=1)
    gate.put(1, "a")
    with pytest.raises(ValueError, match="already"):
        gate.put(1, "b")


async def test_gap_timeout_skips_the_missing_slot() -> None:
    """With a gap timeout, a missing slot is skipped and remembered as skipped."""
    gate: SeqGate[str] = SeqGate(first_seq=1, gap_timeout=0.05)
    gate.put(2, "s2")
    with anyio.fail_after(5):
        assert await gate.get() == "s2"
    assert gate.was_skipped(1) and not gate.was_skipped(2)


async def test_without_gap_timeout_a_gap_blocks() -> None:
    """Without a gap timeout the gate keeps waiting for the missing slot."""
    gate: SeqGate[str] = SeqGate(first_seq=1)
    gate.put(2, "s2")
    with anyio.move_on_after(0.1) as scope:
        await gate.get()
    assert scope.cancelled_caught and gate.waiting_for == 1


async def test_drain_returns_buffered_items() -> None:
    """drain() empties the buffer (the model is going away)."""
    gate: SeqGate[str] = SeqGate(first_seq=1)
    gate.put(3, "s3")
    gate.put_unsequenced("u")
    assert sorted(gate.drain()) == ["s3", "u"] and gate.buffered == 0
