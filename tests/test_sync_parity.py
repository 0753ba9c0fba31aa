"""The sync facade cannot drift: every public member of each async client has a blocking twin.

For each pair (async client, sync twin) the test compares the public names, whether
each is a property or a method, and each method's parameters (name, kind, default,
annotation). Return types are not compared: a twin returns blocking futures and
clients where its async original returns awaitables. Intentional differences are
listed below, each with its reason; the lists are checked too, so an entry that
no longer describes a difference fails as well.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import mint_async
from mint_async import sync

PAIRS: dict[str, tuple[type[Any], type[Any]]] = {
    "ServiceClient": (mint_async.ServiceClient, sync.ServiceClient),
    "TrainingClient": (mint_async.TrainingClient, sync.TrainingClient),
    "SamplingClient": (mint_async.SamplingClient, sync.SamplingClient),
    "RestClient": (mint_async.RestClient, sync.RestClient),
}

ASYNC_ONLY: dict[str, dict[str, str]] = {
    "ServiceClient": {
        "aclose": "async lifecycle; the twin closes with close() or `with`",
    },
    "TrainingClient": {
        "aclose": "closes an unpickled copy's connections; twins are not pickled",
        "pipeline": "pipelines run in the caller's task group: async only",
    },
    "SamplingClient": {
        "aclose": "closes an unpickled copy's connections; twins are not pickled",
        "pipeline": "pipelines run in the caller's task group: async only",
        "with_seq_namespace": "a namespace for pickled copies in workers; twins are not pickled",
        "build_request": "building block of pipelines and load generators (sample() in sync)",
        "request_id_of": "takes a build_request() request: async building block",
        "post_request": "building block of SampleFuture: async only",
        "submit": "sends a build_request() request: async building block",
        "from_sampler_handle": "opens a standalone async client (blocking: tinker_compat's)",
    },
    "RestClient": {},
}

SYNC_ONLY: dict[str, dict[str, str]] = {
    "ServiceClient": {
        "aio": "the async client underneath",
        "close": "the blocking spelling of aclose()",
        "portal": "the portal whose loop runs the async client",
    },
    "TrainingClient": {"aio": "the async client underneath"},
    "SamplingClient": {"aio": "the async client underneath"},
    "RestClient": {"aio": "the async client underneath"},
}

SIGNATURE_DIFFERS: dict[str, dict[str, str]] = {
    "ServiceClient": {
        "__init__": "the twin also takes backend= (the portal thread's event loop)",
    },
    "SamplingClient": {
        "sample": "as tinker's sync sample(): logprob flags may be positional",
    },
}


USER_CONSTRUCTED = {"ServiceClient"}
"""Classes users construct themselves, whose ``__init__`` is compared too (the others come
from factories: their constructors take internal objects, a context or a bridge)."""


def _public(cls: type[Any]) -> dict[str, Any]:
    """Public members (inherited ones too), looked up without binding; ``__init__`` if users call it."""
    names = [n for n in dir(cls) if not n.startswith("_")]
    if cls.__name__ in USER_CONSTRUCTED:
        names.append("__init__")
    return {n: inspect.getattr_static(cls, n) for n in names}


def _is_property(member: Any) -> bool:
    return isinstance(member, property)


def _params(member: Any) -> list[tuple[str, Any, Any, Any]]:
    """(name, kind, default, annotation) of each parameter after ``self``."""
    sig = inspect.signature(member)
    return [(p.name, p.kind, p.default, p.annotation) for p in list(sig.parameters.values())[1:]]


@pytest.mark.parametrize("name", list(PAIRS))
def test_every_async_member_has_a_twin(name: str) -> None:
    """Each public member of the async client exists on its sync twin (or is allow-listed async-only)."""
    aio, blocking = (_public(c) for c in PAIRS[name])
    missing = sorted(set(aio) - set(blocking) - set(ASYNC_ONLY[name]))
    assert not missing, f"sync.{name} lacks {missing}"
    stale = sorted(set(ASYNC_ONLY[name]) & set(blocking))
    assert not stale, f"sync.{name} has {stale} now: remove them from ASYNC_ONLY"
    gone = sorted(set(ASYNC_ONLY[name]) - set(aio))
    assert not gone, f"{name} has no {gone}: remove them from ASYNC_ONLY"


@pytest.mark.parametrize("name", list(PAIRS))
def test_every_twin_member_has_an_async_original(name: str) -> None:
    """The sync twin adds nothing the async client lacks, except the allow-listed helpers."""
    aio, blocking = (_public(c) for c in PAIRS[name])
    extra = sorted(set(blocking) - set(aio) - set(SYNC_ONLY[name]))
    assert not extra, f"sync.{name} has {extra} that {name} lacks"
    stale = sorted(set(SYNC_ONLY[name]) - set(blocking))
    assert not stale, f"sync.{name} has no {stale}: remove them from SYNC_ONLY"


@pytest.mark.parametrize("name", list(PAIRS))
def test_twins_have_the_same_signatures(name: str) -> None:
    """Shared members agree: property or method, and the same parameters (allow-listed exceptions differ)."""
    aio, blocking = (_public(c) for c in PAIRS[name])
    allowed = SIGNATURE_DIFFERS.get(name, {})
    for member in sorted(set(aio) & set(blocking)):
        a, b = aio[member], blocking[member]
        assert _is_property(a) == _is_property(b), f"{name}.{member}: property on one side only"
        if _is_property(a):
            continue
        if member in allowed:
            assert _params(a) != _params(b), (
                f"{name}.{member} agrees now: remove it from SIGNATURE_DIFFERS"
            )
            assert [p[0] for p in _params(a)] == [p[0] for p in _params(b) if p[0] != "backend"], (
                f"{name}.{member}: parameter names drifted"
            )
            continue
        assert _params(a) == _params(b), f"{name}.{member}: signatures differ"


def test_the_checker_sees_a_drift() -> None:
    """The comparison itself fails on a missing twin and on a changed default (it is not vacuous)."""

    class Async:
        async def op(self, x: int, y: int = 1) -> int:
            return x + y

        async def other(self) -> None:
            return None

    class Blocking:
        def op(self, x: int, y: int = 2) -> int:
            return x + y

    aio, blocking = _public(Async), _public(Blocking)
    assert set(aio) - set(blocking) == {"other"}
    assert _params(aio["op"]) != _params(blocking["op"])
