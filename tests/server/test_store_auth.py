"""The checkpoint store (atomic writes, restart, TTL, archives) and the API-key / JWT authenticator."""

from __future__ import annotations

import base64
import json
import tarfile
import time
from pathlib import Path

import pytest

from mint_async import InvalidInputError
from mint_async.server._auth import Authenticator, AuthError, owner_of_key
from mint_async.server._store import (
    CheckpointExistsError,
    CheckpointMeta,
    CheckpointStore,
    Kind,
    RunMeta,
    check_name,
    parse_path,
)

RUN = "sess-1:train:0"


def meta(
    name: str = "ckpt", kind: Kind = "weights", expires_at: float | None = None
) -> CheckpointMeta:
    """Checkpoint metadata of RUN."""
    return CheckpointMeta(
        training_run_id=RUN,
        kind=kind,
        name=name,
        owner="u",
        base_model="m",
        lora_rank=4,
        expires_at=expires_at,
    )


def write(
    store: CheckpointStore,
    m: CheckpointMeta,
    content: bytes = b"weights",
    *,
    overwrite: bool = False,
) -> CheckpointMeta:
    """Stage one file and commit it."""
    staging = store.staging_dir()
    (staging / "lora.npz").write_bytes(content)
    return store.commit(staging, m, overwrite=overwrite)


def test_commit_is_visible_and_survives_a_restart(tmp_path: Path) -> None:
    """Committed checkpoints and runs are indexed again by a new store over the same directory."""
    store = CheckpointStore(tmp_path)
    store.open()
    store.save_run(RunMeta(training_run_id=RUN, owner="u", base_model="m", lora_rank=4))
    written = write(store, meta())
    assert written.size_bytes == len(b"weights")
    assert store.resolve(f"tinker://{RUN}/weights/ckpt") == written
    again = CheckpointStore(tmp_path)
    again.open()
    assert again.run(RUN) is not None
    loaded = again.get(RUN, "weights/ckpt")
    assert loaded is not None and loaded.tinker_path == f"tinker://{RUN}/weights/ckpt"
    assert (again.directory(loaded) / "lora.npz").read_bytes() == b"weights"


def test_overwrite_rules(tmp_path: Path) -> None:
    """An existing name is refused unless overwrite; overwriting replaces the files."""
    store = CheckpointStore(tmp_path)
    store.open()
    write(store, meta(), b"one")
    with pytest.raises(CheckpointExistsError):
        write(store, meta(), b"two")
    write(store, meta(), b"three", overwrite=True)
    got = store.get(RUN, "weights/ckpt")
    assert got is not None and (store.directory(got) / "lora.npz").read_bytes() == b"three"
    assert list((tmp_path / ".staging").iterdir()) == []


def test_unfinished_writes_are_dropped_on_open(tmp_path: Path) -> None:
    """A staging directory left by a crash is removed and never indexed."""
    store = CheckpointStore(tmp_path)
    store.open()
    (store.staging_dir() / "lora.npz").write_bytes(b"half")
    again = CheckpointStore(tmp_path)
    again.open()
    assert again.checkpoints() == [] and list((tmp_path / ".staging").iterdir()) == []


def test_ttl_and_delete(tmp_path: Path) -> None:
    """Expired checkpoints are not listed or resolvable; delete removes files and index."""
    store = CheckpointStore(tmp_path)
    store.open()
    write(store, meta("old", expires_at=time.time() - 1))
    keep = write(store, meta("keep", kind="sampler_weights"))
    assert [m.name for m in store.checkpoints()] == ["keep"]
    assert store.get(RUN, "weights/old") is None and [m.name for m in store.expired()] == ["old"]
    store.delete(keep)
    assert store.checkpoints() == [] and not store.directory(keep).exists()


