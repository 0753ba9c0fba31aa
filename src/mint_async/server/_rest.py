"""The REST endpoints (protocol §4.7): training runs, checkpoints, sessions, archives, audit.

Path ids: ``run_id`` contains colons, ``checkpoint_id`` is two segments
(``weights/<name>`` or ``sampler_weights/<name>``), so
``training_runs/<run>/checkpoints/<kind>/<name>[/publish|/ttl|/archive]`` is
parsed by segment count (names cannot contain ``/``).

Access: runs and checkpoints are their owner's; another user sees a run only
with ``access_scope=accessible`` and only through its public checkpoints.

Audit: ``GET audit?event_type&day`` lists the caller's own events (each API key
is its own organization here, and its own admin), oldest first. ``event_type``
``all`` or ``checkpoints`` (``checkpoint_*`` events); ``projects``, ``teams`` and
``organizations`` are accepted and empty, as this server has none of them.
``day`` (``YYYY-MM-DD``, UTC; default today) picks the day, as tinker 0.38's
AdminClient documents. Events: ``training_run_created``, ``checkpoint_saved``,
``checkpoint_read`` (with the ``purpose``: load_weights, sampling, create_model,
interpolate, reference_model, archive), ``checkpoint_published``,
``checkpoint_unpublished``, ``checkpoint_ttl_set``, ``checkpoint_deleted``,
``checkpoint_expired``; ``event_details`` carries the actor and the rest.

Archives: ``GET …/archive`` answers 302 to a signed, expiring URL on this same
server (``ServerConfig.public_url``, else the address the client connected to;
never the request's ``Host`` header), which streams a real ``.tar.gz`` of the
checkpoint's files (no API key needed, like a presigned storage URL). The URL
names who asked for it, and access is checked again when it is used: once the
checkpoint is deleted, or unpublished while the requester is not its owner,
the link answers 404 even before it expires.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio
import anyio.to_thread

from mint_async import _codec
from mint_async.types import (
    AuditLogEntry,
    AuditLogResponse,
    CheckpointsListResponse,
    Cursor,
    GetSessionResponse,
    ListSessionsResponse,
    SessionProjectRequest,
    SetCheckpointTTLRequest,
    TrainingRunsResponse,
    WeightsInfoRequest,
    WeightsInfoResponse,
)

from ._http import HTTPError, Request, Response, StreamResponse, json_response
from ._store import CheckpointMeta, RunMeta, run_to_wire

if TYPE_CHECKING:
    from ._core import ServerCore

__all__ = [
    "audit_log",
    "checkpoint_route",
    "download_archive",
    "list_checkpoints",
    "list_sessions",
    "list_training_runs",
    "session_route",
    "weights_info",
]

ARCHIVE_TTL: Final = 15 * 60
_CHUNK: Final = 1 << 16
_EMPTY: Final = b"{}"


def _scope(req: Request) -> str:
    scope = req.query("access_scope", "owned")
    if scope not in ("owned", "accessible"):
        raise HTTPError(400, "access_scope must be 'owned' or 'accessible'")
    return scope


def _visible_checkpoints(core: ServerCore, owner: str, run: RunMeta) -> list[CheckpointMeta]:
    _, store, _ = core.require_running()
    checkpoints = store.checkpoints(run.training_run_id)
    if run.owner == owner:
        return checkpoints
    return [c for c in checkpoints if c.public]


def _visible_run(core: ServerCore, owner: str, run_id: str, scope: str) -> RunMeta:
    _, store, _ = core.require_running()
    run = store.run(run_id)
    if run is not None and (
        run.owner == owner or (scope == "accessible" and _visible_checkpoints(core, owner, run))
    ):
        return run
    raise HTTPError(404, f"training run {run_id!r} not found")


async def list_training_runs(core: ServerCore, req: Request) -> Response:
    """``GET training_runs?limit&offset&access_scope``."""
    _, store, _ = core.require_running()
    limit, offset, scope = (
        req.query_int("limit", 20, minimum=1),
        req.query_int("offset", 0),
        _scope(req),
    )
    runs = [
        r
        for r in store.runs()
        if r.owner == req.owner
        or (scope == "accessible" and _visible_checkpoints(core, req.owner, r))
    ]
    page = runs[offset : offset + limit]
    return json_response(
        TrainingRunsResponse(
            training_runs=[run_to_wire(r, _visible_checkpoints(core, req.owner, r)) for r in page],
            cursor=Cursor(offset=offset, limit=limit, total_count=len(runs)),
        )
    )


async def list_checkpoints(core: ServerCore, req: Request) -> Response:
    """``GET checkpoints?limit&offset``: the caller's checkpoints, newest first."""
    _, store, _ = core.require_running()
    limit, offset = req.query_int("limit", 100, minimum=1), req.query_int("offset", 0)
    mine = [c for c in store.checkpoints() if c.owner == req.owner]
    return json_response(
        CheckpointsListResponse(
            checkpoints=[c.to_wire() for c in mine[offset : offset + limit]],
            cursor=Cursor(offset=offset, limit=limit, total_count=len(mine)),
        )
    )


