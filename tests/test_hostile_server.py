"""The client against hostile servers: drips, garbage, resets, floods, echoed keys, cross-host redirects.

Each server is a raw anyio TCP listener on 127.0.0.1 (no HTTP library on the
server side, so it can break the protocol any way it likes). It answers the
bootstrap endpoints (client/config, create_session, heartbeats) properly and
attacks the endpoint under test. Every test runs on asyncio and trio, and
for both ``http_client`` modes where the attack reaches the HTTP layer.

Deadlines are checked loosely (configured 1-2 s, asserted within 10 s), so the
tests hold on a loaded machine; a test that hangs is stopped by ``fail_after``.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import socket
import struct
import time
import traceback
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.abc
import orjson
import pytest
import sniffio

import mint_async
from mint_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ClientConfig,
    InternalServerError,
    Limits,
    MintError,
    RemoteProtocolError,
    ResponseTooLargeError,
    RetryPolicy,
    ServiceClient,
    StuckRequestError,
    Timeouts,
)
from mint_async import types as t
from mint_async._futures import PollingFuture, PollSettings
from mint_async._transport import Transport

pytestmark = pytest.mark.anyio

KEY: Final = "sk-hostile-test-key-0123456789"
JWT: Final = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
HANG: Final = 60.0
"""A test still running after this long hangs: fail it instead of waiting forever."""
DEADLINE_BOUND: Final = 10.0
"""Calls configured to end within ~2 s must end within this (generous on a busy machine)."""

Attack = Callable[[anyio.abc.SocketStream, bytes], Awaitable[None]]
HTTP_CLIENTS = pytest.mark.parametrize("http_client", ["builtin", "httpx"])
_ANYIO: Final = tuple(int(part) for part in importlib.metadata.version("anyio").split(".")[:2])


def answer(status: int, body: bytes = b"", *headers: str) -> bytes:
    """A well-formed response with a Content-Length."""
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


BOOTSTRAP: Final = {
    b"/api/v1/client/config": answer(200, b"{}"),
    b"/api/v1/create_session": answer(200, b'{"session_id": "s1"}'),
    b"/api/v1/session_heartbeat": answer(200, b"{}"),
}


async def read_request(stream: anyio.abc.ByteStream) -> bytes:
    """One request (head and Content-Length body) from a stream, or b'' once the client hung up."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive()
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += await stream.receive()
    return head + b"\r\n\r\n" + body


def path_of(request: bytes) -> bytes:
    """The path of a request (without the query)."""
    return request.split(b" ", 2)[1].split(b"?", 1)[0]


def header_of(request: bytes, name: bytes) -> bytes | None:
    """A request header's value."""
    for line in request.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


@asynccontextmanager
async def hostile(
    attack: Attack, bootstrap: dict[bytes, bytes] | None = None
) -> AsyncGenerator[tuple[str, list[bytes]]]:
    """A server answering the bootstrap endpoints properly and every other request with ``attack``.

    Yields its base URL and the list of requests it received (raw bytes).
    """
    routes = BOOTSTRAP if bootstrap is None else bootstrap
    seen: list[bytes] = []
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def connection(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            try:
                while True:
                    request = await read_request(stream)
                    seen.append(request)
                    canned = routes.get(path_of(request))
                    if canned is None:
                        await attack(stream, request)
                        return
                    await stream.send(canned)
            except (
                anyio.EndOfStream,
                anyio.BrokenResourceError,
                anyio.ClosedResourceError,
                OSError,
            ):
                pass  # the client hung up: what a hostile server sees when the client gives up

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, connection)
        try:
            yield f"http://127.0.0.1:{port}", seen
        finally:
            tg.cancel_scope.cancel()


def client(url: str, http_client: str, **settings: Any) -> ServiceClient:
    """A client with short deadlines: 2 s per attempt, retries for 2 s at most."""
    settings.setdefault("timeouts", Timeouts(connect=2.0, request=2.0))
    settings.setdefault("retry", RetryPolicy(max_retries=3, give_up_after=2.0))
    return ServiceClient(base_url=url, api_key=KEY, http_client=http_client, **settings)


