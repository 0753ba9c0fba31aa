"""mint_async accepts the official SDK's own type objects, converted by their fields (tinker 0.38 installed)."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest

from mint_async import types as t
from mint_async._foreign import as_adam_params, as_data, as_model_input, as_sampling_params

tinker: Any = pytest.importorskip("tinker", reason="nox -s cookbook installs tinker 0.38")


def test_real_tinker_objects_convert_field_for_field() -> None:
    assert "site-packages" in str(importlib.import_module("tinker").__file__)
    datum = tinker.types.Datum(
        model_input=tinker.types.ModelInput.from_ints([1, 2, 3]),
        loss_fn_inputs={
            "target_tokens": tinker.types.TensorData(data=[2, 3, 4], dtype="int64", shape=[3]),
            "weights": tinker.types.TensorData(data=[0.0, 1.0, 1.0], dtype="float32", shape=[3]),
        },
    )
    (converted,) = as_data([datum])
    assert isinstance(converted, t.Datum)
    assert converted.model_input.to_ints() == [1, 2, 3]
    assert converted.loss_fn_inputs["target_tokens"].tolist() == [2, 3, 4]
    assert np.array_equal(converted.loss_fn_inputs["weights"].to_numpy(), [0.0, 1.0, 1.0])
    adam = as_adam_params(tinker.types.AdamParams(learning_rate=3e-4, beta2=0.99))
    assert (adam.learning_rate, adam.beta2) == (3e-4, 0.99)
    params = as_sampling_params(tinker.types.SamplingParams(max_tokens=7, temperature=0.5))
    assert (params.max_tokens, params.temperature) == (7, 0.5)
    assert as_model_input(tinker.types.ModelInput.from_ints([9])).to_ints() == [9]
    spans = datum.with_provenance(
        model_input=[tinker.PromptProvenanceSpan(sequence_id="s", length=3)],
        loss_fn_inputs=[
            tinker.PromptProvenanceSpan(sequence_id="s", offset=1, length=2),
            tinker.SampledProvenanceSpan(sequence_id="s", length=1),
        ],
    )
    (with_spans,) = as_data([spans])
    assert with_spans.loss_fn_input_spans == [
        t.PromptProvenanceSpan(sequence_id="s", offset=1, length=2),
        t.SampledProvenanceSpan(sequence_id="s", length=1),
    ]