def test_audit_log_is_per_owner_and_survives_a_restart(tmp_path: Path) -> None:
    """Events are kept per owner, read back after a restart; a line torn by a crash is cut off."""
    store = CheckpointStore(tmp_path)
    store.open()
    store.save_run(RunMeta(training_run_id=RUN, owner="u", base_model="m", lora_rank=4))
    old = write(store, meta("old", expires_at=time.time() - 1))
    store.record("checkpoint_read", old, actor="v", purpose="sampling")
    store.delete(old, expired=True)
    store.save_run(
        RunMeta(training_run_id="sess-2:train:0", owner="w", base_model="m", lora_rank=4)
    )
    expected = [
        ("training_run_created", None, None, "u"),
        ("checkpoint_saved", f"tinker://{RUN}/weights/old", None, "u"),
        ("checkpoint_read", f"tinker://{RUN}/weights/old", "sampling", "v"),
        ("checkpoint_expired", f"tinker://{RUN}/weights/old", None, "u"),
    ]

    def summary(s: CheckpointStore) -> list[tuple[str, str | None, str | None, object]]:
        return [(e.event, e.tinker_path, e.purpose, e.details["actor"]) for e in s.audit("u")]

    assert summary(store) == expected
    assert [e.event for e in store.audit("w")] == ["training_run_created"]
    with (tmp_path / "audit.jsonl").open("a") as f:
        f.write('{"timestamp": 1.0, "event": "checkpoint_sa')  # a crash mid-append
    again = CheckpointStore(tmp_path)
    again.open()
    assert summary(again) == expected
    again.save_run(
        RunMeta(training_run_id="sess-3:train:0", owner="u", base_model="m", lora_rank=4)
    )
    third = CheckpointStore(tmp_path)
    third.open()
    assert summary(third) == [*expected, ("training_run_created", None, None, "u")]


def test_archive_holds_the_files(tmp_path: Path) -> None:
    """The archive is a tar.gz of the checkpoint's files under <name>/ (metadata excluded)."""
    store = CheckpointStore(tmp_path)
    store.open()
    written = write(store, meta("ck"), b"payload")
    path = store.archive(written)
    with tarfile.open(path, "r:gz") as tar:
        assert tar.getnames() == ["ck/lora.npz"]
        member = tar.extractfile("ck/lora.npz")
        assert member is not None and member.read() == b"payload"


def test_paths_and_names() -> None:
    """tinker:// and mint:// paths parse; bad paths and names are user errors."""
    assert parse_path(f"tinker://{RUN}/sampler_weights/x") == (RUN, "sampler_weights", "x")
    assert parse_path(f"mint://{RUN}/weights/x") == (RUN, "weights", "x")
    for bad in ("tinker://a/b", "tinker://a/other/x", "s3://a/weights/x", "tinker://a/weights/x/y"):
        with pytest.raises(InvalidInputError):
            parse_path(bad)
    for name in ("", ".", "..", "a/b", "x" * 201):
        with pytest.raises(InvalidInputError):
            check_name(name)
    check_name("step:10 final")


def test_api_keys_and_jwts() -> None:
    """Keys map to hashed owners; issued JWTs carry sub/iat/exp and verify; others are refused."""
    auth = Authenticator(("sk-a", "sk-b"), b"secret", jwt_ttl=60)
    assert auth.owner("sk-a") == owner_of_key("sk-a") != auth.owner("sk-b")
    assert "sk-a" not in owner_of_key("sk-a")
    token = auth.issue(auth.owner("sk-a"))
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert payload["sub"] == owner_of_key("sk-a") and payload["exp"] - payload["iat"] == 60
    assert auth.owner(token) == owner_of_key("sk-a")
    with pytest.raises(AuthError) as bad_key:
        auth.owner("sk-unknown")
    assert not bad_key.value.invalid_token
    with pytest.raises(AuthError) as forged:
        Authenticator(("sk-a",), b"other", jwt_ttl=60).owner(token)
    assert forged.value.invalid_token
    with pytest.raises(AuthError, match="missing"):
        auth.owner(None)


def test_expired_jwt_is_refused() -> None:
    """A JWT past its exp is an invalid_token error."""
    auth = Authenticator(
        ("sk-a",), b"s", jwt_ttl=1e-9
    )  # exp = iat (whole seconds): expired at once
    token = auth.issue(owner_of_key("sk-a"))
    with pytest.raises(AuthError, match="expired") as exc:
        auth.owner(token)
    assert exc.value.invalid_token
