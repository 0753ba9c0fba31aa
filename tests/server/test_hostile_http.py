"""Hostile clients (issue 12): body caps and auth before the body, slowloris, the connection cap,
session purging, Host-free archive links, other users' request ids, statistics, the default key."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Generator, MutableMapping
from contextlib import closing, contextmanager
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

from mint_async.server import DEFAULT_API_KEY, ServerConfig, create_app
from mint_async.server._cli import default_key_exposure
from mint_async.server._uvicorn import ThreadedServer
from mint_async.testing import LoopbackServer, serve_in_process, serve_loopback, serve_subprocess

from ._support import Api, fb_body, running

KEY = DEFAULT_API_KEY.encode()
BOUND = 30.0
"""Liveness bound of every socket wait (generous: a busy 2-core machine)."""


def address(base_url: str) -> tuple[str, int]:
    """``(host, port)`` of ``http://host:port``."""
    url = httpx.URL(base_url)
    assert url.port is not None
    return url.host, url.port


def connect(base_url: str) -> socket.socket:
    """A blocking socket to the server, reads bounded by BOUND."""
    sock = socket.create_connection(address(base_url), timeout=BOUND)
    sock.settimeout(BOUND)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (socket.timeout if it never does)."""
    data = bytearray()
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return bytes(data)
        if not chunk:
            return bytes(data)
        data += chunk


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer."""
    return int(answer.split(b" ", 2)[1])


def healthz(server: LoopbackServer) -> int:
    """``GET /api/v1/healthz`` on a fresh connection."""
    return httpx.get(f"{server.base_url}/api/v1/healthz", timeout=BOUND).status_code


@contextmanager
def sockets(base_url: str, count: int, first_bytes: bytes) -> Generator[list[socket.socket]]:
    """``count`` connections that each sent ``first_bytes`` (closed at the end)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = connect(base_url)
            if first_bytes:
                sock.sendall(first_bytes)
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


# -- item 2: authentication before the body, body caps, linear reads ------------------------


def test_unauthenticated_request_is_refused_before_its_body() -> None:
    """A keyless POST declaring 100 MB gets its 401 (and a close) without sending a byte of body."""
    with serve_loopback() as server, closing(connect(server.base_url)) as sock:
        sock.sendall(
            b"POST /api/v1/create_session HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n"
        )
        answer = read_until_closed(sock)
        assert status_of(answer) == 401
        assert b"connection: close" in answer.lower()


def test_healthz_with_a_huge_declared_body_is_413_at_once() -> None:
    """``POST /healthz`` (no key needed) declaring 100 MB answers 413 before reading it."""
    with serve_loopback() as server, closing(connect(server.base_url)) as sock:
        sock.sendall(
            b"POST /api/v1/healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n"
        )
        assert status_of(read_until_closed(sock)) == 413
        assert healthz(server) == 200


def test_chunked_body_is_counted_while_it_streams() -> None:
    """A chunked body (no Content-Length) answers 413 once it passes the route's cap."""
    with (
        serve_loopback(ServerConfig(max_small_body_bytes=1000)) as server,
        closing(connect(server.base_url)) as sock,
    ):
        sock.sendall(
            b"POST /api/v1/create_session HTTP/1.1\r\nHost: x\r\nX-API-Key: " + KEY + b"\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            b"320\r\n" + b" " * 800 + b"\r\n320\r\n" + b" " * 800 + b"\r\n"
        )
        answer = read_until_closed(sock)  # the terminating chunk is never sent
        assert status_of(answer) == 413
        assert b"1000 bytes" in answer


@pytest.mark.anyio
async def test_body_caps_are_per_route() -> None:
    """A sample request is capped at max_small_body_bytes, forward_backward at max_body_bytes."""
    config = ServerConfig(max_small_body_bytes=10_000, max_body_bytes=100_000)
    async with running(config) as (_, api):
        padding = " " * 20_000
        r = await api.http.post("/api/v1/asample", content=b"{}" + padding.encode())
        assert r.status_code == 413, r.text
        session = await api.session()
        mid = await api.model(session)
        body = fb_body(mid, 1)
        body["padding"] = padding  # unknown fields are ignored
        r = await api.post("forward_backward", body)
        assert r.status_code == 200, r.text
        body["padding"] = padding * 6
        assert (await api.post("forward_backward", body)).status_code == 413


