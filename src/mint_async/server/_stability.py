"""Stability records of sampled sequences, and their use by ``stable_reinforce`` (tinker 0.38).

A sample request with ``record_stability_info`` makes the server remember, per
sampled sequence (by the ``sequence_id`` its promise announced in
``sample_sequence_ids``): the session that sampled it, the prompt, the sampled
tokens and the sampler's logprobs of them. A ``stable_reinforce``
forward_backward names those sequences in each datum's provenance spans; the
server checks every claim against the record (the tokens must be the ones
sampled or prompted) and hands the backend plain loss inputs: ``logprobs`` are
the *recorded* sampler logprobs (whatever the client sent is replaced), and
``weights`` are zeroed outside sampled tokens (a prompt token was not drawn by
the policy, so REINFORCE has nothing to say about it).

Retention follows tinker's documentation: records belong to the session that
sampled them (and are forgotten when the server purges that session) and can be
trained on for one day after sampling; each training request that uses a
sequence restarts its day. Open choices (ours): a record
is also dropped, least recently used first, once the records hold more than
``max_tokens`` tokens (memory stays bounded); using a sequence from another
session, one that expired, or one never recorded fails the request as the
caller's error.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from mint_async._exceptions import InvalidInputError
from mint_async.types import (
    Datum,
    EncodedTextChunk,
    PromptProvenanceSpan,
    ProvenanceSpan,
    SampledProvenanceSpan,
    SampleResponse,
    TensorData,
)

__all__ = ["RETENTION", "SampledRecord", "StabilityRecords", "resolve_stable_reinforce"]

RETENTION: Final = 86_400.0
"""Seconds a record stays usable after its sampling or its last use in training (one day)."""

_MAX_TOKENS: Final = 16_000_000
"""Prompt + sampled tokens the records may hold (about 100 MB) before the oldest go."""

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, kw_only=True)
class SampledRecord:
    """What the server remembers of one sampled sequence."""

    session_id: str
    owner: str
    prompt: I64
    tokens: I64
    logprobs: npt.NDArray[np.float32]

    @property
    def size(self) -> int:
        """Tokens held (the prompt counted once per sequence)."""
        return int(self.prompt.size + self.tokens.size)


class StabilityRecords:
    """Records by sequence id, least recently used first; thread-safe (samples finish in threads)."""

    def __init__(self, *, retention: float = RETENTION, max_tokens: int = _MAX_TOKENS) -> None:
        self._retention = retention
        self._max_tokens = max_tokens
        self._lock = threading.Lock()
        self._records: OrderedDict[str, tuple[SampledRecord, float]] = OrderedDict()
        self._tokens = 0

    def __len__(self) -> int:
        return len(self._records)

    def _drop_oldest(self) -> None:
        _, (record, _) = self._records.popitem(last=False)
        self._tokens -= record.size

    def _expire(self, now: float) -> None:
        while self._records:
            _, (_, used) = next(iter(self._records.items()))
            if now - used < self._retention and self._tokens <= self._max_tokens:
                return
            self._drop_oldest()

    def record(
        self,
        sequence_ids: Sequence[str],
        response: SampleResponse,
        *,
        session_id: str,
        owner: str,
        prompt: I64,
    ) -> None:
        """Remember each sequence of ``response`` under its id (ids and sequences pair up in order)."""
        now = time.monotonic()
        with self._lock:
            for sequence_id, seq in zip(sequence_ids, response.sequences, strict=True):
                tokens = np.asarray(seq.tokens_np, dtype=np.int64)
                logprobs = (
                    np.zeros(tokens.size, dtype=np.float32)
                    if seq.logprobs_np is None
                    else np.asarray(seq.logprobs_np, dtype=np.float32)
                )
                record = SampledRecord(
                    session_id=session_id,
                    owner=owner,
                    prompt=prompt,
                    tokens=tokens,
                    logprobs=logprobs,
                )
                old = self._records.pop(sequence_id, None)
                if old is not None:
                    self._tokens -= old[0].size
                self._records[sequence_id] = (record, now)
                self._tokens += record.size
            self._expire(now)

    def drop_session(self, session_id: str) -> int:
        """Forget every record of ``session_id`` (purged); returns how many went."""
        with self._lock:
            gone = [sid for sid, (rec, _) in self._records.items() if rec.session_id == session_id]
            for sid in gone:
                record, _ = self._records.pop(sid)
                self._tokens -= record.size
            return len(gone)

    def use(self, sequence_id: str, *, owner: str, session_id: str) -> SampledRecord:
        """The record of ``sequence_id`` for training in ``session_id`` (restarts its day)."""
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            entry = self._records.get(sequence_id)
            if entry is None or entry[0].owner != owner:
                msg = (
                    f"no stability record for sequence {sequence_id!r}: sample it with "
                    "record_stability_info=True (records last one day after their last use)"
                )
                raise InvalidInputError(msg)
            record = entry[0]
            if record.session_id != session_id:
                msg = (
                    f"sequence {sequence_id!r} was sampled in session {record.session_id}; "
                    "stability records belong to the session that sampled them"
                )
                raise InvalidInputError(msg)
            self._records[sequence_id] = (record, now)
            self._records.move_to_end(sequence_id)
            return record


def _tokens(datum: Datum, index: int) -> I64:
    parts: list[I64] = []
    for chunk in datum.model_input.chunks:
        if not isinstance(chunk, EncodedTextChunk):
            msg = f"datum {index}: stable_reinforce provenance covers text tokens only"
            raise InvalidInputError(msg)
        parts.append(np.asarray(chunk.tokens, dtype=np.int64))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _claimed(record: SampledRecord, span: ProvenanceSpan) -> tuple[I64, bool]:
    """The tokens a span claims (and whether they were sampled); error if out of range."""
    source = record.tokens if isinstance(span, SampledProvenanceSpan) else record.prompt
    end = span.offset + span.length
    if end > source.size:
        kind = "sampled tokens" if isinstance(span, SampledProvenanceSpan) else "prompt"
        msg = (
            f"a span claims positions [{span.offset}, {end}) of the {kind} of sequence "
            f"{span.sequence_id!r}, which has {source.size}"
        )
        raise InvalidInputError(msg)
    return source[span.offset : end], isinstance(span, SampledProvenanceSpan)


def resolve_stable_reinforce(
    datum: Datum, index: int, records: StabilityRecords, *, owner: str, session_id: str
) -> Datum:
    """``datum`` with its provenance checked and turned into recorded logprobs and weights.

    Raises InvalidInputError when a datum has no provenance, a span names an
    unknown (or another session's) sequence, or claims tokens that are not
    the recorded ones.
    """
    if datum.model_input_spans is None or datum.loss_fn_input_spans is None:
        msg = (
            f"datum {index}: stable_reinforce needs provenance on every datum "
            "(Datum.with_provenance, with sequence ids of samples recorded with "
            "record_stability_info=True)"
        )
        raise InvalidInputError(msg)
    inputs = datum.loss_fn_inputs
    target_td = inputs.get("target_tokens")
    if target_td is None or len(target_td.dims) != 1:
        msg = f"datum {index}: stable_reinforce needs 1-D loss_fn_inputs['target_tokens']"
        raise InvalidInputError(msg)
    targets = np.asarray(target_td.to_numpy(), dtype=np.int64)
    tokens = _tokens(datum, index)
    cache: dict[str, SampledRecord] = {}

    def lookup(span: ProvenanceSpan) -> SampledRecord:
        record = cache.get(span.sequence_id)
        if record is None:
            record = cache[span.sequence_id] = records.use(
                span.sequence_id, owner=owner, session_id=session_id
            )
        return record

    for field, spans, values in (
        ("model_input", datum.model_input_spans, tokens),
        ("loss_fn_inputs", datum.loss_fn_input_spans, targets),
    ):
        total = sum(span.length for span in spans)
        if total != values.size:
            msg = f"datum {index}: {field} spans cover {total} positions but the field has {values.size}"
            raise InvalidInputError(msg)
    pos = 0
    for span in datum.model_input_spans:
        claimed, _ = _claimed(lookup(span), span)
        if not np.array_equal(claimed, tokens[pos : pos + span.length]):
            msg = f"datum {index}: model_input positions [{pos}, {pos + span.length}) are not the tokens {_describe(span)}"
            raise InvalidInputError(msg)
        pos += span.length
    sampler_logprobs = np.zeros(targets.size, dtype=np.float32)
    sampled = np.zeros(targets.size, dtype=bool)
    pos = 0
    for span in datum.loss_fn_input_spans:
        record = lookup(span)
        claimed, is_sampled = _claimed(record, span)
        end = pos + span.length
        if not np.array_equal(claimed, targets[pos:end]):
            msg = f"datum {index}: target_tokens positions [{pos}, {end}) are not the tokens {_describe(span)}"
            raise InvalidInputError(msg)
        if is_sampled:
            sampler_logprobs[pos:end] = record.logprobs[span.offset : span.offset + span.length]
            sampled[pos:end] = True
        pos = end
    weights_td = inputs.get("weights")
    if weights_td is not None and weights_td.dims != targets.shape:
        msg = f"datum {index}: loss_fn_inputs['weights'] has shape {list(weights_td.dims)}, expected {list(targets.shape)}"
        raise InvalidInputError(msg)
    weights = (
        np.ones(targets.size, dtype=np.float32)
        if weights_td is None
        else np.asarray(weights_td.to_numpy(), dtype=np.float32)
    )
    resolved = dict(inputs)
    resolved["logprobs"] = TensorData(data=sampler_logprobs, dtype="float32", shape=[targets.size])
    resolved["weights"] = TensorData(
        data=np.where(sampled, weights, np.float32(0)).astype(np.float32),
        dtype="float32",
        shape=[targets.size],
    )
    return Datum(model_input=datum.model_input, loss_fn_inputs=resolved)


def _describe(span: ProvenanceSpan) -> str:
    where = "sampled as" if isinstance(span, SampledProvenanceSpan) else "in the prompt of"
    assert isinstance(span, PromptProvenanceSpan | SampledProvenanceSpan)
    return f"{where} {span.sequence_id!r} at [{span.offset}, {span.offset + span.length})"
