"""Writing and reading checkpoints for requests: the store plus the backend, off the event loop."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from mint_async._exceptions import InvalidInputError

from ._state import Model
from ._store import CheckpointMeta, Kind, check_name

if TYPE_CHECKING:
    from ._core import ServerCore

__all__ = ["check_checkpoint_name", "load_reference", "read_checkpoint", "write_checkpoint"]

_NAME_MAX: Final = 255
"""Bytes in one file name (NAME_MAX on Linux and macOS): a checkpoint name's directory."""


def check_checkpoint_name(name: str) -> None:
    """Raise InvalidInputError unless ``name`` can name a checkpoint *and* its directory.

    The store percent-quotes names into file names, which can triple their length
    (``"é"`` is ``%C3%A9``): a name the file system refuses is the caller's error,
    not an ``OSError`` naming our data directory.
    """
    check_name(name)
    quoted = len(quote(name, safe="").encode())
    if quoted > _NAME_MAX:
        msg = (
            f"checkpoint name too long: {quoted} bytes once percent-encoded, at most "
            f"{_NAME_MAX} (ASCII letters, digits and '-_.~' take one byte each)"
        )
        raise InvalidInputError(msg)


async def write_checkpoint(
    core: ServerCore,
    model: Model,
    handle: Any,
    kind: Kind,
    name: str,
    ttl_seconds: int | None,
    *,
    overwrite: bool,
) -> CheckpointMeta:
    """Save ``model`` as ``tinker://<model_id>/<kind>/<name>`` (atomically, in an I/O thread)."""
    backend, store, executor = core.require_running()
    check_checkpoint_name(name)
    if ttl_seconds is not None and ttl_seconds < 1:
        msg = f"ttl_seconds must be >= 1, got {ttl_seconds}"
        raise InvalidInputError(msg)
    lora = model.lora
    meta = CheckpointMeta(
        training_run_id=model.model_id,
        kind=kind,
        name=name,
        owner=model.owner,
        base_model=model.spec.name,
        lora_rank=lora.rank,
        train_unembed=lora.train_unembed,
        train_mlp=lora.train_mlp,
        train_attn=lora.train_attn,
        expires_at=None if ttl_seconds is None else time.time() + ttl_seconds,
    )

    def blocking() -> CheckpointMeta:
        staging = store.staging_dir()
        try:
            backend.save_state(handle, staging, kind="training" if kind == "weights" else "sampler")
            return store.commit(staging, meta, overwrite=overwrite)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    return await executor.call(blocking, io=True)


def read_checkpoint(
    core: ServerCore, owner: str, path: str, purpose: str
) -> tuple[CheckpointMeta, Path]:
    """The checkpoint ``path`` names, if ``owner`` may read it (theirs or public).

    The read is audited (``checkpoint_read`` with ``purpose``) in the owner's log.
    """
    _, store, _ = core.require_running()
    meta = store.resolve(path)
    if meta is None or (meta.owner != owner and not meta.public):
        msg = f"checkpoint {path!r} not found"
        raise InvalidInputError(msg)
    store.record("checkpoint_read", meta, actor=owner, purpose=purpose)
    return meta, store.directory(meta)


async def load_reference(core: ServerCore, owner: str, reference: str) -> Any:
    """A sampler of a base model name or of a readable checkpoint path."""
    backend, _, executor = core.require_running()
    spec = core.specs.get(reference)
    if spec is not None:
        return await executor.call(lambda: backend.base_sampler(spec))
    meta, directory = read_checkpoint(core, owner, reference, "reference_model")
    ref_spec = core.specs.get(meta.base_model)
    if ref_spec is None:
        msg = f"{reference} is of {meta.base_model!r}, which this server does not serve"
        raise InvalidInputError(msg)
    return await executor.call(lambda: backend.load_sampler(ref_spec, directory), io=True)
