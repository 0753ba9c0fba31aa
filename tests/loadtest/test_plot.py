"""--plot: a PNG with the latency histogram, throughput and in-flight panels."""

from __future__ import annotations

import importlib.util
import struct
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import Any

import pytest

from mint_async.cli import main
from mint_async.loadtest import LoadTestConfig, LoadTestReport, plot_report, run_async
from mint_async.server import LatencyConfig, ServerConfig
from mint_async.testing import LoopbackServer, serve_loopback

pytestmark = pytest.mark.anyio


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_plot_is_written_and_not_blank(tmp_path: Path) -> None:
    """The PNG has the expected size, real content (many colours), and survives a JSON round trip."""
    import numpy as np
    from matplotlib.image import imread

    with serve_loopback(ServerConfig(latency=LatencyConfig.parse("sample=exp(0.003)"))) as srv:
        config = LoadTestConfig(
            base_url=srv.base_url,
            api_key=srv.api_key,
            concurrency=8,
            duration=0.6,
            warmup_duration=0.1,
        )
        report = await run_async(config)
    path = plot_report(report, tmp_path / "plot.png")
    assert path.exists() and path.stat().st_size > 20_000
    assert png_size(path) == (1200, 360)
    pixels = imread(str(path))
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 50
    # From a saved result (bucket precision) the plot still renders.
    saved = tmp_path / "r.json"
    report.save(saved)
    again = plot_report(LoadTestReport.load(saved), tmp_path / "again.png")
    assert png_size(again) == (1200, 360)


def plot_argv(server: LoopbackServer, path: Path, backend: str) -> list[str]:
    return [
        "loadtest", "--base-url", server.base_url, "--api-key", server.api_key, "--quiet",
        "--event-loop", backend, "--requests", "40", "--concurrency", "4", "--plot", str(path),
    ]  # fmt: skip


def test_plot_option_writes_a_png(
    server: LoopbackServer,
    tmp_path: Path,
    anyio_backend: tuple[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--plot out.png`` runs the load test, prints the report and writes the three-panel PNG."""
    path = tmp_path / "out.png"
    assert main(plot_argv(server, path, anyio_backend[0])) == 0
    assert png_size(path) == (1200, 360) and path.stat().st_size > 10_000
    out = capsys.readouterr().out
    assert "mint-async load test result" in out and f"plot saved to {path}" in out
    assert server.statistics().accepted["sample"] == 40


def test_plot_option_without_matplotlib(
    server: LoopbackServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    anyio_backend: tuple[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without matplotlib, ``--plot`` exits 2 with the install hint, before any load is sent."""
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> ModuleSpec | None:
        return None if name.partition(".")[0] == "matplotlib" else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    path = tmp_path / "out.png"
    assert main(plot_argv(server, path, anyio_backend[0])) == 2
    err = capsys.readouterr().err
    assert "plotting needs matplotlib" in err and "pip install 'mint-async[plot]'" in err
    assert not path.exists() and server.statistics().accepted == {}
