"""The built-in pool's direct path (no httpx objects) against the httpx path it replaces.

The transport sends through ``Http11Transport.send_raw`` with the bytes
``RequestBuilder.wire`` builds, and reads headers through ``RawHeaders``; a
plugged-in transport still gets ``RequestBuilder.api``'s ``httpx.Request`` and
answers with ``httpx.Headers``. These tests hold the two to the same bytes on
the wire and the same header lookups.
"""

from __future__ import annotations

from collections.abc import Mapping

import anyio
import anyio.abc
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mint_async._config import ClientConfig
from mint_async._http11 import DeadlinePassed, Http11Transport
from mint_async._http11_conn import (
    _DIRECT_IO,  # pyright: ignore[reportPrivateUsage]
    Connection,
    _duplicates,  # pyright: ignore[reportPrivateUsage]
)
from mint_async._request_builder import RequestBuilder
from mint_async._response_body import RawHeaders

pytestmark = pytest.mark.anyio

_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\nx-a: 2\r\n\r\n{}"


class RecordingStream(anyio.abc.ByteStream):
    """A connection that records what is sent and answers every request with ``_ANSWER``."""

    def __init__(self, sent: list[bytes]) -> None:
        self._sent = sent
        self._pending = b""

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """The canned answer to the last request."""
        await anyio.lowlevel.checkpoint()
        data, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
        if not data:
            raise anyio.EndOfStream
        return data

    async def send(self, item: bytes) -> None:
        """Record the request; the answer follows."""
        await anyio.lowlevel.checkpoint()
        self._sent.append(item)
        self._pending += _ANSWER

    async def send_eof(self) -> None:
        """Nothing to close."""

    async def aclose(self) -> None:
        """Nothing to close."""


