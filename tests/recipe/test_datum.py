"""datum_from_model_input_weights: teacher-forcing shift, truncation, dtypes, bad input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mint_async import InvalidInputError, _codec
from mint_async.recipe import datum_from_model_input_weights
from mint_async.types import Datum, EncodedTextChunk, ImageChunk, ModelInput


def test_shift() -> None:
    """Input drops the last token, targets drop the first, weights drop the first."""
    datum = datum_from_model_input_weights(ModelInput.from_ints([1, 2, 3, 4]), [0, 0, 1, 1])
    assert datum.model_input.to_ints() == [1, 2, 3]
    assert datum.loss_fn_inputs["target_tokens"].tolist() == [2, 3, 4]
    assert datum.loss_fn_inputs["weights"].tolist() == [0.0, 1.0, 1.0]


def test_dtypes() -> None:
    """target_tokens are int64 and weights float32, with 1-D shapes."""
    datum = datum_from_model_input_weights(
        ModelInput.from_ints([5, 6, 7]), np.array([0.0, 1.0, 0.5])
    )
    targets, weights = datum.loss_fn_inputs["target_tokens"], datum.loss_fn_inputs["weights"]
    assert targets.dtype == "int64" and targets.data.dtype == np.int64 and targets.dims == (2,)
    assert weights.dtype == "float32" and weights.data.dtype == np.float32 and weights.dims == (2,)


def test_truncation_to_max_length() -> None:
    """The sequence is cut to max_length tokens before the shift."""
    tokens = list(range(10, 20))
    datum = datum_from_model_input_weights(ModelInput.from_ints(tokens), [1.0] * 10, max_length=4)
    assert datum.model_input.to_ints() == [10, 11, 12]
    assert datum.loss_fn_inputs["target_tokens"].tolist() == [11, 12, 13]
    assert datum.loss_fn_inputs["weights"].tolist() == [1.0, 1.0, 1.0]


def test_max_length_longer_than_sequence_changes_nothing() -> None:
    """A max_length beyond the sequence is the same as none."""
    mi = ModelInput.from_ints([1, 2, 3])
    assert datum_from_model_input_weights(mi, [0, 1, 1], max_length=100) == (
        datum_from_model_input_weights(mi, [0, 1, 1])
    )


def test_multiple_text_chunks_are_joined() -> None:
    """Text chunks are flattened into one token sequence."""
    mi = ModelInput(chunks=[EncodedTextChunk(tokens=[1, 2]), EncodedTextChunk(tokens=[3])])
    datum = datum_from_model_input_weights(mi, [0, 1, 1])
    assert datum.model_input.to_ints() == [1, 2]


def test_weights_are_not_aliased() -> None:
    """Changing the caller's weights array afterwards does not change the Datum."""
    weights = np.array([0, 1, 1], dtype=np.float32)
    datum = datum_from_model_input_weights(ModelInput.from_ints([1, 2, 3]), weights)
    weights[:] = 7
    assert datum.loss_fn_inputs["weights"].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("max_length", [1, 0, -3, True, 2.5])
def test_bad_max_length(max_length: Any) -> None:
    """max_length below 2 (or not an int) is rejected."""
    with pytest.raises(InvalidInputError, match="max_length"):
        datum_from_model_input_weights(
            ModelInput.from_ints([1, 2, 3]), [0, 1, 1], max_length=max_length
        )


def test_too_short() -> None:
    """A one-token sequence has nothing to predict."""
    with pytest.raises(InvalidInputError, match="at least 2 tokens"):
        datum_from_model_input_weights(ModelInput.from_ints([1]), [1])


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ([0, 1], "one weight per token"),
        ([[0, 1, 1]], "one weight per token"),
        ([0, float("nan"), 1], "finite"),
        (["a", 1, 1], "numbers"),
    ],
)
def test_bad_weights(weights: object, match: str) -> None:
    """Weights must be one finite number per token."""
    with pytest.raises(InvalidInputError, match=match):
        datum_from_model_input_weights(ModelInput.from_ints([1, 2, 3]), weights)  # type: ignore[arg-type]


def test_image_chunks_are_rejected() -> None:
    """Only text model inputs can be shifted."""
    mi = ModelInput(
        chunks=[
            ImageChunk(data=b"x", format="png", expected_tokens=2),
            EncodedTextChunk(tokens=[1]),
        ]
    )
    with pytest.raises(InvalidInputError, match="text chunks"):
        datum_from_model_input_weights(mi, [0, 0, 1])


def test_not_a_model_input() -> None:
    """A plain token list is rejected with a pointer to ModelInput."""
    with pytest.raises(InvalidInputError, match="ModelInput"):
        datum_from_model_input_weights([1, 2, 3], [0, 1, 1])  # type: ignore[arg-type]


@given(
    tokens=st.lists(st.integers(0, 2**31 - 1), min_size=2, max_size=50),
    max_length=st.one_of(st.none(), st.integers(2, 60)),
)
def test_shift_property(tokens: list[int], max_length: int | None) -> None:
    """For any sequence: lengths agree, and target i is input token i + 1 of the cut sequence."""
    weights = [float(i % 3 == 0) for i in range(len(tokens))]
    datum = datum_from_model_input_weights(ModelInput.from_ints(tokens), weights, max_length)
    cut = tokens if max_length is None else tokens[:max_length]
    assert datum.model_input.to_ints() == cut[:-1]
    assert datum.loss_fn_inputs["target_tokens"].tolist() == cut[1:]
    assert datum.loss_fn_inputs["weights"].tolist() == weights[1 : len(cut)]
    # It is a valid wire Datum: it encodes and decodes back equal.
    assert _codec.decode(Datum, _codec.encode(datum)) == datum