async def weights_info(core: ServerCore, req: Request) -> Response:
    """``weights_info``: what a (own or public) checkpoint was trained from."""
    _, store, _ = core.require_running()
    body = _codec.decode(WeightsInfoRequest, req.body)
    try:
        meta = store.resolve(body.tinker_path)
    except ValueError as exc:
        raise HTTPError(400, str(exc)) from None
    meta = core.readable_checkpoint(req.owner, meta, body.tinker_path)
    return json_response(
        WeightsInfoResponse(
            base_model=meta.base_model,
            is_lora=True,
            lora_rank=meta.lora_rank,
            train_unembed=meta.train_unembed,
            train_mlp=meta.train_mlp,
            train_attn=meta.train_attn,
        )
    )


async def checkpoint_route(core: ServerCore, req: Request, rest: str) -> Response:
    """Everything under ``training_runs/``."""
    parts = rest.split("/")
    run_id = parts[0]
    if len(parts) == 1 and req.method == "GET":
        run = _visible_run(core, req.owner, run_id, _scope(req))
        return json_response(run_to_wire(run, _visible_checkpoints(core, req.owner, run)))
    if len(parts) == 2 and parts[1] == "checkpoints" and req.method == "GET":
        run = _visible_run(core, req.owner, run_id, "accessible")
        listed = [c.to_wire() for c in _visible_checkpoints(core, req.owner, run)]
        return json_response(
            CheckpointsListResponse(
                checkpoints=listed,
                cursor=Cursor(offset=0, limit=len(listed), total_count=len(listed)),
            )
        )
    if (
        len(parts) not in (4, 5)
        or parts[1] != "checkpoints"
        or parts[2] not in ("weights", "sampler_weights")
    ):
        raise HTTPError(404, f"no such resource: training_runs/{rest}")
    _, store, _ = core.require_running()
    checkpoint_id = f"{parts[2]}/{parts[3]}"
    meta = store.get(run_id, checkpoint_id)
    action = parts[4] if len(parts) == 5 else None
    path = f"tinker://{run_id}/{checkpoint_id}"
    if action == "archive" and req.method == "GET":
        meta = core.readable_checkpoint(req.owner, meta, path)
        store.record("checkpoint_read", meta, actor=req.owner, purpose="archive")
        return _archive_redirect(core, req, meta)
    if meta is None or meta.owner != req.owner:
        raise HTTPError(404, f"checkpoint {path!r} not found")
    match (action, req.method):
        case (None, "DELETE"):
            await anyio.to_thread.run_sync(store.delete, meta)
        case ("publish", "POST"):
            if meta.public:
                raise HTTPError(409, f"{path} is already public")
            meta.public = True
            await anyio.to_thread.run_sync(store.update, meta, "checkpoint_published")
        case ("publish", "DELETE"):
            if not meta.public:
                raise HTTPError(409, f"{path} is already private")
            meta.public = False
            await anyio.to_thread.run_sync(store.update, meta, "checkpoint_unpublished")
        case ("ttl", "PUT"):
            ttl = _codec.decode(SetCheckpointTTLRequest, req.body).ttl_seconds
            meta.expires_at = None if ttl is None else time.time() + ttl
            await anyio.to_thread.run_sync(
                functools.partial(store.update, meta, "checkpoint_ttl_set", ttl_seconds=ttl)
            )
        case _:
            raise HTTPError(405, f"{req.method} is not allowed on training_runs/{rest}")
    return json_response(_EMPTY)


_AUDIT_TYPES: Final = ("all", "checkpoints", "projects", "teams", "organizations")


