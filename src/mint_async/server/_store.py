"""The on-disk checkpoint store: training-run metadata and checkpoint directories.

Layout under the data directory (ids are percent-quoted into file names)::

    runs/<run_id>.json                          training run metadata
    audit.jsonl                                 the audit log, one event per line
    checkpoints/<run_id>/<kind>/<name>/         backend files + _checkpoint.json
    .staging/<uuid>/                            checkpoints being written

Writes are atomic: the backend writes into a staging directory, every file and
the directory are fsynced, then the directory is renamed into place (and the
parent fsynced). Metadata files are replaced with ``os.replace`` after an
fsync. A restart with the same data directory rebuilds the index from disk,
so checkpoints are listed and loadable again.

The audit log records, per owner, when training runs were created and when
checkpoints were saved, published, unpublished, given a TTL, deleted or
expired (``GET /api/v1/audit``). It is appended to, line by line; a restart
reads it back, and a torn last line (a crash mid-append) is cut off.

Every method that touches the disk is blocking: callers run it in a worker
thread. The in-memory index is guarded by a lock because the event loop reads
it while worker threads commit.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import quote

from mint_async._exceptions import InvalidInputError
from mint_async.types import Checkpoint, TrainingRun

__all__ = [
    "AuditEvent",
    "CheckpointExistsError",
    "CheckpointMeta",
    "CheckpointStore",
    "RunMeta",
    "parse_path",
]

Kind = Literal["weights", "sampler_weights"]
_META: Final = "_checkpoint.json"
_KIND_TYPE: Final = {"weights": "training", "sampler_weights": "sampler"}
_AUDIT: Final = "audit.jsonl"


class CheckpointExistsError(InvalidInputError):
    """A named checkpoint exists and overwrite was not asked for."""


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def check_name(name: str) -> None:
    """Raise InvalidInputError unless ``name`` can name a checkpoint."""
    if not name or name in (".", "..") or "/" in name or len(name) > 200 or not name.isprintable():
        msg = f"invalid checkpoint name {name!r}: 1-200 printable characters, no '/'"
        raise InvalidInputError(msg)


def parse_path(path: str) -> tuple[str, Kind, str]:
    """``(run_id, kind, name)`` of ``tinker://<run>/<kind>/<name>`` (``mint://`` accepted too)."""
    for scheme in ("tinker://", "mint://"):
        if path.startswith(scheme):
            parts = path.removeprefix(scheme).split("/")
            if len(parts) == 3 and all(parts) and parts[1] in _KIND_TYPE:
                return parts[0], parts[1], parts[2]  # type: ignore[return-value]
    msg = f"not a checkpoint path (tinker://<training_run_id>/weights|sampler_weights/<name>): {path!r}"
    raise InvalidInputError(msg)


@dataclass(slots=True)
class RunMeta:
    """A training run, as persisted."""

    training_run_id: str
    owner: str
    base_model: str
    lora_rank: int
    train_unembed: bool = True
    train_mlp: bool = True
    train_attn: bool = True
    user_metadata: dict[str, str] | None = None
    session_id: str | None = None
    created: float = field(default_factory=time.time)
    last_request_time: float = field(default_factory=time.time)


@dataclass(slots=True)
class CheckpointMeta:
    """A checkpoint, as persisted next to its files."""

    training_run_id: str
    kind: Kind
    name: str
    owner: str
    base_model: str
    lora_rank: int
    train_unembed: bool = True
    train_mlp: bool = True
    train_attn: bool = True
    created: float = field(default_factory=time.time)
    size_bytes: int = 0
    public: bool = False
    expires_at: float | None = None

    @property
    def checkpoint_id(self) -> str:
        """``<kind>/<name>``."""
        return f"{self.kind}/{self.name}"

    @property
    def tinker_path(self) -> str:
        """``tinker://<run>/<kind>/<name>``."""
        return f"tinker://{self.training_run_id}/{self.kind}/{self.name}"

    def expired(self, now: float) -> bool:
        """Whether the TTL has run out."""
        return self.expires_at is not None and self.expires_at <= now

    def to_wire(self) -> Checkpoint:
        """The REST representation."""
        return Checkpoint(
            checkpoint_id=self.checkpoint_id,
            checkpoint_type=_KIND_TYPE[self.kind],  # type: ignore[arg-type]
            time=_when(self.created),
            tinker_path=self.tinker_path,
            size_bytes=self.size_bytes,
            public=self.public,
            expires_at=None if self.expires_at is None else _when(self.expires_at),
        )


