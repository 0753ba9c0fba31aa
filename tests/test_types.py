"""The wire types: validation at construction and the MinT-docs conveniences."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pytest

from mint_async import DecodeError, InvalidInputError, _codec
from mint_async import types as t


def _json(obj: object) -> Any:
    return orjson.loads(_codec.encode(obj))


class TestModelInput:
    def test_from_ints_to_ints_length(self) -> None:
        """from_ints/to_ints/length/context_length agree."""
        mi = t.ModelInput.from_ints([1, 2, 3])
        assert mi.to_ints() == [1, 2, 3]
        assert mi.length == 3 == mi.context_length()

    def test_numpy_tokens_are_kept_and_encoded_without_copy(self) -> None:
        """A numpy token array is stored as is and encodes to the same JSON as a list."""
        arr = np.arange(5, dtype=np.int64)
        mi = t.ModelInput.from_ints(arr)
        chunk = mi.chunks[0]
        assert isinstance(chunk, t.EncodedTextChunk) and chunk.tokens is arr
        assert _json(mi) == _json(t.ModelInput.from_ints([0, 1, 2, 3, 4]))
        assert mi.to_ints() == [0, 1, 2, 3, 4]

    def test_append_variants(self) -> None:
        """append_int/append_tokens merge into the last text chunk; append/append_chunks add chunks."""
        mi = t.ModelInput.empty().append_int(1).append_tokens([2, 3])
        assert len(mi.chunks) == 1 and mi.to_ints() == [1, 2, 3]
        img = t.ImageChunk(data=b"x", format="png", expected_tokens=4)
        mi2 = mi.append(img).append_int(9)
        assert len(mi2.chunks) == 3 and mi2.length == 8
        mi3 = mi.append_chunks([t.EncodedTextChunk(tokens=[4]), t.EncodedTextChunk(tokens=[5])])
        assert mi3.to_ints() == [1, 2, 3, 4, 5] and len(mi3.chunks) == 3
        # the original is unchanged
        assert mi.to_ints() == [1, 2, 3]
        arr_mi = t.ModelInput.from_ints(np.array([1, 2])).append_tokens([3])
        assert arr_mi.to_ints() == [1, 2, 3]

    def test_to_ints_rejects_images(self) -> None:
        """to_ints raises a typed error when an image chunk is present."""
        mi = t.ModelInput(chunks=[t.ImageChunk(data=b"x", format="png")])
        with pytest.raises(InvalidInputError, match="text chunks"):
            mi.to_ints()
        with pytest.raises(InvalidInputError, match="expected_tokens"):
            _ = mi.length

    @pytest.mark.parametrize("bad", ["abc", 5, np.zeros((2, 2), dtype=np.int64), np.zeros(3)])
    def test_bad_tokens(self, bad: Any) -> None:
        """Tokens must be a 1-D sequence of integers."""
        with pytest.raises(InvalidInputError):
            t.EncodedTextChunk(tokens=bad)

    def test_image_format_checked(self) -> None:
        """Image formats other than png/jpeg are rejected."""
        with pytest.raises(InvalidInputError, match="png"):
            t.ImageChunk(data=b"x", format="gif")  # type: ignore[arg-type]


class TestTensorData:
    def test_from_numpy_round_trip_and_dtypes(self) -> None:
        """from_numpy maps ints to int64 and floats to float32 and keeps the shape."""
        arr = np.arange(6, dtype=np.int32).reshape(2, 3)
        td = t.TensorData.from_numpy(arr)
        assert td.dtype == "int64" and td.shape == [2, 3] and td.dims == (2, 3)
        assert td.data.dtype == np.int64 and td.data.ndim == 1
        np.testing.assert_array_equal(td.to_numpy(), arr)
        f = t.TensorData.from_numpy(np.linspace(0, 1, 4))
        assert f.dtype == "float32" and f.data.dtype == np.float32

    def test_no_copy_when_dtype_matches(self) -> None:
        """A float32 array is used without a copy."""
        arr = np.ones(4, dtype=np.float32)
        td = t.TensorData(data=arr, dtype="float32")
        assert np.shares_memory(td.data, arr)

    def test_shape_mismatch_rejected(self) -> None:
        """shape must match the number of values."""
        with pytest.raises(InvalidInputError, match="needs 6 values"):
            t.TensorData(data=[1, 2, 3], dtype="int64", shape=[2, 3])

    def test_bad_dtype_rejected(self) -> None:
        """Only int64 and float32 exist on the wire."""
        with pytest.raises(InvalidInputError, match="dtype"):
            t.TensorData(data=[1], dtype="float64")  # type: ignore[arg-type]

    def test_non_integral_floats_for_int64_rejected(self) -> None:
        """int64 data built from floats must be integral."""
        with pytest.raises(InvalidInputError, match="integers"):
            t.TensorData(data=[1.5], dtype="int64")
        assert t.TensorData(data=[2.0], dtype="int64").tolist() == [2]

    @pytest.mark.parametrize(
        ("data", "dtype"),
        [
            (np.array([1e300]), "float32"),
            (np.array([1e300]), "int64"),
            (np.array([2.0**63]), "int64"),
            (np.array([2**63], dtype=np.uint64), "int64"),
        ],
    )
    def test_out_of_range_values_rejected(self, data: Any, dtype: t.TensorDtype) -> None:
        """Values the wire dtype cannot hold raise instead of turning into inf or wrapping around."""
        with pytest.raises(InvalidInputError, match="range"):
            t.TensorData(data=data, dtype=dtype)

    def test_extreme_values_in_range_kept(self) -> None:
        """int64 limits, uint64 values that fit, and inf/NaN floats convert as they are."""
        limits = t.TensorData(data=np.array([2**63 - 1, 0], dtype=np.uint64), dtype="int64")
        assert limits.tolist() == [2**63 - 1, 0]
        specials = t.TensorData(data=np.array([np.inf, -np.inf, np.nan]), dtype="float32")
        assert specials.data.dtype == np.float32 and specials.tolist()[:2] == [np.inf, -np.inf]
        assert np.isnan(specials.data[2])

    def test_strings_rejected(self) -> None:
        """Non-numeric data is a typed error."""
        with pytest.raises(InvalidInputError):
            t.TensorData(data=["a", "b"], dtype="float32")  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError):
            t.TensorData(data="ab", dtype="float32")  # type: ignore[arg-type]

    def test_sparse_csr(self) -> None:
        """A sparse tensor densifies correctly and invalid CSR is rejected."""
        dense = np.array([[0, 5, 0, 0], [0, 0, 0, 0], [7, 0, 0, 8]], dtype=np.int64)
        td = t.TensorData.from_numpy_sparse(dense)
        assert td.is_sparse and td.sparse_crow_indices == [0, 1, 1, 3]
        assert td.sparse_col_indices == [1, 0, 3]
        np.testing.assert_array_equal(td.to_numpy(), dense)
        assert _codec.decode(t.TensorData, _codec.encode(td)) == td
        with pytest.raises(InvalidInputError, match="crow"):
            t.TensorData(
                data=[1],
                dtype="int64",
                shape=[2, 2],
                sparse_crow_indices=[0, 1],
                sparse_col_indices=[0],
            )
        with pytest.raises(InvalidInputError, match="col"):
            t.TensorData(
                data=[1],
                dtype="int64",
                shape=[2, 2],
                sparse_crow_indices=[0, 1, 1],
                sparse_col_indices=[5],
            )
        with pytest.raises(InvalidInputError, match="together"):
            t.TensorData(data=[1], dtype="int64", shape=[1, 1], sparse_crow_indices=[0, 1])

    def test_mostly_dense_stays_dense(self) -> None:
        """from_numpy_sparse keeps dense layout when CSR would be larger."""
        td = t.TensorData.from_numpy_sparse(np.ones((2, 2), dtype=np.float32))
        assert not td.is_sparse

    def test_torch_round_trip(self) -> None:
        """from_torch/to_torch round-trip (bfloat16 widened to float32)."""
        torch = pytest.importorskip("torch")
        x = torch.arange(6, dtype=torch.float32).reshape(2, 3)
        td = t.TensorData.from_torch(x)
        assert td.shape == [2, 3] and td.dtype == "float32"
        assert torch.equal(td.to_torch(), x)
        bf = t.TensorData.from_torch(x.to(torch.bfloat16))
        assert bf.dtype == "float32"
        sp = t.TensorData.from_torch_sparse(torch.tensor([[0, 0, 0, 0], [0, 3, 0, 0]]))
        assert sp.is_sparse and sp.to_numpy().tolist() == [[0, 0, 0, 0], [0, 3, 0, 0]]


class TestDatum:
    def test_lists_are_coerced_per_key(self) -> None:
        """target_tokens become int64; weights/advantages/logprobs float32; others inferred."""
        d = t.Datum(
            model_input=t.ModelInput.from_ints([1, 2]),
            loss_fn_inputs={
                "target_tokens": [2, 3],
                "weights": [1, 1],
                "advantages": np.array([0.5, -0.5]),
                "logprobs": [-1, -2],
                "custom_int": np.array([1, 2], dtype=np.int8),
            },
        )
        dtypes = {k: v.dtype for k, v in d.loss_fn_inputs.items()}
        assert dtypes == {
            "target_tokens": "int64",
            "weights": "float32",
            "advantages": "float32",
            "logprobs": "float32",
            "custom_int": "int64",
        }
        assert d.loss_fn_inputs["weights"].shape == [2]

    @pytest.mark.parametrize(
        ("key", "value", "dtype", "expected"),
        [
            # plain lists of the "wrong" Python type
            ("target_tokens", [2.0, 3.0], "int64", [2, 3]),
            ("target_tokens", [True, False], "int64", [1, 0]),
            ("weights", [0, 1], "float32", [0.0, 1.0]),
            ("advantages", [1, -2], "float32", [1.0, -2.0]),
            ("logprobs", [-1, 0], "float32", [-1.0, 0.0]),
            ("clip_low_threshold", [0, 1], "float32", [0.0, 1.0]),
            ("clip_high_threshold", [1, 2], "float32", [1.0, 2.0]),
            ("sequence_ratio_mask", [1, 0], "float32", [1.0, 0.0]),
            # numpy arrays of the wrong dtype
            ("target_tokens", np.array([2.0, 3.0]), "int64", [2, 3]),
            ("target_tokens", np.array([2, 3], dtype=np.int32), "int64", [2, 3]),
            ("target_tokens", np.array([2, 3], dtype=np.uint16), "int64", [2, 3]),
            ("weights", np.array([0, 1], dtype=np.int64), "float32", [0.0, 1.0]),
            ("weights", np.array([True, False]), "float32", [1.0, 0.0]),
            ("advantages", np.array([0.5, -0.25], dtype=np.float64), "float32", [0.5, -0.25]),
            ("logprobs", np.array([-1.5, -0.5], dtype=np.float16), "float32", [-1.5, -0.5]),
            ("clip_low_threshold", np.array([1, 2], dtype=np.int32), "float32", [1.0, 2.0]),
            ("clip_high_threshold", np.array([1, 2], dtype=np.int8), "float32", [1.0, 2.0]),
            # keys the protocol does not fix: inferred from the values
            ("custom", [1, 2], "int64", [1, 2]),
            ("custom", [1, 2.5], "float32", [1.0, 2.5]),
            ("custom", np.array([1.0, 2.0]), "float32", [1.0, 2.0]),
        ],
    )
    def test_coercion_per_key(self, key: str, value: Any, dtype: str, expected: list[Any]) -> None:
        """Each loss_fn_inputs key gets its protocol dtype (§8.2) whatever the input's own type."""
        d = t.Datum(model_input=t.ModelInput.from_ints([1, 2]), loss_fn_inputs={key: value})
        td = d.loss_fn_inputs[key]
        assert td.dtype == dtype
        assert td.data.dtype == np.dtype(dtype)
        assert td.shape == [2]
        assert td.tolist() == expected
        wire = _json(d)["loss_fn_inputs"][key]
        assert wire == {"data": expected, "dtype": dtype, "shape": [2]}
        assert all(type(v) is (int if dtype == "int64" else float) for v in wire["data"])

    def test_matching_numpy_input_is_not_copied(self) -> None:
        """Arrays already in the key's dtype are stored as they are (no copy)."""
        targets = np.array([2, 3], dtype=np.int64)
        weights = np.array([1.0, 0.0], dtype=np.float32)
        d = t.Datum(
            model_input=t.ModelInput.from_ints([1, 2]),
            loss_fn_inputs={"target_tokens": targets, "weights": weights},
        )
        assert d.loss_fn_inputs["target_tokens"].data is targets
        assert d.loss_fn_inputs["weights"].data is weights

    @pytest.mark.parametrize(
        "value",
        [[2.5, 3.0], np.array([2.5, 3.0]), np.array([np.nan, 1.0]), ["a", "b"], "ab"],
    )
    def test_target_tokens_that_are_not_integers_rejected(self, value: Any) -> None:
        """target_tokens holding non-integral floats or text raise InvalidInputError."""
        with pytest.raises(InvalidInputError):
            t.Datum(
                model_input=t.ModelInput.from_ints([1, 2]),
                loss_fn_inputs={"target_tokens": value},
            )

    def test_torch_inputs_coerced_per_key(self) -> None:
        """torch tensors of the wrong dtype are coerced by key like numpy arrays."""
        torch = pytest.importorskip("torch")
        d = t.Datum(
            model_input=t.ModelInput.from_ints([1, 2]),
            loss_fn_inputs={
                "target_tokens": torch.tensor([2.0, 3.0]),
                "weights": torch.tensor([1, 0]),
                "advantages": torch.tensor([0.5, 1.5], dtype=torch.bfloat16),
            },
        )
        got = {k: (v.dtype, v.data.dtype, v.tolist()) for k, v in d.loss_fn_inputs.items()}
        assert got == {
            "target_tokens": ("int64", np.dtype(np.int64), [2, 3]),
            "weights": ("float32", np.dtype(np.float32), [1.0, 0.0]),
            "advantages": ("float32", np.dtype(np.float32), [0.5, 1.5]),
        }

    def test_length_mismatch_rejected(self) -> None:
        """Per-token inputs must have one row per model-input token."""
        with pytest.raises(InvalidInputError, match="3 rows but model_input has 2"):
            t.Datum(
                model_input=t.ModelInput.from_ints([1, 2]), loss_fn_inputs={"weights": [1, 1, 1]}
            )

    def test_topk_targets_allowed(self) -> None:
        """[T, K] targets pass the length check on their first dimension."""
        d = t.Datum(
            model_input=t.ModelInput.from_ints([1, 2]),
            loss_fn_inputs={"target_tokens": np.zeros((2, 4), dtype=np.int64)},
        )
        assert d.loss_fn_inputs["target_tokens"].shape == [2, 4]

    def test_sft_guide_datum(self) -> None:
        """The MinT SFT guide's Datum (plain lists) encodes as the SDK would."""
        tokens = [5, 6, 7, 8]
        d = t.Datum(
            model_input=t.ModelInput.from_ints(tokens=tokens[:-1]),
            loss_fn_inputs={"target_tokens": tokens[1:], "weights": [0, 1, 1]},
        )
        assert _json(d)["loss_fn_inputs"]["weights"] == {
            "data": [0.0, 1.0, 1.0],
            "dtype": "float32",
            "shape": [3],
        }