def attacked(seen: list[bytes]) -> list[bytes]:
    """The requests that reached the attack (not the bootstrap)."""
    return [r for r in seen if path_of(r) not in {*BOOTSTRAP, b"/api/v1/auth/token"}]


async def capabilities(url: str, http_client: str, **settings: Any) -> None:
    """Call get_server_capabilities on a fresh client (the tests expect it to raise)."""
    async with client(url, http_client, **settings) as svc:
        await svc.get_server_capabilities()


# -- 10. deadlines that hold ---------------------------------------------------------------


async def drip_chunked(stream: anyio.abc.SocketStream, request: bytes) -> None:
    """A chunked body, one byte every 0.2 s, forever."""
    await stream.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    while True:
        await stream.send(b"1\r\n{\r\n")
        await anyio.sleep(0.2)


async def drip_large(stream: anyio.abc.SocketStream, request: bytes) -> None:
    """A 20 MB Content-Length body (streamed, not read inline), one byte every 0.2 s."""
    await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 20000000\r\n\r\n")
    while True:
        await stream.send(b" ")
        await anyio.sleep(0.2)


async def drip_close_delimited(stream: anyio.abc.SocketStream, request: bytes) -> None:
    """A body delimited by the connection's close, one byte every 0.2 s."""
    await stream.send(b"HTTP/1.1 200 OK\r\n\r\n")
    while True:
        await stream.send(b" ")
        await anyio.sleep(0.2)


