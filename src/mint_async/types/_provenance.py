"""Provenance spans of a Datum (tinker 0.38, protocol §8.2, §9.2): where its tokens came from.

A span is a run of consecutive positions of one Datum field. The runs of a
field tile it: their lengths add up to the field's length, and position comes
from order. A ``SampledProvenanceSpan`` claims its positions are positions
``[offset, offset + length)`` of a sampled sequence's tokens, a
``PromptProvenanceSpan`` that they are those positions of the prompt of the
request that sampled the named sequence. Sequences are named by
``SampledSequence.sequence_id``.

On the protobuf wire a span is a ``ProvenanceSpan`` oneof (``prompt_tokens`` /
``sampled_tokens``); in JSON (a mint_async extension: the protocol carries
spans in protobuf only) the same two names are the ``type`` tag.
"""

from __future__ import annotations

from typing import TypeAlias

from ._base import WireStruct, check_int, invalid


class _Span(WireStruct, kw_only=True):
    sequence_id: str
    offset: int = 0
    length: int

    def __post_init__(self) -> None:
        name = type(self).__name__
        if not isinstance(self.sequence_id, str) or not self.sequence_id:  # pyright: ignore[reportUnnecessaryIsInstance]
            msg = f"{name}.sequence_id must be a non-empty string"
            raise invalid(msg)
        check_int(f"{name}.offset", self.offset, minimum=0)
        check_int(f"{name}.length", self.length, minimum=0)


class PromptProvenanceSpan(_Span, tag="prompt_tokens", tag_field="type", kw_only=True):
    """A run of tokens that were part of a sampling request's prompt.

    Claims the covered positions are positions ``[offset, offset + length)`` of
    the prompt of the request that sampled ``sequence_id``.
    """


class SampledProvenanceSpan(_Span, tag="sampled_tokens", tag_field="type", kw_only=True):
    """A run of tokens produced by one sampled sequence.

    Claims the covered positions are positions ``[offset, offset + length)`` of
    the tokens sampled as ``sequence_id``.
    """


ProvenanceSpan: TypeAlias = PromptProvenanceSpan | SampledProvenanceSpan
"""One run of a provenance tiling."""


def check_tiling(what: str, spans: list[ProvenanceSpan], length: int) -> None:
    """InvalidInputError unless the runs of ``spans`` cover exactly ``length`` positions."""
    total = 0
    for span in spans:
        if not isinstance(span, PromptProvenanceSpan | SampledProvenanceSpan):  # pyright: ignore[reportUnnecessaryIsInstance]
            msg = f"{what} entries must be PromptProvenanceSpan or SampledProvenanceSpan, got {type(span).__name__}"
            raise invalid(msg)
        total += span.length
    if total != length:
        msg = f"{what} spans cover {total} positions but the field has {length}; the runs must tile it exactly"
        raise invalid(msg)
