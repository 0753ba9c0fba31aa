"""forward / forward_backward bodies of any wire decoded (protocol §9), slot rule included.

The bodies may be JSON or ``application/x-protobuf``, optionally
``Content-Encoding: zstd`` (decompressed with a bound: never more than
``max_body_bytes``). A protobuf body posted to forward_backward is a forward
when it says ``forward_only`` (tinker 0.38's forward); posted to forward, it
is a forward either way. On the 0.38 wire a JSON ``forward_backward`` body
answers 415 with a body saying so (and does not use up its seq_id, so the
client can resend it as protobuf).

Every body received is counted by its encoding (``ServerStatistics.fwdbwd_bodies``).
The result side of the wire (what goes out, negotiated per poll) is :mod:`._result_encoding`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, TypeVar

import numpy as np

from mint_async import _binary
from mint_async._exceptions import DecodeError
from mint_async._proto import tinker_public_pb2 as pb
from mint_async.types import (
    EncodedTextChunk,
    ForwardBackwardInput,
    ForwardBackwardRequest,
    ForwardRequest,
)

from ._http import HTTPError, Request
from ._result_encoding import media_types
from ._sequenced import decode_sequenced, fail_slot

if TYPE_CHECKING:
    from ._corelike import CoreLike

__all__ = ["decode_fwdbwd"]

_ZSTD: Final = _binary.ZSTD_CONTENT_ENCODING

_R = TypeVar("_R", ForwardRequest, ForwardBackwardRequest)


def _is_protobuf(req: Request) -> bool:
    content_type = req.header(b"content-type") or ""
    entries = media_types(content_type)
    return bool(entries) and entries[0][0] == _binary.PROTOBUF_CONTENT_TYPE


def _decompressed(core: CoreLike, req: Request) -> tuple[bytes, bool]:
    """The body without its ``Content-Encoding`` (zstd, bounded), and whether it had one."""
    encoding = (req.header(b"content-encoding") or "").strip().lower()
    if encoding in ("", "identity"):
        return req.body, False
    if encoding != _ZSTD:
        raise HTTPError(415, f"unsupported Content-Encoding {encoding!r} (this server takes zstd)")
    try:
        return _binary.zstd_decompress(req.body, max_size=core.config.max_body_bytes), True
    except DecodeError as exc:
        raise HTTPError(400, str(exc)) from None


def _slot_of_protobuf(body: bytes) -> tuple[object, object]:
    """``(model_id, seq_id)`` of a protobuf body that parses but does not decode."""
    try:
        msg = pb.ForwardBackwardRequest.FromString(body)
    except Exception:  # noqa: BLE001 - any parse failure: no slot to free
        return None, None
    return msg.model_id, msg.seq_id


def decode_fwdbwd(
    core: CoreLike, req: Request, json_type: type[_R]
) -> ForwardRequest | ForwardBackwardRequest:
    """Decode a forward (``json_type`` ForwardRequest) or forward_backward body of any wire.

    A protobuf body posted to forward_backward decides by its ``forward_only``
    flag which of the two it is; posted to forward, it is a forward.
    A body that does not decode answers 400 and still uses up its seq_id (as
    JSON bodies do, see ``decode_sequenced``); a 415 does not.
    """
    protobuf = _is_protobuf(req)
    if not protobuf and core.config.binary_bodies_only and json_type is ForwardBackwardRequest:
        raise HTTPError(
            415,
            "this server takes forward_backward bodies as application/x-protobuf only "
            "(the tinker 0.25+ wire); JSON is refused",
        )
    body, compressed = _decompressed(core, req)
    counts = core.state.fwdbwd_bodies
    if not protobuf:
        key = "json+zstd" if compressed else "json"
        counts[key] = counts.get(key, 0) + 1
        if compressed:
            req.body = body
        return decode_sequenced(core, req, json_type)
    key = "protobuf+zstd" if compressed else "protobuf"
    counts[key] = counts.get(key, 0) + 1
    try:
        decoded = _binary.decode_forward_backward_request(body)
    except DecodeError as exc:
        model_id, seq_id = _slot_of_protobuf(body)
        fail_slot(core, req, model_id, seq_id)
        raise HTTPError(400, str(exc)) from None
    if isinstance(decoded, ForwardBackwardRequest) and json_type is ForwardRequest:
        # Posted to /forward: a forward, whatever its forward_only flag says.
        decoded = ForwardRequest(
            forward_input=decoded.forward_backward_input,
            model_id=decoded.model_id,
            seq_id=decoded.seq_id,
        )
    _own_arrays(
        decoded.forward_input
        if isinstance(decoded, ForwardRequest)
        else decoded.forward_backward_input
    )
    return decoded


def _own_arrays(inp: ForwardBackwardInput) -> None:
    """Give backends writable arrays whatever the wire.

    The decoder's arrays are read-only views of the body; the JSON decoder's are
    ordinary arrays. Backends see one kind (torch, for one, warns about tensors
    over read-only memory); a copy costs little next to the compute.
    """
    for datum in inp.data:
        for chunk in datum.model_input.chunks:
            if isinstance(chunk, EncodedTextChunk) and _read_only(chunk.tokens):
                chunk.tokens = np.array(chunk.tokens)
        for td in datum.loss_fn_inputs.values():
            if _read_only(td.data):
                td.data = np.array(td.data)


def _read_only(value: object) -> bool:
    return isinstance(value, np.ndarray) and not value.flags.writeable
