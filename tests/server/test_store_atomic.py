"""Crash atomicity of the checkpoint store: a crash at any step leaves the old or the new version.

Every file-system call that changes the tree (or makes it durable) is a step;
:func:`crash_from` makes the k-th and every later step raise, as a power cut
would stop them all, for every k until the operation completes. A new store
over the same directory must then see one complete version and no leftovers.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Generator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from mint_async.server._store import SUPERSEDED_GRACE, CheckpointMeta, CheckpointStore

RUN = "sess-1:train:0"
OLD = {"a.bin": b"old-a", "b.bin": b"old-b"}
NEW = {"a.bin": b"new-a" * 3, "c.bin": b"new-c"}
_STEPS = ("rename", "replace", "mkdir", "rmdir", "unlink", "fsync", "chmod", "fchmod")


class Crash(BaseException):
    """A simulated crash: no handler of the store may catch it."""


@contextmanager
def crash_from(k: int) -> Generator[None]:
    """Patch os so that its k-th step (1-based) and all later ones raise Crash."""
    count = [0]
    with pytest.MonkeyPatch.context() as mp:
        for name in _STEPS:
            real: Callable[..., Any] = getattr(os, name)

            def step(*args: Any, _real: Callable[..., Any] = real, **kwargs: Any) -> Any:
                count[0] += 1
                if count[0] >= k:
                    raise Crash
                return _real(*args, **kwargs)

            mp.setattr(os, name, step)
        yield


def meta(rank: int) -> CheckpointMeta:
    """Metadata of RUN's weights/ckpt; ``rank`` tells the versions apart (4 old, 8 new)."""
    return CheckpointMeta(
        training_run_id=RUN, kind="weights", name="ckpt", owner="u", base_model="m", lora_rank=rank
    )


def opened(root: Path) -> CheckpointStore:
    """A store opened over ``root``."""
    store = CheckpointStore(root)
    store.open()
    return store


def stage(store: CheckpointStore, files: dict[str, bytes]) -> Path:
    """A staging directory holding ``files``."""
    staging = store.staging_dir()
    for name, content in files.items():
        (staging / name).write_bytes(content)
    return staging


def contents(store: CheckpointStore, m: CheckpointMeta) -> dict[str, bytes]:
    """The backend files of a checkpoint."""
    return {
        p.name: p.read_bytes() for p in store.directory(m).iterdir() if p.name != "_checkpoint.json"
    }


def slot_of(root: Path) -> Path:
    """The directory of RUN's weights/ckpt."""
    return root / "checkpoints" / "sess-1%3Atrain%3A0" / "weights" / "ckpt"


def assert_clean(root: Path) -> None:
    """Nothing of an interrupted operation is left: staging empty, no temp files."""
    assert list((root / ".staging").iterdir()) == []
    assert [p for p in root.rglob("*") if p.name.endswith(".tmp")] == []


def assert_one_version(
    root: Path, *, old: dict[str, bytes] | None, may_be_gone: bool = False
) -> str:
    """After a restart: the checkpoint is entirely old (``old``; None: absent) or entirely new.

    ``may_be_gone``: absent is fine too (a delete). Returns "old", "new" or "gone".
    """
    store = opened(root)
    assert_clean(root)
    got = store.get(RUN, "weights/ckpt")
    if got is None:
        assert (old is None or may_be_gone) and not slot_of(root).exists()
        return "gone"
    files = contents(store, got)
    assert got.size_bytes == sum(map(len, files.values()))
    if got.lora_rank == 8:
        assert files == NEW
        assert sorted(os.listdir(slot_of(root))) == sorted(["_current", store.directory(got).name])
        return "new"
    assert files == old and got.lora_rank == 4
    return "old"


def test_overwrite_is_atomic_at_every_step(tmp_path: Path) -> None:
    """A crash at any step of an overwrite leaves the old or the new version, complete; open cleans up."""
    seen: list[str] = []
    k = 0
    while True:
        k += 1
        root = tmp_path / str(k)
        store = opened(root)
        store.commit(stage(store, OLD), meta(4), overwrite=False)
        staging = stage(store, NEW)
        try:
            with crash_from(k):
                store.commit(staging, meta(8), overwrite=True)
        except Crash:
            seen.append(assert_one_version(root, old=OLD))
            continue
        assert assert_one_version(root, old=OLD) == "new"
        break
    assert k > 5 and "old" in seen and "new" in seen  # the crash points span the commit point


