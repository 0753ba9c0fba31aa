"""The audit log: one JSON event per line in ``audit.jsonl``, per owner.

It records when training runs were created and when checkpoints were saved,
read (with a purpose), published, unpublished, given a TTL, deleted or
expired (``GET /api/v1/audit``). It is appended to, line by line, in a file
only the server's user can read (``0o600``); a restart reads it back, and a
torn last line (a crash mid-append) is cut off.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ._durable import append_private
from ._metadata import CheckpointMeta, RunMeta

__all__ = ["AuditEvent", "AuditLog"]


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

    @classmethod
    def about(
        cls,
        event: str,
        meta: CheckpointMeta | RunMeta,
        *,
        actor: str | None = None,
        purpose: str | None = None,
        **details: Any,
    ) -> AuditEvent:
        """An event about a checkpoint or a run, stamped now, in its owner's log.

        ``actor`` is who did it (default: the owner; a public checkpoint's
        reader may be someone else); ``purpose`` is set on reads.
        """
        details = {"actor": actor or meta.owner, "model_id": meta.training_run_id, **details}
        tinker_path = None
        if isinstance(meta, CheckpointMeta):
            tinker_path = meta.tinker_path
            details.update(tinker_path=tinker_path, checkpoint_type=meta.checkpoint_type)
        if purpose is not None:
            details["purpose"] = purpose
        return cls(
            timestamp=time.time(),
            event=event,
            owner=meta.owner,
            model_id=meta.training_run_id,
            tinker_path=tinker_path,
            purpose=purpose,
            details=details,
        )


class AuditLog:
    """The events of ``path``, in memory and appended to the file. Blocking methods."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()  # appends come from worker threads and the event loop
        self._events: list[AuditEvent] = []

    def load(self) -> None:
        """Read the file back (cutting a torn last line off the file too)."""
        if not self._path.exists():
            return
        text = self._path.read_text()
        if not text.endswith("\n"):  # cut a torn last line, or the next append would join it
            text = text[: text.rfind("\n") + 1]
            with self._path.open("r+") as f:
                f.truncate(len(text.encode()))
        events: list[AuditEvent] = []
        for line in text.splitlines():
            try:
                events.append(AuditEvent(**json.loads(line)))
            except (ValueError, TypeError):
                continue  # a line torn by a crash mid-append, or not ours
        with self._lock:
            self._events = events

    def append(self, entry: AuditEvent) -> None:
        """Record ``entry`` (one line; the file is created ``0o600``)."""
        line = json.dumps(asdict(entry)) + "\n"
        with self._lock:
            self._events.append(entry)
            with append_private(self._path) as f:
                f.write(line)

    def of(self, owner: str) -> list[AuditEvent]:
        """``owner``'s events, oldest first."""
        with self._lock:
            return [e for e in self._events if e.owner == owner]
