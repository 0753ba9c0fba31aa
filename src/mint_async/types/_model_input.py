"""Model input: token chunks and images (protocol §8.1)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from ._base import TokenSequence, WireStruct, check_int, invalid


class EncodedTextChunk(WireStruct, tag="encoded_text", tag_field="type", kw_only=True, eq=False):
    """A run of token ids. ``tokens`` may be a list or a numpy integer array."""

    tokens: TokenSequence

    def __post_init__(self) -> None:
        tokens: object = self.tokens
        if isinstance(tokens, np.ndarray):
            if tokens.dtype.kind not in "iu" or tokens.ndim != 1:  # pyright: ignore[reportUnknownMemberType]
                msg = "tokens must be a 1-D integer array"
                raise invalid(msg)
        elif not isinstance(tokens, list):
            if isinstance(tokens, str | bytes) or not isinstance(tokens, Sequence):
                msg = f"tokens must be a sequence of ints, got {type(tokens).__name__}"
                raise invalid(msg)
            self.tokens = list(tokens)  # pyright: ignore[reportUnknownArgumentType]

    @property
    def length(self) -> int:
        """Number of tokens."""
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EncodedTextChunk):
            return NotImplemented
        a, b = self.tokens, other.tokens
        if isinstance(a, list) and isinstance(b, list):
            return a == b
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))

    __hash__: ClassVar[None] = None  # type: ignore[assignment]


class ImageChunk(WireStruct, tag="image", tag_field="type", kw_only=True):
    """An inline image; ``data`` is raw bytes (base64 on the wire)."""

    data: bytes
    format: Literal["png", "jpeg"]
    expected_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.format not in ("png", "jpeg"):
            msg = f"image format must be 'png' or 'jpeg', got {self.format!r}"
            raise invalid(msg)
        if self.expected_tokens is not None:
            check_int("expected_tokens", self.expected_tokens, minimum=0)

    @property
    def length(self) -> int:
        """The advisory token count; required to compute a ModelInput's length."""
        if self.expected_tokens is None:
            msg = "ImageChunk.expected_tokens must be set to compute the length"
            raise invalid(msg)
        return self.expected_tokens


class ImageAssetPointerChunk(WireStruct, tag="image_asset_pointer", tag_field="type", kw_only=True):
    """An image the server fetches from ``location`` (a path or URL)."""

    format: Literal["png", "jpeg"]
    location: str
    expected_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.format not in ("png", "jpeg"):
            msg = f"image format must be 'png' or 'jpeg', got {self.format!r}"
            raise invalid(msg)

    @property
    def length(self) -> int:
        """The advisory token count; required to compute a ModelInput's length."""
        if self.expected_tokens is None:
            msg = "ImageAssetPointerChunk.expected_tokens must be set to compute the length"
            raise invalid(msg)
        return self.expected_tokens


ModelInputChunk: TypeAlias = EncodedTextChunk | ImageChunk | ImageAssetPointerChunk


class ModelInput(WireStruct, kw_only=True):
    """A tokenized prompt: a list of chunks.

    Example::

        prompt = ModelInput.from_ints([1, 2, 3]).append_int(4)
        assert prompt.to_ints() == [1, 2, 3, 4] and prompt.length == 4
    """

    chunks: list[ModelInputChunk]

    @classmethod
    def from_ints(cls, tokens: Sequence[int] | npt.NDArray[np.integer[Any]]) -> ModelInput:
        """One text chunk holding ``tokens`` (a list, or a numpy array kept without copying)."""
        return cls(chunks=[EncodedTextChunk(tokens=tokens)])

    @classmethod
    def empty(cls) -> ModelInput:
        """A ModelInput without chunks."""
        return cls(chunks=[])

    def to_ints(self) -> list[int]:
        """All token ids as one list; raises InvalidInputError if an image chunk is present."""
        out: list[int] = []
        for chunk in self.chunks:
            if not isinstance(chunk, EncodedTextChunk):
                msg = f"to_ints() needs text chunks only, found a {chunk.__class__.__name__}"
                raise invalid(msg)
            tokens = chunk.tokens
            out.extend(tokens.tolist() if isinstance(tokens, np.ndarray) else tokens)
        return out

    @property
    def length(self) -> int:
        """Total number of tokens (images count their ``expected_tokens``)."""
        return sum(chunk.length for chunk in self.chunks)

    def context_length(self) -> int:
        """Total number of tokens (the MinT docs' name for :attr:`length`)."""
        return self.length

    def append(self, chunk: ModelInputChunk) -> ModelInput:
        """A new ModelInput with ``chunk`` added at the end."""
        return ModelInput(chunks=[*self.chunks, chunk])

    def append_chunks(self, chunks: Iterable[ModelInputChunk]) -> ModelInput:
        """A new ModelInput with ``chunks`` added at the end."""
        return ModelInput(chunks=[*self.chunks, *chunks])

    def append_tokens(self, tokens: Sequence[int] | npt.NDArray[np.integer[Any]]) -> ModelInput:
        """A new ModelInput with ``tokens`` added; merged into a trailing text chunk."""
        if self.chunks and isinstance(last := self.chunks[-1], EncodedTextChunk):
            merged = _concat_tokens(last.tokens, tokens)
            return ModelInput(chunks=[*self.chunks[:-1], EncodedTextChunk(tokens=merged)])
        return self.append(EncodedTextChunk(tokens=tokens))

    def append_int(self, token: int) -> ModelInput:
        """A new ModelInput with one more token."""
        return self.append_tokens([token])


def _concat_tokens(
    a: Sequence[int] | npt.NDArray[np.integer[Any]], b: Sequence[int] | npt.NDArray[np.integer[Any]]
) -> Sequence[int] | npt.NDArray[np.integer[Any]]:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.concatenate([np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)])
    return [*a, *b]
