"""The server over real HTTP on loopback (uvicorn in a thread): 1,000 held polls, drops, restarts, shutdown, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

from mint_async.cli import build_parser
from mint_async.cli import main as cli_main
from mint_async.server import FaultConfig, LatencyConfig, ServerConfig
from mint_async.server._cli import config_from_args
from mint_async.testing import LoopbackServer, serve_loopback, serve_subprocess

from ._support import Api, fb_body, sample_body, wait_until

pytestmark = pytest.mark.anyio


def port_of(server: LoopbackServer) -> int:
    """The server's TCP port."""
    port = httpx.URL(server.base_url).port
    assert port is not None
    return port


def api_for(server: LoopbackServer, **kwargs: Any) -> Api:
    """An Api over a real-network httpx client."""
    return Api(server.client(timeout=60, **kwargs))


async def raw_post(port: int, path: str, body: object, key: str) -> tuple[int, bytes]:
    """One HTTP/1.1 POST on its own connection, with no client library in the way."""
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-API-Key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    )
    data = b""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(head.encode() + payload)
        try:
            while True:
                data += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            pass
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


async def test_thousand_held_polls() -> None:
    """1,000 concurrently held long polls are all held, then all released with results.

    The server runs in its own process (as in production: client and server do
    not share a GIL); its counters come over HTTP.
    """
    n = 1000
    with serve_subprocess(["--poll-hold", "120"]) as server:
        port = httpx.URL(server.base_url).port
        assert port is not None
        async with httpx.AsyncClient(
            base_url=server.base_url, headers={"X-API-Key": server.api_key}, timeout=60
        ) as http:
            api = Api(http)
            mid = await api.model(await api.session())
            # Slots 2..n+1 all wait for slot 1, so each of their polls is held.
            rids = [
                await api.submit("forward_backward", fb_body(mid, seq)) for seq in range(2, n + 2)
            ]
            results: list[tuple[int, bytes]] = []
            with anyio.fail_after(120):
                async with anyio.create_task_group() as tg:

                    async def poll(rid: str) -> None:
                        body = {"request_id": rid, "allow_metadata_only": False}
                        results.append(
                            await raw_post(port, "/api/v1/retrieve_future", body, server.api_key)
                        )

                    for rid in rids:
                        tg.start_soon(poll, rid)
                    while (await anyio.to_thread.run_sync(server.statistics)).held_polls < n:
                        await anyio.sleep(0.05)
                    await api.submit("forward_backward", fb_body(mid, 1))  # the missing first slot
            assert len(results) == n
            assert all(status == 200 and b"loss:sum" in body for status, body in results)
            stats = await anyio.to_thread.run_sync(server.statistics)
            assert stats.peak_held_polls == n and stats.held_polls == 0


async def test_real_http_flow_and_dropped_connection() -> None:
    """A flow over real sockets; a dropped answer is a transport error while the work still runs once."""
    config = ServerConfig(faults=FaultConfig.parse("drop_after_accept=1"))
    with serve_loopback(config) as server:
        async with api_for(server).http as http:
            api = Api(http)
            sampler = await api.sampler(await api.session())
            with pytest.raises(httpx.TransportError):
                await api.post("asample", sample_body(sampler, 0))
            rid = f"{sampler}:0"
            assert (await api.result(rid))["type"] == "sample"
            assert server.executions(rid) == 1


async def test_restart_keeps_checkpoints(tmp_path: Path) -> None:
    """A new server on the same data directory lists the checkpoints and loads and samples them."""
    config = ServerConfig(data_dir=tmp_path)
    with serve_loopback(config) as first:
        async with api_for(first).http as http:
            api = Api(http)
            mid = await api.model(await api.session())
            await api.run("forward_backward", fb_body(mid, 1))
            path = (
                await api.run(
                    "save_weights",
                    {"model_id": mid, "path": "keep", "seq_id": 2, "type": "save_weights"},
                )
            )["path"]
            before = (await api.run("forward", fb_body(mid, 3, key="forward_input")))["metrics"][
                "loss:sum"
            ]
            token = (await api.ok("auth/token", {}))["jwt"]
    with serve_loopback(config) as second:
        async with api_for(second, headers={"X-API-Key": token}).http as http:  # JWTs survive too
            api = Api(http)
            listed = (await api.get("checkpoints")).json()["checkpoints"]
            assert [c["tinker_path"] for c in listed] == [path]
            assert (await api.get(f"training_runs/{mid}")).status_code == 200
            new = await api.model(await api.session())
            await api.run(
                "load_weights",
                {
                    "model_id": new,
                    "path": path,
                    "seq_id": 1,
                    "optimizer": True,
                    "type": "load_weights",
                },
            )
            after = (await api.run("forward", fb_body(new, 2, key="forward_input")))["metrics"][
                "loss:sum"
            ]
            assert after == pytest.approx(before)


