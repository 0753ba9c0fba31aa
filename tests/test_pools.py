"""The per-traffic-class in-flight limit (``_pools.Slots``): capacity, order, cancellation."""

from __future__ import annotations

import anyio
import pytest

from mint_async._pools import Slots

pytestmark = pytest.mark.anyio


async def test_slots_admit_up_to_the_limit_in_arrival_order() -> None:
    """At most ``total`` holders at once; waiters get slots first come, first served."""
    slots = Slots(2)
    order: list[int] = []
    done = [anyio.Event() for _ in range(6)]

    async def user(i: int) -> None:
        await slots.take()
        order.append(i)
        await done[i].wait()
        slots.release()

    async with anyio.create_task_group() as tg:
        for i in range(6):
            tg.start_soon(user, i)
            await anyio.wait_all_tasks_blocked()  # arrive in index order
        assert order == [0, 1]
        assert not slots.take_nowait()
        for i in range(4):
            done[i].set()
            await anyio.wait_all_tasks_blocked()
            assert order == list(range(i + 3))
        done[4].set()
        done[5].set()
    assert slots.take_nowait() and slots.take_nowait() and not slots.take_nowait()


async def test_a_cancelled_waiter_loses_no_slot() -> None:
    """A waiter cancelled before or after being handed a slot leaves the count intact."""
    slots = Slots(1)
    assert slots.take_nowait()
    with anyio.move_on_after(0.01):
        await slots.take()  # cancelled while waiting: removed from the line

    async def waiter() -> None:
        await slots.take()
        slots.release()  # no checkpoint between: a slot taken is always given back

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.sleep(0.01)
        # Handed the slot and cancelled in the same step: whichever wins, the slot
        # comes back (passed on by the cancelled waiter, or released by it).
        slots.release()
        tg.cancel_scope.cancel()
    assert slots.take_nowait()
    assert not slots.take_nowait()
