"""--plot: a PNG with the latency histogram, throughput and in-flight panels."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from mint_async.loadtest import LoadTestConfig, LoadTestReport, plot_report, run_async
from mint_async.server import LatencyConfig, ServerConfig
from mint_async.testing import serve_loopback

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