async def audit_log(core: ServerCore, req: Request) -> Response:
    """``GET audit?event_type&day``: the caller's audit events, oldest first."""
    _, store, _ = core.require_running()
    event_type = req.query("event_type") or "all"
    if event_type not in _AUDIT_TYPES:
        raise HTTPError(400, f"event_type must be one of {list(_AUDIT_TYPES)}, not {event_type!r}")
    day_text = req.query("day") or ""
    try:
        day = date.fromisoformat(day_text) if day_text else datetime.now(UTC).date()
    except ValueError:
        raise HTTPError(400, f"day must be YYYY-MM-DD, not {day_text!r}") from None
    entries: list[AuditLogEntry] = []
    if event_type in ("all", "checkpoints"):
        for e in store.audit(req.owner):
            when = datetime.fromtimestamp(e.timestamp, tz=UTC)
            if when.date() != day or (
                event_type == "checkpoints" and not e.event.startswith("checkpoint_")
            ):
                continue
            entries.append(
                AuditLogEntry(
                    timestamp=when,
                    event=e.event,
                    model_id=e.model_id,
                    tinker_path=e.tinker_path,
                    purpose=e.purpose,
                    event_details=e.details,
                )
            )
    return json_response(AuditLogResponse(entries=entries))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _archive_redirect(core: ServerCore, req: Request, meta: CheckpointMeta) -> Response:
    expires = int(time.time()) + ARCHIVE_TTL
    payload = json.dumps([meta.training_run_id, meta.checkpoint_id, expires, req.owner]).encode()
    sig = hmac.new(core.archive_secret, payload, hashlib.sha256).digest()
    # The configured public URL, else the address the client reached: never its Host header.
    public = core.config.public_url
    base = public.rstrip("/") if public else req.base_url()
    url = f"{base}/api/v1/archive_downloads/{_b64(payload)}.{_b64(sig)}"
    headers = [(b"location", url.encode()), (b"expires", formatdate(expires, usegmt=True).encode())]
    return json_response(_codec.encode({"url": url}), status=302, headers=headers)


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    try:
        async with await anyio.open_file(path, "rb") as f:
            while chunk := await f.read(_CHUNK):
                yield chunk
    finally:
        await anyio.to_thread.run_sync(lambda: path.unlink(missing_ok=True))


async def download_archive(core: ServerCore, req: Request, token: str) -> StreamResponse:
    """``GET archive_downloads/<signed token>``: the checkpoint as ``.tar.gz`` (no API key)."""
    _, store, _ = core.require_running()
    try:
        encoded, sig = token.split(".")
        payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        expected = hmac.new(core.archive_secret, payload, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))):
            raise ValueError("bad signature")
        run_id, checkpoint_id, expires, requester = json.loads(payload)
        if float(expires) < time.time():
            raise ValueError("expired")
    except (ValueError, TypeError):
        raise HTTPError(403, "invalid or expired archive link") from None
    # Signed earlier, authorized now: a delete or an unpublish revokes the link at once.
    meta = store.get(run_id, checkpoint_id)
    if meta is None or (meta.owner != requester and not meta.public):
        raise HTTPError(404, "the checkpoint no longer exists or is no longer shared")
    archive = await anyio.to_thread.run_sync(store.archive, meta)
    size = archive.stat().st_size
    name = meta.name.replace('"', "")
    headers = [(b"content-disposition", f'attachment; filename="{name}.tar.gz"'.encode())]
    return StreamResponse(200, _file_chunks(archive), b"application/gzip", headers, size)


async def list_sessions(core: ServerCore, req: Request) -> Response:
    """``GET sessions?limit&offset``: the caller's session ids, newest first."""
    limit, offset = req.query_int("limit", 20, minimum=1), req.query_int("offset", 0)
    _scope(req)
    mine = sorted(
        (s for s in core.state.sessions.values() if s.owner == req.owner),
        key=lambda s: s.created,
        reverse=True,
    )
    return json_response(
        ListSessionsResponse(sessions=[s.session_id for s in mine[offset : offset + limit]])
    )


async def session_route(core: ServerCore, req: Request, rest: str) -> Response:
    """``GET sessions/{id}``, ``PUT sessions/{id}/project`` (finish is in _service)."""
    parts = rest.split("/")
    session = core.state.sessions.get(parts[0])
    if session is None or session.owner != req.owner:
        raise HTTPError(404, f"session {parts[0]!r} not found")
    if len(parts) == 1 and req.method == "GET":
        return json_response(
            GetSessionResponse(
                training_run_ids=list(session.model_ids),
                sampler_ids=list(session.sampler_ids),
                user_metadata=session.user_metadata or None,
            )
        )
    if parts[1:] == ["project"] and req.method == "PUT":
        session.project_id = _codec.decode(SessionProjectRequest, req.body).project_id
        return json_response(_EMPTY)
    raise HTTPError(404, f"no such resource: sessions/{rest}")
