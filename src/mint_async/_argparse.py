"""The help formatter shared by every ``mint-async`` parser.

A module of its own so ``cli`` (which assembles the subcommands) and each
subcommand's option table (``server._cli``, ``loadtest._cli``) can share it
without importing one another.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["CommandParser", "DefaultsHelpFormatter"]


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: X)`` to an option's help unless there is nothing to show.

    ``None``, ``False``, ``""`` and ``[]`` mean "not given" here, and help that
    already names its default (``--steps``: per backend) keeps its own words.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default: object = action.default
        if default is None or default is False or default in ("", []) or "default" in text:
            return text
        return super()._get_help_string(action)


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose subcommands (created with its class) share the help formatter."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)
