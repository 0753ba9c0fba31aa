"""Keeping credentials out of what a server sends back (issue 12).

A server may echo the API key, or the session token exchanged for it, in an
error body or a malformed header; that text reaches exception messages, logs
and tracebacks. The transport passes every error body and transport-error
message through here. Secrets are replaced whole: code that quotes server bytes
must not cut them short (``_http11`` quotes at most a few bytes), or a prefix
of a key would slip through.
"""

from __future__ import annotations

from typing import Final

__all__ = ["redact", "redact_bytes", "scrub_chain"]

_REDACTED: Final = "[REDACTED]"


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret in it replaced by ``[REDACTED]``."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, _REDACTED)
    return text


def redact_bytes(data: bytes, secrets: tuple[str, ...]) -> bytes:
    """``data`` with every secret in it (UTF-8) replaced by ``[REDACTED]``."""
    for secret in secrets:
        raw = secret.encode()
        if raw and raw in data:
            data = data.replace(raw, _REDACTED.encode())
    return data


def scrub_chain(exc: BaseException, secrets: tuple[str, ...]) -> None:
    """Redact secrets from the messages of ``exc`` and the exceptions chained to it.

    A traceback prints every ``__cause__`` / ``__context__``, and parsers quote the
    bytes they choke on (h11: ``illegal header line: b'...'``) — a server echoing
    the key into a header would otherwise put it there.
    """
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if any(s and s in str(current) for s in secrets):
            current.args = tuple(
                redact(a, secrets) if isinstance(a, str) else redact(repr(a), secrets)
                for a in current.args
            )
        todo += (current.__cause__, current.__context__)
