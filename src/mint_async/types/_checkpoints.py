"""Checkpoints, training runs, sessions and the audit log (protocol §4.7, §8.9, §8.10)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import msgspec

from ._base import CheckpointType, WireStruct, check_int, invalid, sent

_KIND_TO_TYPE: Final[dict[str, CheckpointType]] = {
    "weights": "training",
    "sampler_weights": "sampler",
    "external_weights": "external",
}


class ParsedCheckpointTinkerPath(WireStruct, kw_only=True):
    """A parsed ``tinker://<training_run_id>/<kind>/<name>`` path.

    Example::

        p = ParsedCheckpointTinkerPath.from_tinker_path("tinker://s:train:0/weights/ckpt-1")
        assert (p.training_run_id, p.checkpoint_id) == ("s:train:0", "weights/ckpt-1")
    """

    tinker_path: str
    training_run_id: str
    checkpoint_type: CheckpointType
    checkpoint_id: str

    @classmethod
    def from_tinker_path(cls, tinker_path: str) -> ParsedCheckpointTinkerPath:
        """Parse a path; raises InvalidInputError unless it has exactly the grammar above."""
        if not isinstance(tinker_path, str) or not tinker_path.startswith("tinker://"):  # pyright: ignore[reportUnnecessaryIsInstance]
            msg = f"not a tinker path (must start with 'tinker://'): {tinker_path!r}"
            raise invalid(msg)
        parts = tinker_path.removeprefix("tinker://").split("/")
        if len(parts) != 3 or not all(parts):
            msg = f"a tinker path is tinker://<training_run_id>/<kind>/<name>, got {tinker_path!r}"
            raise invalid(msg)
        run_id, kind, name = parts
        ckpt_type = _KIND_TO_TYPE.get(kind)
        if ckpt_type is None:
            msg = (
                f"unknown checkpoint kind {kind!r} in {tinker_path!r} (weights or sampler_weights)"
            )
            raise invalid(msg)
        return cls(
            tinker_path=tinker_path,
            training_run_id=run_id,
            checkpoint_type=ckpt_type,
            checkpoint_id=f"{kind}/{name}",
        )


class Checkpoint(WireStruct, kw_only=True):
    """A saved checkpoint, as listed by the REST API."""

    checkpoint_id: str
    checkpoint_type: CheckpointType
    time: datetime
    tinker_path: str
    size_bytes: int | None = None
    public: bool = sent(False)
    expires_at: datetime | None = None
    user_metadata: dict[str, str] | None = None

    @property
    def id(self) -> str:
        """MinT docs' name for ``checkpoint_id``."""
        return self.checkpoint_id

    @property
    def type(self) -> CheckpointType:
        """MinT docs' name for ``checkpoint_type``."""
        return self.checkpoint_type

    @property
    def timestamp(self) -> datetime:
        """MinT docs' name for ``time``."""
        return self.time

    @property
    def size(self) -> int | None:
        """MinT docs' name for ``size_bytes``."""
        return self.size_bytes


class TrainingRun(WireStruct, kw_only=True):
    """A training run (one LoRA model) and its latest checkpoints."""

    training_run_id: str
    base_model: str
    model_owner: str
    is_lora: bool
    last_request_time: datetime
    corrupted: bool = sent(False)
    lora_rank: int | None = None
    last_checkpoint: Checkpoint | None = None
    last_sampler_checkpoint: Checkpoint | None = None
    user_metadata: dict[str, str] | None = None
    created_at: datetime | None = None
    """MinT docs: when the run was created (optional on the wire)."""

    @property
    def id(self) -> str:
        """MinT docs' name for ``training_run_id``."""
        return self.training_run_id

    @property
    def owner(self) -> str:
        """MinT docs' name for ``model_owner``."""
        return self.model_owner

    @property
    def checkpoints(self) -> list[Checkpoint]:
        """The run's latest training and sampler checkpoints (MinT docs' ``checkpoints``)."""
        return [c for c in (self.last_checkpoint, self.last_sampler_checkpoint) if c is not None]


class Cursor(WireStruct, kw_only=True):
    """Pagination state of a list answer."""

    offset: int
    limit: int
    total_count: int


class TrainingRunsResponse(WireStruct, kw_only=True):
    """A page of training runs."""

    training_runs: list[TrainingRun]
    cursor: Cursor


class CheckpointsListResponse(WireStruct, kw_only=True):
    """A list (or page) of checkpoints."""

    checkpoints: list[Checkpoint]
    cursor: Cursor | None = None


class CheckpointArchiveUrlResponse(WireStruct, kw_only=True):
    """A signed URL to download a checkpoint archive (built from the 302 answer)."""

    url: str
    expires: datetime


class CheckpointFile(WireStruct, kw_only=True):
    """One file of a checkpoint with a presigned download URL (MinT docs)."""

    url: str
    relative_file_name: str
    node_rank: int | None = None
    size_bytes: int | None = None
    last_modified: datetime | None = None


class CheckpointFilesResponse(WireStruct, kw_only=True):
    """Presigned URLs of a checkpoint's files (MinT docs' archive answer)."""

    presigned_urls: list[CheckpointFile]
    cursor: Cursor | None = None
    expires: datetime | None = None


class GetSessionResponse(WireStruct, kw_only=True):
    """The training runs and samplers of a session."""

    training_run_ids: list[str]
    sampler_ids: list[str]
    user_metadata: dict[str, str] | None = None
    display_name: str | None = None


class ListSessionsResponse(WireStruct, kw_only=True):
    """A page of session ids."""

    sessions: list[str]


class SetCheckpointTTLRequest(msgspec.Struct, kw_only=True):
    """Body of ``PUT …/ttl``; ``ttl_seconds: null`` removes the expiry, so null is sent."""

    ttl_seconds: int | None

    def __post_init__(self) -> None:
        if self.ttl_seconds is not None:
            check_int("ttl_seconds", self.ttl_seconds, minimum=1)


class SessionProjectRequest(WireStruct, kw_only=True):
    """Body of ``PUT sessions/{id}/project``."""

    project_id: str


class AuditLogEntry(WireStruct, kw_only=True):
    """One audit log entry."""

    timestamp: datetime
    event: str
    model_id: str | None = None
    tinker_path: str | None = None
    purpose: str | None = None
    event_details: dict[str, Any] | None = None
    """[0.38] Event-specific details."""


class AuditLogResponse(WireStruct, kw_only=True):
    """``GET audit``."""

    entries: list[AuditLogEntry]
