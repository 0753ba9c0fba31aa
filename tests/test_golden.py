"""Golden tests: our encoding equals the bodies the official SDKs were captured sending.

Each file in ``tests/data/golden/`` is a body from protocol.md (captured from the
tinker 0.22 / 0.38 and mindlab-toolkit SDKs, or the documented response shape).
For each we build the same value with our types and check both directions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from mint_async import _codec
from mint_async import types as t

GOLDEN = Path(__file__).parent / "data" / "golden"


def _datum() -> t.Datum:
    return t.Datum(
        model_input=t.ModelInput.from_ints([1, 2, 3]),
        loss_fn_inputs={"target_tokens": [2, 3, 4], "weights": [0.0, 1.0, 1.0]},
    )


def _when(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


CASES: dict[str, tuple[type[Any], Callable[[], object]]] = {
    "client_config_request": (
        t.ClientConfigRequest,
        lambda: t.ClientConfigRequest(sdk_version="0.22.0"),
    ),
    "create_session_request": (
        t.CreateSessionRequest,
        lambda: t.CreateSessionRequest(sdk_version="0.22.0"),
    ),
    "create_model_request": (
        t.CreateModelRequest,
        lambda: t.CreateModelRequest(
            session_id="sess1",
            model_seq_id=0,
            base_model="Qwen/Qwen3-0.6B",
            lora_config=t.LoraConfig(rank=16),
        ),
    ),
    "forward_backward_request": (
        t.ForwardBackwardRequest,
        lambda: t.ForwardBackwardRequest(
            forward_backward_input=t.ForwardBackwardInput(data=[_datum()], loss_fn="cross_entropy"),
            model_id="sess1:train:0",
            seq_id=1,
        ),
    ),
    "optim_step_request": (
        t.OptimStepRequest,
        lambda: t.OptimStepRequest(adam_params=t.AdamParams(), model_id="sess1:train:0", seq_id=2),
    ),
    "save_weights_request": (
        t.SaveWeightsRequest,
        lambda: t.SaveWeightsRequest(model_id="sess1:train:0", path="ckpt-1", seq_id=3),
    ),
    "load_weights_request": (
        t.LoadWeightsRequest,
        lambda: t.LoadWeightsRequest(
            model_id="S:train:0", path="tinker://S:train:0/weights/ckpt-1", optimizer=True, seq_id=7
        ),
    ),
    "asample_request": (
        t.SampleRequest,
        lambda: t.SampleRequest(
            num_samples=2,
            prompt=t.ModelInput.from_ints([1, 2, 3]),
            sampling_params=t.SamplingParams(max_tokens=3),
            sampling_session_id="sess1:sample:0",
            seq_id=0,
        ),
    ),
    "asample_request_038": (
        t.SampleRequest,
        lambda: t.SampleRequest(
            prompt=t.ModelInput.from_ints([1, 2, 3]),
            sampling_params=t.SamplingParams(max_tokens=1, stop=[151645]),
            sampling_session_id="S:sample:0",
            seq_id=1000000001,
            prompt_logprobs=True,
            topk_prompt_logprobs=5,
            topk_sample_logprobs=2,
            target_prompt_logprobs=t.TensorData(data=[5, -1, 7, -1], dtype="int64", shape=[2, 2]),
            prompt_alt_tokens_k=3,
            prompt_logprobs_last_n=2,
            record_stability_info=True,
        ),
    ),
    "create_sampling_session_request": (
        t.CreateSamplingSessionRequest,
        lambda: t.CreateSamplingSessionRequest(
            session_id="S", sampling_session_seq_id=0, base_model="Qwen/Qwen3-0.6B"
        ),
    ),
    "retrieve_future_request": (
        t.FutureRetrieveRequest,
        lambda: t.FutureRetrieveRequest(request_id="req-2", allow_metadata_only=True),
    ),
    "telemetry_request": (
        t.TelemetrySendRequest,
        lambda: t.TelemetrySendRequest(
            events=[
                t.SessionStartEvent(
                    event_id="1c4d",
                    event_session_index=0,
                    severity="INFO",
                    timestamp=datetime(2026, 11, 22, 0, 0, 1, 161240, tzinfo=UTC),
                )
            ],
            platform="Linux",
            sdk_version="0.22.0",
            session_id="sess1",
        ),
    ),
    "reverse_kl_request": (
        t.ForwardBackwardReverseKLRequest,
        lambda: t.ForwardBackwardReverseKLRequest(
            model_id="s:train:0",
            reference_model_path="tinker://x/sampler_weights/t",
            data=[
                t.ReverseKLDatum(
                    student_input=t.ModelInput.from_ints([1, 2]),
                    reference_input=t.ModelInput.from_ints([3, 1, 2]),
                    target_tokens=t.MintTensorData(data=[2, 5], shape=[2], dtype="int64"),
                    weights=t.MintTensorData(data=[1.0, 1.0]),
                )
            ],
        ),
    ),
    "interpolate_request": (
        t.InterpolateCheckpointsRequest,
        lambda: t.InterpolateCheckpointsRequest(
            source_paths=["tinker://a/sampler_weights/x", "tinker://b/sampler_weights/y"],
            coefficients=[0.5, 0.5],
        ),
    ),
    "model_input_chunks": (
        t.ModelInput,
        lambda: t.ModelInput(
            chunks=[
                t.EncodedTextChunk(tokens=[1]),
                t.ImageChunk(data=b"\x89PNG", format="png", expected_tokens=10),
                t.ImageAssetPointerChunk(format="jpeg", location="gs://x/y.jpg", expected_tokens=5),
            ]
        ),
    ),
    "forward_backward_output": (
        t.ForwardBackwardOutput,
        lambda: t.ForwardBackwardOutput(
            loss_fn_output_type="ArrayRecord",
            loss_fn_outputs=[
                {"logprobs": t.TensorData(data=[-1.0, -1.0, -1.0], dtype="float32", shape=[3])}
            ],
            metrics={"loss:sum": 1.5},
        ),
    ),
    "sample_response": (
        t.SampleResponse,
        lambda: t.SampleResponse(
            sequences=[
                t.SampledSequence(
                    stop_reason="length", tokens_np=[7, 7, 7], logprobs_np=[-0.5, -0.5, -0.5]
                )
            ],
            prompt_logprobs=[None, -2.0, -2.0],
            topk_prompt_logprobs=[None, [(5, -0.1), (6, -2.0)]],
        ),
    ),
    "try_again_response": (
        t.TryAgainResponse,
        lambda: t.TryAgainResponse(
            request_id="req-2",
            queue_state="paused_capacity",
            queue_state_reason="Tinker backend is running short on capacity, please wait",
        ),
    ),
    "complete_metadata_response": (
        t.CompleteMetadataResponse,
        lambda: t.CompleteMetadataResponse(response_payload_size=7340032),
    ),
    "request_failed_response": (
        t.RequestFailedResponse,
        lambda: t.RequestFailedResponse(
            error="target_tokens has 3 rows but model_input has 4 tokens", category="user"
        ),
    ),
    "untyped_future_038": (
        t.UntypedAPIFuture,
        lambda: t.UntypedAPIFuture(request_id="S:sample:0:5", sample_sequence_ids=["a", "b"]),
    ),
    "get_info_response": (
        t.GetInfoResponse,
        lambda: t.GetInfoResponse(
            model_id="sess1:train:0",
            model_data=t.ModelData(
                arch="Qwen3ForCausalLM",
                model_name="Qwen/Qwen3-0.6B",
                tokenizer_id="Qwen/Qwen3-0.6B",
            ),
            is_lora=True,
            lora_rank=16,
            model_name="Qwen/Qwen3-0.6B",
        ),
    ),
    "training_runs_response": (
        t.TrainingRunsResponse,
        lambda: t.TrainingRunsResponse(
            training_runs=[
                t.TrainingRun(
                    training_run_id="sess1:train:0",
                    base_model="Qwen/Qwen3-0.6B",
                    model_owner="user-1",
                    is_lora=True,
                    lora_rank=16,
                    last_request_time=_when("2026-11-22T00:00:01.161240Z"),
                    last_checkpoint=t.Checkpoint(
                        checkpoint_id="weights/ckpt-1",
                        checkpoint_type="training",
                        time=_when("2026-11-22T00:00:02Z"),
                        tinker_path="tinker://sess1:train:0/weights/ckpt-1",
                        size_bytes=1024,
                    ),
                    user_metadata={"k": "v"},
                )
            ],
            cursor=t.Cursor(offset=0, limit=20, total_count=1),
        ),
    ),
    "interpolate_response": (
        t.InterpolateCheckpointsResponse,
        lambda: t.InterpolateCheckpointsResponse(
            path="tinker://a/sampler_weights/mix",
            source_paths=["tinker://a/sampler_weights/x", "tinker://b/sampler_weights/y"],
            coefficients=[0.5, 0.5],
        ),
    ),
    "reverse_kl_response": (
        t.ForwardBackwardReverseKLResponse,
        lambda: t.ForwardBackwardReverseKLResponse(
            outputs=[t.ReverseKLItemOutput(loss=t.MintTensorData(data=[0.25, 0.5], shape=[2]))],
            metrics={"loss:sum": 0.75},
        ),
    ),
}


def test_every_golden_file_has_a_case() -> None:
    """Each captured body in tests/data/golden is covered by a case."""
    assert {p.stem for p in GOLDEN.glob("*.json")} == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_encoding_matches_capture(name: str) -> None:
    """Our encoding of the value equals the captured body (as parsed JSON)."""
    _, build = CASES[name]
    expected = orjson.loads((GOLDEN / f"{name}.json").read_bytes())
    ours = orjson.loads(_codec.encode(build()))
    assert ours == expected


@pytest.mark.parametrize("name", sorted(CASES))
def test_decoding_capture_round_trips(name: str) -> None:
    """Decoding the captured body gives the same value, which re-encodes to the same JSON."""
    tp, build = CASES[name]
    body = (GOLDEN / f"{name}.json").read_bytes()
    decoded = _codec.decode(tp, body)
    assert decoded == build()
    again = _codec.decode(tp, _codec.encode(decoded))
    assert again == decoded


def test_decoded_arrays_are_numpy() -> None:
    """Array fields of decoded results are numpy arrays of the documented dtypes."""
    sample = _codec.decode(t.SampleResponse, (GOLDEN / "sample_response.json").read_bytes())
    seq = sample.sequences[0]
    assert seq.tokens_np.dtype == np.int32
    assert seq.logprobs_np is not None and seq.logprobs_np.dtype == np.float32
    assert seq.tokens == [7, 7, 7] and seq.logprobs == [-0.5, -0.5, -0.5]
    fbo = _codec.decode(
        t.ForwardBackwardOutput, (GOLDEN / "forward_backward_output.json").read_bytes()
    )
    lp = fbo.loss_fn_outputs[0]["logprobs"]
    assert isinstance(lp.data, np.ndarray) and lp.data.dtype == np.float32
    assert fbo.loss == 1.5


def test_request_fields_with_non_none_defaults_are_always_sent() -> None:
    """temperature/top_k/top_p, overwrite, optimizer, the Adam fields and num_samples are never omitted."""
    sp = orjson.loads(_codec.encode(t.SamplingParams()))
    assert sp == {"temperature": 1.0, "top_k": -1, "top_p": 1.0}
    adam = orjson.loads(_codec.encode(t.AdamParams()))
    assert set(adam) == {"learning_rate", "beta1", "beta2", "eps", "weight_decay", "grad_clip_norm"}
    lw = orjson.loads(_codec.encode(t.LoadWeightsRequest(model_id="m", path="p", seq_id=1)))
    assert lw["optimizer"] is False
    lora = orjson.loads(_codec.encode(t.LoraConfig(rank=8)))
    assert lora == {"rank": 8, "train_unembed": True, "train_mlp": True, "train_attn": True}
    ttl = orjson.loads(_codec.encode(t.SetCheckpointTTLRequest(ttl_seconds=None)))
    assert ttl == {"ttl_seconds": None}
