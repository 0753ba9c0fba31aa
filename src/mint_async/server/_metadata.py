"""What the server keeps about training runs and checkpoints, and how the REST API shows it.

Checkpoint names and ``tinker://<run>/<kind>/<name>`` paths (``check_name``,
``parse_path``), the metadata records persisted next to runs and checkpoints
(:class:`RunMeta`, :class:`CheckpointMeta`) and their REST form (``to_wire``,
:func:`run_to_wire`). No disk access here: :mod:`._store` persists these.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal

from mint_async._exceptions import InvalidInputError
from mint_async.types import Checkpoint, TrainingRun

__all__ = ["CheckpointMeta", "Kind", "RunMeta", "check_name", "parse_path", "run_to_wire"]

Kind = Literal["weights", "sampler_weights"]
_KIND_TYPE: Final = {"weights": "training", "sampler_weights": "sampler"}


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

    @property
    def checkpoint_type(self) -> str:
        """``training`` or ``sampler``, as the REST API names the kind."""
        return _KIND_TYPE[self.kind]

    def expired(self, now: float) -> bool:
        """Whether the TTL has run out."""
        return self.expires_at is not None and self.expires_at <= now

    def to_wire(self) -> Checkpoint:
        """The REST representation."""
        return Checkpoint(
            checkpoint_id=self.checkpoint_id,
            checkpoint_type=self.checkpoint_type,  # type: ignore[arg-type]
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
