"""Handlers of the service endpoints: client config, JWT exchange, sessions, telemetry, health."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

import msgspec

from mint_async import _codec
from mint_async.types import (
    AuthTokenResponse,
    ClientConfigResponse,
    CreateSessionRequest,
    CreateSessionResponse,
    GetServerCapabilitiesResponse,
    HealthResponse,
    SessionHeartbeatRequest,
    SessionHeartbeatResponse,
    SupportedModel,
    TelemetryResponse,
)

from ._http import HTTPError, Request, Response, json_response
from ._state import ServerState, Session
from ._stats import reset_peaks, snapshot

if TYPE_CHECKING:
    from ._core import ServerCore

__all__ = [
    "auth_token",
    "reset_statistics_peaks",
    "statistics",
    "capabilities",
    "client_config",
    "create_session",
    "dynamic_config",
    "finish_session",
    "healthz",
    "heartbeat",
    "telemetry",
]

# Spelled out: the Structs' defaults would be omitted on encode, and tinker
# validates {"status": "accepted"} strictly.
_HEALTH = _codec.encode({"status": HealthResponse().status})
_ACCEPTED = _codec.encode({"status": TelemetryResponse().status})


async def client_config(core: ServerCore, req: Request) -> Response:
    """``client/config``: JWT exchange on (so ``sk-`` keys work with ``import mint``), the wire flags.

    Flags at their SDK default are omitted (``{"pjwt_auth_enabled": true}`` by default).
    """
    config = core.config
    return json_response(
        ClientConfigResponse(
            pjwt_auth_enabled=config.pjwt_auth_enabled,
            sample_use_retrieve_futures=config.enable_retrieve_futures,
            use_pyqwest_transport=config.sdk_pyqwest_transport,
            proto_write_fwdbwd=config.proto_write_fwdbwd,
            proto_compress_fwdbwd=config.proto_compress_fwdbwd,
        )
    )


class _DynamicConfig(msgspec.Struct, kw_only=True):
    refresh_interval_sec: int = 300
    sample_cancel_enabled: bool = False
    sample_cancel_max_batch_size: int = 64


_DYNAMIC = _codec.encode(_DynamicConfig())


async def dynamic_config(core: ServerCore, req: Request) -> Response:
    """``client/dynamic_config`` [0.38]: the defaults, spelled out (sample cancels stay off:
    an abandoned sample finishes anyway, and its session's expiry cancels the rest)."""
    return json_response(_DYNAMIC)


async def auth_token(core: ServerCore, req: Request) -> Response:
    """``auth/token``: a JWT for the credential in ``X-API-Key`` (a key, or a JWT to refresh)."""
    assert core.auth is not None
    return json_response(AuthTokenResponse(jwt=core.auth.issue(req.owner)))


async def create_session(core: ServerCore, req: Request) -> Response:
    """``create_session``: a new session, alive while heartbeats arrive."""
    body = _codec.decode(CreateSessionRequest, req.body)
    session_id = ServerState.new_session_id()
    core.state.sessions[session_id] = Session(
        session_id=session_id,
        owner=req.owner,
        tags=list(body.tags),
        user_metadata=dict(body.user_metadata),
        sdk_version=body.sdk_version,
        project_id=body.project_id,
    )
    return json_response(CreateSessionResponse(session_id=session_id))


async def heartbeat(core: ServerCore, req: Request) -> Response:
    """``session_heartbeat``: keeps a session alive; 410 once it finished."""
    body = _codec.decode(SessionHeartbeatRequest, req.body)
    session = core.session(req.owner, body.session_id)
    session.last_heartbeat = time.monotonic()
    core.state.heartbeats += 1
    return json_response(SessionHeartbeatResponse())


async def telemetry(core: ServerCore, req: Request) -> Response:
    """``telemetry``: accepted and dropped (any JSON object, protocol Q14)."""
    try:
        batch = msgspec.json.decode(req.body, type=dict[str, Any])
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise HTTPError(400, f"telemetry must be a JSON object: {exc}") from None
    # A RecursionError (hostile nesting) is the dispatcher's 400, as for every route.
    events: object = batch.get("events")
    if isinstance(events, list):
        core.state.telemetry_events += len(cast("list[object]", events))
    return json_response(_ACCEPTED)


async def capabilities(core: ServerCore, req: Request) -> Response:
    """``get_server_capabilities``: the served base models."""
    models = [
        SupportedModel(
            model_name=spec.name,
            max_context_length=spec.max_context_length,
            trainable=spec.trainable,
            sampleable=spec.sampleable,
        )
        for spec in core.specs.values()
    ]
    return json_response(GetServerCapabilitiesResponse(supported_models=models))


async def healthz(core: ServerCore, req: Request) -> Response:
    """``healthz`` (no credential needed)."""
    return json_response(_HEALTH)


class _FinishRequest(msgspec.Struct, kw_only=True):
    reason: dict[str, Any] | None = None
    detail: str | None = None


async def finish_session(core: ServerCore, req: Request, session_id: str) -> Response:
    """``POST sessions/{id}/finish`` [0.38]: end a session now (first finish wins)."""
    session = core.state.sessions.get(session_id)
    if session is None or session.owner != req.owner:
        raise HTTPError(404, f"session {session_id!r} not found")
    if session.finished is None:
        body = _codec.decode(_FinishRequest, req.body) if req.body else _FinishRequest()
        kind = (body.reason or {}).get("type", "success")
        core.finish_session(session, f"finished by the client ({kind})")
    return json_response({})


def _require_admin(core: ServerCore, req: Request) -> None:
    """403 unless the caller is the server's admin: the user of its first configured key.

    The statistics count every user's requests (they are not kept per user), so
    another key may not read them (issue 12). With no key configured the admin
    is the default key's user, the only one.
    """
    auth = core.auth
    if auth is None or req.owner != auth.owner(core.config.api_keys[0]):
        raise HTTPError(403, "the local statistics are for the server's first API key only")


async def statistics(core: ServerCore, req: Request) -> Response:
    """``GET local/statistics`` [local extension, admin only]: :class:`ServerStatistics` as JSON."""
    _require_admin(core, req)
    return json_response(snapshot(core))


async def reset_statistics_peaks(core: ServerCore, req: Request) -> Response:
    """``POST local/statistics/reset_peaks`` [local extension, admin only]."""
    _require_admin(core, req)
    reset_peaks(core)
    return json_response(snapshot(core))