class TestParams:
    def test_adam_betas_spelling(self) -> None:
        """AdamParams(betas=(b1, b2)) sets beta1/beta2 and betas is not sent."""
        p = t.AdamParams(learning_rate=5e-5, betas=(0.9, 0.999), eps=1e-8)
        assert (p.beta1, p.beta2, p.betas) == (0.9, 0.999, None)
        assert "betas" not in _json(p)

    @pytest.mark.parametrize(
        "kwargs",
        [{"learning_rate": -1.0}, {"beta1": 1.0}, {"betas": (0.9,)}, {"eps": float("nan")}],
    )
    def test_adam_invalid(self, kwargs: dict[str, Any]) -> None:
        """Negative rates, betas outside [0, 1) and non-finite values are rejected."""
        with pytest.raises(InvalidInputError):
            t.AdamParams(**kwargs)

    def test_sampling_stop_token_ids(self) -> None:
        """stop_token_ids is merged into stop and not sent itself."""
        sp = t.SamplingParams(max_tokens=4, stop_token_ids=[7])
        assert sp.stop == [7] and sp.stop_token_ids is None
        assert _json(sp) == {
            "max_tokens": 4,
            "stop": [7],
            "temperature": 1.0,
            "top_k": -1,
            "top_p": 1.0,
        }
        assert t.SamplingParams(stop=[1], stop_token_ids=[2]).stop == [1, 2]
        with pytest.raises(InvalidInputError, match="combined"):
            t.SamplingParams(stop=["\n"], stop_token_ids=[2])

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"max_tokens": -1},
            {"temperature": -0.1},
            {"top_p": 0.0},
            {"top_p": 1.5},
            {"top_k": 0},
            {"seed": -3},
            {"stop": ["a", 1]},
            {"stop": 3},
            {"max_tokens": 1.5},
        ],
    )
    def test_sampling_invalid(self, kwargs: dict[str, Any]) -> None:
        """Invalid sampling parameters raise at construction."""
        with pytest.raises(InvalidInputError):
            t.SamplingParams(**kwargs)

    def test_lora_limits(self) -> None:
        """rank must be 1..64 and something must be trainable."""
        with pytest.raises(InvalidInputError, match="at most 64"):
            t.LoraConfig(rank=65)
        with pytest.raises(InvalidInputError, match=">= 1"):
            t.LoraConfig(rank=0)
        with pytest.raises(InvalidInputError, match="at least one"):
            t.LoraConfig(rank=8, train_attn=False, train_mlp=False, train_unembed=False)

    def test_unknown_loss_fn(self) -> None:
        """Unknown loss function names are rejected."""
        with pytest.raises(InvalidInputError, match="unknown loss function"):
            t.ForwardBackwardInput(data=[], loss_fn="mse")  # type: ignore[arg-type]


