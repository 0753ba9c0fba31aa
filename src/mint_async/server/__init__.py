"""The local reference server: the MinT / tinker 0.22 protocol (and 0.38's wire) over real HTTP.

An ASGI application (no web framework, anyio only) that implements what the
official SDKs need from a MinT server — sessions and JWT auth, training and
sampling with per-model seq_id ordering and exactly-once deduplication,
long-polled futures, checkpoints on disk and the REST API, JSON or protobuf
(``--proto``/``--zstd``, or tinker 0.38's protobuf-only ``--wire 0.38``) — on top of a
pluggable :mod:`backend <mint_async.server.backends>` (``synthetic`` by
default), with seeded fault injection and simulated latency.

Authentication: without configured keys (``ServerConfig.api_keys``,
``mint-async serve --api-key``) the server accepts the two documented default
keys, :data:`DEFAULT_API_KEY` ``sk-mint-async-local`` (mint_async and
``import mint``) and :data:`DEFAULT_TINKER_API_KEY` ``tml-mint-async-local``
(the official tinker 0.38 SDK and tinker-cookbook, which refuse keys without
the ``tml-`` prefix) — one local user under two spellings. Anyone can know
them: ``mint-async serve`` refuses a non-loopback ``--host`` with only these
keys unless ``--allow-default-key`` is given.

tinker 0.38 is served completely, on either wire: ``gspo`` and
``stable_reinforce`` (provenance spans, samples recorded with
``record_stability_info``), ``sample_sequence_ids``, per-token top-k sample
logprobs, target prompt logprobs, ``prompt_logprobs_last_n`` and
``prompt_alt_tokens_k`` — so the official 0.38 SDK and tinker-cookbook run
against a server started without flags (``--wire 0.38`` only adds the newer
servers' refusal of JSON forward_backward bodies).

Run it with ``mint-async serve``, or in tests with :mod:`mint_async.testing`::

    from mint_async.server import FaultConfig, ServerConfig, create_app

    app = create_app(ServerConfig(faults=FaultConfig.parse("submit_5xx=0.1")))
    # uvicorn.run(app) -- or, in-process: async with app.running(): ...
"""

from __future__ import annotations

from typing import Any

from ._app import MintServerApp as MintServerApp
from ._config import DEFAULT_API_KEY as DEFAULT_API_KEY
from ._config import DEFAULT_API_KEYS as DEFAULT_API_KEYS
from ._config import DEFAULT_TINKER_API_KEY as DEFAULT_TINKER_API_KEY
from ._config import ServerConfig as ServerConfig
from ._config import WireVersion as WireVersion
from ._faults import FaultConfig as FaultConfig
from ._latency import Distribution as Distribution
from ._latency import LatencyConfig as LatencyConfig
from ._limits import RequestLimits as RequestLimits
from ._stats import ServerStatistics as ServerStatistics
from .backends import Backend

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_API_KEYS",
    "DEFAULT_TINKER_API_KEY",
    "Distribution",
    "FaultConfig",
    "LatencyConfig",
    "MintServerApp",
    "RequestLimits",
    "ServerConfig",
    "ServerStatistics",
    "WireVersion",
    "create_app",
]


def create_app(
    config: ServerConfig | None = None, *, backend: Backend[Any, Any] | None = None
) -> MintServerApp:
    """A server application for ``config`` (defaults: synthetic backend, no faults).

    ``backend`` overrides ``config.backend`` with a ready instance.
    """
    return MintServerApp(config, backend=backend)