async def drip_head(stream: anyio.abc.SocketStream, request: bytes) -> None:
    """A response head that never ends, one header byte every 0.2 s."""
    await stream.send(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    while True:
        await stream.send(b"a")
        await anyio.sleep(0.2)


@HTTP_CLIENTS
@pytest.mark.parametrize("attack", [drip_chunked, drip_large, drip_close_delimited, drip_head])
async def test_a_dripping_server_cannot_outlast_the_deadline(
    http_client: str, attack: Attack
) -> None:
    """A body or head dripped a byte at a time ends in APITimeoutError within attempt deadline + budget."""
    async with hostile(attack) as (url, seen):
        started = time.monotonic()
        with anyio.fail_after(HANG), pytest.raises(APITimeoutError) as caught:
            await capabilities(url, http_client)
        assert time.monotonic() - started < DEADLINE_BOUND
    assert 1 <= len(attacked(seen)) <= 4
    assert "did not complete within 2 s" in str(caught.value.__cause__)


@HTTP_CLIENTS
async def test_retries_stop_within_the_budget(http_client: str) -> None:
    """A server answering 503 with Retry-After: 60 still leaves the call within give_up_after + one attempt."""

    async def unavailable(stream: anyio.abc.SocketStream, request: bytes) -> None:
        await stream.send(answer(503, b"{}", "Retry-After: 60"))

    mint_async.set_testing(False)  # real backoff sleeps: the budget must cut them short
    try:
        async with hostile(unavailable) as (url, _seen):
            retry = RetryPolicy(max_retries=10, give_up_after=1.0)
            started = time.monotonic()
            with anyio.fail_after(HANG), pytest.raises(InternalServerError):
                await capabilities(url, http_client, retry=retry)
            assert time.monotonic() - started < DEADLINE_BOUND
    finally:
        mint_async.set_testing(True)


@HTTP_CLIENTS
async def test_a_dripped_poll_trips_the_stuck_watchdog(http_client: str) -> None:
    """A retrieve_future answer dripped forever ends in StuckRequestError within stuck_timeout."""
    async with hostile(drip_chunked) as (url, seen):
        transport = Transport(
            ClientConfig.resolve(base_url=url, api_key=KEY, http_client=http_client)
        )
        future = PollingFuture(
            transport,
            t.UntypedAPIFuture(request_id="r1"),
            t.OptimStepResponse,
            request_type="OptimStep",
            settings=PollSettings(retrieve_timeout=1.0, stuck_timeout=2.0),
        )
        started = time.monotonic()
        try:
            with anyio.fail_after(HANG), pytest.raises(StuckRequestError):
                await future
        finally:
            await transport.aclose()
        assert time.monotonic() - started < DEADLINE_BOUND
    assert attacked(seen)


# -- 11. only typed errors -----------------------------------------------------------------


@HTTP_CLIENTS
@pytest.mark.parametrize(
    "value", ["garbage-date", "Mon, 99 Zzz 2025 99:99:99 GMT", "", "-1", "nan"]
)
async def test_garbage_retry_after_is_ignored(http_client: str, value: str) -> None:
    """A 503 with an unparseable Retry-After is retried with normal backoff, then InternalServerError."""

    async def unavailable(stream: anyio.abc.SocketStream, request: bytes) -> None:
        await stream.send(answer(503, b'{"detail": "busy"}', f"Retry-After: {value}"))

    async with hostile(unavailable) as (url, seen):
        with anyio.fail_after(HANG), pytest.raises(InternalServerError):
            await capabilities(url, http_client)
    assert len(attacked(seen)) == 4  # the first try and max_retries=3 retries


BROKEN_ANSWERS: Final = {
    "chunk size zz": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "no CRLF after chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",
    "garbage": b"\x00\xff\xfe garbage \x01\r\n\r\n",
    "status line": b"HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\n{}",
    "header line": b"HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 2\r\n\r\n{}",
    "conflicting lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    "bad length": b"HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\n{}",
    "transfer-encoding": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n{}",
    "cut short": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{}",
    "bad gzip": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope",
}


@HTTP_CLIENTS
@pytest.mark.parametrize("name", list(BROKEN_ANSWERS))
async def test_broken_framing_is_a_typed_retried_error(http_client: str, name: str) -> None:
    """Malformed status lines, headers, chunk sizes or lengths raise RemoteProtocolError after retries."""

    async def broken(stream: anyio.abc.SocketStream, request: bytes) -> None:
        await stream.send(BROKEN_ANSWERS[name])

    async with hostile(broken) as (url, seen):
        with anyio.fail_after(HANG), pytest.raises(RemoteProtocolError) as caught:
            await capabilities(url, http_client)
    assert isinstance(caught.value, APIConnectionError)
    assert len(attacked(seen)) == 4  # retried like a connection error


@HTTP_CLIENTS
@pytest.mark.parametrize("framing", [b"Content-Length: 10\r\n", b""], ids=["length", "close"])
async def test_a_reset_connection_is_a_connection_error(http_client: str, framing: bytes) -> None:
    """A connection reset (RST) mid-answer is an APIConnectionError, even for a close-delimited body."""

    async def reset(stream: anyio.abc.SocketStream, request: bytes) -> None:
        await stream.send(b"HTTP/1.1 200 OK\r\n" + framing + b"\r\n{")
        sock = stream.extra(anyio.abc.SocketAttribute.raw_socket)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await stream.aclose()

    # anyio before 4.16 reports a reset on asyncio as a clean end of stream (found by
    # nox -s tests_lowest): a close-delimited body then looks complete and its decoding
    # fails instead. Still a MintError and never a result; the length framing is exact.
    blind = framing == b"" and sniffio.current_async_library() == "asyncio" and _ANYIO < (4, 16)
    async with hostile(reset) as (url, seen):
        started = time.monotonic()
        with anyio.fail_after(HANG), pytest.raises(MintError if blind else APIConnectionError):
            await capabilities(url, http_client)
        assert time.monotonic() - started < DEADLINE_BOUND
    if not blind:
        assert len(attacked(seen)) == 4


# -- 12. bounded responses -----------------------------------------------------------------


async def huge_declared(stream: anyio.abc.SocketStream, request: bytes) -> None:
    """Announces 300 MB and then sends nothing: the cap must fire on the header alone."""
    await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 300000000\r\n\r\n")
    await anyio.sleep_forever()


async def declared_over_cap(stream: anyio.abc.SocketStream, request: bytes) -> None:
    """Announces 2 MB (over the test's 1 MB cap, under the 8 MiB read inline) and sends nothing."""
    await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n")
    await anyio.sleep_forever()


async def gzip_bomb(stream: anyio.abc.SocketStream, request: bytes) -> None:
    """5 KB of gzip (never asked for) that inflates to 5 MB."""
    bomb = gzip.compress(b"\0" * 5_000_000)
    await stream.send(answer(200, bomb, "Content-Encoding: gzip"))


async def endless_chunks(stream: anyio.abc.SocketStream, request: bytes) -> None:
    """Chunk after 64 KiB chunk, forever."""
    await stream.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    piece = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
    while True:
        await stream.send(piece)


async def one_huge_chunk(stream: anyio.abc.SocketStream, request: bytes) -> None:
    """One chunk announced as 1 TB, its bytes flowing forever."""
    await stream.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFF\r\n")
    while True:
        await stream.send(b"x" * 0x10000)


async def endless_close_delimited(stream: anyio.abc.SocketStream, request: bytes) -> None:
    """A close-delimited body that never closes."""
    await stream.send(b"HTTP/1.1 200 OK\r\n\r\n")
    while True:
        await stream.send(b"x" * 0x10000)


@HTTP_CLIENTS
@pytest.mark.parametrize(
    "attack",
    [
        huge_declared,
        declared_over_cap,
        endless_chunks,
        one_huge_chunk,
        endless_close_delimited,
        gzip_bomb,
    ],
)
async def test_oversized_responses_are_refused(http_client: str, attack: Attack) -> None:
    """A body past Limits.max_response_bytes raises ResponseTooLargeError at once, not retried."""
    limits = Limits(max_response_bytes=1_000_000)
    async with hostile(attack) as (url, seen):
        with anyio.fail_after(HANG), pytest.raises(ResponseTooLargeError) as caught:
            await capabilities(url, http_client, limits=limits)
    assert "max_response_bytes=1000000" in str(caught.value)
    assert len(attacked(seen)) == 1


def test_max_response_bytes_is_validated() -> None:
    """The response cap is positive or None."""
    assert Limits().max_response_bytes == 256 * 1024 * 1024
    assert Limits(max_response_bytes=None).max_response_bytes is None
    with pytest.raises(mint_async.InvalidInputError):
        Limits(max_response_bytes=0)


# -- 13. keys stay secret --------------------------------------------------------------------


def everything_shown(exc: BaseException) -> str:
    """What a user could see of an exception: str, repr, body and the full chained traceback."""
    body = getattr(exc, "body", None)
    shown = [str(exc), repr(exc), repr(body), *traceback.format_exception(exc)]
    return "\n".join(shown)


async def echo_key_in_body(stream: anyio.abc.SocketStream, request: bytes) -> None:
    """A 400 whose JSON body quotes the credential the request carried."""
    key = (header_of(request, b"x-api-key") or b"").decode()
    body = orjson.dumps({"detail": f"invalid key {key}", "echo": {"x-api-key": key}})
    await stream.send(answer(400, body, "Content-Type: application/json"))


async def echo_key_in_header_line(stream: anyio.abc.SocketStream, request: bytes) -> None:
    """A malformed header line quoting the credential (parsers quote lines they reject)."""
    key = header_of(request, b"x-api-key") or b""
    await stream.send(b"HTTP/1.1 200 OK\r\nX-API-Key " + key + b"\r\nContent-Length: 2\r\n\r\n{}")


@HTTP_CLIENTS
@pytest.mark.parametrize("jwt", [False, True], ids=["key", "jwt"])
@pytest.mark.parametrize("attack", [echo_key_in_body, echo_key_in_header_line])
async def test_echoed_credentials_are_redacted(http_client: str, jwt: bool, attack: Attack) -> None:
    """A key (or the JWT exchanged for it) echoed by the server never reaches str, repr or traceback."""
    routes = dict(BOOTSTRAP)
    if jwt:
        routes[b"/api/v1/client/config"] = answer(200, b'{"pjwt_auth_enabled": true}')
        routes[b"/api/v1/auth/token"] = answer(200, orjson.dumps({"jwt": JWT}))
    async with hostile(attack, routes) as (url, seen):
        with anyio.fail_after(HANG), pytest.raises(MintError) as caught:
            await capabilities(url, http_client)
    sent = header_of(attacked(seen)[0], b"x-api-key")
    assert sent == (JWT if jwt else KEY).encode()  # the server did get (and echo) it
    shown = everything_shown(caught.value)
    assert KEY not in shown
    assert JWT not in shown
    if attack is echo_key_in_body or http_client == "httpx":  # h11 quotes the line it rejects
        assert "[REDACTED]" in shown


@HTTP_CLIENTS
async def test_a_redirect_to_another_host_is_not_followed(http_client: str) -> None:
    """An API answer redirecting elsewhere raises APIStatusError; the other host sees no request."""
    async with hostile(echo_key_in_body, {}) as (elsewhere, stolen):

        async def redirect(stream: anyio.abc.SocketStream, request: bytes) -> None:
            await stream.send(answer(307, b"", f"Location: {elsewhere}/steal"))

        async with hostile(redirect) as (url, _seen):
            with anyio.fail_after(HANG), pytest.raises(APIStatusError) as caught:
                await capabilities(url, http_client)
    assert caught.value.status_code == 307
    assert stolen == []


@HTTP_CLIENTS
async def test_a_checkpoint_download_never_sends_the_key_to_storage(
    http_client: str, tmp_path: Path
) -> None:
    """The archive's signed URL on another host is fetched without the API key."""
    archive = b"tar.gz bytes"

    async def storage(stream: anyio.abc.SocketStream, request: bytes) -> None:
        await stream.send(answer(200, archive))

    async with hostile(storage, {}) as (elsewhere, fetched):

        async def redirect(stream: anyio.abc.SocketStream, request: bytes) -> None:
            await stream.send(answer(302, b"", f"Location: {elsewhere}/bucket/ckpt.tar.gz?sig=1"))

        async with hostile(redirect) as (url, _seen), client(url, http_client) as svc:
            with anyio.fail_after(HANG):
                target = await svc.create_rest_client().download_checkpoint(
                    "tinker://run-1/weights/ckpt-1", tmp_path / "ckpt.tar.gz"
                )
    assert target.read_bytes() == archive
    assert len(fetched) == 1
    assert header_of(fetched[0], b"x-api-key") is None
    assert KEY.encode() not in fetched[0]


@HTTP_CLIENTS
async def test_a_dripped_checkpoint_download_is_abandoned(http_client: str, tmp_path: Path) -> None:
    """A download slower than Timeouts.download_min_rate over a window ends in DownloadError, file removed."""

    async def drip(stream: anyio.abc.SocketStream, request: bytes) -> None:
        await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
        while True:
            await stream.send(b"x")
            await anyio.sleep(0.05)

    async with hostile(drip, {}) as (elsewhere, _fetched):

        async def redirect(stream: anyio.abc.SocketStream, request: bytes) -> None:
            await stream.send(answer(302, b"", f"Location: {elsewhere}/bucket/ckpt.tar.gz?sig=1"))

        timeouts = Timeouts(connect=2.0, request=1.0, download_min_rate=1000.0)
        async with (
            hostile(redirect) as (url, _seen),
            client(url, http_client, timeouts=timeouts) as svc,
        ):
            started = time.monotonic()
            with anyio.fail_after(HANG), pytest.raises(mint_async.DownloadError, match="stalled"):
                await svc.create_rest_client().download_checkpoint(
                    "tinker://run-1/weights/ckpt-1", tmp_path / "ckpt.tar.gz"
                )
            assert time.monotonic() - started < DEADLINE_BOUND
    assert list(tmp_path.iterdir()) == []


def test_download_min_rate_is_validated() -> None:
    """A non-positive download floor is refused; None turns it off."""
    with pytest.raises(mint_async.InvalidInputError):
        Timeouts(download_min_rate=0)
    assert Timeouts(download_min_rate=None).download_min_rate is None
