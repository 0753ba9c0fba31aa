"""The lean HTTP/1.1 transport against byte-scripted servers: framing, keep-alive, retries, timeouts, TLS."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import anyio.streams.tls
import httpx
import pytest

from mint_async._config import ClientConfig, Limits
from mint_async._http11 import Http11Transport
from mint_async._http11_conn import read_scope
from mint_async._pools import open_pool

pytestmark = pytest.mark.anyio

Handler = Callable[[anyio.abc.SocketStream, int], Awaitable[None]]


async def read_request(stream: anyio.abc.ByteStream) -> bytes:
    """One request (head + Content-Length body) from a stream, or b'' at EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            data += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return b""
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += await stream.receive()
    return head + b"\r\n\r\n" + body


@asynccontextmanager
async def scripted(handler: Handler) -> AsyncGenerator[tuple[str, list[int]]]:
    """A TCP server calling ``handler(stream, connection_index)``; yields (base URL, accepted counter)."""
    accepted = [0]
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def serve(stream: anyio.abc.SocketStream) -> None:
        accepted[0] += 1
        async with stream:
            await handler(stream, accepted[0])

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        try:
            yield f"http://127.0.0.1:{port}", accepted
        finally:
            tg.cancel_scope.cancel()


def req(url: str, *, body: bytes = b"{}", read: float = 5.0) -> httpx.Request:
    return httpx.Request(
        "POST",
        url + "/x",
        content=body,
        extensions={"timeout": {"connect": 5, "read": read, "write": 5, "pool": 5}},
    )


async def test_content_length_and_keep_alive() -> None:
    """Fixed-length answers are read whole and the connection is reused."""

    async def handler(stream: anyio.abc.SocketStream, _: int) -> None:
        while request := await read_request(stream):
            assert request.startswith(b"POST /x HTTP/1.1\r\n") and request.endswith(b"\r\n\r\n{}")
            await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello")

    async with scripted(handler) as (url, accepted):
        pool = Http11Transport()
        for _ in range(3):
            resp = await pool.handle_async_request(req(url))
            assert resp.status_code == 200 and await resp.aread() == b"hello"
            assert resp.headers["x-a"] == "b"
        await pool.aclose()
    assert accepted[0] == 1


async def test_chunked_and_close_delimited_bodies() -> None:
    """Chunked bodies (with extensions and trailers) and close-delimited bodies stream correctly."""

    async def handler(stream: anyio.abc.SocketStream, n: int) -> None:
        await read_request(stream)
        if n == 1:
            await stream.send(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: y\r\n\r\n"
            )
            # the connection stays usable after a chunked answer
            await read_request(stream)
            await stream.send(b"HTTP/1.1 204 No Content\r\n\r\n")
        else:
            await stream.send(b"HTTP/1.0 200 OK\r\n\r\nuntil the end")

    async with scripted(handler) as (url, accepted):
        pool = Http11Transport()
        resp = await pool.handle_async_request(req(url))
        assert await resp.aread() == b"hello world"
        resp = await pool.handle_async_request(req(url))
        assert resp.status_code == 204 and await resp.aread() == b""
        assert accepted[0] == 1
        resp = await pool.handle_async_request(req(url))
        assert await resp.aread() == b"until the end"
        await pool.aclose()


