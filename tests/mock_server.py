"""A scriptable fake server on ``httpx.MockTransport`` for unit tests of the client.

Routes map an endpoint (path without ``/api/v1/``) to either a handler
function or a list of scripted answers consumed in order (the last one
repeats). An answer is an ``httpx.Response``, a JSON-able object (200), or an
exception instance to raise (e.g. ``httpx.ConnectError``).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from mint_async import ClientConfig, ServiceClient, Timeouts

Answer = httpx.Response | BaseException | dict[str, Any] | list[Any]
Handler = Callable[[httpx.Request], Answer | Awaitable[Answer]]

API_KEY = "sk-test-secret-key-123"


def json_response(
    status: int, body: object, headers: dict[str, str] | None = None
) -> httpx.Response:
    """A JSON response with an explicit Content-Length."""
    return httpx.Response(
        status,
        content=orjson.dumps(body),
        headers={"content-type": "application/json", **(headers or {})},
    )


@dataclass
class MockServer:
    """Records requests and answers them from scripts."""

    routes: dict[str, Handler | list[Answer]] = field(
        default_factory=dict[str, "Handler | list[Answer]"]
    )
    requests: list[httpx.Request] = field(default_factory=list[httpx.Request])

    def __post_init__(self) -> None:
        self.routes.setdefault("client/config", [{}])
        self.routes.setdefault("create_session", [{"session_id": "sess1"}])
        self.routes.setdefault("session_heartbeat", [{}])

    def script(self, path: str, *answers: Answer) -> None:
        """Answer ``path`` with these, in order (the last repeats)."""
        self.routes[path] = list(answers)

    def calls(self, path: str) -> list[httpx.Request]:
        """The requests made to ``path``."""
        return [r for r in self.requests if r.url.path.endswith("/api/v1/" + path)]

    def bodies(self, path: str) -> list[Any]:
        """Decoded JSON bodies of the requests made to ``path``."""
        return [orjson.loads(r.content) for r in self.calls(path)]

    async def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request (handlers may be sync or async)."""
        self.requests.append(request)
        path = request.url.path.split("/api/v1/", 1)[-1]
        route = self.routes.get(path)
        if route is None:
            return json_response(404, {"detail": f"no route {path}"})
        if callable(route):
            answer = route(request)
            if inspect.isawaitable(answer):
                answer = await answer
        else:
            answer = route.pop(0) if len(route) > 1 else route[0]
        if isinstance(answer, BaseException):
            raise type(answer)(
                *answer.args
            )  # a fresh exception each time, as a real transport raises
        if isinstance(answer, httpx.Response):
            return answer
        return json_response(200, answer)

    @property
    def transport(self) -> httpx.MockTransport:
        """The transport to give a client."""
        return httpx.MockTransport(self.handle)

    def config(self, **overrides: Any) -> ClientConfig:
        """A client config pointing at this mock."""
        settings: dict[str, Any] = {
            "api_key": API_KEY,
            "base_url": "http://mock.invalid",
            "heartbeat_interval": 3600.0,
            "timeouts": Timeouts(retrieve=5.0),
        }
        settings.update(overrides)
        return ClientConfig(**settings)

    def service(self, **overrides: Any) -> ServiceClient:
        """A ServiceClient talking to this mock."""
        return ServiceClient(config=self.config(**overrides), transport=self.transport)
