"""Client settings: arguments first, then the environment, then defaults.

Environment variables (MinT names win over the Tinker ones, as ``import mint`` does):

========================  ======================  ==============================
setting                   MinT                    Tinker
========================  ======================  ==============================
api_key                   ``MINT_API_KEY``        ``TINKER_API_KEY``
base_url                  ``MINT_BASE_URL``       ``TINKER_BASE_URL``
base_model                ``MINT_BASE_MODEL``     ``TINKER_BASE_MODEL``
lora_rank                 ``MINT_LORA_RANK``      ``TINKER_LORA_RANK``
project_id                ``MINT_PROJECT_ID``     ``TINKER_PROJECT_ID``
tags                      ``MINT_TAGS``           ``TINKER_TAGS``
========================  ======================  ==============================

Keys may be MinT ``sk-`` keys, Tinker ``tml-`` keys or JWTs (``eyJ…``). The key is
never part of a repr, a log line or an exception message.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from ._exceptions import InvalidInputError

__all__ = [
    "DEFAULT_BASE_MODEL",
    "DEFAULT_BASE_URL",
    "DEFAULT_LORA_RANK",
    "ClientConfig",
    "Limits",
    "RetryPolicy",
    "Timeouts",
    "TrafficClass",
    "WireMode",
]

DEFAULT_BASE_URL: Final = "https://mint.macaron.xin"
DEFAULT_BASE_MODEL: Final = "Qwen/Qwen3-0.6B"
DEFAULT_LORA_RANK: Final = 16

PROTOCOL_SDK_VERSION: Final = "0.22.0"
"""The tinker SDK version whose wire we speak; sent as ``sdk_version`` (servers gate features on it)."""

TrafficClass = Literal["session", "train", "sample", "retrieve"]
"""Requests are grouped so that, e.g., a thousand held long polls never starve submissions."""

WireMode = Literal["auto", "json", "binary"]
"""How forward_backward bodies and large results travel (protocol §9).

* ``auto`` — offer protobuf results (as tinker 0.22 does); send protobuf bodies when
  the server's ``client/config`` asks (``proto_write_fwdbwd``, zstd with
  ``proto_compress_fwdbwd``); switch to protobuf if a server refuses JSON (415).
* ``json`` — JSON only, both ways.
* ``binary`` — protobuf bodies and results always (servers on the tinker 0.25+ wire).
"""

_KEY_PREFIXES: Final = ("sk-", "tml-", "eyJ")


@dataclass(frozen=True, kw_only=True)
class Timeouts:
    """Seconds allowed per kind of HTTP request (protocol §6.1)."""

    connect: float = 5.0
    request: float = 60.0
    """Submissions and REST calls."""
    retrieve: float = 45.0
    """One ``retrieve_future`` long poll (servers hold ~30 s)."""
    heartbeat: float = 10.0
    download_min_rate: float | None = 1024.0
    """Bytes per second a checkpoint download must average over every ``request``-second
    window, or it is abandoned with DownloadError (``None``: no floor). A download has no
    total deadline (archives can be gigabytes); this stops a server that drips bytes from
    holding it forever, while the per-read ``request`` timeout covers one that sends nothing."""

    def __post_init__(self) -> None:
        if self.download_min_rate is not None and not self.download_min_rate > 0:
            msg = f"download_min_rate must be positive or None, got {self.download_min_rate}"
            raise InvalidInputError(msg)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How failed HTTP requests are retried (protocol §6).

    Retries apply to 408/409/429/5xx answers and transport errors, with
    exponential backoff ``min(initial * 2**n, max_delay)`` minus up to 25 %
    jitter, honouring ``Retry-After`` (0 < s <= 60) and ``x-should-retry``.
    """

    max_retries: int = 10
    initial_delay: float = 0.5
    max_delay: float = 10.0
    give_up_after: float = 300.0
    """Stop retrying one call after this many seconds in total."""
    billing_pause: float = 3600.0
    """How long 402 answers are waited out (in 5 s steps) before BillingError."""


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Connection limits per traffic class (one httpx connection pool each), and the response cap."""

    session: int = 20
    train: int = 64
    sample: int = 512
    retrieve: int = 2048
    """Every pending future holds one long poll; over HTTP/1.1 that is one connection each."""
    keepalive: int = 512
    max_response_bytes: int | None = 256 * 1024 * 1024
    """The largest response body read into memory (``None``: no cap); more raises ResponseTooLargeError.

    256 MiB is about four times the largest legitimate answer: a SampleResponse of
    64 sequences x 32k tokens with logprobs is ~60 MB of JSON (~30 bytes a token),
    a forward_backward result of 128 x 32k logprobs ~80 MB. Checkpoint downloads
    stream to disk and are not capped.
    """

    def __post_init__(self) -> None:
        if self.max_response_bytes is not None and self.max_response_bytes < 1:
            msg = f"max_response_bytes must be positive or None, got {self.max_response_bytes}"
            raise InvalidInputError(msg)

    def for_class(self, traffic: TrafficClass) -> int:
        """The connection cap of one traffic class."""
        value: int = getattr(self, traffic)
        return value


def _env_named(*names: str) -> tuple[str, str] | None:
    """The first of these variables that is set and not empty, with its name."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return name, value
    return None


