"""Opening a sampling session: ``create_sampling_session`` and the client on it.

Apart from ``_sampling`` so the client class and the session request that makes one
stay readable; both ``ServiceClient`` and ``TrainingClient`` open sessions here.
"""

from __future__ import annotations

from . import types as t
from ._context import ClientContext, call
from ._exceptions import ClientClosedError, InvalidInputError
from ._sampling import SamplingClient

__all__ = ["open_sampling_session"]


async def open_sampling_session(
    ctx: ClientContext,
    *,
    model_path: str | None = None,
    base_model: str | None = None,
    tokenizer_id: str | None = None,
) -> SamplingClient:
    """Create a sampling session for a base model or a checkpoint path and return its client.

    ``model_path`` is normally ``tinker://<run>/sampler_weights/<name>``; paths that
    do not parse as that (e.g. ``mint://…``) are passed to the server unchanged.
    """
    if model_path is None and base_model is None:
        base_model = ctx.config.base_model
    if model_path is not None and (not isinstance(model_path, str) or not model_path):
        msg = "model_path must be a non-empty string"
        raise InvalidInputError(msg)
    if ctx.session_id is None:
        msg = "creating a sampling session needs a ServiceClient session"
        raise ClientClosedError(msg)
    request = t.CreateSamplingSessionRequest(
        session_id=ctx.session_id,
        sampling_session_seq_id=next(ctx.sampling_seq),
        base_model=base_model,
        model_path=model_path,
    )
    resp = await call(
        ctx,
        "POST",
        "api/v1/create_sampling_session",
        t.CreateSamplingSessionResponse,
        request,
        traffic="session",
    )
    return SamplingClient(
        ctx,
        resp.sampling_session_id,
        base_model=base_model,
        model_path=model_path,
        tokenizer_id=tokenizer_id,
    )
