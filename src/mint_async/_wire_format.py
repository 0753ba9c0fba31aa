"""The wire format (JSON or protobuf, protocol §9) of forward_backward bodies and results.

In ``auto`` mode the client behaves as tinker 0.22 does: it always *offers*
protobuf results (``Accept: application/x-protobuf, application/json``) and
sends forward_backward bodies as protobuf only when the server's
``client/config`` says ``proto_write_fwdbwd`` (zstd-compressed with
``proto_compress_fwdbwd``). A server that refuses a JSON body with 415 switches
the client to protobuf for good. ``binary`` mode always uses protobuf (servers
on the tinker 0.25+ wire, where ``forward`` is ``forward_backward`` with
``forward_only``); ``json`` never does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from . import _binary, _codec
from . import types as t
from ._config import WireMode
from ._exceptions import InvalidInputError

__all__ = ["WireFormat", "FormatPlan"]

T = TypeVar("T")

UNSUPPORTED_MEDIA_TYPE: Final = 415


@dataclass(frozen=True, slots=True, kw_only=True)
class FormatPlan:
    """How the next forward_backward travels."""

    send_binary: bool
    compress: bool
    accept_binary: bool
    forward_via_fwdbwd: bool
    """Send ``forward`` to ``forward_backward`` with ``forward_only`` (binary-only servers)."""
    fallback_to_json: bool
    """Whether a body protobuf cannot carry (image pointers) may go as JSON instead."""


class WireFormat:
    """The wire format of one client context (``auto`` may switch to binary once)."""

    def __init__(self, mode: WireMode) -> None:
        self.mode = mode
        self._forced_binary = False

    def plan(self, server: t.ClientConfigResponse) -> FormatPlan:
        """The plan for the current server config."""
        if self.mode == "json":
            return FormatPlan(
                send_binary=False,
                compress=False,
                accept_binary=False,
                forward_via_fwdbwd=False,
                fallback_to_json=False,
            )
        if self.mode == "binary" or self._forced_binary:
            return FormatPlan(
                send_binary=True,
                compress=server.proto_compress_fwdbwd,
                accept_binary=True,
                forward_via_fwdbwd=self.mode == "binary",
                fallback_to_json=False,
            )
        return FormatPlan(
            send_binary=server.proto_write_fwdbwd,
            compress=server.proto_write_fwdbwd and server.proto_compress_fwdbwd,
            accept_binary=True,
            forward_via_fwdbwd=False,
            fallback_to_json=True,
        )

    def refused_json(self) -> bool:
        """Record that the server refused a JSON body (415); True if it should go again as protobuf.

        True for every refusal in ``auto`` mode, not only the one that switches:
        a batch's chunks are all encoded before the first is sent, so the chunks
        after it (or racing it, with ``parallel_fwdbwd_chunks``) still carry JSON
        and meet the same 415 once the wire is already binary.
        """
        if self.mode != "auto":
            return False
        self._forced_binary = True
        return True

    def result_decoder(self, result_type: type[T], plan: FormatPlan) -> Callable[[bytes], T] | None:
        """The protobuf decoder for ``result_type``, if binary results are accepted for it."""
        if not plan.accept_binary or result_type not in _binary.PROTOBUF_RESULT_TYPES:
            return None
        return functools.partial(_binary.decode_result, result_type)


def encode_fwdbwd(
    request: t.ForwardBackwardRequest | t.ForwardRequest, plan: FormatPlan
) -> tuple[bytes, dict[str, str]]:
    """The body and extra headers of one forward / forward_backward request (thread-safe)."""
    if plan.send_binary:
        try:
            body = _binary.encode_forward_backward_request(request)
        except InvalidInputError:
            if not plan.fallback_to_json:
                raise
        else:
            headers = {"Content-Type": _binary.PROTOBUF_CONTENT_TYPE}
            if plan.compress:
                body = _binary.zstd_compress(body)
                headers["Content-Encoding"] = _binary.ZSTD_CONTENT_ENCODING
            return body, headers
    return _codec.encode_threadsafe(request), {}
