"""A minimal, fast fake Tinker endpoint for the client benchmark (not the bundled local server).

Raw ASGI on uvicorn with uvloop + httptools, bodies through orjson, one process.
It speaks just enough of the protocol (``/work/shared/protocol.md`` §4.1, §4.5,
§5, §9.3) for mint_async, the tinker SDKs (0.22 and 0.38) and a raw aiohttp
loop to sample:

* ``client/config``, ``client/dynamic_config``, ``create_session``,
  ``session_heartbeat``, ``telemetry``, ``create_sampling_session``,
  ``sessions/{id}/finish``, ``healthz``, ``get_server_capabilities``;
* ``asample`` answers a promise at once (``request_id`` and the
  ``sample_sequence_ids`` 0.38 asserts);
* the **first** ``retrieve_future`` of a request answers its result: protobuf
  (``application/x-protobuf``) when the poll's ``Accept`` offers it, JSON
  otherwise. Results are encoded once per ``(num_samples, max_tokens)`` and reused.

The point is a server that is not the bottleneck, so a client benchmark measures
the client: the handlers do a dict lookup, an ``orjson.loads`` and a send. The
server's CPU time and per-format counters are exposed at ``GET /_bench/stats``
so the benchmark can report the server's utilisation over each timed window.

Run: ``python benchmarks/_fast_server.py [--port 0]``; it prints
``FAST_SERVER_URL=http://127.0.0.1:<port>`` once it listens.
"""

from __future__ import annotations

import argparse
import itertools
import socket
import struct
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

READY_PREFIX = "FAST_SERVER_URL="
_JSON = [(b"content-type", b"application/json")]
_PROTO = [(b"content-type", b"application/x-protobuf")]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def sample_result_proto(num_samples: int, max_tokens: int) -> bytes:
    """``SampleResponse`` (§9.2) with ``num_samples`` sequences of ``max_tokens`` tokens, by hand."""
    tokens = struct.pack(f"<{max_tokens}i", *([7] * max_tokens))
    logprobs = struct.pack(f"<{max_tokens}f", *([-0.5] * max_tokens))
    # stop_reason = LENGTH (1): field 1, varint.
    sequence = b"\x08\x01" + _field(2, tokens) + _field(3, logprobs)
    return b"".join(_field(1, sequence) for _ in range(num_samples))


def sample_result_json(num_samples: int, max_tokens: int) -> bytes:
    """``SampleResponse`` in its JSON form (§8.6)."""
    sequence = {
        "stop_reason": "length",
        "tokens": [7] * max_tokens,
        "logprobs": [-0.5] * max_tokens,
    }
    return orjson.dumps({"sequences": [sequence] * num_samples, "type": "sample"})


class FastServer:
    """The ASGI app. State: pending request ids and a few counters."""

    def __init__(self, *, use_pyqwest: bool = True) -> None:
        self._ids = itertools.count()
        self._pending: dict[str, tuple[int, int]] = {}
        self._results: dict[tuple[int, int], tuple[bytes, bytes]] = {}
        self._config = orjson.dumps({"use_pyqwest_transport": use_pyqwest})
        self.counts: dict[str, int] = {}

    def _count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def _result(self, shape: tuple[int, int]) -> tuple[bytes, bytes]:
        cached = self._results.get(shape)
        if cached is None:
            cached = self._results[shape] = (
                sample_result_json(*shape),
                sample_result_proto(*shape),
            )
        return cached

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                while (await receive())["type"] != "lifespan.shutdown":
                    await send({"type": "lifespan.startup.complete"})
                await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        status, headers, payload = self._handle(scope, body)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _handle(self, scope: Scope, body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        path: str = scope["path"]
        self._count(path)
        if path == "/api/v1/retrieve_future":
            rid = orjson.loads(body)["request_id"]
            shape = self._pending.pop(rid, None)
            if shape is None:
                return 404, _JSON, orjson.dumps({"error": f"unknown request {rid}"})
            as_json, as_proto = self._result(shape)
            for name, value in scope["headers"]:
                if name == b"accept" and b"application/x-protobuf" in value:
                    self._count("result:proto")
                    return 200, _PROTO, as_proto
            self._count("result:json")
            return 200, _JSON, as_json
        if path == "/api/v1/asample":
            request = orjson.loads(body)
            n = int(request.get("num_samples", 1))
            max_tokens = int(request.get("sampling_params", {}).get("max_tokens") or 16)
            rid = f"r{next(self._ids)}"
            self._pending[rid] = (n, max_tokens)
            ids = [f"{rid}:{i}" for i in range(n)]
            return 200, _JSON, orjson.dumps({"request_id": rid, "sample_sequence_ids": ids})
        return self._admin(path, body)

    def _admin(self, path: str, body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        answer: dict[str, Any]
        match path:
            case "/_bench/stats":
                answer = {"cpu": time.process_time(), "counts": self.counts}
            case "/api/v1/client/config":
                return 200, _JSON, self._config
            case "/api/v1/client/dynamic_config" | "/api/v1/telemetry":
                answer = {"status": "accepted"} if path.endswith("telemetry") else {}
            case "/api/v1/create_session":
                answer = {"session_id": f"s{next(self._ids)}", "type": "create_session"}
            case "/api/v1/session_heartbeat":
                answer = {"type": "session_heartbeat"}
            case "/api/v1/create_sampling_session":
                session = orjson.loads(body)["session_id"]
                answer = {
                    "sampling_session_id": f"{session}:sample:{next(self._ids)}",
                    "type": "create_sampling_session",
                }
            case "/api/v1/healthz":
                answer = {"status": "ok"}
            case "/api/v1/get_server_capabilities":
                answer = {"supported_models": [{"model_name": "Qwen/Qwen3-0.6B"}]}
            case _ if path.startswith("/api/v1/sessions/") and path.endswith("/finish"):
                answer = {}
            case _:
                return 404, _JSON, orjson.dumps({"error": f"no route {path}"})
        return 200, _JSON, orjson.dumps(answer)


def main() -> None:
    """Bind, print the URL, serve until SIGTERM/SIGINT."""
    import uvicorn

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--sdk-transport", choices=["pyqwest", "httpx"], default="pyqwest")
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(4096)
    config = uvicorn.Config(
        FastServer(use_pyqwest=args.sdk_transport == "pyqwest"),
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        backlog=4096,
        timeout_keep_alive=60,
    )
    # Connections made before uvicorn accepts wait in the listen backlog.
    print(f"{READY_PREFIX}http://{args.host}:{sock.getsockname()[1]}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])
    sys.exit(0)


if __name__ == "__main__":
    main()