@pytest.mark.anyio
async def test_many_small_chunks_are_read_in_linear_time() -> None:
    """A 48 MiB body in 49,152 chunks is read in linear time (``body += chunk``: a TiB of copies)."""
    chunk, count = b" " * 1024, 49152
    received = 0
    answers: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal received
        received += 1
        await anyio.lowlevel.checkpoint()  # as a server's receive would: cancellable
        return {"type": "http.request", "body": chunk, "more_body": received < count}

    async def send(message: MutableMapping[str, Any]) -> None:
        answers.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/forward_backward",
        "query_string": b"",
        "headers": [(b"x-api-key", KEY), (b"content-type", b"application/json")],
        "server": ("127.0.0.1", 8000),
    }
    async with serve_in_process() as server:
        with anyio.fail_after(120):  # a liveness bound: linear is well under a second
            await server.app(scope, receive, send)
    assert received == count
    assert answers[0]["status"] == 400  # read whole, then refused: blanks are no JSON


# -- item 3: slowloris and the connection cap (real sockets) --------------------------------


def test_unfinished_heads_are_closed_by_the_deadline() -> None:
    """Connections whose head never completes (or never starts) are closed; /healthz still answers."""
    config = ServerConfig(head_timeout=1.0)
    with serve_loopback(config) as server:
        partial = b"GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
        with (
            sockets(server.base_url, 100, partial) as slow,
            sockets(server.base_url, 20, b"") as silent,
        ):
            assert healthz(server) == 200
            started = time.monotonic()
            trickler = slow[0]
            closed = False
            while time.monotonic() - started < BOUND:  # a byte a while: never resets the clock
                try:
                    trickler.sendall(b"a")
                except OSError:
                    closed = True
                    break
                time.sleep(0.2)
            assert closed, "a trickled head was not closed"
            for sock in slow[1:] + silent:
                assert read_until_closed(sock) == b""
        assert healthz(server) == 200


def test_h11_parser_has_the_same_head_deadline() -> None:
    """Under uvicorn's h11 parser too, a head that never completes is closed by the deadline."""
    app = create_app(ServerConfig(head_timeout=1.0))
    server = ThreadedServer(app, http="h11")
    server.start()
    try:
        with sockets(server.base_url, 20, b"GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\n") as slow:
            for sock in slow:
                assert read_until_closed(sock) == b""
        r = httpx.get(f"{server.base_url}/api/v1/healthz", timeout=BOUND)
        assert r.status_code == 200
    finally:
        server.stop()