class TestResults:
    def test_forward_backward_loss_property(self) -> None:
        """ForwardBackwardOutput.loss reads loss:sum and names the metrics when missing."""
        out = t.ForwardBackwardOutput(
            loss_fn_output_type="x", loss_fn_outputs=[], metrics={"loss:sum": 2.0}
        )
        assert out.loss == 2.0
        with pytest.raises(KeyError, match="loss:sum"):
            _ = t.ForwardBackwardOutput(
                loss_fn_output_type="x", loss_fn_outputs=[], metrics={}
            ).loss

    def test_sampled_sequence_lists_and_arrays(self) -> None:
        """tokens/logprobs lists and their numpy twins agree; stop_reason is checked."""
        seq = t.SampledSequence(stop_reason="stop", tokens_np=[1, 2], logprobs_np=[-0.5, -1.0])
        assert seq.tokens == [1, 2] and seq.logprobs == [-0.5, -1.0]
        with pytest.raises(InvalidInputError):
            t.SampledSequence(stop_reason="eos", tokens_np=[1])  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="one entry per token"):
            t.SampledSequence(stop_reason="stop", tokens_np=[1], logprobs_np=[0.0, 1.0])

    def test_prompt_logprobs_np(self) -> None:
        """prompt_logprobs_np has NaN where the server computed none."""
        r = t.SampleResponse(sequences=[], prompt_logprobs=[None, -1.0])
        arr = r.prompt_logprobs_np
        assert arr is not None and np.isnan(arr[0]) and arr[1] == -1.0

    def test_sample_result_policy_version(self) -> None:
        """SampleResult decodes the MinT policy_version, and plain responses without it."""
        body = b'{"sequences": [], "policy_version": 3, "type": "sample"}'
        assert _codec.decode(t.SampleResult, body).policy_version == 3
        assert _codec.decode(t.SampleResult, b'{"sequences": []}').policy_version is None

    def test_doc_names(self) -> None:
        """Checkpoint and TrainingRun expose the MinT docs' field names."""
        when = datetime(2026, 1, 1, tzinfo=UTC)
        ck = t.Checkpoint(
            checkpoint_id="weights/a",
            checkpoint_type="training",
            time=when,
            tinker_path="p",
            size_bytes=3,
        )
        assert (ck.id, ck.type, ck.timestamp, ck.size) == ("weights/a", "training", when, 3)
        run = t.TrainingRun(
            training_run_id="r",
            base_model="b",
            model_owner="o",
            is_lora=True,
            last_request_time=when,
            last_checkpoint=ck,
        )
        assert (run.id, run.owner, run.checkpoints) == ("r", "o", [ck])

    def test_unknown_fields_ignored(self) -> None:
        """Response fields we do not know are ignored."""
        body = b'{"model_id": "m", "brand_new_field": {"x": 1}, "type": "create_model"}'
        assert _codec.decode(t.CreateModelResponse, body).model_id == "m"

    def test_wrong_type_tag_rejected(self) -> None:
        """A present `type` must carry the expected constant."""
        with pytest.raises(DecodeError):
            _codec.decode(t.CreateModelResponse, b'{"model_id": "m", "type": "get_info"}')


