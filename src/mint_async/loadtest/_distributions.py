"""Integer distributions for workload parameters (prompt length, max_tokens, num_samples, ...).

Spec syntax (the CLI and scenario files use it)::

    32                 always 32
    uniform(16,64)     an integer in [16, 64], each equally likely
    normal(64,16)      rounded, clipped to the parameter's minimum
    lognormal(4,0.5)   exp(N(mu, sigma)), rounded (long-tailed, like real prompt lengths)
    exp(32)            exponential with mean 32, rounded
    choice(1,2,4,8)    one of the listed values, each equally likely

Every draw is clipped to ``[minimum, maximum]`` of the parameter it feeds, and
draws come from the caller's seeded ``random.Random``: a run is reproducible.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Final, Literal

from .._exceptions import InvalidInputError

__all__ = ["IntDistribution"]

DistributionKind = Literal["fixed", "uniform", "normal", "lognormal", "exp", "choice"]

_ARITY: Final[dict[str, int | None]] = {
    "uniform": 2,
    "normal": 2,
    "lognormal": 2,
    "exp": 1,
    "choice": None,
}
_CALL: Final = re.compile(r"^([a-z]+)\((.*)\)$")
_MAXIMUM: Final = 10_000_000
"""No parameter (tokens, samples, batch size) is ever drawn above this."""


@dataclass(frozen=True)
class IntDistribution:
    """A distribution of positive integers; build it with :meth:`parse` or :meth:`fixed`.

    Example::

        IntDistribution.parse("uniform(16,64)").draw(random.Random(0))
    """

    kind: DistributionKind
    params: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.kind == "fixed":
            if len(self.params) != 1 or self.params[0] != int(self.params[0]):
                msg = f"a fixed value must be one integer, got {self.params}"
                raise InvalidInputError(msg)
        elif self.kind == "choice":
            if not self.params or any(p != int(p) for p in self.params):
                msg = "choice(...) takes one or more integers"
                raise InvalidInputError(msg)
        elif self.kind in _ARITY:
            if len(self.params) != _ARITY[self.kind]:
                msg = f"{self.kind}(...) takes {_ARITY[self.kind]} parameter(s), got {len(self.params)}"
                raise InvalidInputError(msg)
        else:
            msg = f"unknown distribution {self.kind!r}; expected one of fixed, {', '.join(_ARITY)}"
            raise InvalidInputError(msg)
        params = list(self.params)  # (a list: no length narrowing from the checks above)
        if any(not math.isfinite(p) for p in params):
            msg = f"{self}: parameters must be finite numbers"
            raise InvalidInputError(msg)
        if self.kind == "uniform" and params[0] > params[1]:
            msg = f"{self}: the low end is above the high end"
            raise InvalidInputError(msg)
        if self.kind in ("normal", "lognormal") and params[1] < 0:
            msg = f"{self}: the spread must be >= 0"
            raise InvalidInputError(msg)
        if self.kind == "exp" and self.params[0] <= 0:
            msg = f"{self}: the mean must be > 0"
            raise InvalidInputError(msg)

    def __str__(self) -> str:
        if self.kind == "fixed":
            return str(int(self.params[0]))
        return f"{self.kind}({','.join(_number(p) for p in self.params)})"

    @classmethod
    def fixed(cls, value: int) -> IntDistribution:
        """Always ``value``."""
        return cls("fixed", (float(value),))

    @classmethod
    def parse(cls, spec: str | int) -> IntDistribution:
        """``32``, ``uniform(16,64)``, ``normal(64,16)``, ``lognormal(4,0.5)``, ``exp(32)``, ``choice(1,2,4)``."""
        if isinstance(spec, bool) or not isinstance(spec, (str, int)):
            msg = f"a distribution is an integer or a spec string, got {spec!r}"
            raise InvalidInputError(msg)
        if isinstance(spec, int):
            return cls.fixed(spec)
        text = spec.strip().replace(" ", "")
        match = _CALL.match(text)
        try:
            if match is None:
                return cls.fixed(int(text))
            kind, args = match.group(1), match.group(2)
            params = tuple(float(a) for a in args.split(",")) if args else ()
        except ValueError:
            msg = (
                f"bad distribution {spec!r}: expected an integer or one of "
                "uniform(lo,hi), normal(mean,sd), lognormal(mu,sigma), exp(mean), choice(a,b,...)"
            )
            raise InvalidInputError(msg) from None
        if kind == "fixed":
            kind = "?"  # only bare integers are fixed values
        return cls(kind, params)  # type: ignore[arg-type]

    def check_range(self, name: str, minimum: int, maximum: int = _MAXIMUM) -> None:
        """Refuse a distribution that can only produce values outside ``[minimum, maximum]``."""
        low, high = self.support()
        if high < minimum or low > maximum:
            msg = f"{name}={self} never draws a value in [{minimum}, {maximum}]"
            raise InvalidInputError(msg)

    def support(self) -> tuple[float, float]:
        """The smallest and largest value a draw can take before clipping."""
        p = self.params
        match self.kind:
            case "fixed":
                return p[0], p[0]
            case "uniform":
                return p[0], p[1]
            case "choice":
                return min(p), max(p)
            case "normal" | "lognormal":
                return -math.inf, math.inf
            case _:
                return 0.0, math.inf

    def mean(self) -> float:
        """The mean before rounding and clipping (a size estimate)."""
        p = self.params
        match self.kind:
            case "fixed" | "exp" | "normal":
                return p[0]
            case "uniform":
                return (p[0] + p[1]) / 2
            case "lognormal":
                return math.exp(p[0] + p[1] ** 2 / 2)
            case _:
                return sum(p) / len(p)

    def draw(self, rng: random.Random, minimum: int = 1, maximum: int = _MAXIMUM) -> int:
        """One value, rounded and clipped to ``[minimum, maximum]``."""
        p = self.params
        match self.kind:
            case "fixed":
                value = p[0]
            case "uniform":
                value = rng.randint(int(p[0]), int(p[1]))
            case "normal":
                value = rng.gauss(p[0], p[1])
            case "lognormal":
                value = rng.lognormvariate(p[0], p[1])
            case "exp":
                value = rng.expovariate(1.0 / p[0])
            case _:
                value = rng.choice(p)
        return max(minimum, min(maximum, round(value)))


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)
