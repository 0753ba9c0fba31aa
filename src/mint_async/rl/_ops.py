"""Operations: busy-time accounting, per-step metrics (JSONL) and resumable checkpoints.

Trainer busy time is measured from the client: the server runs one model's
training operations one after another, so operation ``i`` occupies the trainer
from ``max(submitted_i, done_{i-1})`` to ``done_i``; the busy fraction is the
union of those intervals over wall time. Sampler busy time is the time during
which at least one rollout is in flight.

The checkpoint file (``checkpoint.json`` in the run directory) is written
atomically (temporary file + ``os.replace``) only once the server confirmed the
training state it names, so a crash at any moment leaves either the previous
checkpoint or the new one, both resumable.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import msgspec

__all__ = ["BusyClock", "Checkpoint", "MetricsLog", "SerialClock", "StepMetrics"]


class BusyClock:
    """Time during which a counter of active things was above zero."""

    def __init__(self) -> None:
        self.active = 0
        self._since = time.monotonic()
        self._busy = 0.0

    def add(self, n: int = 1) -> None:
        """``n`` more things are active."""
        self._settle()
        self.active += n

    def remove(self, n: int = 1) -> None:
        """``n`` things finished."""
        self._settle()
        self.active -= n

    def _settle(self) -> None:
        now = time.monotonic()
        if self.active > 0:
            self._busy += now - self._since
        self._since = now

    def busy(self) -> float:
        """Seconds busy so far."""
        self._settle()
        return self._busy


class SerialClock:
    """Busy time of a server that runs operations in submission order, one at a time."""

    def __init__(self) -> None:
        self._last_done = 0.0
        self._busy = 0.0

    def done(self, submitted: float, finished: float) -> None:
        """Record an operation (call in submission order)."""
        start = max(submitted, self._last_done)
        if finished > start:
            self._busy += finished - start
        self._last_done = max(self._last_done, finished)

    def busy(self) -> float:
        """Seconds busy so far."""
        return self._busy


@dataclass(slots=True, kw_only=True)
class StepMetrics:
    """One line of ``metrics.jsonl``."""

    step: int
    reward_mean: float
    reward_std: float
    groups: int
    datums: int
    constant_groups: int
    dropped: int
    """Groups dropped as too stale while this step's batch was assembled."""
    downweighted: int
    staleness: dict[str, int]
    """Histogram: steps off policy -> groups in this step's batch."""
    mean_staleness: float
    sampled_tokens: int
    tokens_per_second: float
    trainer_busy_fraction: float
    sampler_busy_fraction: float
    elapsed: float
    step_seconds: float
    rollouts_in_flight: int
    pool: int
    training_ops_in_flight: int
    sampler_version: int
    data_indices: list[int]
    loss: float | None = None
    extra: dict[str, float] = field(default_factory=dict[str, float])

    def scalars(self) -> dict[str, float]:
        """The step's numbers flat, for a metrics sink (W&B): ``staleness/<k>`` per bucket,
        ``extra`` entries as they are, no data indices, no loss for a step that trained nothing."""
        out: dict[str, float] = {}
        for key, value in asdict(self).items():
            if isinstance(value, bool) or key in ("staleness", "extra", "data_indices"):
                continue
            if isinstance(value, int | float):
                out[key] = float(value)
        out.update({f"staleness/{k}": float(v) for k, v in self.staleness.items()})
        out.update(self.extra)
        return out


class MetricsLog:
    """Appends one JSON line per step; on resume keeps only the steps before the checkpoint."""

    def __init__(self, path: Path, *, keep_before: int | None) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        kept: list[str] = []
        if keep_before is not None and path.exists():
            for line in path.read_text().splitlines():
                try:
                    record: Any = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line torn by a crash
                if isinstance(record, dict) and int(record.get("step", -1)) < keep_before:  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
                    kept.append(line)
        path.write_text("".join(f"{line}\n" for line in kept))

    def write(self, metrics: StepMetrics) -> None:
        """Append ``metrics`` as one line (one write call, flushed)."""
        line = json.dumps(asdict(metrics), separators=(",", ":")) + "\n"
        with self.path.open("a") as fh:
            fh.write(line)
            fh.flush()

    @staticmethod
    def read(path: Path) -> list[dict[str, Any]]:
        """The records of a metrics file (torn lines skipped)."""
        out: list[dict[str, Any]] = []
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out


class Checkpoint(msgspec.Struct, kw_only=True):
    """Everything a run needs to continue exactly where it left off.

    Data bookkeeping: every data position below ``next_index`` was trained in
    exactly one step before ``step``, dropped, or is listed in ``pending``
    (sampled or in flight but not yet trained); resume samples ``pending`` first.
    """

    step: int
    """The next step to train (the state below holds the weights after ``step`` steps)."""
    state_path: str
    """``save_state`` checkpoint: weights and optimizer after ``step`` steps."""
    sampler_version: int
    sampler_path: str
    """The sampler weights current when the checkpoint was taken (policy ``sampler_version``)."""
    next_index: int
    pending: list[int]
    dropped_total: int = 0

    def write(self, directory: Path) -> None:
        """Atomically replace ``directory/checkpoint.json``."""
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / "checkpoint.json.tmp"
        with tmp.open("wb") as fh:
            fh.write(msgspec.json.encode(self))
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(directory / "checkpoint.json")

    @classmethod
    def load(cls, directory: Path) -> Checkpoint | None:
        """The checkpoint in ``directory``, or ``None``."""
        path = directory / "checkpoint.json"
        if not path.exists():
            return None
        return msgspec.json.decode(path.read_bytes(), type=cls)