class TestTinkerPath:
    def test_parse(self) -> None:
        """A training-run id may contain colons; the checkpoint id contains a slash."""
        p = t.ParsedCheckpointTinkerPath.from_tinker_path(
            "tinker://s:train:0/sampler_weights/step-1"
        )
        assert p.training_run_id == "s:train:0"
        assert p.checkpoint_type == "sampler"
        assert p.checkpoint_id == "sampler_weights/step-1"

    @pytest.mark.parametrize(
        "bad",
        [
            "mint://teacher",
            "tinker://run/weights",
            "tinker://run/weights/a/b",
            "tinker://run/other/a",
            "tinker:///weights/a",
            "",
        ],
    )
    def test_bad_paths(self, bad: str) -> None:
        """Anything but tinker://<run>/<kind>/<name> is rejected with a typed error."""
        with pytest.raises(InvalidInputError):
            t.ParsedCheckpointTinkerPath.from_tinker_path(bad)


class TestMintExtensions:
    def test_reverse_kl_datum_coerces(self) -> None:
        """ReverseKLDatum accepts TensorData, arrays or lists and sends MinT's mirror with null shapes."""
        d = t.ReverseKLDatum(
            student_input=t.ModelInput.from_ints([1]),
            reference_input=t.ModelInput.from_ints([2, 1]),
            target_tokens=t.TensorData(data=[3], dtype="int64"),
            weights=[1.0],
        )
        assert _json(d)["target_tokens"] == {"data": [3], "shape": None, "dtype": "int64"}
        assert _json(d)["weights"] == {"data": [1.0], "shape": [1], "dtype": "float32"}

    def test_scalar_loss_decodes(self) -> None:
        """A bare-number TensorData (MinT allows it) decodes to a one-element array."""
        out = _codec.decode(t.ReverseKLItemOutput, b'{"loss": {"data": 0.5, "dtype": "float32"}}')
        assert out.loss.data.tolist() == [0.5]

    def test_interpolate_validation(self) -> None:
        """Coefficients must match the source paths."""
        with pytest.raises(InvalidInputError):
            t.InterpolateCheckpointsRequest(source_paths=["a"], coefficients=[0.5, 0.5])


