"""What ``mint-async demo`` prints: lines on stdout, a live progress bar on stderr, the answers table.

:class:`Example`, the row of that table, is defined here (``_demo`` re-exports it) so
that ``_demo`` imports this module and nothing here imports ``_demo`` back.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

__all__ = ["Example", "Reporter", "accuracy_line", "line_every", "print_table"]

_BAR_WIDTH = 24
_MAX_STEP_LINES = 30


@dataclass(frozen=True, kw_only=True)
class Example:
    """One question with its expected and sampled answers."""

    question: str
    expected: str
    sampled: str

    @property
    def correct(self) -> bool:
        """Whether the greedy answer is exactly the product."""
        return self.sampled == self.expected


def line_every(total: int) -> int:
    """Print every n-th step's line, n the least of 1, 2, 5, 10, 20, 50... giving <= 30 lines."""
    scale = 1
    while True:
        for n in (scale, 2 * scale, 5 * scale):
            if -(-total // n) <= _MAX_STEP_LINES:
                return n
        scale *= 10


class Reporter:
    """Prints result lines on ``out`` and redraws a progress bar on ``err`` when it is a terminal.

    Each line first erases the bar and then redraws it, so the two streams
    interleave cleanly on one terminal; redirected, ``err`` gets no bar.
    """

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out = out
        self.err = err
        self._live = err.isatty()
        self._bar = ""
        self._started: float | None = None

    def line(self, text: str) -> None:
        """Print one line of results."""
        self._erase()
        print(text, file=self.out, flush=True)
        self._draw()

    def step(self, done: int, total: int, loss: float) -> None:
        """Report a finished training step: the bar, and a line for the first, the last and
        every :func:`line_every`-th step (at most about 30 lines, however many steps)."""
        now = time.perf_counter()
        if self._started is None:
            self._started = now
        elapsed = now - self._started
        rate = (done - 1) / elapsed if elapsed > 0 and done > 1 else 0.0
        eta = f"{(total - done) / rate:.0f}s" if rate else "?"
        filled = round(_BAR_WIDTH * done / total)
        self._erase()
        if done in {1, total} or done % line_every(total) == 0:
            print(f"step {done:>4}/{total}  loss/token {loss:.4f}", file=self.out, flush=True)
        self._bar = (
            f"training [{'#' * filled}{'-' * (_BAR_WIDTH - filled)}] {done}/{total}"
            f"  loss/token {loss:.4f}  {rate:.1f} steps/s  ETA {eta}"
        )
        self._draw()

    def done(self) -> None:
        """Remove the bar (training is over)."""
        self._erase()
        self._bar = ""

    def _erase(self) -> None:
        if self._live and self._bar:
            self.err.write("\r\x1b[K")
            self.err.flush()

    def _draw(self) -> None:
        if self._live and self._bar:
            self.err.write(self._bar)
            self.err.flush()


def accuracy_line(label: str, examples: Sequence[Example]) -> str:
    """``"<label>: 79/81 answered correctly (98%)"``."""
    right = sum(e.correct for e in examples)
    share = 100 * right / len(examples) if examples else 0.0
    return f"{label}: {right}/{len(examples)} answered correctly ({share:.0f}%)"


def _mark(ok: bool, out: TextIO) -> str:
    mark = "✓" if ok else "✗"
    try:
        mark.encode(out.encoding or "utf-8")  # a StringIO has no encoding: any text fits
    except (UnicodeEncodeError, LookupError):
        return "ok" if ok else "--"
    return mark


def print_table(examples: Sequence[Example], out: TextIO) -> None:
    """Questions, expected and sampled answers, in as many side-by-side columns as fit."""
    q_width = max((len(e.question) for e in examples), default=8)
    cell = f"{{:<{q_width}}}  {{:>8}}  {{:>8}} {{}}"
    width = len(cell.format("", "", "", "ok"))
    columns = max(1, min(3, (shutil.get_terminal_size((100, 24)).columns + 3) // (width + 3)))
    rows = -(-len(examples) // columns)
    header = "   ".join([cell.format("question", "expected", "sampled", "  ")] * columns)
    print(header.rstrip(), file=out)
    for r in range(rows):
        cells = [
            cell.format(e.question, e.expected, e.sampled or "''", _mark(e.correct, out))
            for e in examples[r::rows]
        ]
        print("   ".join(cells).rstrip(), file=out)
    out.flush()
