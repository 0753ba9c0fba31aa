"""Property: whatever body an authenticated client POSTs to any route, the answer is never 5xx.

Each example posts one body — random bytes, random or deeply nested JSON, or a
valid request with one part of it replaced, deleted or added to — to one route
of an in-process server (the ASGI app on asyncio or trio, in a portal thread),
then checks: the status is below 500; a request that was accepted and has
already failed failed with category ``user``, never ``server``; ``/healthz``
still answers. Every example gets a fresh session, model and sampler, so a
mutated ``seq_id`` leaves no gap for the next one to wait on.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mint_async.server import ServerConfig
from mint_async.testing import serve_in_process

from ._support import BASE_MODEL, Json, create_model_body, datum, fb_body, optim_body, sample_body

T = TypeVar("T")

EVENT_LOOPS = ["asyncio"]
if importlib.util.find_spec("trio") is not None and os.environ.get("MINT_TEST_NO_TRIO") != "1":
    EVENT_LOOPS.append("trio")

EXAMPLES = 30
"""Examples per route and event loop: the whole file runs in seconds."""

# Placeholders a template holds until the example's ids exist.
SESSION, MODEL, SAMPLER, CHECKPOINT = "$session", "$model", "$sampler", "$checkpoint"


def _reverse_kl() -> Json:
    tokens = [11, 42, 7, 300]
    return {
        "model_id": MODEL,
        "reference_model_path": BASE_MODEL,
        "data": [
            {
                "student_input": {"chunks": [{"tokens": tokens, "type": "encoded_text"}]},
                "reference_input": {"chunks": [{"tokens": [1, *tokens], "type": "encoded_text"}]},
                "target_tokens": {"data": [42, 7, 300, 5], "shape": [4], "dtype": "int64"},
                "weights": {"data": [1.0] * 4, "shape": None, "dtype": "float32"},
            }
        ],
        "temperature": 1.0,
        "seq_id": 1,
        "type": "mint_forward_backward_reverse_kl",
    }


def _sparse_fb() -> Json:
    body = fb_body(MODEL, 1)
    body["forward_backward_input"]["data"] = [
        {
            "model_input": {"chunks": [{"tokens": [3, 4], "type": "encoded_text"}]},
            "loss_fn_inputs": {
                "target_tokens": {
                    "data": [5, 7],
                    "dtype": "int64",
                    "shape": [2, 4],
                    "sparse_crow_indices": [0, 1, 2],
                    "sparse_col_indices": [0, 3],
                }
            },
        }
    ]
    return body


def _with_image(body: Json, where: str) -> Json:
    """``body`` with an image chunk (expected_tokens set) in its prompt or first datum."""
    image = {"data": "iVBORw==", "format": "png", "expected_tokens": 2, "type": "image"}
    if where == "prompt":
        body["prompt"]["chunks"].append(image)
        return body
    item = body[where]["data"][0]
    item["model_input"]["chunks"].append(image)
    for tensor in item["loss_fn_inputs"].values():  # two more rows for the image's tokens
        tensor["data"] += tensor["data"][-1:] * 2
        tensor["shape"] = [len(tensor["data"])]
    return body


TEMPLATES: dict[str, Json] = {
    "client/config": {"sdk_version": "0.22.0"},
    "client/dynamic_config": {},
    "auth/token": {},
    "create_session": {
        "tags": [],
        "user_metadata": {},
        "sdk_version": "0.22.0",
        "type": "create_session",
    },
    "session_heartbeat": {"session_id": SESSION, "type": "session_heartbeat"},
    "telemetry": {
        "events": [{"event": "x", "event_id": "e", "event_session_index": 0}],
        "platform": "linux",
        "sdk_version": "0.22.0",
        "session_id": SESSION,
    },
    "create_model": create_model_body(SESSION, 1),
    "get_info": {"model_id": MODEL, "type": "get_info"},
    "unload_model": {"model_id": MODEL, "type": "unload_model"},
    "forward": fb_body(MODEL, 1, key="forward_input"),
    "forward_backward": fb_body(MODEL, 1, data=[datum(), datum([1, 2, 3])]),
    "forward_backward#sparse": _sparse_fb(),
    "forward_backward#image": _with_image(fb_body(MODEL, 1), "forward_backward_input"),
    "optim_step": optim_body(MODEL, 1),
    "save_weights": {"model_id": MODEL, "path": "w", "seq_id": 1, "type": "save_weights"},
    "save_weights_for_sampler": {
        "model_id": MODEL,
        "path": "s",
        "seq_id": 1,
        "sampling_session_seq_id": 7,
        "type": "save_weights_for_sampler",
    },
    "load_weights": {
        "model_id": MODEL,
        "path": CHECKPOINT,
        "seq_id": 1,
        "optimizer": True,
        "type": "load_weights",
    },
    "mint/forward_backward_reverse_kl": _reverse_kl(),
    "mint/checkpoints/interpolate": {
        "source_paths": [CHECKPOINT, CHECKPOINT],
        "coefficients": [0.5, 0.5],
        "output_path": None,
        "output_checkpoint_type": "sampler",
        "type": "mint_interpolate_checkpoints",
    },
    "create_sampling_session": {
        "session_id": SESSION,
        "sampling_session_seq_id": 1,
        "base_model": BASE_MODEL,
        "type": "create_sampling_session",
    },
    "asample": sample_body(SAMPLER, 1, max_tokens=8, num_samples=2, seed=1),
    "asample#image": _with_image(sample_body(SAMPLER, 1, max_tokens=2), "prompt"),
    "retrieve_future": {"request_id": f"{MODEL}:0", "allow_metadata_only": False},
    "retrieve_futures": {
        "target": {"type": "sampling_session", "sampling_session_id": SAMPLER},
        "prev_cursor": 0,
        "retrieved_request_ids": [],
        "timeout": 0,
    },
    "cancel_future": {"request_id": f"{MODEL}:0"},
    "weights_info": {"tinker_path": CHECKPOINT},
    "copy_weights": {"source_path": CHECKPOINT, "destination_project_id": "p", "ttl_seconds": 3600},
    "copy_weights#session": {"source_path": CHECKPOINT, "session_id": SESSION, "model_seq_id": 7},
    "local/statistics/reset_peaks": {},
    f"sessions/{SESSION}/finish": {"reason": {"type": "user"}, "detail": "done"},
}

# -- strategies ------------------------------------------------------------------------------------

EDGE_INTS = st.sampled_from(
    [0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 2**64 - 1, 2**64, 10**30]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-1000, 1000)
    | EDGE_INTS
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from([SESSION, MODEL, SAMPLER, CHECKPOINT, "é" * 200, "%" * 200, "../x", ""])
)
NAMES = [
    SESSION,
    MODEL,
    SAMPLER,
    CHECKPOINT,
    f"{MODEL}x",
    "tinker://x/weights/y",
    f"tinker://{MODEL}/weights/" + "é" * 200,
    "é" * 200,
    "%" * 200,
    "../../etc",
    "a/b",
    "",
    "\x00",
]
json_values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)


def _nested(depth: int) -> bytes:
    return ('{"a":' * depth + "1" + "}" * depth).encode()


raw_bodies = (
    st.binary(max_size=64)
    | st.integers(1, 3000).map(_nested)
    | st.integers(1, 3000).map(lambda depth: b"[" * depth + b"]" * depth)
    | st.just(b"")
    | st.just(b'{"a": NaN, "b": Infinity}')
)


def _paths(value: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every node's path in a JSON value (the root's is ``()``)."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():  # pyright: ignore[reportUnknownVariableType]
            yield from _paths(child, (*prefix, str(key)))  # pyright: ignore[reportUnknownArgumentType]
    elif isinstance(value, list):
        for index, child in enumerate(value):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
            yield from _paths(child, (*prefix, index))


@st.composite
def _edited(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with one node, chosen uniformly, deleted or replaced by a hostile value."""
    copy = json.loads(json.dumps(value))
    paths = list(_paths(copy))[1:]
    if not paths:
        return draw(json_values)
    path = draw(st.sampled_from(paths))
    parent: Any = copy
    for step in path[:-1]:
        parent = parent[step]
    old = parent[path[-1]]
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(_like(old) | json_values)
    return copy