async def test_large_bodies_stream_in_pieces() -> None:
    """A body beyond the inline size streams chunk by chunk and releases the connection at the end."""
    size = 9 * 1024 * 1024

    async def handler(stream: anyio.abc.SocketStream, _: int) -> None:
        while await read_request(stream):
            await stream.send(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
            for _ in range(size // (1024 * 1024)):
                await stream.send(b"z" * (1024 * 1024))

    async with scripted(handler) as (url, accepted):
        pool = Http11Transport()
        resp = await pool.handle_async_request(req(url))
        total = 0
        async for part in resp.aiter_raw():
            total += len(part)
        await resp.aclose()
        assert total == size
        resp = await pool.handle_async_request(req(url))
        assert len(await resp.aread()) == size
        assert accepted[0] == 1
        await pool.aclose()


async def test_a_consumer_that_stops_early_leaves_the_task_usable() -> None:
    """Raising out of a streamed body mid-way, then closing it, leaves no cancel scope behind."""

    async def handler(stream: anyio.abc.SocketStream, _: int) -> None:
        await read_request(stream)
        await stream.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(100):
            await stream.send(b"4\r\nzzzz\r\n")
            await anyio.sleep(0.01)

    async with scripted(handler) as (url, _accepted):
        pool = Http11Transport()
        resp = await pool.handle_async_request(req(url))
        stream = resp.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        chunks = stream.__aiter__()

        async def stop_at_the_first_chunk() -> None:
            with anyio.CancelScope():
                async for _ in chunks:
                    raise LookupError

        with pytest.raises(LookupError):
            await stop_at_the_first_chunk()
        await chunks.aclose()  # type: ignore[attr-defined]  # an async generator
        await resp.aclose()
        # The task's cancel scopes are intact: a timed wait still works and ends normally.
        with anyio.fail_after(5):
            await anyio.sleep(0.01)
        await pool.aclose()


async def test_stale_keep_alive_connection_is_retried_once() -> None:
    """If the server closed an idle connection, the request is resent on a new one."""

    async def handler(stream: anyio.abc.SocketStream, n: int) -> None:
        await read_request(stream)
        await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        if n == 1:
            return  # close after the first answer, although keep-alive was implied

        while await read_request(stream):
            await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    async with scripted(handler) as (url, accepted):
        pool = Http11Transport()
        assert await (await pool.handle_async_request(req(url))).aread() == b"ok"
        await anyio.sleep(0.05)
        assert await (await pool.handle_async_request(req(url))).aread() == b"ok"
        await pool.aclose()
    assert accepted[0] == 2


async def test_connection_close_header_is_honoured() -> None:
    """`Connection: close` answers are not pooled."""

    async def handler(stream: anyio.abc.SocketStream, _: int) -> None:
        await read_request(stream)
        await stream.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx")

    async with scripted(handler) as (url, accepted):
        pool = Http11Transport()
        for _ in range(2):
            assert await (await pool.handle_async_request(req(url))).aread() == b"x"
        await pool.aclose()
    assert accepted[0] == 2


async def test_read_timeout_and_protocol_errors() -> None:
    """A silent server raises ReadTimeout; garbage or a mid-body hang-up raise RemoteProtocolError."""

    async def handler(stream: anyio.abc.SocketStream, n: int) -> None:
        await read_request(stream)
        if n == 1:
            await anyio.sleep(10)
        elif n == 2:
            await stream.send(b"NOT HTTP\r\n\r\n")
        else:
            await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")

    async with scripted(handler) as (url, _):
        pool = Http11Transport()
        with pytest.raises(httpx.ReadTimeout):
            await pool.handle_async_request(req(url, read=0.1))
        with pytest.raises(httpx.RemoteProtocolError):
            await pool.handle_async_request(req(url))
        with pytest.raises(httpx.RemoteProtocolError):
            await pool.handle_async_request(req(url))
        await pool.aclose()


async def test_connect_error_and_cancellation_closes_the_connection() -> None:
    """Refused connections raise ConnectError; a cancelled request's connection is not reused."""
    pool = Http11Transport()
    with pytest.raises(httpx.ConnectError):
        await pool.handle_async_request(req("http://127.0.0.1:1"))

    closed = anyio.Event()

    async def handler(stream: anyio.abc.SocketStream, n: int) -> None:
        await read_request(stream)
        if n == 1:
            try:
                await stream.receive()  # waits until the client hangs up
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                closed.set()
            return
        await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\ny")

    async with scripted(handler) as (url, accepted):
        with anyio.move_on_after(0.1):
            await pool.handle_async_request(req(url))
        with anyio.fail_after(5):
            await closed.wait()
        assert await (await pool.handle_async_request(req(url))).aread() == b"y"
        assert accepted[0] == 2
        await pool.aclose()


async def test_interim_100_continue_is_skipped() -> None:
    """1xx answers before the real one are skipped."""

    async def handler(stream: anyio.abc.SocketStream, _: int) -> None:
        await read_request(stream)
        await stream.send(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
        )

    async with scripted(handler) as (url, _):
        pool = Http11Transport()
        assert (await pool.handle_async_request(req(url))).status_code == 201
        await pool.aclose()


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_tls(tmp_path: Path) -> None:
    """HTTPS works (SNI, certificate checked against the given context)."""
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    listener = anyio.streams.tls.TLSListener(
        await anyio.create_tcp_listener(local_host="127.0.0.1"),
        server_ctx,
        standard_compatible=False,
    )
    port = listener.listener.extra(anyio.abc.SocketAttribute.local_port)

    async def serve(stream: anyio.streams.tls.TLSStream) -> None:
        async with stream:
            await read_request(stream)
            await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret")

    client_ctx = ssl.create_default_context(cafile=str(cert))
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        pool = Http11Transport(ssl_context=client_ctx)
        resp = await pool.handle_async_request(req(f"https://localhost:{port}"))
        assert await resp.aread() == b"secret"
        await pool.aclose()
        untrusted = Http11Transport()
        with pytest.raises(httpx.ConnectError):
            await untrusted.handle_async_request(req(f"https://localhost:{port}"))
        tg.cancel_scope.cancel()


async def test_small_chunked_answers_are_read_inline_and_slow_ones_stream() -> None:
    """A chunked body that arrives with its head is read before returning; one still arriving streams."""

    async def handler(stream: anyio.abc.SocketStream, _: int) -> None:
        await read_request(stream)
        await stream.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        await stream.send(b"5\r\nhello\r\n0\r\n\r\n")
        await read_request(stream)
        await stream.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n")
        await anyio.sleep(0.2)
        await stream.send(b"2\r\ncd\r\n0\r\n\r\n")

    async with scripted(handler) as (url, accepted):
        pool = Http11Transport()
        resp = await pool.handle_async_request(req(url))
        assert isinstance(resp.stream, httpx.ByteStream)  # read before returning
        assert await resp.aread() == b"hello"
        resp = await pool.handle_async_request(req(url))
        assert not isinstance(resp.stream, httpx.ByteStream)  # returned before the body ended
        assert await resp.aread() == b"abcd"
        assert accepted[0] == 1  # both answers kept the connection
        await pool.aclose()


async def test_read_deadline_is_kept_under_a_later_enclosing_one() -> None:
    """The read timeout fires inside a longer enclosing deadline; a sooner one is not duplicated."""

    async def handler(stream: anyio.abc.SocketStream, _: int) -> None:
        await read_request(stream)
        await anyio.sleep(10)

    async with scripted(handler) as (url, _accepted):
        pool = Http11Transport()
        with anyio.fail_after(5), pytest.raises(httpx.ReadTimeout):
            await pool.handle_async_request(req(url, read=0.1))
        await pool.aclose()
    assert read_scope(None) is None
    assert read_scope(1.0) is not None
    with anyio.move_on_after(1.0):
        assert read_scope(2.0) is None  # the enclosing deadline ends sooner
        assert read_scope(0.5) is not None


def test_shared_pool_keeps_what_the_class_pools_would() -> None:
    """The one built-in pool keeps as many idle connections as the per-class httpx pools would."""
    limits = Limits(session=4, train=8, sample=600, retrieve=2000, keepalive=500)
    config = ClientConfig(api_key="tml-test", base_url="http://127.0.0.1:1", limits=limits)
    pool = open_pool(
        config, "sample", base_url="http://127.0.0.1:1/", user_transport=None, open_pools=()
    )
    assert isinstance(pool, Http11Transport)
    assert pool._max_idle == 4 + 8 + 500 + 500  # pyright: ignore[reportPrivateUsage]
