"""Measure tinker-cookbook's loops through tinker_compat vs the official tinker 0.38 SDK.

``python -m tests.cookbook.measure_cookbook [--rounds N] [--steps S]`` (in the
``nox -s cookbook`` venv): one ``mint-async serve --backend torch --wire 0.38``
server, a warm-up run, then ``rounds`` rounds alternating the two SDKs for the
SFT and the RL loop; prints each run and the medians of wall time and client
CPU (the loop's process; the server's work is the same for both).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SERVE = [sys.executable, "-m", "mint_async.cli", "serve", "--backend", "torch", "--port", "0"]
KEYS = {"compat": "sk-mint-async-local", "real": "tml-mint-async-local"}


def _run(sdk: str, loop: str, url: str, steps: int, loss: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TINKER_API_KEY": KEYS[sdk],
        "PYTHONPATH": str(ROOT),
    }
    with tempfile.TemporaryDirectory() as log_dir:
        cmd = [sys.executable, "-m", "tests.cookbook.cookbook_driver", "--sdk", sdk]
        cmd += ["--loop", loop, "--base-url", url, "--log-dir", log_dir, "--steps", str(steps)]
        out = subprocess.run(
            [*cmd, "--loss-fn", loss], capture_output=True, text=True, env=env, check=True, cwd=ROOT
        )
    report: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--loss-fn", default="stable_reinforce")
    args = parser.parse_args()
    server = subprocess.Popen(
        [*SERVE, "--wire", "0.38"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        assert server.stdout is not None
        url = next(
            m.group(1) for line in server.stdout if (m := re.match(r"MINT_BASE_URL=(\S+)", line))
        )
        results: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for loop in ("sft", "rl"):
            _run("real", loop, url, 2, args.loss_fn)  # warm-up: the server's first run is slower
            for i in range(args.rounds):
                order = ("compat", "real") if i % 2 == 0 else ("real", "compat")
                for sdk in order:
                    r = _run(sdk, loop, url, args.steps, args.loss_fn)
                    results.setdefault((loop, sdk), []).append(r)
                    print(
                        json.dumps(
                            {"loop": loop, "sdk": sdk, "wall_s": r["wall_s"], "cpu_s": r["cpu_s"]}
                        )
                    )
        for (loop, sdk), runs in sorted(results.items()):
            wall = statistics.median(r["wall_s"] for r in runs)
            cpu = statistics.median(r["cpu_s"] for r in runs)
            rss = statistics.median(r["maxrss_kb"] for r in runs) / 1024
            print(
                f"{loop:4s} {sdk:6s} wall {wall:6.2f} s  client CPU {cpu:5.2f} s  max RSS {rss:5.0f} MiB"
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stdout is not None:
            server.stdout.close()


if __name__ == "__main__":
    main()