@st.composite
def _mutated(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with one node replaced, deleted, or (in an object) a key added."""
    if isinstance(value, dict) and value and draw(st.booleans()):
        obj: dict[str, Any] = dict(value)  # pyright: ignore[reportUnknownArgumentType]
        key = draw(st.sampled_from(sorted(obj)))
        action = draw(st.sampled_from(["descend", "descend", "delete", "add"]))
        if action == "delete":
            del obj[key]
        elif action == "add":
            obj[draw(st.text(max_size=8))] = draw(json_values)
        else:
            obj[key] = draw(_mutated(obj[key]))
        return obj
    if isinstance(value, list) and value and draw(st.booleans()):
        items: list[Any] = list(value)  # pyright: ignore[reportUnknownArgumentType]
        index = draw(st.integers(0, len(items) - 1))
        items[index] = draw(_mutated(items[index]))
        return items
    if draw(st.booleans()):
        return draw(_like(value))
    return draw(json_values)


def _like(value: Any) -> st.SearchStrategy[Any]:
    """A hostile value of the same JSON type (where bugs hide: ids, sizes, shapes, names)."""
    if isinstance(value, bool):
        return st.booleans() | st.none()
    if isinstance(value, int):
        return EDGE_INTS | st.integers(-(2**70), 2**70)
    if isinstance(value, float):
        return st.floats(allow_nan=False, allow_infinity=False) | EDGE_INTS
    if isinstance(value, str):
        return st.sampled_from(NAMES) | st.text(max_size=300)
    if isinstance(value, list):
        return st.lists(EDGE_INTS | st.integers(-5, 500), max_size=6)
    return json_values


@dataclass(frozen=True)
class Case:
    """One fuzzed request: a route and its body (JSON with placeholders, or raw bytes)."""

    route: str
    body: Any
    raw: bool = False
    protobuf: bool = False


@st.composite
def cases(draw: st.DrawFn, route: str) -> Case:
    """A body for ``route``: mostly a mutated valid one, sometimes garbage."""
    kind = draw(st.sampled_from(["mutated"] * 5 + ["raw", "json", "nested"]))
    if kind == "nested":
        depth = draw(st.integers(200, 3000))
        return Case(route, _nested(depth), raw=True)
    if kind == "raw":
        protobuf = route.startswith("forward") and draw(st.booleans())
        return Case(route, draw(raw_bodies), raw=True, protobuf=protobuf)
    if kind == "json":
        return Case(route, draw(json_values))
    template = TEMPLATES[route]
    return Case(route, draw(_mutated(template) | _edited(template)))


# -- the server under test -----------------------------------------------------------------------


@dataclass
class Ids:
    """The example's fresh ids, substituted for the placeholders."""

    session: str
    model: str
    sampler: str
    checkpoint: str

    def fill(self, value: Any) -> Any:
        """``value`` with every placeholder string replaced (also inside strings)."""
        if isinstance(value, str):
            for name, real in (
                (SESSION, self.session),
                (MODEL, self.model),
                (SAMPLER, self.sampler),
                (CHECKPOINT, self.checkpoint),
            ):
                value = value.replace(name, real)
            return value
        if isinstance(value, dict):
            return {self.fill(k): self.fill(v) for k, v in value.items()}  # pyright: ignore[reportUnknownVariableType]
        if isinstance(value, list):
            return [self.fill(v) for v in value]  # pyright: ignore[reportUnknownVariableType]
        return value


class Harness:
    """A server in a portal's event loop, and synchronous calls into it."""

    def __init__(self, portal: BlockingPortal, http: httpx.AsyncClient, checkpoint: str) -> None:
        self.portal = portal
        self.http = http
        self.checkpoint = checkpoint

    def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn()`` in the server's event loop."""
        return self.portal.call(fn)

    def post(self, path: str, body: object) -> httpx.Response:
        """POST JSON."""
        return self.call(functools.partial(self.http.post, f"/api/v1/{path}", json=body))

    def ok(self, path: str, body: object) -> Json:
        """POST, expecting 200; its JSON."""
        r = self.post(path, body)
        assert r.status_code == 200, (path, r.status_code, r.text)
        data: Json = r.json()
        return data

    def result(self, request_id: str) -> Json:
        """One poll of a future (the server holds polls briefly)."""
        return self.ok("retrieve_future", {"request_id": request_id})

    def fresh(self) -> Ids:
        """A new session with a loaded model and a sampler."""
        session = self.ok(
            "create_session",
            {"tags": [], "user_metadata": {}, "sdk_version": "0.22.0", "type": "create_session"},
        )["session_id"]
        promise = self.ok("create_model", create_model_body(session))
        model = self.result(promise["request_id"])["model_id"]
        sampler = self.ok(
            "create_sampling_session",
            {
                "session_id": session,
                "sampling_session_seq_id": 0,
                "base_model": BASE_MODEL,
                "type": "create_sampling_session",
            },
        )["sampling_session_id"]
        return Ids(session, model, sampler, self.checkpoint)

    def check(self, case: Case) -> None:
        """Send ``case``; assert no 5xx, no server-category failure, and a healthy server."""
        ids = self.fresh()
        route = ids.fill(case.route.split("#")[0])
        url = f"/api/v1/{route}"
        if case.raw:
            content_type = "application/x-protobuf" if case.protobuf else "application/json"
            request = functools.partial(
                self.http.post, url, content=case.body, headers={"content-type": content_type}
            )
        else:
            payload = json.dumps(ids.fill(case.body)).encode()
            request = functools.partial(
                self.http.post, url, content=payload, headers={"content-type": "application/json"}
            )
        r = self.call(request)
        assert r.status_code < 500, (case, r.status_code, r.text)
        if r.status_code == 200 and route not in ("retrieve_future", "retrieve_futures"):
            answer: object = r.json()
            rid = cast("Json", answer).get("request_id") if isinstance(answer, dict) else None
            if isinstance(rid, str):
                outcome = self.result(rid)
                assert outcome.get("category") != "server", (case, outcome)
        health = self.call(functools.partial(self.http.get, "/api/v1/healthz"))
        assert health.status_code == 200, (case, health.text)


@pytest.fixture(scope="module", params=EVENT_LOOPS)
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """One in-process server per event loop for the whole module (hypothesis runs many examples)."""
    config = ServerConfig(poll_hold=0.05, enable_retrieve_futures=True)
    with start_blocking_portal(request.param) as portal:
        server_cm = portal.wrap_async_context_manager(serve_in_process(config))
        server = server_cm.__enter__()
        try:
            with portal.wrap_async_context_manager(server.client()) as http:
                setup = Harness(portal, http, "")
                ids = setup.fresh()
                saved = setup.result(
                    setup.ok(
                        "save_weights_for_sampler",
                        {
                            "model_id": ids.model,
                            "path": "fuzz",
                            "seq_id": 1,
                            "type": "save_weights_for_sampler",
                        },
                    )["request_id"]
                )
                yield Harness(portal, http, saved["path"])
        finally:
            server_cm.__exit__(None, None, None)


@pytest.mark.parametrize("route", sorted(TEMPLATES))
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_route_bodies_never_5xx(harness: Harness, route: str, data: st.DataObject) -> None:
    """A fuzzed body to any POST route answers below 500, fails as ``user`` if at all; healthz answers."""
    harness.check(data.draw(cases(route)))
