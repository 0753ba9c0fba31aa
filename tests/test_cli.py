"""The ``mint-async`` command as a person meets it: bare help, ``-V``, defaults and help on every option."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

import pytest

from mint_async import __version__
from mint_async.cli import build_parser, main


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parser and every subcommand's parser below it."""
    yield parser
    for action in parser._actions:  # pyright: ignore[reportPrivateUsage]
        if isinstance(action, argparse._SubParsersAction):  # pyright: ignore[reportPrivateUsage]
            for sub in action.choices.values():  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
                assert isinstance(sub, argparse.ArgumentParser)
                yield from _parsers(sub)


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """What ``mint-async <argv> --help`` prints, whitespace collapsed (wrapping varies)."""
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_bare_command_prints_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    """``mint-async`` without a subcommand prints the help on stdout and exits 0."""
    assert main([]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("usage: mint-async") and out.err == ""
    assert all(name in out.out for name in ("demo", "serve", "loadtest"))


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version_flags(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``-V`` and ``--version`` both print the version and exit 0."""
    with pytest.raises(SystemExit) as exit_info:
        main([flag])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"mint-async {__version__}"


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (["serve"], ["(default: 127.0.0.1)", "(default: 8000)", "(default: synthetic)"]),
        (["demo"], ["(default: auto)", "(default: Qwen/Qwen3-0.6B)", "(default: 16)"]),
        (["loadtest"], ["(default: asyncio)", "(default: 16)", "(default: poisson)"]),
    ],
)
def test_help_shows_defaults(
    argv: list[str], shown: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Each subcommand's ``--help`` states the defaults, and never a meaningless ``None``."""
    text = _help(argv, capsys)
    for default in shown:
        assert default in text, default
    assert "(default: None)" not in text and "(default: False)" not in text


def test_every_option_has_help() -> None:
    """Every option, positional and subcommand of every parser has help text (hidden aliases aside)."""
    for parser in _parsers(build_parser()):
        for action in parser._actions:  # pyright: ignore[reportPrivateUsage]
            if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:  # pyright: ignore[reportPrivateUsage]
                continue
            name = "/".join(action.option_strings) or action.dest
            assert action.help and action.help.strip(), f"{parser.prog} {name}"
            if isinstance(action, argparse._SubParsersAction):  # pyright: ignore[reportPrivateUsage]
                for choice in action._choices_actions:  # pyright: ignore[reportPrivateUsage, reportUnknownMemberType, reportUnknownVariableType]
                    assert choice.help, f"{parser.prog} {choice.dest}"  # pyright: ignore[reportUnknownMemberType]


def test_backend_is_one_thing_per_command(capsys: pytest.CaptureFixture[str]) -> None:
    """``--backend`` is a model backend (serve, demo); loadtest's event loop is ``--event-loop``."""
    assert "--backend" in _help(["serve"], capsys) and "--backend" in _help(["demo"], capsys)
    loadtest = _help(["loadtest"], capsys)
    assert "--event-loop {asyncio,trio}" in loadtest and "--backend" not in loadtest


def test_python_m_server_builds_its_parser_without_the_cli_module() -> None:
    """``python -m mint_async.server --help`` prints the serve options and never imports ``mint_async.cli``."""
    code = (
        "import sys\n"
        "import mint_async.server._cli as c\n"
        "try:\n"
        "    c.main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    print('exit', exc.code)\n"
        "print('cli imported:', 'mint_async.cli' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.startswith("usage: mint-async serve"), done.stdout
    assert "--host HOST" in done.stdout and "(default: 127.0.0.1)" in done.stdout
    assert done.stdout.splitlines()[-2:] == ["exit 0", "cli imported: False"], done.stdout
