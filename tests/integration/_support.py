"""Batches, wire modes and wire checks shared by the integration tests."""

from __future__ import annotations

from collections.abc import Generator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from mint_async import ServiceClient
from mint_async import types as t
from mint_async._config import WireMode
from mint_async.server import DEFAULT_API_KEY, ServerConfig, ServerStatistics, WireVersion
from mint_async.testing import LoopbackServer, serve_loopback

OTHER_KEY = "sk-other-user"
"""A second user's API key on :func:`serve_two_users`' server."""


@contextmanager
def serve_two_users() -> Generator[LoopbackServer]:
    """A loopback server accepting the default key and :data:`OTHER_KEY` (another user)."""
    with serve_loopback(ServerConfig(api_keys=(DEFAULT_API_KEY, OTHER_KEY), poll_hold=5.0)) as srv:
        yield srv


def service(server: LoopbackServer, api_key: str | None = None, **kwargs: Any) -> ServiceClient:
    """A client of ``server`` (its own key unless ``api_key`` is given)."""
    return ServiceClient(base_url=server.base_url, api_key=api_key or server.api_key, **kwargs)


def sft_datum(prompt: list[int], answer: list[int]) -> t.Datum:
    """A supervised datum: the prompt at weight 0, the answer at weight 1, shifted for teacher forcing."""
    tokens = prompt + answer
    weights = [0.0] * len(prompt) + [1.0] * len(answer)
    return t.Datum(
        model_input=t.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={"target_tokens": tokens[1:], "weights": weights[1:]},
    )


def rl_datum(n: int, advantage: float) -> t.Datum:
    """An RL datum of ``n`` sampled tokens with sampler logprobs and one advantage."""
    tokens = list(range(5, 5 + n + 1))
    return t.Datum(
        model_input=t.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={
            "target_tokens": tokens[1:],
            "logprobs": np.full(n, -1.5, dtype=np.float32),
            "advantages": np.full(n, advantage, dtype=np.float32),
        },
    )


@dataclass(frozen=True)
class Mode:
    """A server wire setting, the client wire to use with it, and the encodings to expect."""

    name: str
    proto: bool
    """The server's ``--proto`` (``proto_write_fwdbwd`` in client/config)."""
    zstd: bool
    """The server's ``--zstd`` (``proto_compress_fwdbwd`` in client/config)."""
    server_wire: WireVersion
    """The server's ``--wire``."""
    wire: WireMode
    """The client's ``wire=`` setting."""
    fwdbwd: str
    """How forward_backward bodies travel."""
    forward: str
    """How forward bodies travel (tinker 0.22 keeps them JSON, to ``/forward``)."""
    results: str
    """How forward/forward_backward/sample results travel."""

    def config(self, base: ServerConfig | None = None) -> ServerConfig:
        """``base`` (default settings if ``None``) with this mode's wire flags."""
        return replace(
            base or ServerConfig(),
            proto_write_fwdbwd=self.proto,
            proto_compress_fwdbwd=self.zstd,
            wire=self.server_wire,
        )

    def service(self, server: LoopbackServer) -> ServiceClient:
        """A client of ``server`` on this mode's client wire."""
        return ServiceClient(base_url=server.base_url, api_key=server.api_key, wire=self.wire)


JSON = Mode("json", False, False, "0.22", "auto", "json", "json", "json")
PROTO = Mode("proto", True, False, "0.22", "auto", "protobuf", "json", "protobuf")
PROTO_ZSTD = Mode("proto+zstd", True, True, "0.22", "auto", "protobuf+zstd", "json", "protobuf")
WIRE_038 = Mode("0.38", False, False, "0.38", "binary", "protobuf", "protobuf", "protobuf")

WIRES = (JSON, PROTO, PROTO_ZSTD)
"""The modes the whole integration suite runs in: the client in ``wire="auto"``, the server decides."""
MODES = (*WIRES, WIRE_038)
"""Every mode, the 0.38 wire (protobuf required, client ``wire="binary"``) included."""


def _delta(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    return {k: n - before.get(k, 0) for k, n in after.items() if n > before.get(k, 0)}


def check_wire(
    server: LoopbackServer,
    mode: Mode,
    *,
    since: ServerStatistics | None = None,
    bodies: bool = True,
    results: bool = True,
) -> None:
    """The server saw bodies, and sent results, only in ``mode``'s encodings (since ``since``).

    ``bodies``/``results``: also require at least one forward_backward body /
    one result in that encoding (tests that send none, or get only errors, pass
    ``False``: they still check nothing travelled in another encoding).
    """
    stats = server.statistics()
    seen = _delta(stats.fwdbwd_bodies, since.fwdbwd_bodies if since else {})
    sent = _delta(stats.results_sent, since.results_sent if since else {})
    assert set(seen) <= {mode.fwdbwd, mode.forward}, seen
    assert set(sent) <= {mode.results}, sent
    if bodies:
        assert seen.get(mode.fwdbwd, 0) > 0, seen
    if results:
        assert sent.get(mode.results, 0) > 0, sent