def run_to_wire(run: RunMeta, checkpoints: list[CheckpointMeta]) -> TrainingRun:
    """The REST representation of a run, with its latest checkpoints of each type."""
    latest: dict[str, CheckpointMeta] = {}
    for ckpt in sorted(checkpoints, key=lambda c: c.created):
        latest[ckpt.kind] = ckpt
    last_train, last_sampler = latest.get("weights"), latest.get("sampler_weights")
    return TrainingRun(
        training_run_id=run.training_run_id,
        base_model=run.base_model,
        model_owner=run.owner,
        is_lora=True,
        last_request_time=_when(run.last_request_time),
        lora_rank=run.lora_rank,
        last_checkpoint=last_train.to_wire() if last_train else None,
        last_sampler_checkpoint=last_sampler.to_wire() if last_sampler else None,
        user_metadata=run.user_metadata,
        created_at=_when(run.created),
    )


@dataclass(slots=True, frozen=True)
class AuditEvent:
    """One audit log entry, as persisted (``timestamp`` in epoch seconds)."""

    timestamp: float
    event: str
    owner: str
    model_id: str | None = None
    tinker_path: str | None = None
    purpose: str | None = None
    details: dict[str, Any] = field(default_factory=dict[str, Any])


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with tmp.open("w") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    _fsync_dir(path.parent)