def test_unfinished_body_answers_408_and_closes() -> None:
    """A body that stops arriving answers 408 after body_timeout and the connection closes."""
    with (
        serve_loopback(ServerConfig(body_timeout=1.0)) as server,
        closing(connect(server.base_url)) as sock,
    ):
        sock.sendall(
            b"POST /api/v1/create_session HTTP/1.1\r\nHost: x\r\nX-API-Key: " + KEY + b"\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        answer = read_until_closed(sock)
        assert status_of(answer) == 408
        assert b"connection: close" in answer.lower()


def test_oversized_head_is_closed() -> None:
    """A head growing past 64 KiB closes the connection (httptools alone has no cap)."""
    with serve_loopback() as server, closing(connect(server.base_url)) as sock:
        sock.sendall(b"GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(1000):
                sock.sendall(b"X-Filler: " + b"a" * 1000 + b"\r\n")
            answer = read_until_closed(sock)
        except OSError:  # closed while we were still sending
            answer = b""
        assert b" 200 " not in answer
        assert healthz(server) == 200


def test_beyond_the_connection_cap_the_server_answers_503() -> None:
    """With max_connections held by idle heads, a new request gets 503; past twice it, a close."""
    cap = 8
    config = ServerConfig(max_connections=cap, head_timeout=BOUND * 4)
    with serve_loopback(config) as server:
        with sockets(server.base_url, cap, b"GET / HTTP/1.1\r\n"):
            with closing(connect(server.base_url)) as sock:
                sock.sendall(b"GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = read_until_closed(sock)
                assert status_of(answer) == 503
            with sockets(server.base_url, cap, b""), closing(connect(server.base_url)) as sock:
                # beyond twice the cap: closed at accept, unanswered
                assert read_until_closed(sock) == b""
        deadline = time.monotonic() + BOUND
        while healthz(server) != 200:  # the closed connections are released asynchronously
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_cli_server_closes_slow_heads_and_warns_about_the_default_key(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """``mint-async serve --host 0.0.0.0 --allow-default-key`` warns, and its head deadline holds."""
    args = ["--allow-default-key", "--head-timeout", "1"]
    with serve_subprocess(args, host="0.0.0.0") as server:
        port = address(server.base_url)[1]
        local = f"http://127.0.0.1:{port}"
        with sockets(local, 10, b"POST /api/v1/asample HTTP/1.1\r\n") as slow:
            for sock in slow:
                assert read_until_closed(sock) == b""
        assert httpx.get(f"{local}/api/v1/healthz", timeout=BOUND).status_code == 200
    assert "WARNING" in capfd.readouterr().err


# -- item 9: sessions, archive links, other users' ids, statistics, the default key ---------


@pytest.mark.anyio
async def test_finished_sessions_are_purged() -> None:
    """Expired sessions leave the listing (and heartbeats answer 404) after the retention."""
    config = ServerConfig(session_expiry=0.2, sweep_interval=0.05, finished_session_retention=0.3)
    async with running(config) as (server, api):
        ids = [await api.session() for _ in range(20)]
        with anyio.fail_after(BOUND):
            while (await api.get("sessions", params={"limit": 100})).json()["sessions"]:
                await anyio.sleep(0.05)
        r = await api.post("session_heartbeat", {"session_id": ids[0], "type": "session_heartbeat"})
        assert r.status_code == 404
        assert server.statistics().sessions == 0


async def _checkpoint(api: Api) -> str:
    """A saved checkpoint's REST path ``training_runs/<run>/checkpoints/weights/c``."""
    mid = await api.model(await api.session())
    await api.run(
        "save_weights", {"model_id": mid, "path": "c", "seq_id": 1, "type": "save_weights"}
    )
    return f"training_runs/{mid}/checkpoints/weights/c"


@pytest.mark.anyio
async def test_archive_link_ignores_the_host_header() -> None:
    """The archive redirect points at the server's bound address, whatever Host the client sent."""
    with serve_loopback() as server:
        async with server.client(timeout=60) as http:
            api = Api(http)
            path = await _checkpoint(api)
            r = await api.get(f"{path}/archive", headers={"Host": "evil.example:666"})
            assert r.status_code == 302
            location = r.headers["location"]
            assert location.startswith(f"{server.base_url}/api/v1/archive_downloads/"), location
            assert (await http.get(location)).status_code == 200


@pytest.mark.anyio
async def test_archive_link_uses_the_public_url() -> None:
    """With public_url configured, archive links start with it."""
    async with running(ServerConfig(public_url="https://mint.example/")) as (_, api):
        path = await _checkpoint(api)
        r = await api.get(f"{path}/archive", headers={"Host": "evil.example"})
        assert r.headers["location"].startswith("https://mint.example/api/v1/archive_downloads/")


@pytest.mark.anyio
async def test_another_users_request_id_answers_404() -> None:
    """retrieve_future / cancel_future on another key's request id answer 404, as for no such id."""
    async with running(ServerConfig(api_keys=("sk-a", "sk-b"))) as (server, api):
        mid = await api.model(await api.session())
        rid = await api.submit("forward_backward", fb_body(mid, 1))
        async with server.client(headers={"X-API-Key": "sk-b"}) as other:
            poll = await other.post("/api/v1/retrieve_future", json={"request_id": rid})
            assert poll.status_code == 404, poll.text
            cancel = await other.post("/api/v1/cancel_future", json={"request_id": rid})
            assert cancel.status_code == 404, cancel.text
            unknown = await other.post("/api/v1/retrieve_future", json={"request_id": f"{mid}:9"})
            assert unknown.status_code == 404
        await api.result(rid)  # the owner still gets it


@pytest.mark.anyio
async def test_statistics_are_for_the_first_key_only() -> None:
    """/local/statistics answers the first configured key, 403 to the others."""
    async with running(ServerConfig(api_keys=("sk-admin", "sk-user"))) as (server, api):
        assert (await api.get("local/statistics")).status_code == 200
        async with server.client(headers={"X-API-Key": "sk-user"}) as other:
            assert (await other.get("/api/v1/local/statistics")).status_code == 403
            reset = await other.post("/api/v1/local/statistics/reset_peaks")
            assert reset.status_code == 403


def test_default_key_on_a_public_interface_is_refused() -> None:
    """``serve --host 0.0.0.0`` with only the default key exits 2 with a clear message."""
    command = [sys.executable, "-m", "mint_async.server", "--host", "0.0.0.0", "--port", "0"]
    # A server that starts anyway is killed at the bound (and the test fails).
    done = subprocess.run(command, capture_output=True, text=True, timeout=BOUND * 2, check=False)
    assert done.returncode == 2, done.stderr
    assert "default API key" in done.stderr and "--allow-default-key" in done.stderr


def test_default_key_exposure_rules() -> None:
    """Loopback hosts and real keys are fine; other hosts with only the default key are not."""
    default = ServerConfig()
    assert default_key_exposure(default, "127.0.0.1") is None
    assert default_key_exposure(default, "::1") is None
    assert default_key_exposure(default, "localhost") is None
    assert default_key_exposure(default, "0.0.0.0") is not None
    assert default_key_exposure(default, "example.org") is not None
    assert default_key_exposure(ServerConfig(api_keys=("sk-secret",)), "0.0.0.0") is None
