"""``POST copy_weights`` (tinker 0.38, protocol §4.9): a checkpoint copied into a new training run.

The source is a checkpoint the caller may read (their own, or a published one:
anything else is 404, as for every checkpoint route). The copy keeps the
source's kind (``weights`` or ``sampler_weights``) and name and belongs to a new
training run of the caller, which holds only the copy:

* with ``session_id`` and ``model_seq_id``: run ``<session_id>:train:<model_seq_id>``
  of that (live, own) session -- the slot a ``create_model`` would take, so a
  slot already used is refused;
* with ``destination_project_id`` (and no session): run ``copy-<hex>:train:0``,
  outside any session. This server keeps no projects: the project id is
  recorded in the audit event (``checkpoint_copied``) and nowhere else.

``ttl_seconds`` (3600 to 10 years, as tinker documents; absent: no expiry) sets
the copy's expiry; the source's is not inherited. The copy is written like any
checkpoint: files staged (hard links to the source's immutable files, else
copies), fsynced, then committed atomically by the store, which audits
``checkpoint_saved``; the read is audited in the source owner's log
(``checkpoint_read``, purpose ``copy_weights``).

``weights_access_token`` (body field or ``X-Tinker-Weights-Access-Token``
header), which names another account's credentials, is refused with 400:
this server has no cross-account access.

Idempotency: tinker sends one ``X-Idempotency-Key`` for all retries of a copy.
A repeated key (same caller) answers the first copy's path; a retry that
arrives while the first attempt is still copying gets 409 (retryable), and a
key reused for a different request gets 400.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from typing import TYPE_CHECKING, Final

import anyio.to_thread

from mint_async import _codec
from mint_async._exceptions import InvalidInputError
from mint_async.types import CopyWeightsRequest, CopyWeightsResponse

from ._checkpoints import read_checkpoint
from ._durable import is_temp
from ._http import HTTPError, Request, Response, json_response
from ._store import CheckpointMeta, RunMeta, parse_path

if TYPE_CHECKING:
    from ._core import ServerCore

__all__ = ["TTL_MAX", "TTL_MIN", "copy_weights"]

TTL_MIN: Final = 3600
TTL_MAX: Final = 10 * 365 * 24 * 3600
_PENDING: Final = ""
_IDEMPOTENCY_MAX: Final = 10_000
_META: Final = "_checkpoint.json"


def _link_or_copy(src: str, dst: str) -> str:
    """Hard-link a checkpoint file (committed files are never written again), else copy it."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def _ignore(_directory: str, names: list[str]) -> set[str]:
    return {n for n in names if n == _META or is_temp(n)}


def _check(body: CopyWeightsRequest, req: Request) -> None:
    if body.weights_access_token is not None or req.header(b"x-tinker-weights-access-token"):
        raise HTTPError(
            400,
            "weights_access_token (copying another account's checkpoint) is not supported by "
            "this server: copy your own checkpoints or published ones",
        )
    if body.session_id is not None:
        if body.model_seq_id is None or body.model_seq_id < 0:
            raise HTTPError(400, "session_id needs model_seq_id (an int >= 0)")
        if body.destination_project_id is not None:
            raise HTTPError(400, "give destination_project_id or session_id, not both")
    elif body.model_seq_id is not None:
        raise HTTPError(400, "model_seq_id needs session_id")
    elif body.destination_project_id is None:
        raise HTTPError(400, "give destination_project_id, or session_id and model_seq_id")
    ttl = body.ttl_seconds
    if ttl is not None and not TTL_MIN <= ttl <= TTL_MAX:
        raise HTTPError(
            400,
            f"ttl_seconds must be between {TTL_MIN} (1 hour) and {TTL_MAX} (10 years), got {ttl}",
        )
    try:
        parse_path(body.source_path)
    except InvalidInputError as exc:
        raise HTTPError(400, str(exc)) from None


async def copy_weights(core: ServerCore, req: Request) -> Response:
    """``copy_weights``: answers ``{"tinker_path": <the copy>}``."""
    core.require_running()
    body = _codec.decode(CopyWeightsRequest, req.body)
    _check(body, req)
    key = req.header(b"x-idempotency-key")
    slot = f"copy_weights\0{req.owner}\0{key}" if key else None
    digest = hashlib.sha256(req.body).hexdigest()
    if slot is not None and slot in core.idempotent:
        done = core.idempotent[slot]
        if done == _PENDING:
            raise HTTPError(409, "this copy (same X-Idempotency-Key) is still in progress")
        digest_done, _, path = done.partition(" ")
        if digest_done != digest:
            raise HTTPError(400, "X-Idempotency-Key reused for a different copy_weights request")
        core.state.duplicates += 1
        return json_response(CopyWeightsResponse(tinker_path=path))
    if slot is not None:
        if len(core.idempotent) >= _IDEMPOTENCY_MAX:
            core.idempotent.clear()
        core.idempotent[slot] = _PENDING
    try:
        copy = await _copy(core, req, body)
    except BaseException:
        if slot is not None:
            core.idempotent.pop(slot, None)
        raise
    if slot is not None:
        core.idempotent[slot] = f"{digest} {copy.tinker_path}"
    return json_response(CopyWeightsResponse(tinker_path=copy.tinker_path))


async def _copy(core: ServerCore, req: Request, body: CopyWeightsRequest) -> CheckpointMeta:
    _, store, executor = core.require_running()
    if body.session_id is not None:
        session = core.session(req.owner, body.session_id)
        run_id = f"{session.session_id}:train:{body.model_seq_id}"
        if run_id in core.state.models or store.run(run_id) is not None:
            raise HTTPError(
                400, f"training run {run_id} exists: model_seq_id {body.model_seq_id} is used"
            )
        session_id: str | None = session.session_id
    else:
        session, session_id = None, None
        run_id = f"copy-{uuid.uuid4().hex[:16]}:train:0"
    try:
        source, directory = read_checkpoint(core, req.owner, body.source_path, "copy_weights")
    except InvalidInputError as exc:
        raise HTTPError(404, str(exc)) from None
    run = RunMeta(
        training_run_id=run_id,
        owner=req.owner,
        base_model=source.base_model,
        lora_rank=source.lora_rank,
        train_unembed=source.train_unembed,
        train_mlp=source.train_mlp,
        train_attn=source.train_attn,
        session_id=session_id,
    )
    meta = CheckpointMeta(
        training_run_id=run_id,
        kind=source.kind,
        name=source.name,
        owner=req.owner,
        base_model=source.base_model,
        lora_rank=source.lora_rank,
        train_unembed=source.train_unembed,
        train_mlp=source.train_mlp,
        train_attn=source.train_attn,
    )

    def blocking() -> CheckpointMeta:
        staging = store.staging_dir()
        try:
            shutil.copytree(
                directory,
                staging,
                ignore=_ignore,
                copy_function=_link_or_copy,
                dirs_exist_ok=True,
            )
            store.save_run(run)
            if body.ttl_seconds is not None:
                meta.expires_at = meta.created + body.ttl_seconds
            return store.commit(staging, meta, overwrite=False)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    copy = await executor.call(blocking, io=True)
    if session is not None:
        session.model_ids.append(run_id)
    await anyio.to_thread.run_sync(
        lambda: store.record(
            "checkpoint_copied",
            copy,
            source_path=source.tinker_path,
            destination_project_id=body.destination_project_id,
            session_id=session_id,
            ttl_seconds=body.ttl_seconds,
        )
    )
    return copy
