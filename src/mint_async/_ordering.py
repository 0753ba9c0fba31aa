"""Per-training-client seq_id assignment and ordered submission (protocol §7.2).

Every training operation reserves the next seq_ids (one per chunk; the first
request after ``create_model`` is 1) and waits for its *turn*: it is submitted
only after the previous operation's submission POST has returned. Results are
polled concurrently; only submissions are serialized, so
``fb = await tc.forward_backward(b); opt = await tc.optim_step(p)`` lands both in
the same server cycle.

Once ids are reserved the submission must happen, or the server (which runs a
model's requests strictly in seq_id order) would wait for the gap forever. So:

* a caller cancelled while waiting for its turn or submitting still completes
  the submission (shielded; it has its own timeouts and retries), and the
  cancellation takes effect right after;
* a submission that fails for good breaks the sequence: later operations raise
  ``SequenceBrokenError`` instead of queueing behind a gap.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

import anyio
import anyio.lowlevel

from ._exceptions import SequenceBrokenError

__all__ = ["SequenceGate"]


class SequenceGate:
    """Hands out seq_ids and turns, in order."""

    def __init__(self, first_seq_id: int = 1) -> None:
        self._next = first_seq_id
        self._tail = anyio.Event()
        self._tail.set()
        self._broken: str | None = None

    @property
    def next_seq_id(self) -> int:
        """The seq_id the next reservation will start at."""
        return self._next

    @property
    def broken(self) -> bool:
        """Whether a failed submission left a gap."""
        return self._broken is not None

    def _check(self) -> None:
        if self._broken is not None:
            raise SequenceBrokenError(self._broken)

    @contextlib.asynccontextmanager
    async def turn(self, count: int = 1) -> AsyncGenerator[list[int]]:
        """Reserve ``count`` consecutive seq_ids and hold the submission turn for them.

        The body of the ``async with`` submits the requests; leaving it by an
        exception marks the sequence broken. ``count=0`` takes a turn without ids:
        the body runs after every earlier submission returned (used for requests
        that are ordered by submission but carry no seq_id).
        """
        self._check()
        if count < 0:
            msg = "count must be >= 0"
            raise ValueError(msg)
        seq_ids = list(range(self._next, self._next + count))
        self._next += count
        previous, mine = self._tail, anyio.Event()
        self._tail = mine
        try:
            with anyio.CancelScope(shield=True):
                await previous.wait()
                self._check()
                yield seq_ids
        except BaseException as exc:
            if self._broken is None and seq_ids:
                self._broken = (
                    f"seq_ids {seq_ids[0]}..{seq_ids[-1]} could not be submitted "
                    f"({type(exc).__name__}: {exc}); the server would wait for them forever"
                )
            raise
        finally:
            mine.set()
        # The submission is done; a cancellation that arrived meanwhile lands now.
        await anyio.lowlevel.checkpoint_if_cancelled()
