"""The on-disk checkpoint store: training-run metadata and checkpoint directories.

What a run or a checkpoint record holds, and how names and ``tinker://`` paths
are checked, is :mod:`._metadata`'s (its names are re-exported here); what
happened to them is the audit log's (:mod:`._audit`). This module keeps them on disk.

Layout under the data directory (ids are percent-quoted into file names)::

    runs/<run_id>.json                          training run metadata
    audit.jsonl                                 the audit log, one event per line
    .jwt_secret                                 the HS256 secret of issued JWTs
    checkpoints/<run_id>/<kind>/<name>/         one checkpoint's slot:
        _current                                  names the live version
        _v-<hex>/                                 a version: backend files + _checkpoint.json
    .staging/<uuid>/                            checkpoints being written (and trash)

Saving is crash-atomic, overwrites included: at every instant a reader or a
restart sees either the old complete version or the new one. The backend
writes into a staging directory; its files and metadata are fsynced; it is
renamed into the slot as a new ``_v-*`` version (invisible: ``_current`` still
names the old one); then ``_current`` is replaced with ``os.replace`` -- the
commit point. The old version is removed only later, by :meth:`prune` once
``SUPERSEDED_GRACE`` has passed (a load or an archive may have resolved it
just before; the server's sweeper prunes). :meth:`open`
finishes or undoes whatever a crash interrupted: it keeps the version
``_current`` names and removes every other version, temp file and the
staging area. Deleting renames the whole slot into ``.staging`` in one step.
Slots written before versioning (files directly in ``<name>/``) are read in
place and replaced the same way on overwrite. Metadata files are replaced
with ``os.replace`` after an fsync. A restart with the same data directory
rebuilds the index from disk, so checkpoints are listed and loadable again.

Permissions: everything the store creates is private -- directories
``0o700``, files ``0o600``, set explicitly whatever the umask (see
``_durable``). :meth:`open` tightens what an older version left looser; the
data directory itself is created ``0o700``, but an existing one keeps its
mode (it may be shared on purpose) and a looser one is logged as a warning.

The audit log (``_audit``) records, per owner, what happened to runs and
checkpoints; :meth:`CheckpointStore.record` is how the server writes to it.

Every method that touches the disk is blocking: callers run it in a worker
thread. The in-memory index is guarded by a lock because the event loop reads
it while worker threads commit; a second lock serializes changes on disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tarfile
import tempfile
import threading
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from mint_async._exceptions import InvalidInputError

from ._audit import AuditEvent as AuditEvent
from ._audit import AuditLog
from ._durable import (
    DIR_MODE,
    check_root,
    fsync_path,
    is_temp,
    make_private,
    mkdir_private,
    remove_path,
    seal_tree,
    write_private,
)
from ._metadata import CheckpointMeta as CheckpointMeta
from ._metadata import Kind as Kind
from ._metadata import RunMeta as RunMeta
from ._metadata import check_name as check_name
from ._metadata import parse_path as parse_path
from ._metadata import run_to_wire as run_to_wire

__all__ = [
    "AuditEvent",
    "CheckpointExistsError",
    "CheckpointMeta",
    "CheckpointStore",
    "RunMeta",
    "parse_path",
]

_META: Final = "_checkpoint.json"
_AUDIT: Final = "audit.jsonl"
_SECRET: Final = ".jwt_secret"  # noqa: S105 - a file name, not a secret
_CURRENT: Final = "_current"
_VERSION_PREFIX: Final = "_v-"
SUPERSEDED_GRACE: Final = 60.0
"""Seconds a replaced version stays on disk, for readers that resolved it just before."""


class CheckpointExistsError(InvalidInputError):
    """A named checkpoint exists and overwrite was not asked for."""


def _is_version(name: str) -> bool:
    return name.startswith(_VERSION_PREFIX) and "/" not in name and name.isprintable()


class CheckpointStore:
    """Checkpoints and run metadata under one data directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._runs_dir = root / "runs"
        self._ckpt_dir = root / "checkpoints"
        self._staging = root / ".staging"
        self._lock = threading.Lock()
        self._disk_lock = threading.Lock()  # one change of the checkpoint tree at a time
        self._runs: dict[str, RunMeta] = {}
        self._checkpoints: dict[tuple[str, str], CheckpointMeta] = {}
        # The live version directory of each indexed checkpoint ("" = an unversioned slot).
        self._versions: dict[tuple[str, str], str] = {}
        # Replaced versions (or an unversioned slot's files) -> monotonic time to remove them.
        self._superseded: dict[Path, float] = {}
        self._audit = AuditLog(root / _AUDIT)

    # -- startup -------------------------------------------------------------

    def open(self) -> None:
        """Create the layout, finish or undo interrupted writes, and index what is on disk."""
        check_root(self.root)
        for name in ("runs", "checkpoints", _AUDIT, _SECRET):
            make_private(self.root / name)
        for d in (self._runs_dir, self._ckpt_dir):
            mkdir_private(d, root=self.root)
        shutil.rmtree(self._staging, ignore_errors=True)
        mkdir_private(self._staging, root=self.root)
        for path in self._runs_dir.glob("*.json"):
            try:
                run = RunMeta(**json.loads(path.read_text()))
            except (ValueError, TypeError):
                continue  # a foreign or damaged file is not ours to interpret
            self._runs[run.training_run_id] = run
        for path in self._runs_dir.iterdir():
            if is_temp(path.name):
                path.unlink()
        for slot in self._ckpt_dir.glob("*/*/*"):
            version = self._recover(slot) if slot.is_dir() else None
            if version is None:
                continue
            try:
                meta = CheckpointMeta(**json.loads((slot / version / _META).read_text()))
            except (ValueError, TypeError):
                continue
            key = (meta.training_run_id, meta.checkpoint_id)
            self._checkpoints[key] = meta
            self._versions[key] = version
        self._audit.load()

    @staticmethod
    def _recover(slot: Path) -> str | None:
        """Bring a slot back to one complete version; its directory name, or None if empty.

        ``_current`` naming a complete version is the truth (a crash after the
        commit point); without it, files directly in the slot are an
        unversioned checkpoint and any ``_v-*`` beside them never committed.
        """
        try:
            current = (slot / _CURRENT).read_text()
        except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
            current = None
        keep: str | None = None
        if current is not None and _is_version(current) and (slot / current / _META).is_file():
            keep = current
        elif (slot / _META).is_file():
            keep = ""
        for entry in slot.iterdir():
            name = entry.name
            ours = name == _CURRENT or _is_version(name) or is_temp(name)
            if keep and name in (_CURRENT, keep):
                continue
            if keep or ours:  # a version owns the slot; else only drop our own leftovers
                remove_path(entry)
        if keep is None:
            with contextlib.suppress(OSError):  # foreign files stay: not ours to delete
                slot.rmdir()
            return None
        for entry in (slot / keep).iterdir():
            if is_temp(entry.name):  # a metadata update cut short
                entry.unlink()
        return keep

    def jwt_secret(self) -> bytes:
        """The JWT secret kept in the data dir (made on first use), so tokens survive a restart."""
        path = self.root / _SECRET
        try:
            secret = path.read_bytes()
        except FileNotFoundError:
            secret = b""
        if not secret:  # missing, or emptied by a crash of an older version's plain write
            secret = secrets.token_bytes(32)
            write_private(path, secret)
        return secret

    # -- audit log ---------------------------------------------------------------

    def record(
        self,
        event: str,
        meta: CheckpointMeta | RunMeta,
        *,
        actor: str | None = None,
        purpose: str | None = None,
        **details: Any,
    ) -> None:
        """Append an audit event about a checkpoint or a run to its owner's log (see AuditEvent.about)."""
        self._audit.append(AuditEvent.about(event, meta, actor=actor, purpose=purpose, **details))

    def audit(self, owner: str) -> list[AuditEvent]:
        """``owner``'s audit events, oldest first."""
        return self._audit.of(owner)

    # -- runs ------------------------------------------------------------------

    def save_run(self, run: RunMeta) -> None:
        """Persist (and index) a new run's metadata. Blocking."""
        with self._lock:
            self._runs[run.training_run_id] = run
            data = json.dumps(asdict(run)).encode()
        write_private(self._runs_dir / f"{quote(run.training_run_id, safe='')}.json", data)
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

    def _slot(self, meta: CheckpointMeta) -> Path:
        return (
            self._ckpt_dir
            / quote(meta.training_run_id, safe="")
            / meta.kind
            / quote(meta.name, safe="")
        )

    def directory(self, meta: CheckpointMeta) -> Path:
        """Where a checkpoint's files are (its live version)."""
        version = self._versions.get((meta.training_run_id, meta.checkpoint_id), "")
        return self._slot(meta) / version if version else self._slot(meta)

    def staging_dir(self) -> Path:
        """A fresh empty directory for the backend to write a checkpoint into. Blocking."""
        path = self._staging / uuid.uuid4().hex
        os.mkdir(path, DIR_MODE)
        os.chmod(path, DIR_MODE)
        return path

    def _refuse(self, meta: CheckpointMeta, staging: Path, *, overwrite: bool) -> bool:
        """Whether a live checkpoint is in ``meta``'s place (raises unless ``overwrite``)."""
        with self._lock:
            existing = self._checkpoints.get((meta.training_run_id, meta.checkpoint_id))
        if existing is not None and not overwrite and not existing.expired(time.time()):
            shutil.rmtree(staging, ignore_errors=True)
            msg = f"checkpoint {meta.tinker_path} exists (pass overwrite=True to replace it)"
            raise CheckpointExistsError(msg)
        return existing is not None

    def commit(self, staging: Path, meta: CheckpointMeta, *, overwrite: bool) -> CheckpointMeta:
        """Atomically publish a staged checkpoint under ``meta``'s path. Blocking.

        Crash-atomic with respect to the previous version (see the module docstring).
        """
        key = (meta.training_run_id, meta.checkpoint_id)
        self._refuse(meta, staging, overwrite=overwrite)  # fail fast, before the fsyncs
        meta.size_bytes = seal_tree(staging)
        write_private(staging / _META, json.dumps(asdict(meta)).encode())
        slot = self._slot(meta)
        version = f"{_VERSION_PREFIX}{uuid.uuid4().hex}"
        with self._disk_lock:
            overwrote = self._refuse(meta, staging, overwrite=overwrite)
            mkdir_private(slot, root=self._ckpt_dir)
            os.rename(staging, slot / version)  # present, but not live yet
            fsync_path(slot)
            write_private(slot / _CURRENT, version.encode())  # the commit point
            # The old version (or an unversioned slot's files) stays a while: a load or an
            # archive may have resolved it a moment ago. open() drops it after a crash.
            due = time.monotonic() + SUPERSEDED_GRACE
            with self._lock:
                self._checkpoints[key] = meta
                self._versions[key] = version
                for entry in slot.iterdir():
                    if entry.name not in (_CURRENT, version):
                        self._superseded.setdefault(entry, due)
        self.record(
            "checkpoint_saved",
            meta,
            size_bytes=meta.size_bytes,
            overwrote=overwrote,
            expires_at=meta.expires_at,
        )
        return meta

    def superseded(self) -> int:
        """How many replaced versions wait for :meth:`prune`."""
        return len(self._superseded)

    def prune(self, now: float | None = None) -> None:
        """Remove replaced versions whose grace period is over (``now``: monotonic). Blocking."""
        now = time.monotonic() if now is None else now
        with self._lock:
            due = [path for path, when in self._superseded.items() if when <= now]
            for path in due:
                del self._superseded[path]
        for path in due:  # unique names, never live again: no need to hold the disk lock
            remove_path(path)  # gone already if its slot was deleted meanwhile

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

    def _indexed(self, meta: CheckpointMeta) -> bool:
        return self._checkpoints.get((meta.training_run_id, meta.checkpoint_id)) is meta

    def update(self, meta: CheckpointMeta, event: str, **details: Any) -> None:
        """Persist changed metadata (public flag, TTL) and audit it as ``event``. Blocking.

        A no-op if ``meta`` was replaced (overwritten or deleted) meanwhile.
        """
        with self._disk_lock:
            with self._lock:
                if not self._indexed(meta):
                    return
                data = json.dumps(asdict(meta)).encode()
            write_private(self.directory(meta) / _META, data)
        self.record(event, meta, **details)

    def delete(self, meta: CheckpointMeta, *, expired: bool = False) -> None:
        """Remove a checkpoint (index first, then files). Blocking.

        A no-op if ``meta`` was replaced (overwritten or deleted) meanwhile, so a
        sweep of an expired version cannot remove the version that replaced it.
        """
        key = (meta.training_run_id, meta.checkpoint_id)
        trash = self._staging / f"deleted-{uuid.uuid4().hex}"
        with self._disk_lock:
            with self._lock:
                if not self._indexed(meta):
                    return
                del self._checkpoints[key]
                self._versions.pop(key, None)
            slot = self._slot(meta)
            try:
                os.rename(slot, trash)  # gone in one step; open() empties .staging
            except FileNotFoundError:
                pass
            else:
                fsync_path(slot.parent)
        shutil.rmtree(trash, ignore_errors=True)
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
                if path.name != _META and not is_temp(path.name):
                    tar.add(path, arcname=f"{meta.name}/{path.name}")
        return Path(name)
