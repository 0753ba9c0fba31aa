"""Regenerate ``src/mint_async/_proto/tinker_public_pb2.py`` and its ``.pyi`` stub.

Usage (from anywhere; needs the package index the first time)::

    python scripts/gen_proto.py          # regenerate both files
    python scripts/gen_proto.py --check  # exit 1 if the committed files are stale

Why a venv of its own: the generated module refuses to import under a protobuf
runtime older than the protoc that wrote it (``ValidateProtobufRuntimeVersion``),
so the protoc version *is* mint_async's ``protobuf`` lower bound. We generate with
the protoc of a pinned, older ``grpcio-tools`` (the ``proto-gen`` extra in
pyproject.toml) to keep that bound loose, and ``grpcio-tools`` pins protobuf to
its own major version, which must not leak into the dev environment. The venv is
built once under ``build/proto-gen-venv`` (git-ignored) from exactly those pins.

After changing the pins, set the ``protobuf`` lower bound in pyproject.toml to the
version in the new file's ``ValidateProtobufRuntimeVersion`` call.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
PROTO = Path("mint_async/_proto/tinker_public.proto")
OUTPUTS = (
    Path("mint_async/_proto/tinker_public_pb2.py"),
    Path("mint_async/_proto/tinker_public_pb2.pyi"),
)
GEN_VENV = ROOT / "build" / "proto-gen-venv"


def _pins() -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins: list[str] = pyproject["project"]["optional-dependencies"]["proto-gen"]
    return pins


def _gen_python() -> Path:
    """The interpreter of the generator venv, (re)built when the pins changed."""
    pins = _pins()
    python = GEN_VENV / "bin" / "python"
    stamp = GEN_VENV / "pins.txt"
    wanted = "\n".join(pins)
    if not (python.exists() and stamp.exists() and stamp.read_text() == wanted):
        print(f"building {GEN_VENV} with {pins}", file=sys.stderr)
        venv.create(GEN_VENV, with_pip=True, clear=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", *pins], check=True)
        stamp.write_text(wanted)
    return python


def generate(out_dir: Path) -> None:
    """Run the pinned protoc over the .proto, writing module and stub under ``out_dir``."""
    python = _gen_python()
    cmd = [
        str(python),
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={SRC}",
        f"--plugin=protoc-gen-mypy={python.parent / 'protoc-gen-mypy'}",
        f"--python_out={out_dir}",
        f"--mypy_out={out_dir}",
        str(SRC / PROTO),
    ]
    subprocess.run(cmd, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="only compare with the committed files"
    )
    args = parser.parse_args()
    if not args.check:
        generate(SRC)
        print("regenerated:", ", ".join(str(p) for p in OUTPUTS))
        return
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        stale = [str(p) for p in OUTPUTS if (Path(tmp) / p).read_bytes() != (SRC / p).read_bytes()]
    if stale:
        sys.exit(f"stale generated files (run scripts/gen_proto.py): {stale}")
    print("generated files are up to date")


if __name__ == "__main__":
    main()
