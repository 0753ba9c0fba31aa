"""The settings of one load test, validated in one place.

Load models:

* **closed loop** (``concurrency=N``): N workers, each starting its next
  operation when the previous one ends — the offered load follows the server.
* **open loop** (``rate=R``): operations start at scheduled times, ``R`` per
  second on average (``arrival="poisson"``: exponential gaps; ``"constant"``:
  even gaps), whether or not earlier ones finished; at most ``max_in_flight``
  run at once (an arrival waits for room and its lateness is reported as
  *schedule lag*).

Bounds — a run always ends:

* ``requests`` measured operations are started, or ``duration`` seconds of
  measurement pass, whichever comes first (neither: 1,000 operations);
* ``timeout`` caps the whole run's issuing phase (warmup included);
* after issuing stops, operations still running get ``drain_timeout`` seconds,
  then they are cancelled and reported as *cancelled*;
* with ``request_timeout`` set, a server request is given up after that many
  seconds (an error, ``Timeout``); without it the client's own watchdogs and
  the run's deadlines bound every request.

Warmup: operations started while ``warmup_requests`` have not all started, or
within ``warmup_duration`` seconds of the start, are reported separately. In
the closed loop, measurement then starts once every warmup operation has
finished (warm connections, no warmup work in the measured window); the open
loop keeps its schedule and measures from the first arrival due after the warmup.
Ramp-up: over the first ``ramp_up`` seconds the closed loop starts its workers
one by one, the open loop raises its rate linearly from 0 to ``rate``.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from .._exceptions import InvalidInputError
from ._workloads import (
    ForwardBackwardWorkload,
    RLStepWorkload,
    SampleWorkload,
    Workload,
    describe_workload,
)

__all__ = ["DEFAULT_CONCURRENCY", "DEFAULT_REQUESTS", "LoadTestConfig", "parse_seconds"]

DEFAULT_REQUESTS: Final = 1000
DEFAULT_CONCURRENCY: Final = 16
_UNITS: Final = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION: Final = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(us|ms|s|m|h)?\s*$")


def parse_seconds(text: str | float, what: str = "duration") -> float:
    """``"30s"``, ``"250ms"``, ``"2m"``, ``"1h"`` or a bare number of seconds."""
    if isinstance(text, bool):
        msg = f"{what} must be a duration, got {text!r}"
        raise InvalidInputError(msg)
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        match = _DURATION.match(text) if isinstance(text, str) else None
        if match is None:
            msg = f"{what}: {text!r} is not a duration (e.g. 30s, 250ms, 2m, 1h)"
            raise InvalidInputError(msg)
        value = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not math.isfinite(value) or value < 0:
        msg = f"{what} must be a finite, non-negative duration, got {text!r}"
        raise InvalidInputError(msg)
    return value


def _positive(name: str, value: float | None, *, integer: bool = False, zero: bool = False) -> None:
    if value is None:
        return
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not math.isfinite(value):
        kind = "an integer" if integer else "a number"
        msg = f"{name} must be {kind}, got {value!r}"
        raise InvalidInputError(msg)
    if value < 0 or (value == 0 and not zero):
        msg = f"{name} must be {'>= 0' if zero else '> 0'}, got {value!r}"
        raise InvalidInputError(msg)


@dataclass(frozen=True, kw_only=True)
class LoadTestConfig:
    """Everything one load test needs; invalid values raise InvalidInputError at construction.

    Example::

        LoadTestConfig(workloads=(SampleWorkload(),), concurrency=64, duration=30.0)
    """

    workloads: tuple[Workload, ...] = (SampleWorkload(),)
    concurrency: int | None = None
    """Closed loop: operations in flight (default 16 unless ``rate`` is given)."""
    rate: float | None = None
    """Open loop: operations started per second."""
    arrival: Literal["poisson", "constant"] = "poisson"
    max_in_flight: int = 1024
    """Open loop: the most operations running at once."""
    requests: int | None = None
    duration: float | None = None
    warmup_requests: int = 0
    warmup_duration: float = 0.0
    ramp_up: float = 0.0
    timeout: float = 3600.0
    drain_timeout: float = 60.0
    request_timeout: float | None = None
    seed: int = 0
    base_url: str | None = None
    """The endpoint; None starts the local reference server in a child process."""
    api_key: str | None = None
    """Key for ``base_url`` (default: ``MINT_API_KEY`` / ``TINKER_API_KEY``)."""
    client_settings: Mapping[str, Any] = field(default_factory=dict[str, Any])
    """More ``ServiceClient`` settings (e.g. ``http_client="httpx"``, ``wire="json"``)."""
    server_args: tuple[str, ...] = ()
    """Options for the local server (``mint-async serve`` syntax), e.g. ``("--faults", "sample_429=0.1")``."""
    progress: bool = False
    """Draw a live progress line on stderr (only when it is a terminal)."""
    keep_samples: int = 1_000_000
    """Raw latencies kept per metric for exact percentiles (beyond: histogram, ±0.05 %)."""
    workers: int = 1
    """Load-generator processes; more than one splits the load across them and merges
    their results into one report (see :mod:`mint_async.loadtest._distributed`)."""
    ray_address: str | None = None
    """Run the generators as Ray tasks: a cluster address, ``"auto"`` (the running
    cluster) or ``"local"`` (start a local instance); None: local processes."""

    def __post_init__(self) -> None:
        if isinstance(self.workloads, (str, bytes)) or not isinstance(self.workloads, Sequence):
            msg = "workloads must be a sequence of workloads"
            raise InvalidInputError(msg)
        object.__setattr__(self, "workloads", tuple(self.workloads))
        if not self.workloads:
            msg = "give at least one workload"
            raise InvalidInputError(msg)
        for w in self.workloads:
            if not isinstance(w, (SampleWorkload, ForwardBackwardWorkload, RLStepWorkload)):
                msg = f"not a workload: {w!r}"
                raise InvalidInputError(msg)
        names = [w.name for w in self.workloads]
        if len(set(names)) != len(names):
            msg = f"workload names must be unique, got {names}"
            raise InvalidInputError(msg)
        if self.concurrency is not None and self.rate is not None:
            msg = "choose one load model: concurrency (closed loop) or rate (open loop), not both"
            raise InvalidInputError(msg)
        _positive("concurrency", self.concurrency, integer=True)
        _positive("rate", self.rate)
        if self.arrival not in ("poisson", "constant"):
            msg = f"arrival must be 'poisson' or 'constant', got {self.arrival!r}"
            raise InvalidInputError(msg)
        _positive("max_in_flight", self.max_in_flight, integer=True)
        _positive("requests", self.requests, integer=True)
        _positive("duration", self.duration)
        _positive("warmup_requests", self.warmup_requests, integer=True, zero=True)
        for name in ("warmup_duration", "ramp_up"):
            _positive(name, getattr(self, name), zero=True)
        for name in ("timeout", "drain_timeout"):
            if getattr(self, name) is None:
                msg = f"{name} must be a number of seconds"
                raise InvalidInputError(msg)
            _positive(name, getattr(self, name))
        _positive("request_timeout", self.request_timeout)  # None: no per-request bound
        _positive("keep_samples", self.keep_samples, integer=True, zero=True)
        _positive("workers", self.workers, integer=True)
        if self.ray_address is not None and (
            not isinstance(self.ray_address, str) or not self.ray_address
        ):
            msg = f"ray_address must be an address, 'auto' or 'local', got {self.ray_address!r}"
            raise InvalidInputError(msg)
        if self.distributed:
            _check_split(self)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            msg = f"seed must be an integer, got {self.seed!r}"
            raise InvalidInputError(msg)
        if self.base_url is not None and not str(self.base_url).startswith(("http://", "https://")):
            msg = f"base_url must be an http(s) URL, got {self.base_url!r}"
            raise InvalidInputError(msg)
        if self.base_url is not None and self.server_args:
            msg = "server_args configure the local server; they cannot be used with base_url"
            raise InvalidInputError(msg)
        if any(not isinstance(a, str) for a in self.server_args):
            msg = "server_args must be strings"
            raise InvalidInputError(msg)
        object.__setattr__(self, "server_args", tuple(self.server_args))
        _check_server_args(self.server_args)
        object.__setattr__(self, "client_settings", dict(self.client_settings))

    @property
    def load_model(self) -> Literal["closed", "open"]:
        """``open`` when a rate is set, else ``closed``."""
        return "open" if self.rate is not None else "closed"

    @property
    def distributed(self) -> bool:
        """Whether the load is split over several generators (``workers > 1`` or Ray)."""
        return self.workers > 1 or self.ray_address is not None

    @property
    def effective_concurrency(self) -> int:
        """The closed loop's worker count (default 16)."""
        return self.concurrency if self.concurrency is not None else DEFAULT_CONCURRENCY

    @property
    def effective_requests(self) -> int | None:
        """The measured operation budget (1,000 when neither requests nor duration is set)."""
        if self.requests is None and self.duration is None:
            return DEFAULT_REQUESTS
        return self.requests

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description (saved with the results)."""
        return {
            "load_model": self.load_model,
            "concurrency": self.effective_concurrency if self.load_model == "closed" else None,
            "rate": self.rate,
            "arrival": self.arrival if self.load_model == "open" else None,
            "max_in_flight": self.max_in_flight if self.load_model == "open" else None,
            "requests": self.effective_requests,
            "duration": self.duration,
            "warmup_requests": self.warmup_requests,
            "warmup_duration": self.warmup_duration,
            "ramp_up": self.ramp_up,
            "timeout": self.timeout,
            "drain_timeout": self.drain_timeout,
            "request_timeout": self.request_timeout,
            "seed": self.seed,
            "workers": self.workers,
            "ray_address": self.ray_address,
            "server_args": list(self.server_args),
            "workloads": [describe_workload(w) for w in self.workloads],
        }


def _check_split(config: LoadTestConfig) -> None:
    """Every generator must get at least one worker task and one measured operation."""
    n = config.workers
    if config.load_model == "closed" and config.effective_concurrency < n:
        msg = f"concurrency {config.effective_concurrency} cannot be split over {n} workers"
        raise InvalidInputError(msg)
    requests = config.effective_requests
    if requests is not None and requests < n:
        msg = f"{requests} requests cannot be split over {n} workers"
        raise InvalidInputError(msg)
    if config.load_model == "open" and config.max_in_flight < n:
        msg = f"max_in_flight {config.max_in_flight} cannot be split over {n} workers"
        raise InvalidInputError(msg)


def _check_server_args(args: Sequence[str]) -> None:
    """Parse the fault and latency specs now, so a typo fails before a server starts."""
    from ..server import FaultConfig, LatencyConfig  # noqa: PLC0415 - only for local targets

    for flag, value in itertools.pairwise(args):
        try:
            if flag == "--faults":
                FaultConfig.parse(value)
            elif flag == "--latency":
                LatencyConfig.parse(value)
        except ValueError as exc:
            msg = f"server {flag[2:]}: {exc}"
            raise InvalidInputError(msg) from None
