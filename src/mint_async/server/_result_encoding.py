"""The binary wire's result side on the server (protocol §9): protobuf or JSON results out.

Results of forward/forward_backward and sample are encoded up front as
protobuf when the server prefers that (``ServerConfig.binary_results``), as
JSON otherwise. Each poll gets protobuf if its ``Accept`` offers it and the
server prefers it, or if it offers nothing else (e.g. tinker 0.38, which only
takes protobuf): negotiated per poll, see :func:`answer`. Every such result
delivered is counted by its encoding (``ServerStatistics.results_sent``).

The request side (forward/forward_backward bodies in JSON, protobuf, zstd) is
:mod:`._bodies`. This module sits below the core (the executor and the
completion logs use it), so it takes the server state, not the core.
"""

from __future__ import annotations

from typing import Final

from mint_async import _binary, _codec
from mint_async.types import ForwardBackwardOutput, SampleResponse

from ._futures import Encoded, FutureRecord, Phase
from ._http import Request
from ._state import ServerState

__all__ = [
    "PROTOBUF",
    "accepts",
    "answer",
    "count_result",
    "encode_result",
    "media_types",
]

PROTOBUF: Final = _binary.PROTOBUF_CONTENT_TYPE.encode()

_RESULT_TYPES: Final[dict[str, type[ForwardBackwardOutput | SampleResponse]]] = {
    "forward": ForwardBackwardOutput,
    "forward_backward": ForwardBackwardOutput,
    "sample": SampleResponse,
}
"""Operations whose results have a protobuf form, and their result types."""
_JSON_MEDIA: Final = frozenset({"application/json", "application/*", "*/*"})


def media_types(header: str) -> list[tuple[str, float]]:
    """``Accept`` / ``Content-Type`` entries as (media type, q)."""
    entries: list[tuple[str, float]] = []
    for item in header.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media:
            entries.append((media.lower(), q))
    return entries


def accepts(req: Request) -> tuple[bool, bool]:
    """``(json, protobuf)``: what the request's ``Accept`` takes (none given: JSON only)."""
    header = req.header(b"accept")
    if not header:
        return True, False
    json_ok = protobuf_ok = False
    for media, q in media_types(header):
        if q <= 0:
            continue
        if media == _binary.PROTOBUF_CONTENT_TYPE:
            protobuf_ok = True
        elif media in _JSON_MEDIA:
            json_ok = True
    return json_ok or not protobuf_ok, protobuf_ok


def answer(rec: FutureRecord, *, json_ok: bool, protobuf_ok: bool) -> tuple[bytes, bool]:
    """A finished record's body for a poll taking ``json_ok``/``protobuf_ok``; and whether protobuf.

    Protobuf goes out when the poll takes it and either the server prefers it
    (the form made up front) or the poll takes nothing else (made now from the
    result and kept: HTTP negotiation, so tinker 0.38 works with any server).
    """
    result_type = _RESULT_TYPES.get(rec.kind)
    if protobuf_ok and result_type is not None and rec.phase is Phase.DONE:
        if rec.binary is None and not json_ok:
            value = rec.value if rec.value is not None else _codec.decode(result_type, rec.payload)
            rec.binary = encode_result(value, binary=True).binary
        if rec.binary is not None:
            return rec.binary, True
    return rec.json_answer(), False


def encode_result(value: object, *, binary: bool) -> Encoded:
    """A result's encodings: protobuf (JSON made later if asked) when ``binary`` and it has one.

    Safe in worker threads.
    """
    if binary:
        if isinstance(value, ForwardBackwardOutput):
            return Encoded(None, _binary.encode_forward_backward_output(value), value)
        if isinstance(value, SampleResponse):
            return Encoded(None, _binary.encode_sample_response(value), value)
    return Encoded(_codec.encode_threadsafe(value))


def count_result(state: ServerState, kind: str, *, binary: bool) -> None:
    """Count a delivered forward/forward_backward/sample result by the encoding it went out in."""
    if kind not in _RESULT_TYPES:
        return
    counts = state.results_sent
    key = "protobuf" if binary else "json"
    counts[key] = counts.get(key, 0) + 1
