"""The blocking twin of :class:`mint_async.RestClient`: every method returns its result."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import types as t
from .._rest import AccessScope
from .._rest import RestClient as AsyncRestClient
from ._bridge import Twin

if TYPE_CHECKING:
    import os
    from datetime import date
    from pathlib import Path

    from .._rest import ProgressCallback

__all__ = ["RestClient"]


class RestClient(Twin[AsyncRestClient]):
    """Blocking twin of :class:`mint_async.RestClient` (every method returns its result)."""

    def get_server_capabilities(self) -> t.GetServerCapabilitiesResponse:
        """Supported base models."""
        return self._bridge.call(self._inner.get_server_capabilities)

    def get_weights_info_by_tinker_path(self, tinker_path: str) -> t.WeightsInfoResponse:
        """What a checkpoint was trained from (base model, LoRA rank and targets)."""
        return self._bridge.call(self._inner.get_weights_info_by_tinker_path, tinker_path)

    def get_sampler(self, sampler_id: str) -> t.GetSamplerResponse:
        """What a sampling session samples."""
        return self._bridge.call(self._inner.get_sampler, sampler_id)

    def get_training_run(
        self, training_run_id: str, access_scope: AccessScope = "owned"
    ) -> t.TrainingRun:
        """One training run."""
        return self._bridge.call(self._inner.get_training_run, training_run_id, access_scope)

    def get_training_run_by_tinker_path(
        self, tinker_path: str, access_scope: AccessScope = "owned"
    ) -> t.TrainingRun:
        """The training run a checkpoint path belongs to."""
        return self._bridge.call(
            self._inner.get_training_run_by_tinker_path, tinker_path, access_scope
        )

    def list_training_runs(
        self, limit: int = 20, offset: int = 0, access_scope: AccessScope = "owned"
    ) -> t.TrainingRunsResponse:
        """A page of training runs."""
        return self._bridge.call(self._inner.list_training_runs, limit, offset, access_scope)

    def list_checkpoints(self, training_run_id: str) -> t.CheckpointsListResponse:
        """Checkpoints of a run."""
        return self._bridge.call(self._inner.list_checkpoints, training_run_id)

    def list_user_checkpoints(self, limit: int = 100, offset: int = 0) -> t.CheckpointsListResponse:
        """A page of all your checkpoints, newest first."""
        return self._bridge.call(self._inner.list_user_checkpoints, limit, offset)

    def delete_checkpoint(self, training_run_id: str, checkpoint_id: str) -> None:
        """Delete a checkpoint."""
        self._bridge.call(self._inner.delete_checkpoint, training_run_id, checkpoint_id)

    def delete_checkpoint_from_tinker_path(self, tinker_path: str) -> None:
        """Delete the checkpoint at a tinker path."""
        self._bridge.call(self._inner.delete_checkpoint_from_tinker_path, tinker_path)

    def publish_checkpoint_from_tinker_path(self, tinker_path: str) -> None:
        """Make a checkpoint public (ConflictError if it already is)."""
        self._bridge.call(self._inner.publish_checkpoint_from_tinker_path, tinker_path)

    def unpublish_checkpoint_from_tinker_path(self, tinker_path: str) -> None:
        """Make a checkpoint private again (ConflictError if it already is)."""
        self._bridge.call(self._inner.unpublish_checkpoint_from_tinker_path, tinker_path)

    def set_checkpoint_ttl_from_tinker_path(
        self, tinker_path: str, ttl_seconds: int | None
    ) -> None:
        """Expire a checkpoint ``ttl_seconds`` from now (``None`` removes the expiry)."""
        self._bridge.call(self._inner.set_checkpoint_ttl_from_tinker_path, tinker_path, ttl_seconds)

    def copy_weights(
        self,
        path: str,
        destination_project_id: str | None = None,
        *,
        ttl_seconds: int | None = None,
        weights_access_token: str | None = None,
    ) -> str:
        """[tinker 0.38] Copy a checkpoint into a project; the copy's path."""
        return self._bridge.call(
            self._inner.copy_weights,
            path,
            destination_project_id,
            ttl_seconds=ttl_seconds,
            weights_access_token=weights_access_token,
        )

    def get_checkpoint_archive_url(
        self, training_run_id: str, checkpoint_id: str
    ) -> t.CheckpointArchiveUrlResponse | t.CheckpointFilesResponse:
        """Where to download a checkpoint: a signed archive URL, or per-file URLs."""
        return self._bridge.call(
            self._inner.get_checkpoint_archive_url, training_run_id, checkpoint_id
        )

    def get_checkpoint_archive_url_from_tinker_path(
        self, tinker_path: str
    ) -> t.CheckpointArchiveUrlResponse | t.CheckpointFilesResponse:
        """:meth:`get_checkpoint_archive_url` for a tinker path."""
        return self._bridge.call(
            self._inner.get_checkpoint_archive_url_from_tinker_path, tinker_path
        )

    def download_checkpoint(
        self,
        tinker_path: str,
        dest: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
    ) -> Path:
        """Download a checkpoint to ``dest``, verifying its size; returns what was written.

        ``progress(done, total)`` runs on the portal's event-loop thread (see the module docs).
        """
        return self._bridge.call(
            self._inner.download_checkpoint, tinker_path, dest, progress=progress
        )

    def get_session(
        self, session_id: str, access_scope: AccessScope = "owned"
    ) -> t.GetSessionResponse:
        """The training runs and samplers of a session."""
        return self._bridge.call(self._inner.get_session, session_id, access_scope)

    def list_sessions(
        self, limit: int = 20, offset: int = 0, access_scope: AccessScope = "owned"
    ) -> t.ListSessionsResponse:
        """A page of your session ids."""
        return self._bridge.call(self._inner.list_sessions, limit, offset, access_scope)

    def assign_session_project(self, session_id: str, project_id: str) -> None:
        """Move a session into a project."""
        self._bridge.call(self._inner.assign_session_project, session_id, project_id)

    def get_audit_log(
        self, event_type: t.AuditEventType = "all", day: date | None = None
    ) -> t.AuditLogResponse:
        """Audit log entries of one UTC day (default today)."""
        return self._bridge.call(self._inner.get_audit_log, event_type, day)
