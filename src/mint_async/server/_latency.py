"""Simulated compute time per operation: fixed or drawn from a distribution, seeded.

Spec syntax (``--latency``), comma-separated ``op=dist`` pairs; ``default`` (or
``*``) applies to every operation without its own entry::

    sample=0.02,forward_backward=uniform(0.05,0.2),optim_step=exp(0.01),default=0

Distributions: a number of seconds (fixed), ``uniform(lo,hi)``, ``exp(mean)``,
``normal(mean,sd)`` (clipped at 0), ``lognormal(mu,sigma)``.

Operations: ``create_model``, ``forward``, ``forward_backward``, ``optim_step``,
``save_weights``, ``save_weights_for_sampler``, ``load_weights``, ``sample``,
``reverse_kl``, ``interpolate``, ``unload_model``.

The delay is spent holding a capacity slot (see ``ServerConfig.capacity``),
as real compute would.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from typing import Final

__all__ = ["OPERATIONS", "Distribution", "LatencyConfig", "LatencyModel"]

OPERATIONS: Final = frozenset(
    {
        "create_model",
        "forward",
        "forward_backward",
        "optim_step",
        "save_weights",
        "save_weights_for_sampler",
        "load_weights",
        "sample",
        "reverse_kl",
        "interpolate",
        "unload_model",
    }
)

_KINDS: Final = {"fixed": 1, "uniform": 2, "exp": 1, "normal": 2, "lognormal": 2}
_CALL: Final = re.compile(r"^([a-z]+)\(([^)]*)\)$")


@dataclass(frozen=True)
class Distribution:
    """A non-negative random delay in seconds."""

    kind: str = "fixed"
    params: tuple[float, ...] = (0.0,)

    def __post_init__(self) -> None:
        if _KINDS.get(self.kind) != len(self.params):
            msg = f"{self.kind} takes {_KINDS.get(self.kind, '?')} parameter(s)"
            raise ValueError(msg)
        if any(not math.isfinite(p) for p in self.params):
            msg = "latency parameters must be finite"
            raise ValueError(msg)
        if self.kind in ("fixed", "exp", "uniform") and min(self.params) < 0:
            msg = f"{self.kind} latency must not be negative"
            raise ValueError(msg)

    @classmethod
    def parse(cls, text: str) -> Distribution:
        """``0.05``, ``uniform(0.01,0.1)``, ``exp(0.02)``, ``normal(0.05,0.01)``, ``lognormal(-3,0.5)``."""
        text = text.strip().replace(" ", "")
        match = _CALL.match(text)
        try:
            if match is None:
                return cls("fixed", (float(text),))
            kind, args = match.group(1), match.group(2)
            return cls(kind, tuple(float(a) for a in args.split(",")))
        except ValueError as exc:
            msg = f"bad latency {text!r}: {exc}"
            raise ValueError(msg) from None

    @property
    def is_zero(self) -> bool:
        """Whether this always draws 0."""
        return self.kind == "fixed" and self.params[0] == 0

    def draw(self, rng: random.Random) -> float:
        """One delay."""
        p = self.params
        match self.kind:
            case "fixed":
                return p[0]
            case "uniform":
                return rng.uniform(p[0], p[1])
            case "exp":
                return rng.expovariate(1.0 / p[0]) if p[0] > 0 else 0.0
            case "normal":
                return max(0.0, rng.gauss(p[0], p[1]))
            case _:
                return rng.lognormvariate(p[0], p[1])


@dataclass(frozen=True, kw_only=True)
class LatencyConfig:
    """Per-operation delays; ``default`` covers operations without an entry."""

    default: Distribution = field(default_factory=Distribution)
    per_op: dict[str, Distribution] = field(default_factory=dict[str, Distribution])
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.per_op) - OPERATIONS)
        if unknown:
            msg = f"unknown operations {unknown} in latency config; known: {sorted(OPERATIONS)}"
            raise ValueError(msg)

    @classmethod
    def parse(cls, spec: str, *, seed: int = 0) -> LatencyConfig:
        """Parse a ``--latency`` spec; a bare distribution sets the default."""
        default = Distribution()
        per_op: dict[str, Distribution] = {}
        # Split on commas outside parentheses.
        items = re.split(r",(?![^()]*\))", spec)
        for raw in items:
            item = raw.strip()
            if not item:
                continue
            op, sep, value = item.partition("=")
            if not sep:
                default = Distribution.parse(item)
            elif op.strip() in ("default", "*"):
                default = Distribution.parse(value)
            else:
                per_op[op.strip()] = Distribution.parse(value)
        return cls(default=default, per_op=per_op, seed=seed)


class LatencyModel:
    """Draws delays for operations from a :class:`LatencyConfig`."""

    def __init__(self, config: LatencyConfig) -> None:
        self._config = config
        self._rng = random.Random(config.seed)  # noqa: S311 - not cryptographic
        self._zero = config.default.is_zero and all(d.is_zero for d in config.per_op.values())

    def is_zero(self, op: str) -> bool:
        """Whether ``op`` never waits."""
        return self._zero or self._config.per_op.get(op, self._config.default).is_zero

    def delay(self, op: str) -> float:
        """Seconds to spend on ``op`` (0 without any configured latency)."""
        if self._zero:
            return 0.0
        return self._config.per_op.get(op, self._config.default).draw(self._rng)