def test_first_save_is_atomic_at_every_step(tmp_path: Path) -> None:
    """A crash at any step of a first save leaves no checkpoint, or the new one complete."""
    k = 0
    while True:
        k += 1
        root = tmp_path / str(k)
        store = opened(root)
        staging = stage(store, NEW)
        try:
            with crash_from(k):
                store.commit(staging, meta(8), overwrite=False)
        except Crash:
            assert_one_version(root, old=None)
            continue
        assert assert_one_version(root, old=None) == "new"
        break
    assert k > 5


def write_unversioned(root: Path) -> None:
    """A checkpoint in the layout of earlier versions: files directly in the slot."""
    slot = slot_of(root)
    slot.mkdir(parents=True)
    for name, content in OLD.items():
        (slot / name).write_bytes(content)
    old = meta(4)
    old.size_bytes = sum(map(len, OLD.values()))
    (slot / "_checkpoint.json").write_text(json.dumps(asdict(old)))


def test_overwriting_an_unversioned_checkpoint_is_atomic(tmp_path: Path) -> None:
    """A slot of the earlier layout is read in place, and overwriting it is atomic at every step."""
    root = tmp_path / "legacy"
    write_unversioned(root)
    store = opened(root)
    got = store.get(RUN, "weights/ckpt")
    assert got is not None and contents(store, got) == OLD
    seen: list[str] = []
    k = 0
    while True:
        k += 1
        root = tmp_path / str(k)
        write_unversioned(root)
        store = opened(root)
        staging = stage(store, NEW)
        try:
            with crash_from(k):
                store.commit(staging, meta(8), overwrite=True)
        except Crash:
            outcome = assert_one_version(root, old=OLD)
            if outcome == "old":  # still the unversioned slot, with nothing beside it
                assert sorted(os.listdir(slot_of(root))) == sorted([*OLD, "_checkpoint.json"])
            seen.append(outcome)
            continue
        assert assert_one_version(root, old=OLD) == "new"
        break
    assert "old" in seen and "new" in seen


def test_delete_and_update_are_atomic_at_every_step(tmp_path: Path) -> None:
    """A crash while deleting leaves the checkpoint whole or gone; while publishing, old or new metadata."""
    seen: list[str] = []
    k = 0
    while True:
        k += 1
        root = tmp_path / f"delete-{k}"
        store = opened(root)
        written = store.commit(stage(store, OLD), meta(4), overwrite=False)
        try:
            with crash_from(k):
                store.delete(written)
        except Crash:
            seen.append(assert_one_version(root, old=OLD, may_be_gone=True))
            continue
        assert opened(root).get(RUN, "weights/ckpt") is None
        assert_clean(root)
        break
    assert "old" in seen and "gone" in seen
    k = 0
    while True:
        k += 1
        root = tmp_path / f"update-{k}"
        store = opened(root)
        written = store.commit(stage(store, OLD), meta(4), overwrite=False)
        written.public = True
        try:
            with crash_from(k):
                store.update(written, "checkpoint_published")
        except Crash:
            assert_one_version(root, old=OLD)
            continue
        again = opened(root).get(RUN, "weights/ckpt")
        assert again is not None and again.public
        assert_clean(root)
        break


def test_a_stale_delete_spares_the_version_that_replaced_it(tmp_path: Path) -> None:
    """Deleting (e.g. expiring) a checkpoint that was overwritten meanwhile leaves the new one."""
    store = opened(tmp_path)
    old = store.commit(stage(store, OLD), meta(4), overwrite=False)
    new = store.commit(stage(store, NEW), meta(8), overwrite=True)
    store.delete(old, expired=True)
    assert store.get(RUN, "weights/ckpt") is new and contents(store, new) == NEW
    assert [e.event for e in store.audit("u")] == ["checkpoint_saved", "checkpoint_saved"]


def test_a_replaced_version_outlives_its_readers_grace(tmp_path: Path) -> None:
    """Files of the version a reader resolved before an overwrite stay until prune (or a restart)."""
    store = opened(tmp_path)
    old = store.commit(stage(store, OLD), meta(4), overwrite=False)
    resolved = store.directory(old)  # a load or an archive resolved it; it reads in a moment
    new = store.commit(stage(store, NEW), meta(8), overwrite=True)
    assert {p.name: p.read_bytes() for p in resolved.iterdir() if p.suffix == ".bin"} == OLD
    assert store.superseded() == 1
    store.prune()  # not due yet
    assert resolved.exists()
    store.prune(time.monotonic() + SUPERSEDED_GRACE)
    assert not resolved.exists() and store.superseded() == 0
    assert contents(store, new) == NEW
    store.commit(stage(store, OLD), meta(4), overwrite=True)
    assert_one_version(tmp_path, old=OLD)  # a restart drops what was left for readers
    assert len(os.listdir(slot_of(tmp_path))) == 2  # _current and its version
