"""tinker-cookbook 0.6.1's SFT and RL loops, unmodified, against ``mint-async serve --backend torch``.

Each loop runs in its own process (``cookbook_driver``): through
``mint_async.tinker_compat.install()`` and with the official tinker 0.38 SDK,
against one local server started with no flags. Skipped unless
tinker_cookbook and tinker are importable (``nox -s cookbook`` installs them).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("tinker_cookbook", reason="nox -s cookbook installs tinker-cookbook")
pytest.importorskip("tinker", reason="nox -s cookbook installs tinker 0.38")

ROOT = Path(__file__).resolve().parents[2]
STEPS = 4


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """``mint-async serve --backend torch`` with no other flag."""
    yield from _serve()


@pytest.fixture(scope="module")
def server_url_038() -> Iterator[str]:
    """The same on the 0.38 wire (protobuf bodies required): the default loss runs there too."""
    yield from _serve("--wire", "0.38")


def _serve(*flags: str) -> Iterator[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mint_async.cli",
            "serve",
            "--backend",
            "torch",
            "--port",
            "0",
            *flags,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        url = None
        for line in proc.stdout:
            match = re.match(r"MINT_BASE_URL=(\S+)", line)
            if match:
                url = match.group(1)
                break
        assert url is not None, "the server printed no MINT_BASE_URL"
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


def _run(sdk: str, loop: str, url: str, tmp_path: Path, *extra: str) -> dict[str, Any]:
    # The official SDK needs a tml- key; the local server accepts its documented one by default.
    key = "tml-mint-async-local" if sdk == "real" else "sk-mint-async-local"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TINKER_API_KEY": key, "PYTHONPATH": str(ROOT)}
    env.pop("MINT_API_KEY", None)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.cookbook.cookbook_driver",
            "--sdk",
            sdk,
            "--loop",
            loop,
            "--base-url",
            url,
            "--log-dir",
            str(tmp_path / f"{sdk}-{loop}"),
            "--steps",
            str(STEPS),
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=900,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-6000:]
    report: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    row = {k: report[k] for k in ("sdk", "wall_s", "cpu_s", "maxrss_kb")}
    print(json.dumps({"loop": loop, **row}))  # the per-run cost, for the README's comparison
    return report


@pytest.mark.parametrize("sdk", ["compat", "real"])
def test_supervised_train_test_nll_falls(sdk: str, server_url: str, tmp_path: Path) -> None:
    report = _run(sdk, "sft", server_url, tmp_path)
    if sdk == "compat":
        assert report["tinker"].endswith("tinker_compat/__init__.py")
    else:
        assert "site-packages" in report["tinker"]
    nll = [m["test/nll"] for m in report["metrics"] if "test/nll" in m]
    assert len(nll) >= 2, report["metrics"]
    assert nll[-1] < nll[0] - 0.1, nll
    assert [m["step"] for m in report["metrics"]][:STEPS] == list(range(STEPS))


@pytest.mark.parametrize("sdk", ["compat", "real"])
def test_math_rl_arithmetic_steps_complete(sdk: str, server_url: str, tmp_path: Path) -> None:
    # math_rl's default loss (stable_reinforce, samples drawn with record_stability_info)
    # on the server started with no flags: its default wire serves every 0.38 field.
    report = _run(sdk, "rl", server_url, tmp_path)
    _check_rl(report)


@pytest.mark.parametrize("sdk", ["compat", "real"])
def test_math_rl_default_loss_stable_reinforce(
    sdk: str, server_url_038: str, tmp_path: Path
) -> None:
    # math_rl's default loss on the 0.38 wire: samples recorded with record_stability_info,
    # provenance spans built from SampledSequence.sequence_id, checked by the server.
    report = _run(sdk, "rl", server_url_038, tmp_path, "--loss-fn", "stable_reinforce")
    _check_rl(report)


def _check_rl(report: dict[str, Any]) -> None:
    steps = [m for m in report["metrics"] if "env/all/reward/total" in m]
    assert [m["step"] for m in steps] == list(range(STEPS))
    assert all(m["env/all/total_episodes"] == 32 for m in steps)