class RecordingTransport(Http11Transport):
    """An Http11Transport whose connections record the requests' bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []

    async def _connect(self, key: tuple[str, str, int], timeout: float | None) -> Connection:
        return Connection(RecordingStream(self.sent), key)


CASES: list[tuple[str, str, bytes | None, dict[str, str] | None]] = [
    ("POST", "api/v1/asample", b'{"a": 1}', {"X-Idempotency-Key": "k-1"}),
    ("POST", "api/v1/retrieve_future", b"{}", {"Accept": "application/x-protobuf"}),
    ("POST", "api/v1/empty", None, None),
    ("GET", "api/v1/models?limit=2&after=x%20y", None, {"accept": "text/plain"}),
    ("post", "api/v1/lower", b"x", None),
    ("DELETE", "api/v1/thing/1", None, None),
]


@pytest.mark.parametrize(("method", "path", "body", "headers"), CASES)
async def test_wire_bytes_equal_the_httpx_requests(
    method: str, path: str, body: bytes | None, headers: dict[str, str] | None
) -> None:
    """``wire`` + ``send_raw`` put on the wire exactly what ``api`` + ``handle_async_request`` do."""
    config = ClientConfig.resolve(
        base_url="http://127.0.0.1:9/base",
        api_key="tml-key",
        default_headers={"X-Extra": "yes"},
    )
    builder = RequestBuilder(config)
    pool = RecordingTransport()
    request = builder.api(
        method, path, body=body, headers=headers, key="tml-key", timeout=5.0, deadline_only=True
    )
    via_httpx = await pool.handle_async_request(request)
    await via_httpx.aread()
    url, payload = builder.wire(method, path, body=body, headers=headers, key="tml-key")
    status, raw, content = await pool.send_raw(method.upper(), url, payload)
    assert (status, content) == (200, b"{}")
    assert raw == via_httpx.headers.raw
    assert pool.sent[0] == pool.sent[1] == payload
    await pool.aclose()


def test_wire_refuses_what_httpx_refuses() -> None:
    """A header value httpx cannot encode (not ASCII) fails the same way before anything is sent."""
    config = ClientConfig.resolve(base_url="http://127.0.0.1:9", api_key="tml-key")
    builder = RequestBuilder(config)
    bad = {"X-Name": "caf\u00e9"}
    with pytest.raises(UnicodeEncodeError):
        builder.api(
            "POST", "x", body=b"", headers=bad, key="tml-key", timeout=1, deadline_only=True
        )
    with pytest.raises(UnicodeEncodeError):
        builder.wire("POST", "x", body=b"", headers=bad, key="tml-key")


_NAMES = st.sampled_from([b"Content-Type", b"content-type", b"X-A", b"x-a", b"Retry-After", b"X-B"])
_VALUES = st.one_of(
    st.sampled_from([b"", b"1", b"application/json", b"a, b"]),
    st.binary(max_size=6),
)
_KEYS = st.sampled_from(["content-type", "Content-Type", "X-A", "x-b", "retry-after", "nope"])


@given(raw=st.lists(st.tuples(_NAMES, _VALUES), max_size=6), key=_KEYS)
def test_raw_headers_read_like_httpx_headers(raw: list[tuple[bytes, bytes]], key: str) -> None:
    """RawHeaders answers every lookup, iteration and length as httpx.Headers does."""
    ours: Mapping[str, str] = RawHeaders(raw)
    theirs = httpx.Headers(raw)
    assert ours.get(key) == theirs.get(key)
    assert ours.get(key, "default") == theirs.get(key, "default")
    assert (key in ours) == (key in theirs)
    if key in theirs:
        assert ours[key] == theirs[key]
    else:
        with pytest.raises(KeyError):
            ours[key]
    assert list(ours) == list(theirs)
    assert len(ours) == len(theirs)
    assert dict(ours) == dict(theirs)


async def test_a_request_larger_than_the_socket_buffer_is_sent_whole() -> None:
    """A body the socket does not take at once is finished through the stream, in order."""
    body = bytes(range(256)) * (16 * 1024 * 1024 // 256)  # far past any send buffer
    received: list[bytes] = []
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def serve(stream: anyio.abc.SocketStream) -> None:
        data = b""
        async with stream:
            while b"\r\n\r\n" not in data:
                data += await stream.receive()
            parts = [data.partition(b"\r\n\r\n")[2]]
            size = len(parts[0])
            while size < len(body):
                parts.append(await stream.receive())
                size += len(parts[-1])
            received.append(b"".join(parts))
            await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    config = ClientConfig.resolve(base_url=f"http://127.0.0.1:{port}", api_key="tml-key")
    builder = RequestBuilder(config)
    pool = Http11Transport()
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        url, payload = builder.wire("POST", "big", body=body, headers=None, key="tml-key")
        with anyio.fail_after(30):
            answer = await pool.send_raw("POST", url, payload)
        assert (answer.status, answer.body) == (200, b"ok")
        assert received == [body]
        await pool.aclose()
        tg.cancel_scope.cancel()


@pytest.mark.parametrize("socket_duplicate", [True, False])
@pytest.mark.parametrize("stall", ["head", "body"])
async def test_a_stalled_exchange_ends_at_its_deadline(
    stall: str, socket_duplicate: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """send_raw's deadline bounds every wait: a silent head, or a streamed body that stops.

    Through a socket duplicate and through the stream (TLS, or past the fd budget).
    """
    if not socket_duplicate:
        monkeypatch.setattr(_duplicates, "budget", 0)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def serve(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await stream.receive()
            if stall == "body":
                # Larger than the pool reads inline: the body streams, then stops.
                await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nxx")
            await anyio.sleep_forever()

    config = ClientConfig.resolve(base_url=f"http://127.0.0.1:{port}", api_key="tml-key")
    builder = RequestBuilder(config)
    pool = Http11Transport(max_inline=1000)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        url, payload = builder.wire("POST", "x", body=b"{}", headers=None, key="tml-key")
        started = anyio.current_time()

        async def exchange() -> None:
            answer = await pool.send_raw("POST", url, payload, deadline=started + 0.3)
            assert not isinstance(answer.body, bytes)
            async for _ in answer.body:
                pass

        with anyio.fail_after(10), pytest.raises(DeadlinePassed):
            await exchange()
        # asyncio runs a timer up to its clock resolution early: a millisecond of slack.
        assert 0.299 <= anyio.current_time() - started < 5
        await pool.aclose()
        tg.cancel_scope.cancel()


@pytest.mark.parametrize("budget_left", [True, False])
async def test_socket_duplicates_stay_within_their_fd_budget(
    budget_left: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past its fd budget a connection uses the stream; either way the count is given back."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def serve(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            while b"\r\n\r\n" not in await stream.receive():
                pass
            await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await anyio.sleep_forever()

    live = _duplicates.live
    monkeypatch.setattr(_duplicates, "budget", live + 10 if budget_left else live)
    config = ClientConfig.resolve(base_url=f"http://127.0.0.1:{port}", api_key="tml-key")
    builder = RequestBuilder(config)
    pool = Http11Transport()
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        url, payload = builder.wire("POST", "x", body=b"{}", headers=None, key="tml-key")
        with anyio.fail_after(10):
            answer = await pool.send_raw("POST", url, payload)
        assert (answer.status, answer.body) == (200, b"ok")
        # anyio < 4.16: every connection uses the stream.
        assert _duplicates.live == (live + 1 if budget_left and _DIRECT_IO else live)
        await pool.aclose()
        assert _duplicates.live == live
        tg.cancel_scope.cancel()
