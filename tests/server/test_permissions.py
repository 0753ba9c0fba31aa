"""The data directory is private: directories 0o700, files 0o600, whatever the umask."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Generator
from pathlib import Path

import pytest

from mint_async.server import ServerConfig
from mint_async.server._store import CheckpointMeta, CheckpointStore, RunMeta

from ._support import running

RUN = "sess-1:train:0"


@pytest.fixture
def loose_umask() -> Generator[None]:
    """A umask that leaves new files world-readable (0o022), restored afterwards."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def modes(root: Path) -> dict[str, int]:
    """The permission bits of everything under ``root`` (and of root itself, as ".")."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def assert_private(root: Path, *, skip_root: bool = False) -> None:
    """Every directory under ``root`` is 0o700 and every file 0o600."""
    loose = {
        name: oct(mode)
        for name, mode in modes(root).items()
        if mode != (0o700 if (root / name).is_dir() else 0o600) and not (skip_root and name == ".")
    }
    assert loose == {}


def fill(store: CheckpointStore) -> None:
    """A run, a checkpoint written the way a backend does (plain open), an audit trail, the secret."""
    store.save_run(RunMeta(training_run_id=RUN, owner="u", base_model="m", lora_rank=4))
    staging = store.staging_dir()
    (staging / "lora.npz").write_bytes(b"weights")
    meta = CheckpointMeta(
        training_run_id=RUN, kind="weights", name="c", owner="u", base_model="m", lora_rank=4
    )
    store.commit(staging, meta, overwrite=False)
    meta.public = True
    store.update(meta, "checkpoint_published")
    store.jwt_secret()
    store.archive(meta).unlink()


@pytest.mark.usefixtures("loose_umask")
def test_store_creates_everything_private(tmp_path: Path) -> None:
    """A new data directory, runs, checkpoints, the audit log and the JWT secret are 0o700/0o600."""
    root = tmp_path / "data"
    store = CheckpointStore(root)
    store.open()
    fill(store)
    assert {"runs", "checkpoints", "audit.jsonl", ".jwt_secret"} <= set(os.listdir(root))
    assert_private(root)


@pytest.mark.usefixtures("loose_umask")
def test_open_tightens_a_looser_data_directory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """open() tightens what the store keeps; a looser existing data dir keeps its mode, with a warning."""
    root = tmp_path / "data"
    store = CheckpointStore(root)
    store.open()
    fill(store)
    for path in [root, *root.rglob("*")]:  # what an older version (or a chmod) left
        path.chmod(0o755 if path.is_dir() else 0o644)
    with caplog.at_level(logging.WARNING, logger="mint_async.server"):
        again = CheckpointStore(root)
        again.open()
    assert again.get(RUN, "weights/c") is not None
    assert stat.S_IMODE(root.stat().st_mode) == 0o755  # the user's directory: reported, not changed
    assert any("755" in r.getMessage() and str(root) in r.getMessage() for r in caplog.records)
    assert_private(root, skip_root=True)


@pytest.mark.anyio
@pytest.mark.usefixtures("loose_umask")
async def test_server_data_dir_is_private(tmp_path: Path) -> None:
    """Through the server: a checkpoint written by the backend, the audit log and the secret are private."""
    root = tmp_path / "data"
    async with running(ServerConfig(data_dir=root)) as (_, api):
        mid = await api.model(await api.session())
        for seq, kind in enumerate(("save_weights", "save_weights_for_sampler"), 1):
            await api.run(kind, {"model_id": mid, "path": "c", "seq_id": seq, "type": kind})
    written = [p.name for p in root.rglob("*") if p.is_file()]
    assert {"audit.jsonl", ".jwt_secret", "lora.npz", "_checkpoint.json"} <= set(written)
    assert json.loads((root / "audit.jsonl").read_text().splitlines()[0])["event"]
    assert_private(root)
