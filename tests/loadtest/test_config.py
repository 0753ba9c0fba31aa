"""Configuration: distributions, durations and every LoadTestConfig check raise clear typed errors."""

from __future__ import annotations

import random

import pytest

from mint_async import InvalidInputError
from mint_async.loadtest import (
    ForwardBackwardWorkload,
    IntDistribution,
    LoadTestConfig,
    RLStepWorkload,
    SampleWorkload,
    parse_seconds,
)


@pytest.mark.parametrize(
    ("spec", "low", "high"),
    [
        ("32", 32, 32),
        (7, 7, 7),
        ("uniform(16, 64)", 16, 64),
        ("choice(1,2,4,8)", 1, 8),
        ("normal(64,16)", 1, 10_000_000),
        ("lognormal(3,0.5)", 1, 10_000_000),
        ("exp(20)", 1, 10_000_000),
    ],
)
def test_distributions_parse_and_draw_in_range(spec: str | int, low: int, high: int) -> None:
    """Each spec parses, prints back, and draws integers in its range (seeded: reproducible)."""
    dist = IntDistribution.parse(spec)
    assert IntDistribution.parse(str(dist)) == dist
    draws = [dist.draw(random.Random(3)) for _ in range(5)]
    assert all(low <= d <= high for d in draws) and len(set(draws)) == 1
    many = [dist.draw(random.Random(i)) for i in range(200)]
    assert all(low <= d <= high for d in many)
    if spec == "choice(1,2,4,8)":
        assert set(many) == {1, 2, 4, 8}


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "abc",
        "uniform(5)",
        "uniform(9,1)",
        "choice()",
        "choice(1.5)",
        "exp(-1)",
        "gauss(1,2)",
        "fixed(3)",
        "1.5",
        "normal(1,-1)",
    ],
)
def test_bad_distributions(spec: str) -> None:
    """Malformed or impossible specs raise InvalidInputError."""
    with pytest.raises(InvalidInputError):
        IntDistribution.parse(spec)


def test_parse_seconds_units() -> None:
    """Durations take us/ms/s/m/h or bare seconds; junk and negatives are refused."""
    assert parse_seconds("250ms") == 0.25
    assert parse_seconds("2m") == 120.0
    assert parse_seconds("1.5") == 1.5
    assert parse_seconds("100us") == pytest.approx(1e-4)
    assert parse_seconds(3) == 3.0
    for bad in ("fast", "-1s", "1d", True):
        with pytest.raises(InvalidInputError):
            parse_seconds(bad)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"concurrency": 4, "rate": 10.0}, "not both"),
        ({"concurrency": 0}, "concurrency"),
        ({"rate": -1.0}, "rate"),
        ({"arrival": "bursty"}, "arrival"),
        ({"requests": 0}, "requests"),
        ({"duration": float("inf")}, "duration"),
        ({"warmup_requests": -1}, "warmup_requests"),
        ({"drain_timeout": 0}, "drain_timeout"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"base_url": "http://x", "server_args": ("--faults", "x=1")}, "server_args"),
        ({"server_args": ("--faults", "nonsense=1")}, "faults"),
        ({"server_args": ("--latency", "sample=uniform(1)")}, "latency"),
        ({"workloads": ()}, "at least one"),
        ({"workloads": (SampleWorkload(), SampleWorkload())}, "unique"),
        ({"workloads": ("sample",)}, "not a workload"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_config_errors(kwargs: dict[str, object], message: str) -> None:
    """Every invalid setting raises InvalidInputError naming the setting."""
    with pytest.raises(InvalidInputError, match=message):
        LoadTestConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SampleWorkload(weight=0), "weight"),
        (lambda: SampleWorkload(name="a b"), "name"),
        (lambda: SampleWorkload(prompt_tokens=IntDistribution.parse("choice(0)")), "prompt_tokens"),
        (lambda: SampleWorkload(max_tokens=32), "IntDistribution"),  # type: ignore[arg-type]
        (lambda: SampleWorkload(temperature=-1), "temperature"),
        (lambda: ForwardBackwardWorkload(loss_fn="mse"), "loss function"),  # type: ignore[arg-type]
        (lambda: ForwardBackwardWorkload(models=0), "models"),
        (lambda: ForwardBackwardWorkload(seq_len=IntDistribution.fixed(1)), "seq_len"),
        (lambda: RLStepWorkload(groups=0), "groups"),
        (lambda: RLStepWorkload(minibatches=100), "minibatches"),
        (lambda: RLStepWorkload(learning_rate=2.0), "learning_rate"),
        (lambda: RLStepWorkload(vocab=1), "vocab"),
    ],
)
def test_workload_errors(make: object, message: str) -> None:
    """Workload parameters are checked at construction."""
    with pytest.raises(InvalidInputError, match=message):
        make()  # type: ignore[operator]


def test_defaults_and_description() -> None:
    """Neither requests nor duration means 1,000 operations; concurrency defaults to 16."""
    config = LoadTestConfig()
    assert config.load_model == "closed" and config.effective_concurrency == 16
    assert config.effective_requests == 1000
    assert LoadTestConfig(duration=5.0).effective_requests is None
    described = LoadTestConfig(rate=5.0, requests=10).describe()
    assert described["load_model"] == "open" and described["arrival"] == "poisson"
    assert described["workloads"][0]["prompt_tokens"] == "32"
