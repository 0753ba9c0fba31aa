"""Sampler handles (tinker 0.38): a credential-free string naming a sampler.

``SamplingClient.get_sampler_handle()`` writes one; ``from_sampler_handle()``
opens a client on the same sampler in any process, authenticating as that
process does. The handle is URL-safe base64 of compact JSON, so it survives
environment variables, command lines and job queues unchanged.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import asdict, dataclass

from ._exceptions import InvalidInputError

__all__ = ["SamplerHandle", "decode_sampler_handle", "encode_sampler_handle"]


@dataclass(frozen=True, slots=True)
class SamplerHandle:
    """What a handle names: the endpoint and the sampling session (no key)."""

    base_url: str
    sampling_session_id: str
    base_model: str | None = None
    model_path: str | None = None
    tokenizer_id: str | None = None


def encode_sampler_handle(handle: SamplerHandle) -> str:
    """The handle as a URL-safe string."""
    text = json.dumps(asdict(handle), separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode()


def decode_sampler_handle(text: str) -> SamplerHandle:
    """The handle ``text`` names; :class:`~mint_async.InvalidInputError` if it is not one."""
    try:
        state = json.loads(base64.urlsafe_b64decode(text.encode()))
        base_url = str(state["base_url"])
        session = str(state["sampling_session_id"])
        names = [state.get(k) for k in ("base_model", "model_path", "tokenizer_id")]
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        msg = f"not a sampler handle: {exc}"
        raise InvalidInputError(msg) from exc
    base_model, model_path, tokenizer_id = (str(n) if n is not None else None for n in names)
    return SamplerHandle(base_url, session, base_model, model_path, tokenizer_id)
