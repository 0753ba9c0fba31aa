"""Credentials are cut out of server-sent text, exception messages and their whole chain."""

from __future__ import annotations

import traceback

from mint_async._redaction import redact, redact_bytes, scrub_chain

SECRETS = ("sk-secret-key-1", "eyJ.token.sig", "")


def test_redact_text_and_bytes() -> None:
    """Every occurrence of every secret is replaced whole; empty secrets are ignored."""
    assert redact("a sk-secret-key-1 b eyJ.token.sig sk-secret-key-1", SECRETS) == (
        "a [REDACTED] b [REDACTED] [REDACTED]"
    )
    assert redact_bytes(b'{"k": "eyJ.token.sig"}', SECRETS) == b'{"k": "[REDACTED]"}'
    assert redact("nothing here", SECRETS) == "nothing here"


def test_scrub_chain_cleans_causes_and_contexts() -> None:
    """A secret in any exception of a chain (cause or context) is gone from the printed traceback."""
    key, token = SECRETS[:2]  # not literals below: the traceback quotes the source lines
    try:
        try:
            raise KeyError(f"ctx {key}")
        except KeyError as inner:
            raise ValueError(f"cause {token}", 42) from inner
    except ValueError as exc:
        outer = RuntimeError("top")
        outer.__cause__ = exc
    scrub_chain(outer, SECRETS)
    shown = "".join(traceback.format_exception(outer))
    assert "sk-secret-key-1" not in shown
    assert "eyJ.token.sig" not in shown
    assert shown.count("[REDACTED]") == 2
