"""Service and session messages (protocol §4.1)."""

from __future__ import annotations

from typing import TypeAlias

import msgspec

from ._base import WireStruct, sent, sent_empty_dict, sent_empty_list


class ClientConfigRequest(WireStruct, kw_only=True):
    """Body of ``client/config``."""

    sdk_version: str


class ClientConfigResponse(WireStruct, kw_only=True):
    """Server-driven client settings; every field optional with the SDK's default."""

    pjwt_auth_enabled: bool = False
    credential_default_source: str = "api_key"
    sample_dispatch_bytes_semaphore_size: int = 10_485_760
    inflight_response_bytes_semaphore_size: int = 52_428_800
    parallel_fwdbwd_chunks: bool = True
    proto_write_fwdbwd: bool = False
    grpc_target: str | None = None
    enable_grpc_retrieve_future: bool = False
    billing_exception_max_pause_duration_sec: int = 3600
    sample_no_retries: bool = False
    use_pyqwest_transport: bool = True
    proto_compress_fwdbwd: bool = False
    fwdbwd_max_chunk_len: int = 1024
    fwdbwd_max_chunk_bytes_count: int = 5_000_000
    fwdbwd_dispatch_bytes_semaphore_size: int = 50_000_000
    sample_enable_stuck_detection: bool = True
    sample_max_concurrent_requests: int = 2000
    sample_use_retrieve_futures: bool = False


class AuthTokenRequest(WireStruct, kw_only=True):
    """Body of ``auth/token`` (empty; the credential travels in ``X-API-Key``)."""


class AuthTokenResponse(WireStruct, kw_only=True):
    """A short-lived JWT to send in ``X-API-Key`` instead of the key."""

    jwt: str


class CreateSessionRequest(WireStruct, tag="create_session", tag_field="type", kw_only=True):
    """Body of ``create_session``; ``tags`` and ``user_metadata`` are always sent."""

    tags: list[str] = sent_empty_list()
    user_metadata: dict[str, str] = sent_empty_dict()
    sdk_version: str
    project_id: str | None = None
    display_name: str | None = None
    """[0.38] Human-readable session name (omitted when None)."""


class CreateSessionResponse(WireStruct, tag="create_session", tag_field="type", kw_only=True):
    """A new session id, and messages the server wants shown."""

    session_id: str
    info_message: str | None = None
    warning_message: str | None = None
    error_message: str | None = None


class SessionHeartbeatRequest(WireStruct, tag="session_heartbeat", tag_field="type", kw_only=True):
    """Body of ``session_heartbeat``."""

    session_id: str


class SessionHeartbeatResponse(WireStruct, tag="session_heartbeat", tag_field="type", kw_only=True):
    """The (usually empty) answer to a heartbeat."""


class SupportedModel(WireStruct, kw_only=True):
    """A base model the server can train or sample."""

    model_name: str | None = None
    max_context_length: int | None = None
    trainable: bool | None = None
    sampleable: bool | None = None
    gpu_classes: list[str] | None = None
    """MinT docs: the GPU classes this model can be provisioned on (optional on the wire)."""


class GetServerCapabilitiesResponse(WireStruct, kw_only=True):
    """What ``get_server_capabilities`` returns."""

    supported_models: list[SupportedModel] = msgspec.field(default_factory=list[SupportedModel])


ServerCapabilities: TypeAlias = GetServerCapabilitiesResponse
"""The MinT docs' name for :class:`GetServerCapabilitiesResponse`."""


class HealthResponse(WireStruct, kw_only=True):
    """``GET healthz``."""

    status: str = sent("ok")


class InitTrainerServerResponse(WireStruct, kw_only=True):
    """MinT docs' trainer-initialisation answer; every field optional (its wire shape is unpublished)."""

    model_id: str | None = None
    base_model: str | None = None
    lora_rank: int | None = None
    status: str | None = None
