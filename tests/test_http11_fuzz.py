"""Differential fuzzing of the built-in HTTP/1.1 parser against h11, byte for byte.

Hypothesis builds responses from parts (status lines, header fields, framing
headers, chunked bodies, obsolete line folding, bare-LF line ends), mutates
some of their bytes and cuts them into arbitrary reads. Each stream goes to
``Http11Transport`` and to h11 (httpx's parser, as strict as RFC 9112): where h11
reads a response, ours must read the same status, headers and body; where h11
refuses the bytes, ours must refuse them with an httpx transport error (which
the client turns into RemoteProtocolError), and never hang or raise anything else.
"""

from __future__ import annotations

import os
from typing import Final

import anyio
import anyio.abc
import h11
import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mint_async._http11 import (
    Http11Transport,
    _Connection,  # pyright: ignore[reportPrivateUsage]
)

pytestmark = pytest.mark.anyio

Parsed = tuple[int, list[tuple[bytes, bytes]], bytes]
"""A response as read: status, header fields (names lower-cased) and the body."""

_FRAMING: Final = (b"content-length", b"transfer-encoding")
"""Headers h11 normalises (merges, lower-cases); compared through the body they frame."""

FUZZ = settings(
    # MINT_FUZZ_EXAMPLES=20000 for a longer hunt than the suite's.
    max_examples=int(os.environ.get("MINT_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class ScriptedStream(anyio.abc.ByteStream):
    """A connection whose server side is a fixed list of reads, then EOF."""

    def __init__(self, reads: list[bytes]) -> None:
        self._reads = [r for r in reads if r]

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """The next scripted read (at most ``max_bytes``), or EndOfStream."""
        await anyio.lowlevel.checkpoint()
        if not self._reads:
            raise anyio.EndOfStream
        head, self._reads[0] = self._reads[0][:max_bytes], self._reads[0][max_bytes:]
        if not self._reads[0]:
            self._reads.pop(0)
        return head

    async def send(self, item: bytes) -> None:
        """The request goes nowhere."""
        await anyio.lowlevel.checkpoint()

    async def send_eof(self) -> None:
        """Nothing to close."""

    async def aclose(self) -> None:
        """Nothing to close."""


class ScriptedTransport(Http11Transport):
    """An Http11Transport whose one connection replays ``reads``."""

    def __init__(self, reads: list[bytes]) -> None:
        super().__init__()
        self._reads = reads

    async def _connect(self, key: tuple[str, str, int], timeout: float | None) -> _Connection:
        return _Connection(ScriptedStream(self._reads), key)


async def ours(reads: list[bytes]) -> Parsed | None:
    """What Http11Transport reads from these bytes (None: it refused them with an httpx error)."""
    request = httpx.Request(
        "GET",
        "http://fuzz.invalid/x",
        extensions={"timeout": {"connect": 5, "read": 5, "write": 5, "pool": 5}},
    )
    transport = ScriptedTransport(reads)
    try:
        with anyio.fail_after(10):  # a hang is a failure, not a slow test
            response = await transport.handle_async_request(request)
            body = await response.aread()
    except httpx.TransportError:
        return None
    finally:
        await transport.aclose()
    fields = [(k.lower(), v) for k, v in response.headers.raw if k.lower() not in _FRAMING]
    return response.status_code, fields, body


def theirs(reads: list[bytes]) -> Parsed | None:
    """What h11 reads from these bytes as the answer to a GET (None: it refused them)."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/x", headers=[("Host", "fuzz.invalid")]))
    conn.send(h11.EndOfMessage())
    status, fields, body = 0, list[tuple[bytes, bytes]](), b""
    for data in [*(r for r in reads if r), b""]:  # b"" tells h11 of the EOF
        conn.receive_data(data)
        while True:
            try:
                event = conn.next_event()
            except h11.ProtocolError:
                return None
            match event:
                case h11.Response():
                    status = event.status_code
                    fields = [
                        (k, v) for k, v in event.headers.raw_items() if k.lower() not in _FRAMING
                    ]
                    fields = [(k.lower(), v) for k, v in fields]
                case h11.Data():
                    body += bytes(event.data)
                case h11.EndOfMessage():
                    return status, fields, body
                case h11.InformationalResponse():
                    pass
                case _:  # NEED_DATA, PAUSED, ConnectionClosed
                    break
        if event is not h11.NEED_DATA:
            return None
    return None


# -- strategies ---------------------------------------------------------------------------

EOL = st.sampled_from([b"\r\n"] * 24 + [b"\n"] * 4 + [b"\r", b""])


RARELY = st.sampled_from([False] * 15 + [True])


def rarely(draw: st.DrawFn) -> bool:
    """Now and then True: the odd part is broken, most stay plausible."""
    return draw(RARELY)


VERSIONS = [b"HTTP/1.1 "] * 6 + [b"HTTP/1.0 ", b"HTTP/2.0 "]
BAD_VERSIONS = [b"HTTP/1.1  ", b"http/1.1 ", b"HTTP/11 ", b"HTTP/1.1\t", b"HTTP/1.x "]
CODES = [b"200", b"201", b"204", b"304", b"404", b"503", b"100", b"103"]
BAD_CODES = [b"101", b"099", b"2000", b"2OO", b"20", b"000"]
REASONS = [b" OK", b"", b" ", b" Not Found", b" \xff\xfe", b" a\tb"]
BAD_REASONS = [b" a\x00b", b"\tOK", b" a\rb"]
NAMES = [b"X-A", b"Server", b"ETag", b"Connection", b"x-b"]
BAD_NAMES = [b"Bad Name", b"", b"X\x00", b"X(", b"\xff"]
VALUES = [b"v", b"a  b", b"close", b"keep-alive, close", b"", b"\xff", b"1, 2"]
BAD_VALUES = [b"a\x00b", b"a\rb", b"\x0b"]


@st.composite
def status_line(draw: st.DrawFn) -> bytes:
    """A status line, now and then with a broken version, code or reason phrase."""
    if rarely(draw) and rarely(draw):
        return draw(st.binary(max_size=20))
    version = draw(st.sampled_from(BAD_VERSIONS if rarely(draw) else VERSIONS))
    code = draw(st.sampled_from(BAD_CODES if rarely(draw) else CODES))
    return version + code + draw(st.sampled_from(BAD_REASONS if rarely(draw) else REASONS))


@st.composite
def framing(draw: st.DrawFn, body: bytes) -> bytes:
    """Framing headers: usually the right ones, sometimes conflicting or malformed."""
    good = [b"Content-Length: %d\r\n" % len(body), b"Transfer-Encoding: chunked\r\n", b""]
    bad = [
        b"Content-Length: %d, %d\r\n" % (len(body), len(body)),
        b"Content-Length: %d\r\nContent-Length: %d\r\n" % (len(body), len(body) + 1),
        b"Content-Length: 3\r\n",
        b"Content-Length: -1\r\n",
        b"Content-Length: 0x10\r\n",
        b"Content-Length: 99999999999999999999999\r\n",
        b"Transfer-Encoding: Chunked\r\n",
        b"Transfer-Encoding: gzip\r\n",
        b"Transfer-Encoding: chunked, gzip\r\n",
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: 2\r\n",
    ]
    return draw(st.sampled_from(bad if rarely(draw) else good))


@st.composite
def fields(draw: st.DrawFn) -> bytes:
    """Header field lines, each with its own line end; sometimes a folded continuation."""
    out = b""
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from(BAD_NAMES if rarely(draw) else NAMES))
        sep = draw(st.sampled_from([b" :", b"", b"="] if rarely(draw) else [b":", b": ", b":\t"]))
        value = draw(st.sampled_from(BAD_VALUES if rarely(draw) else VALUES))
        out += name + sep + value + draw(EOL)
        if rarely(draw):
            out += draw(st.sampled_from([b" ", b"\t"])) + draw(st.sampled_from(VALUES)) + draw(EOL)
    return out


@st.composite
def chunked(draw: st.DrawFn) -> bytes:
    """A chunked body, sometimes with extensions, odd sizes, trailers or missing CRLFs."""
    out = b""
    for data in draw(st.lists(st.binary(min_size=1, max_size=12), max_size=3)):
        size = b"%x" % len(data)
        if rarely(draw):
            size = draw(
                st.sampled_from([b"%X" % len(data), b"zz", b"", b"0" + size, b" " + size, b"-1"])
            )
        ext = draw(st.sampled_from([b";a=b", b" ", b"\t", b";\r", b"\r"])) if rarely(draw) else b""
        end = draw(st.sampled_from([b"", b"\n", b"XX"])) if rarely(draw) else b"\r\n"
        out += size + ext + b"\r\n" + data + end
    trailers = draw(st.sampled_from([b"X-T: 1\r\n", b"bad trailer\r\n", b" fold\r\n", b"X-T: 1\n"]))
    return out + b"0\r\n" + (trailers if rarely(draw) else b"") + draw(EOL)


@st.composite
def responses(draw: st.DrawFn) -> bytes:
    """A response built from plausible and (now and then) broken parts."""
    body = draw(st.binary(max_size=24))
    head_framing = draw(framing(body))
    if b"chunked" in head_framing.lower():
        body = draw(chunked())
    interim = b""
    if rarely(draw):
        interim = draw(
            st.sampled_from([b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early\nLink: x\n\n"])
        )
    head = draw(status_line()) + draw(EOL) + head_framing + draw(fields()) + draw(EOL)
    return interim + head + body


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A response with a few bytes inserted, deleted or replaced."""
    data = bytearray(draw(responses()))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data)))
        byte = draw(st.sampled_from([b"\r", b"\n", b" ", b":", b"\x00", b"0", b"a", b"\xff"]))
        match draw(st.sampled_from(["insert", "delete", "replace"])):
            case "insert":
                data[at:at] = byte
            case "delete":
                del data[at : at + 1]
            case _:
                data[at : at + 1] = byte
    return bytes(data)


