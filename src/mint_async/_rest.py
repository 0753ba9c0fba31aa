"""RestClient: training runs, checkpoints, sessions, samplers (protocol §4.7, 0.22 set).

Training-run ids contain colons and checkpoint ids a slash (``weights/ckpt-1``);
both are sent unescaped, as the official SDK does.
"""

from __future__ import annotations

import email.utils
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final, Literal

import anyio

from . import _codec
from . import types as t
from ._context import ClientContext, call, decode_response
from ._exceptions import (
    APIResponseValidationError,
    APIStatusError,
    DownloadError,
    InvalidInputError,
)
from ._retry import sleep as backoff_sleep

__all__ = ["ProgressCallback", "RestClient"]

AccessScope = Literal["owned", "accessible"]
ProgressCallback = Callable[[int, int | None], None]
"""Called with ``(bytes_done, bytes_total_or_None)`` while downloading."""

COPY_TTL_MIN: Final = 3600
COPY_TTL_MAX: Final = 10 * 365 * 24 * 3600
_ARCHIVE_BUSY_RETRIES: Final = 6
_ARCHIVE_BUSY_SLEEP: Final = 30.0


def _parse(tinker_path: str) -> t.ParsedCheckpointTinkerPath:
    return t.ParsedCheckpointTinkerPath.from_tinker_path(tinker_path)


def check_copy(path: str, ttl_seconds: int | None, weights_access_token: str | None) -> None:
    """InvalidInputError unless a ``copy_weights`` source, TTL and token can be sent."""
    _parse(path)
    if weights_access_token is not None:
        msg = "weights_access_token (copying another account's checkpoint) is not supported"
        raise InvalidInputError(msg)
    if ttl_seconds is not None and (
        isinstance(ttl_seconds, bool)
        or not isinstance(ttl_seconds, int)
        or not COPY_TTL_MIN <= ttl_seconds <= COPY_TTL_MAX
    ):
        msg = (
            f"ttl_seconds must be an int from {COPY_TTL_MIN} (1 hour) to {COPY_TTL_MAX} "
            f"(10 years), or None, got {ttl_seconds!r}"
        )
        raise InvalidInputError(msg)


async def send_copy_weights(
    ctx: ClientContext, request: t.CopyWeightsRequest, weights_access_token: str | None
) -> str:
    """Check and send a ``copy_weights`` request; the copy's path (RestClient and ServiceClient)."""
    check_copy(request.source_path, request.ttl_seconds, weights_access_token)
    resp = await ctx.transport.request(
        "POST",
        "api/v1/copy_weights",
        body=_codec.encode(request),
        headers={"X-Idempotency-Key": str(uuid.uuid4())},
    )
    return decode_response(t.CopyWeightsResponse, resp).tinker_path


def _check_scope(access_scope: str) -> None:
    if access_scope not in ("owned", "accessible"):
        msg = f"access_scope must be 'owned' or 'accessible', got {access_scope!r}"
        raise InvalidInputError(msg)


def _check_page(limit: int, offset: int) -> None:
    if not isinstance(limit, int) or limit < 1 or not isinstance(offset, int) or offset < 0:
        msg = f"limit must be >= 1 and offset >= 0, got limit={limit!r} offset={offset!r}"
        raise InvalidInputError(msg)


class _RateFloor:
    """A download's minimum transfer rate (see ``Timeouts.download_min_rate``), as a deadline.

    Each window of ``window`` seconds must bring ``min_rate * window`` bytes; once it
    has, the next window starts. The deadline cancels the pending *read* only
    (:meth:`next_chunk`), so the cancellation unwinds the body's async generators
    from the inside and none is left suspended. A server that sends nothing trips
    the per-read timeout first.
    """

    def __init__(self, min_rate: float | None, window: float, name: str) -> None:
        self._quota = None if min_rate is None else min_rate * window
        self._min_rate = min_rate
        self._window = window
        self._name = name
        self._deadline = anyio.current_time() + window
        self._bytes = 0

    async def next_chunk(self, chunks: AsyncIterator[bytes]) -> bytes | None:
        """The next chunk (None at the end), or DownloadError if this window's quota cannot be met."""
        if self._quota is None:
            return await anext(chunks, None)
        chunk: bytes | None = None
        with anyio.CancelScope(deadline=self._deadline) as scope:
            chunk = await anext(chunks, None)
        if scope.cancelled_caught:
            msg = (
                f"download of {self._name} stalled: {self._bytes} bytes in {self._window:g} s, "
                f"below Timeouts.download_min_rate ({self._min_rate:g} bytes/s)"
            )
            raise DownloadError(msg)
        if chunk is not None:
            self._bytes += len(chunk)
            if self._bytes >= self._quota:
                self._deadline = anyio.current_time() + self._window
                self._bytes = 0
        return chunk


