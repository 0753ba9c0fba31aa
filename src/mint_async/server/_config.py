"""The local server's settings, in one frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from ._faults import FaultConfig
from ._latency import LatencyConfig
from ._limits import RequestLimits

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_API_KEYS",
    "DEFAULT_TINKER_API_KEY",
    "ServerConfig",
    "WireVersion",
]

DEFAULT_API_KEY: Final = "sk-mint-async-local"
"""The API key the local server accepts when none is configured (``sk-`` so ``import mint`` takes it)."""

DEFAULT_TINKER_API_KEY: Final = "tml-mint-async-local"
"""The same documented local credential spelled for tinker 0.38 (its SDK refuses keys
without the ``tml-`` prefix), so the official SDK and tinker-cookbook run unchanged."""

DEFAULT_API_KEYS: Final = (DEFAULT_API_KEY, DEFAULT_TINKER_API_KEY)
"""The keys accepted when none is configured. Both are the same user (one owner of runs
and checkpoints): the well-known local credential, in the two spellings the SDKs take."""

WireVersion = Literal["0.22", "0.38"]
"""Which tinker wire the server speaks: MinT's (0.22, JSON welcome) or the newer, protobuf-only one."""


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    """Every knob of the local reference server; the defaults suit interactive use.

    Example::

        config = ServerConfig(
            faults=FaultConfig.parse("submit_5xx=0.1,seed=1"),
            latency=LatencyConfig.parse("sample=0.01"),
            capacity=8,
        )
    """

    backend: str = "synthetic"
    """Registered backend name (``synthetic``; others via ``register_backend``)."""
    api_keys: tuple[str, ...] = DEFAULT_API_KEYS
    """Accepted API keys; each one is its own user (owner of its runs and checkpoints), but
    the two documented default keys (:data:`DEFAULT_API_KEYS`) are one user."""
    data_dir: Path | None = None
    """Where checkpoints live; ``None`` uses a temporary directory removed at shutdown."""
    seed: int = 0
    """Seeds the backend's base models and unseeded sampling."""
    model_names: tuple[str, ...] | None = None
    """Base models to serve (``None``: the backend's defaults)."""

    faults: FaultConfig = field(default_factory=FaultConfig)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    limits: RequestLimits = field(default_factory=RequestLimits)
    """How much work one request may ask for (400 beyond; ``mint-async serve --limits``)."""
    capacity: int | None = None
    """Max requests executing at once (``None``: unlimited); the rest queue (``paused_capacity``)."""
    max_queued_samples: int | None = None
    """``asample`` answers 429 while this many samples wait for capacity (``None``: never)."""

    poll_hold: float = 30.0
    """How long ``retrieve_future`` holds an unfinished future before answering try_again."""
    metadata_threshold: int = 1 << 20
    """Results larger than this many bytes are announced with ``complete_metadata`` first."""
    enable_retrieve_futures: bool = False
    """Serve tinker 0.38's batched ``retrieve_futures`` (and advertise it in client/config)."""
    result_retention: float = 60.0
    """Seconds a fully delivered result is kept for re-polls after a lost answer."""
    unretrieved_retention: float = 3600.0
    """Seconds an undelivered result is kept."""
    seq_gap_timeout: float | None = 300.0
    """Seconds a model waits for a missing seq_id before skipping it (``None``: forever)."""

    session_expiry: float = 120.0
    """A session without heartbeats for this long is finished and its work cancelled.

    Protocol Q4 (our choice): tinker heartbeats every 10 s and warns after 120 s
    without success, so 120 s; expiry fails the session's unanswered requests,
    cancels its running work, unloads its models and drops its samplers (its
    training runs and checkpoints stay)."""
    sweep_interval: float = 1.0
    """How often expiry (sessions, checkpoint TTLs, old results) is checked."""
    finished_session_retention: float = 300.0
    """Seconds a finished (or expired) session stays listed and answers 410, before it is purged."""

    pjwt_auth_enabled: bool = True
    """Advertise the JWT exchange in client/config (needed for ``sk-`` keys with ``import mint``)."""
    sdk_pyqwest_transport: bool = True
    """``use_pyqwest_transport`` in client/config. tinker 0.22's pyqwest transport follows
    redirects itself, which breaks its ``RestClient.get_checkpoint_archive_url`` (it expects
    the 302); ``False`` switches SDK clients to httpx's transport."""
    proto_write_fwdbwd: bool = False
    """``proto_write_fwdbwd`` in client/config: ask SDKs for protobuf forward_backward bodies."""
    proto_compress_fwdbwd: bool = False
    """``proto_compress_fwdbwd`` in client/config: ask for zstd on them (tinker 0.38, our client)."""
    proto_results: bool | None = None
    """Answer forward/forward_backward and sample results as protobuf to polls whose ``Accept``
    offers it. ``None``: when ``proto_write_fwdbwd`` is on or ``wire`` is ``"0.38"``, so a
    JSON server stays JSON both ways (tinker 0.22 offers protobuf on every such poll)."""
    wire: WireVersion = "0.22"
    """``"0.38"`` behaves as newer servers do: forward_backward bodies must be protobuf
    (JSON answers 415), results are protobuf. ``/forward`` (JSON) is still served."""
    jwt_ttl: float = 3600.0
    """Lifetime of issued JWTs in seconds."""
    jwt_secret: bytes | None = None
    """HS256 secret; ``None``: random, or persisted in ``data_dir`` when one is given."""

    default_max_tokens: int = 64
    """``max_tokens`` when a sample request omits it (protocol Q11)."""
    max_body_bytes: int = 64 << 20
    """Cap of the bodies that carry training data (forward, forward_backward, reverse KL),
    also of a zstd body once decompressed; larger ones answer 413 before being read.
    Clients split a batch into requests of about 5 MB by the SDK's estimate (10 bytes a
    token), about 15 MB of JSON; one long datum (128k tokens) is about 4 MB."""
    max_small_body_bytes: int = 8 << 20
    """Cap of every other request body (a sample's prompt: KBs, a 128k-token one under 1 MB,
    a few images more); 413 beyond. Requests that need no key may send 64 KiB at most."""
    head_timeout: float = 10.0
    """Seconds a client has to send a request's head (line and headers) once it started one,
    or once it connected; then the connection is closed (slowloris). Served by uvicorn only."""
    body_timeout: float = 60.0
    """Seconds a client has to send a request's whole body; then 408 and the connection closes."""
    max_connections: int | None = 4096
    """Concurrent connections (and requests) served; beyond it uvicorn answers 503, and new
    connections beyond twice this (or the file-descriptor limit) are closed at once.
    ``None``: unlimited. Served by uvicorn only."""
    public_url: str | None = None
    """Base URL that archive links point to (``None``: the address the client connected to,
    never the request's ``Host`` header)."""
    track_executions: bool = True
    """Count executions per request id (for exactly-once tests; memory grows with requests)."""

    def __post_init__(self) -> None:
        if not self.api_keys:
            msg = "api_keys must not be empty"
            raise ValueError(msg)
        for name in (
            "poll_hold",
            "result_retention",
            "unretrieved_retention",
            "session_expiry",
            "finished_session_retention",
        ):
            if getattr(self, name) < 0:
                msg = f"{name} must be >= 0"
                raise ValueError(msg)
        if self.sweep_interval <= 0 or self.jwt_ttl <= 0:
            msg = "sweep_interval and jwt_ttl must be > 0"
            raise ValueError(msg)
        if self.capacity is not None and self.capacity < 1:
            msg = "capacity must be >= 1 (or None for unlimited)"
            raise ValueError(msg)
        if self.max_queued_samples is not None and self.max_queued_samples < 0:
            msg = "max_queued_samples must be >= 0"
            raise ValueError(msg)
        if self.wire not in ("0.22", "0.38"):
            msg = f"wire must be '0.22' or '0.38', got {self.wire!r}"
            raise ValueError(msg)
        if self.head_timeout <= 0 or self.body_timeout <= 0:
            msg = "head_timeout and body_timeout must be > 0"
            raise ValueError(msg)
        if self.max_body_bytes < 0 or self.max_small_body_bytes < 0:
            msg = "max_body_bytes and max_small_body_bytes must be >= 0"
            raise ValueError(msg)
        if self.max_connections is not None and self.max_connections < 1:
            msg = "max_connections must be >= 1 (or None for unlimited)"
            raise ValueError(msg)
        if self.default_max_tokens < 0 or self.metadata_threshold < 0:
            msg = "default_max_tokens and metadata_threshold must be >= 0"
            raise ValueError(msg)

    @property
    def binary_results(self) -> bool:
        """Whether results that have a protobuf form are answered in it (see ``proto_results``)."""
        if self.proto_results is not None:
            return self.proto_results
        return self.proto_write_fwdbwd or self.wire == "0.38"

    @property
    def binary_bodies_only(self) -> bool:
        """Whether JSON forward_backward bodies are refused with 415 (the 0.38 wire)."""
        return self.wire == "0.38"