_TS = datetime(2026, 11, 22, 0, 0, 1, 161240, tzinfo=UTC)
_TS_WIRE = "2026-11-22T00:00:01.161240Z"

# Each event beside the body tinker 0.22 sends for it (its model_dump with exclude_none, the
# settings of its telemetry resource), key order aside: protocol §4.8.
TELEMETRY_EVENTS: list[tuple[t.TelemetryEvent, dict[str, Any]]] = [
    (
        t.SessionStartEvent(event_id="e0", event_session_index=0, severity="INFO", timestamp=_TS),
        {
            "event": "SESSION_START",
            "event_id": "e0",
            "event_session_index": 0,
            "severity": "INFO",
            "timestamp": _TS_WIRE,
        },
    ),
    (
        t.SessionEndEvent(
            event_id="e1", event_session_index=3, severity="INFO", timestamp=_TS, duration="PT1M30S"
        ),
        {
            "event": "SESSION_END",
            "event_id": "e1",
            "event_session_index": 3,
            "severity": "INFO",
            "timestamp": _TS_WIRE,
            "duration": "PT1M30S",
        },
    ),
    (
        t.UnhandledExceptionEvent(
            event_id="e2",
            event_session_index=4,
            severity="ERROR",
            timestamp=_TS,
            error_type="ValueError",
            error_message="boom",
        ),
        {
            "event": "UNHANDLED_EXCEPTION",
            "event_id": "e2",
            "event_session_index": 4,
            "severity": "ERROR",
            "timestamp": _TS_WIRE,
            "error_type": "ValueError",
            "error_message": "boom",
        },
    ),
    (
        t.UnhandledExceptionEvent(
            event_id="e3",
            event_session_index=5,
            severity="CRITICAL",
            timestamp=_TS,
            error_type="KeyError",
            error_message="k",
            traceback="Traceback...",
        ),
        {
            "event": "UNHANDLED_EXCEPTION",
            "event_id": "e3",
            "event_session_index": 5,
            "severity": "CRITICAL",
            "timestamp": _TS_WIRE,
            "error_type": "KeyError",
            "error_message": "k",
            "traceback": "Traceback...",
        },
    ),
    (
        t.GenericEvent(
            event_id="e4",
            event_session_index=6,
            severity="DEBUG",
            timestamp=_TS,
            event_name="checkpoint",
        ),
        {
            "event": "GENERIC_EVENT",
            "event_id": "e4",
            "event_session_index": 6,
            "severity": "DEBUG",
            "timestamp": _TS_WIRE,
            "event_name": "checkpoint",
            "event_data": {},
        },
    ),
    (
        t.GenericEvent(
            event_id="e5",
            event_session_index=7,
            severity="WARNING",
            timestamp=_TS,
            event_name="n",
            event_data={"a": 1, "b": [1.5, None], "c": {"d": "x"}},
        ),
        {
            "event": "GENERIC_EVENT",
            "event_id": "e5",
            "event_session_index": 7,
            "severity": "WARNING",
            "timestamp": _TS_WIRE,
            "event_name": "n",
            "event_data": {"a": 1, "b": [1.5, None], "c": {"d": "x"}},
        },
    ),
]