def _env(*names: str) -> str | None:
    found = _env_named(*names)
    return found[1] if found is not None else None


@dataclass(frozen=True, kw_only=True)
class ClientConfig:
    """Everything a client needs to reach a server. Build with :meth:`resolve`.

    Example::

        cfg = ClientConfig.resolve(base_url="http://127.0.0.1:8000", api_key="sk-test")
    """

    api_key: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    base_model: str = DEFAULT_BASE_MODEL
    lora_rank: int = DEFAULT_LORA_RANK
    project_id: str | None = None
    tags: tuple[str, ...] = ()
    user_metadata: Mapping[str, str] = field(default_factory=dict[str, str])
    display_name: str | None = None
    """[tinker 0.38] A human-readable name of the session (not unique; display and search only)."""
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    limits: Limits = field(default_factory=Limits)
    http2: bool = False
    """Speak HTTP/2 (h2 over TLS, via httpx's transport and the ``h2`` package)."""
    http_client: Literal["builtin", "httpx"] = "builtin"
    """``builtin``: a lean HTTP/1.1 keep-alive pool on anyio (asyncio and trio; several times
    faster than httpx's own pool under concurrency). ``httpx``: httpx's transport (proxies, HTTP/2)."""
    wire: WireMode = "auto"
    """Binary (protobuf) or JSON wire for forward_backward and results; env ``MINT_WIRE``."""
    heartbeat_interval: float = 10.0
    stuck_timeout: float | None = 600.0
    """A future with no answer from the server for this long raises StuckRequestError."""
    default_headers: Mapping[str, str] = field(default_factory=dict[str, str])

    def __post_init__(self) -> None:
        if not self.api_key:
            msg = "no API key: pass api_key=... or set MINT_API_KEY (or TINKER_API_KEY)"
            raise InvalidInputError(msg)
        if not self.api_key.startswith(_KEY_PREFIXES):
            msg = "the API key must start with 'sk-' (MinT), 'tml-' (Tinker) or be a JWT"
            raise InvalidInputError(msg)
        if not self.base_url.startswith(("http://", "https://")):
            msg = f"base_url must be an http(s) URL, got {self.base_url!r}"
            raise InvalidInputError(msg)
        if self.http_client not in ("builtin", "httpx"):
            msg = f"http_client must be 'builtin' or 'httpx', got {self.http_client!r}"
            raise InvalidInputError(msg)
        if self.wire not in ("auto", "json", "binary"):
            msg = f"wire must be 'auto', 'json' or 'binary', got {self.wire!r}"
            raise InvalidInputError(msg)
        if not 1 <= self.lora_rank <= 64:
            msg = f"lora_rank must be in 1..64, got {self.lora_rank}"
            raise InvalidInputError(msg)

    @classmethod
    def resolve(
        cls,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        base_model: str | None = None,
        lora_rank: int | None = None,
        project_id: str | None = None,
        **overrides: object,
    ) -> ClientConfig:
        """Arguments, then ``MINT_*``, then ``TINKER_*`` environment variables, then defaults."""
        key = api_key or _env("MINT_API_KEY", "TINKER_API_KEY") or ""
        url = base_url or _env("MINT_BASE_URL", "TINKER_BASE_URL") or DEFAULT_BASE_URL
        model = base_model or _env("MINT_BASE_MODEL", "TINKER_BASE_MODEL") or DEFAULT_BASE_MODEL
        rank = lora_rank
        rank_env = _env_named("MINT_LORA_RANK", "TINKER_LORA_RANK") if rank is None else None
        if rank_env is not None:
            try:
                rank = int(rank_env[1])
            except ValueError:
                msg = f"{rank_env[0]} must be an integer, got {rank_env[1]!r}"
                raise InvalidInputError(msg) from None
        tags_text = _env("MINT_TAGS", "TINKER_TAGS")
        tags = (
            tuple(sorted({t.strip() for t in tags_text.split(",") if t.strip()}))
            if tags_text
            else ()
        )
        wire = _env("MINT_WIRE")
        kwargs: dict[str, object] = {
            "api_key": key,
            "base_url": url.rstrip("/"),
            "base_model": model,
            "lora_rank": rank if rank is not None else DEFAULT_LORA_RANK,
            "project_id": project_id or _env("MINT_PROJECT_ID", "TINKER_PROJECT_ID"),
            "tags": tags,
        }
        if wire is not None:
            kwargs["wire"] = wire
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(overrides) - names
        if unknown:
            msg = f"unknown client settings: {sorted(unknown)}"
            raise InvalidInputError(msg)
        kwargs.update(overrides)
        return cls(**kwargs)  # type: ignore[arg-type]

    def replace(self, **changes: object) -> ClientConfig:
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