class RestClient:
    """The REST API. Create it with ``ServiceClient.create_rest_client()``.

    Example::

        rest = svc.create_rest_client()
        runs = await rest.list_training_runs(limit=10)
        for ckpt in (await rest.list_checkpoints(runs.training_runs[0].training_run_id)).checkpoints:
            print(ckpt.tinker_path)
    """

    def __init__(self, ctx: ClientContext) -> None:
        self._ctx = ctx

    def __repr__(self) -> str:
        return f"RestClient(base_url={self._ctx.config.base_url!r})"

    # -- capabilities, weights, samplers ------------------------------------------

    async def get_server_capabilities(self) -> t.GetServerCapabilitiesResponse:
        """The base models the server supports."""
        return await call(
            self._ctx, "GET", "api/v1/get_server_capabilities", t.GetServerCapabilitiesResponse
        )

    async def get_weights_info_by_tinker_path(self, tinker_path: str) -> t.WeightsInfoResponse:
        """What a checkpoint was trained from (base model, LoRA rank and targets)."""
        _parse(tinker_path)
        return await call(
            self._ctx,
            "POST",
            "api/v1/weights_info",
            t.WeightsInfoResponse,
            t.WeightsInfoRequest(tinker_path=tinker_path),
        )

    async def get_sampler(self, sampler_id: str) -> t.GetSamplerResponse:
        """What a sampling session samples."""
        return await call(self._ctx, "GET", f"api/v1/samplers/{sampler_id}", t.GetSamplerResponse)

    # -- training runs ----------------------------------------------------------------

    async def get_training_run(
        self, training_run_id: str, access_scope: AccessScope = "owned"
    ) -> t.TrainingRun:
        """One training run."""
        _check_scope(access_scope)
        return await call(
            self._ctx,
            "GET",
            f"api/v1/training_runs/{training_run_id}",
            t.TrainingRun,
            params={"access_scope": access_scope},
        )

    async def get_training_run_by_tinker_path(
        self, tinker_path: str, access_scope: AccessScope = "owned"
    ) -> t.TrainingRun:
        """The training run a checkpoint path belongs to."""
        return await self.get_training_run(_parse(tinker_path).training_run_id, access_scope)

    async def list_training_runs(
        self, limit: int = 20, offset: int = 0, access_scope: AccessScope = "owned"
    ) -> t.TrainingRunsResponse:
        """A page of training runs (``cursor`` tells the total)."""
        _check_page(limit, offset)
        _check_scope(access_scope)
        return await call(
            self._ctx,
            "GET",
            "api/v1/training_runs",
            t.TrainingRunsResponse,
            params={"limit": limit, "offset": offset, "access_scope": access_scope},
        )

    # -- checkpoints ------------------------------------------------------------------

    async def list_checkpoints(self, training_run_id: str) -> t.CheckpointsListResponse:
        """The checkpoints of one training run."""
        return await call(
            self._ctx,
            "GET",
            f"api/v1/training_runs/{training_run_id}/checkpoints",
            t.CheckpointsListResponse,
        )

    async def list_user_checkpoints(
        self, limit: int = 100, offset: int = 0
    ) -> t.CheckpointsListResponse:
        """A page of all your checkpoints, newest first."""
        _check_page(limit, offset)
        return await call(
            self._ctx,
            "GET",
            "api/v1/checkpoints",
            t.CheckpointsListResponse,
            params={"limit": limit, "offset": offset},
        )

    async def delete_checkpoint(self, training_run_id: str, checkpoint_id: str) -> None:
        """Delete a checkpoint."""
        await self._ctx.transport.request(
            "DELETE", f"api/v1/training_runs/{training_run_id}/checkpoints/{checkpoint_id}"
        )

    async def delete_checkpoint_from_tinker_path(self, tinker_path: str) -> None:
        """Delete the checkpoint at a tinker path."""
        p = _parse(tinker_path)
        await self.delete_checkpoint(p.training_run_id, p.checkpoint_id)

    async def publish_checkpoint_from_tinker_path(self, tinker_path: str) -> None:
        """Make a checkpoint public (409 ConflictError if it already is)."""
        p = _parse(tinker_path)
        await self._ctx.transport.request(
            "POST",
            f"api/v1/training_runs/{p.training_run_id}/checkpoints/{p.checkpoint_id}/publish",
            max_retries=0,
        )

    async def unpublish_checkpoint_from_tinker_path(self, tinker_path: str) -> None:
        """Make a checkpoint private again (409 ConflictError if it already is)."""
        p = _parse(tinker_path)
        await self._ctx.transport.request(
            "DELETE",
            f"api/v1/training_runs/{p.training_run_id}/checkpoints/{p.checkpoint_id}/publish",
            max_retries=0,
        )

    async def set_checkpoint_ttl_from_tinker_path(
        self, tinker_path: str, ttl_seconds: int | None
    ) -> None:
        """Expire a checkpoint ``ttl_seconds`` from now (``None`` removes the expiry)."""
        p = _parse(tinker_path)
        body = _codec.encode(t.SetCheckpointTTLRequest(ttl_seconds=ttl_seconds))
        await self._ctx.transport.request(
            "PUT",
            f"api/v1/training_runs/{p.training_run_id}/checkpoints/{p.checkpoint_id}/ttl",
            body=body,
        )

    async def copy_weights(
        self,
        path: str,
        destination_project_id: str | None = None,
        *,
        ttl_seconds: int | None = None,
        weights_access_token: str | None = None,
    ) -> str:
        """[tinker 0.38] Copy a checkpoint (yours or a published one) into a project; its path.

        The copy keeps the source's kind and name and belongs to a new training
        run of yours. ``destination_project_id`` defaults to the configured
        ``project_id`` (``MINT_PROJECT_ID`` / ``TINKER_PROJECT_ID``); one of them
        is required. ``ttl_seconds``: 3600 (1 hour) to 10 years, or None for no
        expiry (the source's is not inherited). One idempotency key is sent on
        every retry, so a retried copy is made once.

        Example::

            copied = await rest.copy_weights("tinker://run/weights/step-400", "archive")
        """
        project = destination_project_id or self._ctx.config.project_id
        if project is None:
            msg = "copy_weights needs destination_project_id (or project_id / TINKER_PROJECT_ID)"
            raise InvalidInputError(msg)
        request = t.CopyWeightsRequest(
            source_path=path, destination_project_id=project, ttl_seconds=ttl_seconds
        )
        return await send_copy_weights(self._ctx, request, weights_access_token)

    async def get_checkpoint_archive_url(
        self, training_run_id: str, checkpoint_id: str
    ) -> t.CheckpointArchiveUrlResponse | t.CheckpointFilesResponse:
        """Where to download a checkpoint: a signed archive URL (302), or per-file URLs.

        A 503 (archive still being built) is retried every 30 s, up to 6 times.
        """
        path = f"api/v1/training_runs/{training_run_id}/checkpoints/{checkpoint_id}/archive"
        for attempt in range(_ARCHIVE_BUSY_RETRIES + 1):
            try:
                resp = await self._ctx.transport.request(
                    "GET",
                    path,
                    headers={"Accept": "application/gzip"},
                    expect_redirect=True,
                    max_retries=2,
                )
            except APIStatusError as exc:
                if exc.status_code == 503 and attempt < _ARCHIVE_BUSY_RETRIES:
                    await backoff_sleep(_ARCHIVE_BUSY_SLEEP)
                    continue
                raise
            if 300 <= resp.status_code < 400:
                location = resp.headers.get("location")
                if not location:
                    msg = "archive redirect without a Location header"
                    raise APIResponseValidationError(msg)
                expires = _expires(resp.headers.get("expires"))
                return t.CheckpointArchiveUrlResponse(url=location, expires=expires)
            return decode_response(t.CheckpointFilesResponse, resp)
        msg = "unreachable"  # pragma: no cover
        raise AssertionError(msg)

    async def get_checkpoint_archive_url_from_tinker_path(
        self, tinker_path: str
    ) -> t.CheckpointArchiveUrlResponse | t.CheckpointFilesResponse:
        """:meth:`get_checkpoint_archive_url` for a tinker path."""
        p = _parse(tinker_path)
        return await self.get_checkpoint_archive_url(p.training_run_id, p.checkpoint_id)

    async def download_checkpoint(
        self,
        tinker_path: str,
        dest: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
    ) -> Path:
        """Download a checkpoint to ``dest`` and verify its size; returns what was written.

        For an archive URL, ``dest`` is the archive file (a directory gets
        ``<name>.tar.gz`` inside it); for per-file URLs, ``dest`` is a directory
        that receives the files under their relative names. Files are written to a
        temporary name and renamed when complete.
        """
        where = await self.get_checkpoint_archive_url_from_tinker_path(tinker_path)
        target = Path(dest)
        if isinstance(where, t.CheckpointArchiveUrlResponse):
            if await anyio.Path(target).is_dir():
                target = target / f"{_parse(tinker_path).checkpoint_id.split('/')[-1]}.tar.gz"
            await self._fetch(where.url, target, expected=None, progress=progress)
            return target
        await anyio.Path(target).mkdir(parents=True, exist_ok=True)
        total = sum(f.size_bytes or 0 for f in where.presigned_urls) or None
        done = 0
        for f in where.presigned_urls:
            rel = Path(f.relative_file_name)
            if rel.is_absolute() or ".." in rel.parts:
                msg = f"refusing to write outside {target}: {f.relative_file_name!r}"
                raise DownloadError(msg)

            def each(n: int, _total: int | None, base: int = done) -> None:
                if progress is not None:
                    progress(base + n, total)

            done += await self._fetch(f.url, target / rel, expected=f.size_bytes, progress=each)
        return target

    async def _fetch(
        self, url: str, target: Path, *, expected: int | None, progress: ProgressCallback | None
    ) -> int:
        await anyio.Path(target.parent).mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        os.close(fd)
        tmp = anyio.Path(tmp_name)
        written = 0
        timeouts = self._ctx.config.timeouts
        floor = _RateFloor(timeouts.download_min_rate, timeouts.request, target.name)
        try:
            async with self._ctx.transport.stream_get(url) as (chunks, length):
                total = expected if expected is not None else length
                async with await anyio.open_file(tmp, "wb") as out:
                    while (chunk := await floor.next_chunk(chunks)) is not None:
                        await out.write(chunk)
                        written += len(chunk)
                        if progress is not None:
                            progress(written, total)
            if total is not None and written != total:
                msg = f"downloaded {written} bytes of {target.name}, expected {total}"
                raise DownloadError(msg)
            await tmp.rename(target)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await tmp.unlink(missing_ok=True)
            raise
        return written

    # -- sessions and audit -----------------------------------------------------------

    async def get_session(
        self, session_id: str, access_scope: AccessScope = "owned"
    ) -> t.GetSessionResponse:
        """The training runs and samplers of a session."""
        _check_scope(access_scope)
        return await call(
            self._ctx,
            "GET",
            f"api/v1/sessions/{session_id}",
            t.GetSessionResponse,
            params={"access_scope": access_scope},
        )

    async def list_sessions(
        self, limit: int = 20, offset: int = 0, access_scope: AccessScope = "owned"
    ) -> t.ListSessionsResponse:
        """A page of your session ids."""
        _check_page(limit, offset)
        _check_scope(access_scope)
        return await call(
            self._ctx,
            "GET",
            "api/v1/sessions",
            t.ListSessionsResponse,
            params={"limit": limit, "offset": offset, "access_scope": access_scope},
        )

    async def assign_session_project(self, session_id: str, project_id: str) -> None:
        """Move a session into a project."""
        await self._ctx.transport.request(
            "PUT",
            f"api/v1/sessions/{session_id}/project",
            body=_codec.encode(t.SessionProjectRequest(project_id=project_id)),
        )

    async def get_audit_log(
        self, event_type: t.AuditEventType = "all", day: date | None = None
    ) -> t.AuditLogResponse:
        """The organization's audit log for one UTC ``day`` (the server's default: today).

        ``event_type`` picks the resource (``checkpoints``, ``projects``,
        ``teams``, ``organizations``) or ``all``; on MinT/Tinker it needs the
        admin role.
        """
        params: dict[str, str | int] = {"event_type": event_type}
        if day is not None:
            params["day"] = day.isoformat()
        return await call(self._ctx, "GET", "api/v1/audit", t.AuditLogResponse, params=params)


def _expires(header: str | None) -> datetime:
    """The ``Expires`` header as a datetime (default: 15 minutes from now)."""
    if header:
        try:
            parsed = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.now(UTC) + timedelta(minutes=15)