_ENVELOPE: dict[str, Any] = {"platform": "Linux", "sdk_version": "0.22.0", "session_id": "s"}


class TestTelemetry:
    @pytest.mark.parametrize(
        ("event", "wire"),
        TELEMETRY_EVENTS,
        ids=[f"{type(e).__name__}-{e.event_id}" for e, _ in TELEMETRY_EVENTS],
    )
    def test_event_wire_shape_and_round_trip(
        self, event: t.TelemetryEvent, wire: dict[str, Any]
    ) -> None:
        """Each event kind sends its tag and fields as §4.8 and tinker 0.22 do, and decodes back."""
        assert _json(event) == wire
        decoded = _codec.decode(type(event), _codec.encode(event))
        assert type(decoded) is type(event) and decoded == event

    def test_send_request_batch(self) -> None:
        """A mixed batch keeps each event's kind; process_uuid ([0.38]) is sent only when set."""
        events = [e for e, _ in TELEMETRY_EVENTS]
        req = t.TelemetrySendRequest(
            events=events, platform="Linux", sdk_version="0.22.0", session_id="sess1"
        )
        assert _json(req) == {
            "events": [w for _, w in TELEMETRY_EVENTS],
            "platform": "Linux",
            "sdk_version": "0.22.0",
            "session_id": "sess1",
        }
        back = _codec.decode(t.TelemetrySendRequest, _codec.encode(req))
        assert back == req
        assert [type(e) for e in back.events] == [type(e) for e in events]
        with_uuid = t.TelemetrySendRequest(
            events=[], platform="p", sdk_version="0.38.0", session_id="s", process_uuid="u"
        )
        assert _json(with_uuid)["process_uuid"] == "u"
        assert _codec.decode(t.TelemetrySendRequest, _codec.encode(with_uuid)) == with_uuid

    def test_generic_event_data_may_be_absent(self) -> None:
        """A GENERIC_EVENT without event_data (the SDK's default is {}) decodes with {}."""
        body = {k: v for k, v in TELEMETRY_EVENTS[4][1].items() if k != "event_data"}
        event = _codec.decode(t.GenericEvent, orjson.dumps(body))
        assert event.event_data == {}

    @pytest.mark.parametrize(
        "change",
        [
            {"event": "SESSION_PAUSED"},
            {"severity": "FATAL"},
            {"timestamp": "yesterday"},
            {"event": "SESSION_END"},  # without its duration
            {"event": "UNHANDLED_EXCEPTION", "error_type": "E"},  # without error_message
            {"event": "GENERIC_EVENT", "event_name": "n", "event_data": [1]},
        ],
    )
    def test_invalid_events_rejected(self, change: dict[str, Any]) -> None:
        """Unknown tags, severities, bad timestamps and missing or mistyped fields are DecodeError."""
        body = {**TELEMETRY_EVENTS[0][1], **change}
        with pytest.raises(DecodeError):
            _codec.decode(t.TelemetrySendRequest, orjson.dumps({**_ENVELOPE, "events": [body]}))

    def test_response_must_be_accepted(self) -> None:
        """TelemetryResponse always sends status "accepted" and rejects anything else."""
        assert _json(t.TelemetryResponse()) == {"status": "accepted"}
        assert _codec.decode(t.TelemetryResponse, b'{"status":"accepted"}') == t.TelemetryResponse()
        with pytest.raises(DecodeError):
            _codec.decode(t.TelemetryResponse, b'{"status":"rejected"}')
