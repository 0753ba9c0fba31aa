"""Developer and CI sessions: ``nox`` runs lint, typecheck, tests (asyncio-only and with trio) and interop.

``nox -s bench`` runs the benchmarks (opt-in, not in CI).
"""

from __future__ import annotations

import os
import pathlib
import tomllib

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "interop", "interop038"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_external_run = True
nox.needs_version = ">=2024.3.2"

ROOT = pathlib.Path(__file__).parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# Python versions come from one place: the trove classifiers in pyproject.toml.
PYTHONS = [
    c.rsplit(" ", 1)[-1]
    for c in PYPROJECT["project"]["classifiers"]
    if c.startswith("Programming Language :: Python :: 3.")
]

# A CPU build of torch lies on this machine's disk; an unpinned torch downloads a multi-GB
# CUDA build. Sessions that need torch pin it here (the package extra stays loose).
TORCH = "torch==2.13.0"

# The official SDKs our server must serve unmodified (protocol.md: MinT pins tinker 0.22.0).
TINKER_022 = ["tinker==0.22.0", "mindlab-toolkit==0.2.0"]
# The newest SDK, whose wire requires protobuf (our server's `--wire 0.38`).
TINKER_038 = "tinker==0.38.0"

# The benchmarks' comparison clients (the raw-limit loop) and the trio rows.
BENCH_DEPS = ["aiohttp", "trio"]

# pytest exits with 5 when it collects no tests; that is not a failure of the suite.
PYTEST_OK = [0, 5]

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TINKER_TELEMETRY": "0"}


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", "src", "tests", "benchmarks", "examples", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "examples", "noxfile.py")


@nox.session(python=PYTHONS)
def typecheck(session: nox.Session) -> None:
    """mypy --strict and pyright strict over src/tests/benchmarks/examples; verifytypes at 100%."""
    # The benchmarks import the official SDK (they compare against it).
    session.install(
        ".[server,tests,typing,plot,wandb]", "trio>=0.25", TORCH, *TINKER_022, *BENCH_DEPS
    )
    session.run("mypy", "src", "tests", "benchmarks", "examples")
    session.run("pyright")
    # verifytypes inspects the installed (non-editable) package.
    session.run(
        "pyright", "--verifytypes", "mint_async", "--ignoreexternal", external=False, silent=False
    )


@nox.session(python=PYTHONS)
@nox.parametrize("with_trio", [False, True], ids=["asyncio-only", "with-trio"])
def tests(session: nox.Session, with_trio: bool) -> None:
    """The test suite; once with asyncio only, once on asyncio and trio."""
    # Without trio installed at all: proves the package needs nothing of it.
    session.install(
        ".[server,tests,plot,wandb,torch]", TORCH, *(["trio>=0.25"] if with_trio else [])
    )
    env = dict(OFFLINE_ENV)
    session.run("pytest", *session.posargs, env=env, success_codes=PYTEST_OK)


@nox.session(python=PYTHONS)
def interop(session: nox.Session) -> None:
    """The official tinker 0.22 SDK (and MinT's `mint` shim) against our local server."""
    session.install(".[server,torch]", TORCH, *TINKER_022)
    smoke = ROOT / "tests" / "interop" / "run_official_sdk.py"
    session.run("python", str(smoke), *session.posargs, env=OFFLINE_ENV)
    # Again with the server asking for protobuf bodies (0.22 then sends forward_backward as protobuf).
    session.run("python", str(smoke), "--proto", "--zstd", *session.posargs, env=OFFLINE_ENV)
    # And on the torch backend: a real (tiny) Qwen3 behind the same protocol.
    session.run("python", str(smoke), "--backend", "torch", *session.posargs, env=OFFLINE_ENV)


@nox.session(python=PYTHONS)
def interop038(session: nox.Session) -> None:
    """The official tinker 0.38 SDK against our server on the 0.38 (protobuf-only) wire."""
    session.install(".[server]", TINKER_038)
    smoke = ROOT / "tests" / "interop" / "run_official_sdk_038.py"
    session.run("python", str(smoke), *session.posargs, env=OFFLINE_ENV)
    session.run("python", str(smoke), "--zstd", *session.posargs, env=OFFLINE_ENV)


@nox.session(python=PYTHONS)
def bench(session: nox.Session) -> None:
    """Benchmarks against the official SDK and the raw limit (opt-in; prints JSON lines)."""
    session.install(".[server]", *TINKER_022, *BENCH_DEPS)
    names = session.posargs or sorted(p.name for p in (ROOT / "benchmarks").glob("bench_*.py"))
    for name in names:
        session.run("python", str(ROOT / "benchmarks" / name), env={**OFFLINE_ENV, **os.environ})
