"""Scenario files (TOML or JSON): a mix of workloads, the load model, thresholds.

Example (``scenario.toml``)::

    thresholds = ["p99_time_to_result<2s", "error_rate<0.01"]

    [load]
    concurrency = 32          # or: rate = 50, arrival = "poisson"
    duration = "30s"
    warmup = "5s"             # a duration, or a number of operations
    ramp_up = "5s"

    [[workload]]
    type = "sample"
    weight = 3
    prompt_tokens = "lognormal(4,0.5)"
    max_tokens = "uniform(16,128)"
    num_samples = "choice(1,4)"

    [[workload]]
    type = "forward_backward"
    batch_size = 8
    seq_len = 512

    [[workload]]
    type = "rl-step"
    groups = 8
    group_size = 4

JSON files have the same structure. Unknown keys are errors (a typo must not
silently fall back to a default).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final, cast

from .._exceptions import InvalidInputError
from ._config import LoadTestConfig, parse_seconds
from ._distributions import IntDistribution
from ._workloads import WORKLOAD_TYPES, Workload

__all__ = ["LOAD_KEYS", "Scenario", "warmup_settings"]

LOAD_KEYS: Final = (
    "concurrency",
    "rate",
    "arrival",
    "max_in_flight",
    "requests",
    "duration",
    "warmup",
    "ramp_up",
    "timeout",
    "drain_timeout",
    "request_timeout",
    "seed",
)
_SECONDS: Final = frozenset({"duration", "ramp_up", "timeout", "drain_timeout", "request_timeout"})
_TOP: Final = frozenset({"load", "workload", "thresholds"})


def warmup_settings(value: str | int | float) -> dict[str, Any]:
    """``--warmup``: an integer is a number of operations, anything else a duration."""
    if isinstance(value, int) and not isinstance(value, bool):
        return {"warmup_requests": value}
    if isinstance(value, str) and value.strip().isdigit():
        return {"warmup_requests": int(value)}
    return {"warmup_duration": parse_seconds(value, "warmup")}


def _as_list(value: object) -> list[object] | None:
    return cast("list[object]", value) if isinstance(value, list) else None


def _workload(index: int, table: object) -> Workload:
    where = f"workload #{index + 1}"
    if not isinstance(table, Mapping):
        msg = f"{where}: expected a table of settings"
        raise InvalidInputError(msg)
    settings = dict(cast("Mapping[str, Any]", table))
    kind = settings.pop("type", None)
    cls = WORKLOAD_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        msg = f"{where}: 'type' must be one of {sorted(WORKLOAD_TYPES)}, got {kind!r}"
        raise InvalidInputError(msg)
    known = {f.name: f for f in fields(cls) if f.init}
    unknown = sorted(set(settings) - set(known))
    if unknown:
        msg = f"{where} ({kind}): unknown settings {unknown}; known: {sorted(known)}"
        raise InvalidInputError(msg)
    defaults = cls()
    for name, value in list(settings.items()):
        if isinstance(getattr(defaults, name), IntDistribution):
            settings[name] = IntDistribution.parse(value)
    try:
        return cls(**settings)
    except TypeError as exc:  # pragma: no cover - unknown keys are caught above
        raise InvalidInputError(f"{where}: {exc}") from None


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """A scenario file's contents. ``scenario.config(base_url=...)`` makes the LoadTestConfig."""

    workloads: tuple[Workload, ...]
    load: Mapping[str, Any]
    """LoadTestConfig settings from the ``[load]`` table."""
    thresholds: tuple[str, ...] = ()

    @classmethod
    def load_file(cls, path: str | Path) -> Scenario:
        """Read a ``.toml`` or ``.json`` scenario."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
            data: Any = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
        except (OSError, ValueError) as exc:
            msg = f"cannot read scenario {str(path)!r}: {exc}"
            raise InvalidInputError(msg) from None
        if not isinstance(data, dict):
            msg = f"scenario {str(path)!r}: expected a table at the top"
            raise InvalidInputError(msg)
        return cls.from_mapping(cast("dict[str, Any]", data))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Scenario:
        """Build from parsed TOML/JSON."""
        unknown = sorted(set(data) - _TOP)
        if unknown:
            msg = f"scenario: unknown top-level keys {unknown}; expected {sorted(_TOP)}"
            raise InvalidInputError(msg)
        items = _as_list(data.get("workload", []))
        if not items:
            msg = "scenario: give at least one [[workload]] table"
            raise InvalidInputError(msg)
        workloads = tuple(_workload(i, w) for i, w in enumerate(items))
        load: dict[str, Any] = {}
        raw = data.get("load", {})
        if not isinstance(raw, Mapping):
            msg = "scenario: [load] must be a table"
            raise InvalidInputError(msg)
        for key, value in cast("Mapping[str, Any]", raw).items():
            if key not in LOAD_KEYS:
                msg = f"scenario [load]: unknown setting {key!r}; known: {list(LOAD_KEYS)}"
                raise InvalidInputError(msg)
            if key == "warmup":
                load.update(warmup_settings(value))
            elif key in _SECONDS:
                load[key] = parse_seconds(value, key)
            else:
                load[key] = value
        texts = _as_list(data.get("thresholds", []))
        if texts is None or not all(isinstance(x, str) for x in texts):
            msg = "scenario: thresholds must be a list of strings"
            raise InvalidInputError(msg)
        return cls(workloads=workloads, load=load, thresholds=tuple(str(x) for x in texts))

    def config(self, **overrides: Any) -> LoadTestConfig:
        """The LoadTestConfig of this scenario, ``overrides`` (e.g. ``base_url``) winning."""
        settings = {**self.load, **overrides}
        if "rate" in overrides and "concurrency" not in overrides:
            settings.pop("concurrency", None)
        if "concurrency" in overrides and "rate" not in overrides:
            settings.pop("rate", None)
        return LoadTestConfig(workloads=self.workloads, **settings)