@st.composite
def reads(draw: st.DrawFn, stream: st.SearchStrategy[bytes]) -> list[bytes]:
    """The bytes cut into the reads a socket might return."""
    data = draw(stream)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=4)))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


@st.composite
def valid(draw: st.DrawFn) -> bytes:
    """A well-formed response, framed by Content-Length, chunks or the connection's end."""
    body = draw(st.binary(max_size=24))
    status = draw(st.sampled_from([200, 201, 404, 500, 503]))
    names = draw(st.lists(st.sampled_from(["X-A", "Server", "ETag", "Retry-After"]), max_size=3))
    head = f"HTTP/1.1 {status} Reason\r\n" + "".join(f"{n}: v{i}\r\n" for i, n in enumerate(names))
    match draw(st.sampled_from(["length", "chunked", "close"])):
        case "length":
            return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        case "chunked":
            encoded = (b"%x\r\n" % len(body) + body + b"\r\n") if body else b""
            return f"{head}Transfer-Encoding: chunked\r\n\r\n".encode() + encoded + b"0\r\n\r\n"
        case _:
            return head.encode() + b"\r\n" + body


# -- properties ---------------------------------------------------------------------------


@FUZZ
@given(reads(valid()))
async def test_well_formed_responses_read_as_h11_reads_them(split: list[bytes]) -> None:
    """Valid responses, however the socket cuts them, give h11's status, headers and body."""
    expected = theirs(split)
    assert expected is not None
    assert await ours(split) == expected


@FUZZ
@given(reads(st.one_of(responses(), mutated())))
async def test_accepts_what_h11_accepts_and_rejects_what_it_rejects(split: list[bytes]) -> None:
    """Broken and mutated responses: same reading as h11, or a typed refusal where h11 refuses."""
    expected = theirs(split)
    event("refused" if expected is None else "read")
    assert await ours(split) == expected


@FUZZ
@given(reads(st.binary(max_size=64)))
async def test_random_bytes_never_escape_as_untyped_errors(split: list[bytes]) -> None:
    """Arbitrary bytes are read as h11 reads them or refused with an httpx transport error."""
    assert await ours(split) == theirs(split)
