"""Fault injection: seeded, independent, probabilistic misbehaviour at well-defined points.

A fault never corrupts server state: a rejected submission is not enqueued, a
dropped connection drops only the answer to work that *was* enqueued, a
failed result consumes its seq_id like any failed request, and poll faults
never touch the future they poll.

Spec syntax (``--faults``), comma-separated ``name=value`` pairs::

    submit_5xx=0.1,sample_429=0.2,drop_after_accept=0.05,retrieve_408=0.1,
    try_again=0.2,retrieve_410=0.01,slow_poll=0.1:2.5,error_result=0.05:server,seed=7

=====================  ==================================================================
``submit_5xx=P``       a submission answers 500/502/503 before anything is enqueued
``sample_429=P``       an ``asample`` answers 429 (backpressure) before anything is enqueued
``drop_after_accept=P`` a submission is enqueued, then the connection is closed unanswered
``retrieve_408=P``     a poll answers 408 with a try_again body at once (no long poll)
``try_again=P``        a poll answers 200 try_again at once (no long poll)
``retrieve_410=P``     a poll answers 410 (the future itself stays valid)
``slow_poll=P[:S]``    a poll is held ``S`` extra seconds (default 1) before it is served
``error_result=P[:C]`` a request fails with ``{"error", "category": C}`` (default ``server``)
                       instead of executing
``seed=N``             the seed of every fault's own random stream (default 0)
=====================  ==================================================================
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, fields
from typing import Final, Literal

__all__ = ["FaultConfig", "FaultInjector", "FaultName"]

FaultName = Literal[
    "submit_5xx",
    "sample_429",
    "drop_after_accept",
    "retrieve_408",
    "try_again",
    "retrieve_410",
    "slow_poll",
    "error_result",
]

_NAMES: Final[tuple[FaultName, ...]] = (
    "submit_5xx",
    "sample_429",
    "drop_after_accept",
    "retrieve_408",
    "try_again",
    "retrieve_410",
    "slow_poll",
    "error_result",
)
_CATEGORIES: Final = ("server", "user", "unknown")


@dataclass(frozen=True, kw_only=True)
class FaultConfig:
    """Probabilities (0..1) of each fault; see the module docstring for their meaning."""

    submit_5xx: float = 0.0
    sample_429: float = 0.0
    drop_after_accept: float = 0.0
    retrieve_408: float = 0.0
    try_again: float = 0.0
    retrieve_410: float = 0.0
    slow_poll: float = 0.0
    slow_poll_seconds: float = 1.0
    error_result: float = 0.0
    error_category: str = "server"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in _NAMES:
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                msg = f"fault probability {name}={p} is not in [0, 1]"
                raise ValueError(msg)
        if self.slow_poll_seconds < 0:
            msg = "slow_poll seconds must be >= 0"
            raise ValueError(msg)
        if self.error_category not in _CATEGORIES:
            msg = f"error_result category must be one of {_CATEGORIES}"
            raise ValueError(msg)

    @property
    def enabled(self) -> bool:
        """Whether any fault has a non-zero probability."""
        return any(getattr(self, name) > 0 for name in _NAMES)

    @classmethod
    def parse(cls, spec: str) -> FaultConfig:
        """Parse a ``--faults`` spec (see the module docstring); raises ValueError."""
        values: dict[str, object] = {}
        known = {f.name for f in fields(cls)}
        for raw in spec.split(","):
            item = raw.strip()
            if not item:
                continue
            name, sep, value = item.partition("=")
            name = name.strip()
            if not sep or name not in known or name in ("slow_poll_seconds", "error_category"):
                msg = (
                    f"unknown fault {item!r}; expected name=value with name in {[*_NAMES, 'seed']}"
                )
                raise ValueError(msg)
            value, _, extra = value.partition(":")
            try:
                if name == "seed":
                    values["seed"] = int(value)
                    continue
                values[name] = float(value)
                if name == "slow_poll" and extra:
                    values["slow_poll_seconds"] = float(extra)
            except ValueError:
                msg = f"bad number in fault {item!r}"
                raise ValueError(msg) from None
            if name == "error_result" and extra:
                values["error_category"] = extra
        return cls(**values)  # type: ignore[arg-type]


class FaultInjector:
    """Draws fault decisions; each fault has its own seeded random stream and counter."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        # Independent streams: whether one fault fires never shifts another's sequence.
        self._rngs = {
            name: random.Random(f"{config.seed}:{name}")  # noqa: S311 - not cryptographic
            for name in _NAMES
        }
        self._counts: dict[str, int] = dict.fromkeys(_NAMES, 0)
        self._lock = threading.Lock()  # counts are read from other threads (tests)

    def fires(self, name: FaultName) -> bool:
        """Whether fault ``name`` fires this time (and count it if so)."""
        p: float = getattr(self.config, name)
        if p <= 0.0 or self._rngs[name].random() >= p:
            return False
        with self._lock:
            self._counts[name] += 1
        return True

    def counts(self) -> dict[str, int]:
        """How often each fault has fired."""
        with self._lock:
            return dict(self._counts)
