"""Loading tokenizers (transformers is imported only here, only when asked, in a worker thread)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio

from ._exceptions import TokenizerUnavailableError

__all__ = ["TokenizerCache", "load_tokenizer"]

_OVERRIDE_ENV = "MINT_TOKENIZER_PATH"


def _resolve(tokenizer_id: str) -> tuple[str, bool]:
    """The path or hub id to load, and whether it is local."""
    override = os.environ.get(_OVERRIDE_ENV)
    if override:
        return override, True
    if Path(tokenizer_id).expanduser().is_dir():
        return str(Path(tokenizer_id).expanduser()), True
    # The official client strips anything after the first ':' (a revision tag).
    name = tokenizer_id.split(":", 1)[0]
    return name, False


def load_tokenizer(tokenizer_id: str) -> Any:
    """Load a tokenizer by hub id or local directory (blocking)."""
    target, local = _resolve(tokenizer_id)
    try:
        from transformers import AutoTokenizer  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - transformers is a dependency
        msg = "transformers is not installed; `pip install transformers`"
        raise TokenizerUnavailableError(msg) from exc
    auto: Any = AutoTokenizer
    try:
        return auto.from_pretrained(target, local_files_only=local or None)
    except (OSError, ValueError) as exc:
        msg = (
            f"could not load the tokenizer {target!r}"
            + ("" if local else " from the Hugging Face hub (offline or unreachable)")
            + f": {exc}. Set {_OVERRIDE_ENV} to a local tokenizer directory"
            + ("" if local else ", or HF_ENDPOINT to a reachable mirror")
            + "."
        )
        raise TokenizerUnavailableError(msg) from exc


class TokenizerCache:
    """Tokenizers loaded by one ServiceClient, by id (loaded once, in a worker thread)."""

    def __init__(self) -> None:
        self._loaded: dict[str, Any] = {}
        self._lock = anyio.Lock()

    async def get(self, tokenizer_id: str) -> Any:
        """The tokenizer for ``tokenizer_id``, loading it on first use."""
        if tokenizer_id in self._loaded:
            return self._loaded[tokenizer_id]
        async with self._lock:
            if tokenizer_id not in self._loaded:
                self._loaded[tokenizer_id] = await anyio.to_thread.run_sync(
                    load_tokenizer, tokenizer_id
                )
        return self._loaded[tokenizer_id]
