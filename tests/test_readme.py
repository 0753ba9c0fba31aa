"""README.md runs as written: every Python block runs against the local server or is a marked fragment.

Sybil finds the blocks. Each runnable block runs on its own, in a fresh namespace, with
``MINT_BASE_URL`` / ``MINT_API_KEY`` pointing at a local server: what a reader has after
``mint-async serve`` and the ``export`` line the README gives, so the code in the README is exactly
what a user types. A block that only makes sense inside a larger program is marked in the Markdown
with ``<!-- skip: next "fragment: <why>" -->`` right before it, and is reported as skipped. There is
no third kind: an unmarked block that does not run fails its test. A marked block also starts with a
``# fragment: ...`` comment, so that readers see it too.
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sybil import Document, Example, Sybil
from sybil.evaluators.skip import Skipper
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

from mint_async.server import ServerConfig
from mint_async.testing import LoopbackServer, serve_loopback

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

# Any fence a reader would take for Python; Sybil runs the ```python ones, so the others must not exist.
PYTHON_FENCE = re.compile(r"^ {0,3}(?:```|~~~)[ \t]*(?:python3?|py|pycon)\b", re.MULTILINE | re.I)
HEADING = re.compile(r"^#{1,6} +(.+?) *$", re.MULTILINE)
FENCED = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1", re.MULTILINE | re.DOTALL)
MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
MARKDOWN_FILE_MENTION = re.compile(r"`([^`\s]+\.md)`")


@dataclass(frozen=True)
class Block:
    """A ```python block of the README, with where it is and whether it is marked a fragment."""

    example: Example
    section: str
    """The heading above the block (for the test id)."""
    fragment: str | None
    """The reason given by the ``skip: next`` marker before the block; ``None`` if it must run."""

    @property
    def slug(self) -> str:
        """The section as a test id (a failure's traceback gives the README line)."""
        return re.sub(r"[^a-z0-9]+", "-", self.section.lower()).strip("-")


def parse(path: Path) -> Document:
    """A Markdown file parsed into Python blocks and skip markers."""
    return Sybil([PythonCodeBlockParser(), SkipParser()]).parse(path)


def is_marker(example: Example) -> bool:
    """Whether ``example`` is a ``<!-- skip: ... -->`` marker rather than a code block."""
    return isinstance(example.region.evaluator, Skipper)


def marker_reason(marker: Example) -> str | None:
    """The reason of a ``skip: next "<reason>"`` marker; ``None`` for any other form."""
    action, reason = marker.parsed
    if action != "next" or reason is None:
        return None
    text = str(reason).strip()
    # Sybil evaluates the reason as Python; a plain string literal is all we accept.
    if len(text) < 2 or text[0] != text[-1] or text[0] not in "\"'":
        return None
    return text[1:-1]


def marks_next(document: Document, marker: Example, example: Example) -> bool:
    """Whether ``marker`` sits right before ``example`` (nothing but blank space between them)."""
    # Sybil's marker region stops short of the comment's closing "-->".
    gap = document.text[marker.end : example.start].strip()
    return gap.removeprefix("-->").strip() == ""


def blocks(document: Document) -> list[Block]:
    """The README's Python blocks in order, each with its section and fragment marker."""
    examples = list(document.examples())
    # Comments in code blocks look like headings: blank the blocks out (keeping offsets) first.
    prose = FENCED.sub(lambda m: " " * len(m.group()), document.text)
    headings = [(m.start(), m.group(1)) for m in HEADING.finditer(prose)]
    found: list[Block] = []
    for i, example in enumerate(examples):
        if is_marker(example):
            continue
        section = next((title for pos, title in reversed(headings) if pos < example.start), "top")
        before = examples[i - 1] if i > 0 else None
        fragment = None
        if before is not None and is_marker(before) and marks_next(document, before, example):
            fragment = marker_reason(before)
        found.append(Block(example, section, fragment))
    return found


DOCUMENT = parse(README)
BLOCKS = blocks(DOCUMENT)


def _params() -> list[Any]:
    params: list[Any] = []
    seen: dict[str, int] = {}
    for block in BLOCKS:
        seen[block.slug] = n = seen.get(block.slug, 0) + 1
        marks = [] if block.fragment is None else [pytest.mark.skip(reason=block.fragment)]
        test_id = block.slug if n == 1 else f"{block.slug}-{n}"
        params.append(pytest.param(block, id=test_id, marks=marks))
    return params


@pytest.fixture(scope="module")
def local_server() -> Iterator[LoopbackServer]:
    """The local server with its defaults, as ``mint-async serve`` starts it, on a free port."""
    with serve_loopback(ServerConfig()) as server:
        yield server


@pytest.fixture
def reader_env(local_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment of a reader who exported the two variables ``mint-async serve`` prints."""
    for name in list(os.environ):
        if name.startswith(("MINT_", "TINKER_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MINT_BASE_URL", local_server.base_url)
    monkeypatch.setenv("MINT_API_KEY", local_server.api_key)


@pytest.mark.usefixtures("reader_env")
@pytest.mark.parametrize("block", _params())
def test_block_runs(block: Block) -> None:
    """The README block runs on its own, as a script would, against the local server."""
    namespace = block.example.namespace
    namespace.clear()
    namespace["__name__"] = "__main__"
    try:
        block.example.evaluate()
    finally:
        namespace.clear()
        gc.collect()  # finalizes any sync client the block left open, while the server still runs


def test_every_python_block_is_collected() -> None:
    """Sybil sees every Python fence of the README (a ```py block would silently go untested)."""
    assert len(PYTHON_FENCE.findall(DOCUMENT.text)) == len(BLOCKS)


def test_marked_blocks_are_fragments(tmp_path: Path) -> None:
    """A ``skip: next`` marker right before a block makes it a fragment; any other block must run."""
    doc = tmp_path / "doc.md"
    doc.write_text(
        "# Title\n\n```python\nprint(1)\n```\n\n## Part\n\n"
        '<!-- skip: next "fragment: needs tc" -->\n\n```python\n# fragment: needs tc\ntc\n```\n\n'
        '<!-- skip: next "fragment: not next to its block" -->\n\nprose\n\n```python\ntc\n```\n'
    )
    found = blocks(parse(doc))
    assert [(b.slug, b.fragment) for b in found] == [
        ("title", None),
        ("part", "fragment: needs tc"),
        ("part", None),
    ]


def test_fragment_markers_are_well_formed() -> None:
    """Each skip marker is ``skip: next "fragment: ..."`` right before a Python block."""
    examples = list(DOCUMENT.examples())
    for i, marker in enumerate(examples):
        if not is_marker(marker):
            continue
        where = f"README.md line {marker.line}"
        reason = marker_reason(marker)
        assert reason is not None and reason.startswith("fragment: "), where
        after = examples[i + 1] if i + 1 < len(examples) else None
        assert after is not None and not is_marker(after), where
        assert marks_next(DOCUMENT, marker, after), where
        assert str(after.parsed).lstrip().lower().startswith("# fragment"), where


def inside_repo(base: Path, target: str) -> bool:
    """Whether ``target``, relative to ``base``, names a file of this repository."""
    path = (base / target).resolve()
    return path.is_relative_to(ROOT) and path.exists()


@pytest.mark.parametrize(
    "doc", [README, *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name
)
def test_references_resolve(doc: Path) -> None:
    """Relative links and `*.md` names in the README and docs/ name files of this repository."""
    text = doc.read_text()
    links = [m.group(1).split("#", 1)[0] for m in MARKDOWN_LINK.finditer(text)]
    local = [t for t in links if t and not re.match(r"[a-z][a-z0-9+.-]*:", t)]
    missing = [t for t in local if not inside_repo(doc.parent, t)]
    # A file named in backticks may be relative to the document or to the repository root.
    missing += [
        name
        for name in MARKDOWN_FILE_MENTION.findall(text)
        if not (inside_repo(doc.parent, name) or inside_repo(ROOT, name))
    ]
    assert not missing, f"{doc.name} names files this repository does not have: {missing}"
