"""Handlers of the sampling endpoints (protocol §4.1, §4.5).

A sample's request id is ``<sampling_session_id>:<seq_id>``. A repeated
``(sampling_session_id, seq_id)`` returns the original promise and never runs
twice, also after its record was purged (the sampler remembers every seq_id it
accepted, as compact runs). Samples run concurrently, each in its own task,
cancelled with their session.

Sampling defaults (protocol Q11 and friends, our choices): ``max_tokens``
omitted means ``ServerConfig.default_max_tokens``; ``stop=None`` stops at the
model's end-of-sequence token; a list of token ids replaces that (``[]``
disables stopping); stop strings apply in addition to end-of-sequence. An
unseeded request draws from a seed derived from the server seed and its
request id, so results are reproducible run to run.

tinker 0.38 (protocol §4.5, §8.6): every promise lists ``sample_sequence_ids``
(``<request id>:<i>``, one per sample; clients stamp them onto
``SampledSequence.sequence_id``); ``record_stability_info`` records the
sequences under those ids for ``stable_reinforce`` (:mod:`._stability`);
``topk_sample_logprobs``, ``target_prompt_logprobs``, ``prompt_alt_tokens_k``
and ``prompt_logprobs_last_n`` are served by every backend, on both wires: a
0.38 client polls for protobuf only and gets it whatever ``--wire`` says
(:mod:`._result_encoding`), and the JSON result carries the same fields
(mint_async extensions, omitted when not asked for, so a 0.22 answer is
byte-identical to what it was). Nothing is refused for the wire: the official
0.38 SDK and tinker-cookbook then run against a server started without flags.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np

from mint_async import _codec
from mint_async._exceptions import InvalidInputError
from mint_async.types import (
    CreateSamplingSessionRequest,
    CreateSamplingSessionResponse,
    EncodedTextChunk,
    GetSamplerResponse,
    SampleRequest,
    SampleResponse,
)

from ._checkpoints import read_checkpoint
from ._futures import Encoded
from ._http import HTTPError, Request, Response, json_response
from ._limits import check_sample, check_sample_context, offloaded
from ._state import Sampler
from .backends import SampleSpec

if TYPE_CHECKING:
    from ._core import ServerCore

__all__ = ["asample", "create_sampling_session", "get_sampler"]

_CLONE_SPAN = 1_000_000_000  # seq_id // 10**9 is the clone id of an unpickled client (§7.3)


async def create_sampling_session(core: ServerCore, req: Request) -> Response:
    """``create_sampling_session``: sample a base model or a checkpoint."""
    backend, _, executor = core.require_running()
    body = _codec.decode(CreateSamplingSessionRequest, req.body)
    session = core.session(req.owner, body.session_id)
    sampler_id = f"{session.session_id}:sample:{body.sampling_session_seq_id}"
    if sampler_id not in core.state.samplers:
        handle: Any
        if body.model_path is not None:
            try:
                meta, directory = read_checkpoint(core, req.owner, body.model_path, "sampling")
            except InvalidInputError as exc:
                raise HTTPError(404, str(exc)) from None
            spec = core.spec(meta.base_model)
            try:
                handle = await executor.call(lambda: backend.load_sampler(spec, directory), io=True)
            except InvalidInputError as exc:
                raise HTTPError(400, str(exc)) from None
            base_model = meta.base_model
        else:
            assert body.base_model is not None  # the request type checks one is set
            spec = core.spec(body.base_model)
            handle = await executor.call(lambda: backend.base_sampler(spec))
            base_model = spec.name
        # Re-check: another request for the same id may have finished while we loaded.
        if sampler_id not in core.state.samplers:
            core.state.samplers[sampler_id] = Sampler(
                sampler_id, session.session_id, req.owner, base_model, handle, body.model_path
            )
            session.sampler_ids.append(sampler_id)
    return json_response(CreateSamplingSessionResponse(sampling_session_id=sampler_id))


async def get_sampler(core: ServerCore, req: Request, sampler_id: str) -> Response:
    """``GET samplers/{id}``, with the ``tokenizer_id`` extension (as ``get_info`` has it)."""
    sampler = core.sampler(req.owner, sampler_id)
    spec = core.specs.get(sampler.base_model)
    return json_response(
        GetSamplerResponse(
            sampler_id=sampler.sampler_id,
            base_model=sampler.base_model,
            model_path=sampler.model_path,
            tokenizer_id=spec.tokenizer_id if spec is not None else None,
        )
    )


def _derived_seed(server_seed: int, request_id: str) -> int:
    digest = hashlib.sha256(f"{server_seed}:{request_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _spec(core: ServerCore, body: SampleRequest, request_id: str, context: int) -> SampleSpec:
    """Resolve the request's defaults and check what the wire types cannot."""
    parts: list[Any] = []
    for chunk in body.prompt.chunks:
        if not isinstance(chunk, EncodedTextChunk):
            msg = f"this server samples from text only, got a {chunk.__class__.__name__}"
            raise InvalidInputError(msg)
        parts.append(np.asarray(chunk.tokens, dtype=np.int64))
    prompt = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    params = body.sampling_params
    max_tokens = (
        params.max_tokens if params.max_tokens is not None else core.config.default_max_tokens
    )
    if prompt.size + max_tokens > context:
        msg = f"prompt ({prompt.size} tokens) + max_tokens ({max_tokens}) exceed the context length {context}"
        raise InvalidInputError(msg)
    stop = params.stop
    stop_ids: tuple[int, ...] | None = None
    stop_strings: tuple[str, ...] = ()
    if isinstance(stop, str):
        stop_strings = (stop,)
    elif stop is not None and not stop:
        stop_ids = ()  # [] disables stopping, EOS included (it is not a list of strings)
    elif stop is not None and all(isinstance(s, str) for s in stop):
        stop_strings = tuple(str(s) for s in stop)
    elif stop is not None:
        stop_ids = tuple(int(s) for s in stop)
    return SampleSpec(
        prompt=prompt,
        num_samples=body.num_samples,
        max_tokens=max_tokens,
        temperature=params.temperature,
        top_k=params.top_k,
        top_p=params.top_p,
        stop_token_ids=stop_ids,
        stop_strings=stop_strings,
        seed=params.seed
        if params.seed is not None
        else _derived_seed(core.config.seed, request_id),
        prompt_logprobs=body.prompt_logprobs,
        topk_prompt_logprobs=body.topk_prompt_logprobs,
        topk_sample_logprobs=body.topk_sample_logprobs,
        prompt_logprobs_last_n=body.prompt_logprobs_last_n,
        target_prompt_logprobs=body.target_prompt_logprobs,
        prompt_alt_tokens_k=body.prompt_alt_tokens_k,
    )