async def test_shutdown_releases_held_polls() -> None:
    """Stopping the server answers a held poll at once (try_again) instead of waiting out the hold."""
    with serve_loopback(
        ServerConfig(poll_hold=300, latency=LatencyConfig.parse("sample=600"))
    ) as server:
        async with api_for(server).http as http:
            api = Api(http)
            sampler = await api.sampler(await api.session())
            rid = await api.submit("asample", sample_body(sampler, 0))
            port = port_of(server)
            answer: list[tuple[int, bytes]] = []
            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:

                    async def poll() -> None:
                        answer.append(
                            await raw_post(
                                port,
                                "/api/v1/retrieve_future",
                                {"request_id": rid, "allow_metadata_only": False},
                                server.api_key,
                            )
                        )

                    tg.start_soon(poll)
                    await wait_until(lambda: server.statistics().held_polls == 1)
                    await anyio.to_thread.run_sync(server.stop)
    assert answer[0][0] == 200 and json.loads(answer[0][1])["type"] == "try_again"


async def test_disconnect_releases_held_poll() -> None:
    """A client that hangs up on a held poll frees it at once (not at the end of the hold)."""
    with serve_loopback(
        ServerConfig(poll_hold=300, latency=LatencyConfig.parse("sample=600"))
    ) as server:
        async with api_for(server).http as http:
            api = Api(http)
            sampler = await api.sampler(await api.session())
            rid = await api.submit("asample", sample_body(sampler, 0))
            port = port_of(server)
            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(
                        raw_post,
                        port,
                        "/api/v1/retrieve_future",
                        {"request_id": rid, "allow_metadata_only": False},
                        server.api_key,
                    )
                    await wait_until(lambda: server.statistics().held_polls == 1)
                    tg.cancel_scope.cancel()  # closes the socket mid-poll
                await wait_until(lambda: server.statistics().held_polls == 0, timeout=10)
                assert server.statistics().http_in_flight == 0


def test_serve_subprocess_and_cli() -> None:
    """``python -m mint_async.server`` prints the URL and a ready line and serves; bad specs exit 2."""
    start = time.monotonic()
    with serve_subprocess(["--faults", "seed=1", "--latency", "sample=0"]) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{server.base_url}/api/v1/healthz").json() == {"status": "ok"}
        r = httpx.post(
            f"{server.base_url}/api/v1/client/config",
            json={"sdk_version": "x"},
            headers={"X-API-Key": server.api_key},
        )
        assert r.json()["pjwt_auth_enabled"] is True
        stats = server.statistics()
        assert stats.rejected == 0 and stats.http_in_flight == 1  # the statistics request itself
        assert server.reset_peaks().peak_http_in_flight == 1
    assert server.process.returncode is not None and time.monotonic() - start < 60
    assert cli_main(["serve", "--faults", "bogus=1"]) == 2
    assert cli_main(["serve", "--backend", "nope"]) == 2
    help_text = subprocess.run(
        [sys.executable, "-m", "mint_async.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--faults" in help_text and "--data-dir" in help_text


def test_data_dir_option(tmp_path: Path) -> None:
    """``serve --data-dir p`` keeps checkpoints in ``Path(p)``; without it, a temporary directory."""
    for given in ("ckpts/run-1", str(tmp_path)):
        args = build_parser().parse_args(["serve", "--data-dir", given])
        assert config_from_args(args).data_dir == Path(given)
    assert config_from_args(build_parser().parse_args(["serve"])).data_dir is None