class CheckpointStore:
    """Checkpoints and run metadata under one data directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._runs_dir = root / "runs"
        self._ckpt_dir = root / "checkpoints"
        self._staging = root / ".staging"
        self._lock = threading.Lock()
        self._runs: dict[str, RunMeta] = {}
        self._checkpoints: dict[tuple[str, str], CheckpointMeta] = {}
        self._audit: list[AuditEvent] = []

    # -- startup -------------------------------------------------------------

    def open(self) -> None:
        """Create the layout, drop unfinished writes, and index what is on disk."""
        for d in (self._runs_dir, self._ckpt_dir):
            d.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self._staging, ignore_errors=True)
        self._staging.mkdir()
        for path in self._runs_dir.glob("*.json"):
            try:
                run = RunMeta(**json.loads(path.read_text()))
            except (ValueError, TypeError):
                continue  # a foreign or damaged file is not ours to interpret
            self._runs[run.training_run_id] = run
        for meta_file in self._ckpt_dir.glob(f"*/*/*/{_META}"):
            try:
                meta = CheckpointMeta(**json.loads(meta_file.read_text()))
            except (ValueError, TypeError):
                continue
            self._checkpoints[(meta.training_run_id, meta.checkpoint_id)] = meta
        self._audit = self._read_audit()

    # -- audit log ---------------------------------------------------------------

    def _read_audit(self) -> list[AuditEvent]:
        path = self.root / _AUDIT
        if not path.exists():
            return []
        text = path.read_text()
        if not text.endswith("\n"):  # cut a torn last line, or the next append would join it
            text = text[: text.rfind("\n") + 1]
            with path.open("r+") as f:
                f.truncate(len(text.encode()))
        events: list[AuditEvent] = []
        for line in text.splitlines():
            try:
                events.append(AuditEvent(**json.loads(line)))
            except (ValueError, TypeError):
                continue  # a line torn by a crash mid-append, or not ours
        return events

    def record(
        self,
        event: str,
        meta: CheckpointMeta | RunMeta,
        *,
        actor: str | None = None,
        purpose: str | None = None,
        **details: Any,
    ) -> None:
        """Append an audit event about a checkpoint or a run to its owner's log.

        ``actor`` is who did it (default: the owner; a public checkpoint's
        reader may be someone else); ``purpose`` is set on reads.
        """
        details = {"actor": actor or meta.owner, "model_id": meta.training_run_id, **details}
        tinker_path = None
        if isinstance(meta, CheckpointMeta):
            tinker_path = meta.tinker_path
            details.update(tinker_path=tinker_path, checkpoint_type=_KIND_TYPE[meta.kind])
        if purpose is not None:
            details["purpose"] = purpose
        entry = AuditEvent(
            timestamp=time.time(),
            event=event,
            owner=meta.owner,
            model_id=meta.training_run_id,
            tinker_path=tinker_path,
            purpose=purpose,
            details=details,
        )
        line = json.dumps(asdict(entry)) + "\n"
        with self._lock:
            self._audit.append(entry)
            with (self.root / _AUDIT).open("a") as f:
                f.write(line)

    def audit(self, owner: str) -> list[AuditEvent]:
        """``owner``'s audit events, oldest first."""
        with self._lock:
            return [e for e in self._audit if e.owner == owner]

    # -- runs ------------------------------------------------------------------

    def save_run(self, run: RunMeta) -> None:
        """Persist (and index) a new run's metadata. Blocking."""
        with self._lock:
            self._runs[run.training_run_id] = run
            data = asdict(run)
        _write_json_atomic(self._runs_dir / f"{quote(run.training_run_id, safe='')}.json", data)
        self.record("training_run_created", run, base_model=run.base_model, lora_rank=run.lora_rank)

    def run(self, run_id: str) -> RunMeta | None:
        """A run by id."""
        return self._runs.get(run_id)

    def runs(self) -> list[RunMeta]:
        """Every run, newest first."""
        with self._lock:
            runs = list(self._runs.values())
        return sorted(runs, key=lambda r: r.created, reverse=True)

    # -- checkpoints -----------------------------------------------------------

    def directory(self, meta: CheckpointMeta) -> Path:
        """Where a checkpoint's files are."""
        return (
            self._ckpt_dir
            / quote(meta.training_run_id, safe="")
            / meta.kind
            / quote(meta.name, safe="")
        )

    def staging_dir(self) -> Path:
        """A fresh empty directory for the backend to write a checkpoint into. Blocking."""
        path = self._staging / uuid.uuid4().hex
        path.mkdir()
        return path

    def commit(self, staging: Path, meta: CheckpointMeta, *, overwrite: bool) -> CheckpointMeta:
        """Atomically publish a staged checkpoint under ``meta``'s path. Blocking."""
        target = self.directory(meta)
        with self._lock:
            existing = self._checkpoints.get((meta.training_run_id, meta.checkpoint_id))
            if existing is not None and not overwrite and not existing.expired(time.time()):
                shutil.rmtree(staging, ignore_errors=True)
                msg = f"checkpoint {meta.tinker_path} exists (pass overwrite=True to replace it)"
                raise CheckpointExistsError(msg)
        meta.size_bytes = 0
        for path in staging.iterdir():
            meta.size_bytes += path.stat().st_size
            with path.open("rb") as f:
                os.fsync(f.fileno())
        _write_json_atomic(staging / _META, asdict(meta))
        target.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            trash = None
            if target.exists():
                trash = self._staging / f"old-{uuid.uuid4().hex}"
                target.rename(trash)
            staging.rename(target)
            self._checkpoints[(meta.training_run_id, meta.checkpoint_id)] = meta
        _fsync_dir(target.parent)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
        self.record(
            "checkpoint_saved",
            meta,
            size_bytes=meta.size_bytes,
            overwrote=trash is not None,
            expires_at=meta.expires_at,
        )
        return meta

    def get(self, run_id: str, checkpoint_id: str) -> CheckpointMeta | None:
        """A live (unexpired) checkpoint."""
        meta = self._checkpoints.get((run_id, checkpoint_id))
        if meta is None or meta.expired(time.time()):
            return None
        return meta

    def resolve(self, path: str) -> CheckpointMeta | None:
        """The live checkpoint a ``tinker://`` path names; InvalidInputError if malformed."""
        run_id, kind, name = parse_path(path)
        return self.get(run_id, f"{kind}/{name}")

    def checkpoints(self, run_id: str | None = None) -> list[CheckpointMeta]:
        """Live checkpoints (of one run, or all), newest first."""
        now = time.time()
        with self._lock:
            metas = list(self._checkpoints.values())
        return sorted(
            (m for m in metas if not m.expired(now) and run_id in (None, m.training_run_id)),
            key=lambda m: m.created,
            reverse=True,
        )

    def update(self, meta: CheckpointMeta, event: str, **details: Any) -> None:
        """Persist changed metadata (public flag, TTL) and audit it as ``event``. Blocking."""
        with self._lock:
            data = asdict(meta)
        _write_json_atomic(self.directory(meta) / _META, data)
        self.record(event, meta, **details)

    def delete(self, meta: CheckpointMeta, *, expired: bool = False) -> None:
        """Remove a checkpoint (index first, then files). Blocking."""
        with self._lock:
            self._checkpoints.pop((meta.training_run_id, meta.checkpoint_id), None)
        shutil.rmtree(self.directory(meta), ignore_errors=True)
        self.record("checkpoint_expired" if expired else "checkpoint_deleted", meta)

    def expired(self) -> list[CheckpointMeta]:
        """Checkpoints whose TTL has run out (still indexed until deleted)."""
        now = time.time()
        with self._lock:
            return [m for m in self._checkpoints.values() if m.expired(now)]

    def archive(self, meta: CheckpointMeta) -> Path:
        """A temporary ``.tar.gz`` of the checkpoint's files under ``<name>/``. Blocking.

        The caller deletes the file when done.
        """
        fd, name = tempfile.mkstemp(prefix="ckpt-", suffix=".tar.gz", dir=self._staging)
        os.close(fd)
        source = self.directory(meta)
        with tarfile.open(name, "w:gz") as tar:
            for path in sorted(source.iterdir()):
                if path.name != _META:
                    tar.add(path, arcname=f"{meta.name}/{path.name}")
        return Path(name)