async def _adhoc_sampler(core: ServerCore, req: Request, body: SampleRequest) -> Sampler:
    """A sampler for a session-less request (``base_model`` / ``model_path`` in the body)."""
    backend, _, executor = core.require_running()
    if body.model_path is not None:
        try:
            meta, directory = read_checkpoint(core, req.owner, body.model_path, "sampling")
        except InvalidInputError as exc:
            raise HTTPError(404, str(exc)) from None
        spec = core.spec(meta.base_model)
        handle = await executor.call(lambda: backend.load_sampler(spec, directory), io=True)
    elif body.base_model is not None:
        spec = core.spec(body.base_model)
        handle = await executor.call(lambda: backend.base_sampler(spec))
    else:
        raise HTTPError(400, "asample needs sampling_session_id, base_model or model_path")
    return Sampler("adhoc", None, req.owner, spec.name, handle, body.model_path)


async def asample(core: ServerCore, req: Request) -> Response:
    """``asample``: accept a sample request (429 while too many wait for capacity)."""
    backend, _, executor = core.require_running()
    body = _codec.decode(SampleRequest, req.body)
    limits = core.config.limits
    offload = offloaded(check_sample(body, limits, core.config.default_max_tokens), limits)
    if body.sampling_session_id is not None:
        assert body.seq_id is not None  # the request type requires it with a session
        sampler = core.sampler(req.owner, body.sampling_session_id)
        seq = body.seq_id
        rid = f"{sampler.sampler_id}:{seq}"
        existing = core.futures.get(rid)
        if existing is not None or seq in sampler.seen:
            core.state.duplicates += 1
            return core.promise(
                rid, sample_sequence_ids=[f"{rid}:{i}" for i in range(body.num_samples)]
            )
        target: tuple[str, int] | None = (sampler.sampler_id, seq // _CLONE_SPAN)
    else:
        if body.record_stability_info:
            # Records belong to the session that sampled them: a session-less sample has none.
            raise HTTPError(400, "record_stability_info needs a sampling session")
        sampler = await _adhoc_sampler(core, req, body)
        rid = f"sample:{uuid.uuid4().hex[:16]}"
        seq = None
        target = None
    spec_model = core.specs.get(sampler.base_model)
    context = spec_model.max_context_length if spec_model is not None else 1 << 30
    check_sample_context(body, core.config.default_max_tokens, context)
    limit = core.config.max_queued_samples
    if limit is not None and executor.queued_samples >= limit:
        raise HTTPError(
            429, "sampling capacity exhausted; retry shortly", headers=[(b"retry-after-ms", b"250")]
        )
    if seq is not None:
        sampler.seen.add(seq)
    session = core.state.sessions.get(sampler.session_id) if sampler.session_id else None
    rec = core.futures.create(rid, "sample", req.owner, sampler.session_id, target)
    handle = sampler.handle
    sequence_ids = [f"{rid}:{i}" for i in range(body.num_samples)]
    records = core.state.stability
    record_in = sampler.session_id if body.record_stability_info else None

    async def work() -> Encoded:
        spec = _spec(core, body, rid, context)

        def run() -> SampleResponse:
            result = backend.sample(handle, spec)
            if record_in is not None:
                records.record(
                    sequence_ids, result, session_id=record_in, owner=req.owner, prompt=spec.prompt
                )
            return result

        return await executor.compute_encoded(run, offload=offload)

    now = executor.submit(session, rec, "sample", work, offload=offload)
    if now is not None:
        await now
    return core.promise(rec, sample_sequence_ids=sequence_ids)
