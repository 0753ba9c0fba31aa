"""Fault and latency specs: parsing, validation, seeded and independent draws."""

from __future__ import annotations

import random

import pytest

from mint_async.server import Distribution, FaultConfig, LatencyConfig
from mint_async.server._faults import FaultInjector
from mint_async.server._latency import LatencyModel


def test_fault_spec_parses_every_fault() -> None:
    """Every documented name, with the slow_poll seconds and error category extras."""
    config = FaultConfig.parse(
        "submit_5xx=0.1, sample_429=0.2,drop_after_accept=0.05,retrieve_408=0.1,try_again=0.3,"
        "retrieve_410=0.01,slow_poll=0.1:2.5,error_result=0.05:user,seed=7"
    )
    assert config.submit_5xx == 0.1 and config.sample_429 == 0.2 and config.try_again == 0.3
    assert config.slow_poll == 0.1 and config.slow_poll_seconds == 2.5
    assert config.error_result == 0.05 and config.error_category == "user"
    assert config.seed == 7 and config.enabled
    assert not FaultConfig.parse("").enabled


@pytest.mark.parametrize(
    "spec",
    [
        "nope=0.1",
        "submit_5xx",
        "submit_5xx=x",
        "submit_5xx=1.5",
        "error_result=0.1:who",
        "slow_poll_seconds=1",
    ],
)
def test_bad_fault_specs_are_rejected(spec: str) -> None:
    """Unknown names, missing values, bad numbers, probabilities outside [0, 1], bad categories."""
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies with the mistake
        FaultConfig.parse(spec)


def test_faults_are_seeded_and_independent() -> None:
    """The same seed gives the same decisions; drawing one fault never shifts another's stream."""
    config = FaultConfig(submit_5xx=0.5, retrieve_410=0.5, seed=3)
    a, b = FaultInjector(config), FaultInjector(config)
    seq_a = [a.fires("submit_5xx") for _ in range(50)]
    for _ in range(17):
        b.fires("retrieve_410")
    assert [b.fires("submit_5xx") for _ in range(50)] == seq_a
    assert a.counts()["submit_5xx"] == sum(seq_a) and 0 < sum(seq_a) < 50


def test_zero_and_one_probabilities() -> None:
    """p=0 never fires, p=1 always does."""
    inj = FaultInjector(FaultConfig(drop_after_accept=1.0))
    assert all(inj.fires("drop_after_accept") for _ in range(10))
    assert not any(inj.fires("submit_5xx") for _ in range(10))


def test_latency_spec() -> None:
    """Per-operation distributions, a default, commas inside parentheses."""
    config = LatencyConfig.parse("sample=0.02,forward_backward=uniform(0.1,0.2),default=exp(0.01)")
    assert config.per_op["sample"] == Distribution("fixed", (0.02,))
    assert config.per_op["forward_backward"] == Distribution("uniform", (0.1, 0.2))
    assert config.default == Distribution("exp", (0.01,))
    assert LatencyConfig.parse("0.5").default == Distribution("fixed", (0.5,))


@pytest.mark.parametrize(
    "spec", ["sample=uniform(1)", "nosuchop=1", "sample=gamma(1,2)", "sample=-1", "sample=abc"]
)
def test_bad_latency_specs_are_rejected(spec: str) -> None:
    """Wrong arity, unknown operation or distribution, negative or non-numeric delays."""
    with pytest.raises(ValueError):  # noqa: PT011
        LatencyConfig.parse(spec)


def test_latency_draws() -> None:
    """Draws respect their distribution; no config means zero delay."""
    rng = random.Random(1)
    assert all(0.1 <= Distribution("uniform", (0.1, 0.2)).draw(rng) <= 0.2 for _ in range(100))
    assert all(Distribution("normal", (0.0, 1.0)).draw(rng) >= 0 for _ in range(100))
    assert LatencyModel(LatencyConfig()).delay("sample") == 0.0
    model = LatencyModel(LatencyConfig.parse("sample=0.3"))
    assert model.delay("sample") == 0.3 and model.delay("optim_step") == 0.0
