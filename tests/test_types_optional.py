"""Optional fields (tinker 0.38 and the MinT docs): understood when sent, not required, unknowns ignored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
import pytest

from mint_async import _codec
from mint_async import types as t

WHEN = "2026-03-01T12:30:00.250000Z"
WHEN_DT = datetime(2026, 3, 1, 12, 30, 0, 250000, tzinfo=UTC)
CHECKPOINT = {
    "checkpoint_id": "weights/c1",
    "checkpoint_type": "training",
    "time": WHEN,
    "tinker_path": "tinker://r/weights/c1",
}


class Case(NamedTuple):
    tp: type[Any]
    required: dict[str, Any]
    """A body with only the required fields (what an older server sends)."""
    optional: dict[str, Any]
    """The optional fields, as a newer server sends them."""
    absent: dict[str, Any]
    """Attribute values when the optional fields are absent."""
    present: dict[str, Any]
    """Attribute values decoded from ``optional``."""


CASES = [
    Case(
        t.SupportedModel,
        {},
        {
            "model_name": "Qwen/Qwen3-0.6B",
            "max_context_length": 32768,
            "trainable": True,
            "sampleable": False,
            "gpu_classes": ["H100", "A100-80G"],
        },
        {
            "model_name": None,
            "max_context_length": None,
            "trainable": None,
            "sampleable": None,
            "gpu_classes": None,
        },
        {
            "model_name": "Qwen/Qwen3-0.6B",
            "max_context_length": 32768,
            "trainable": True,
            "sampleable": False,
            "gpu_classes": ["H100", "A100-80G"],
        },
    ),
    Case(
        t.TrainingRun,
        {
            "training_run_id": "r",
            "base_model": "b",
            "model_owner": "o",
            "is_lora": True,
            "last_request_time": WHEN,
        },
        {"created_at": WHEN, "user_metadata": {"k": "v"}},
        {"created_at": None, "user_metadata": None, "corrupted": False},
        {"created_at": WHEN_DT, "user_metadata": {"k": "v"}},
    ),
    Case(
        t.CheckpointFile,
        {"url": "https://example.invalid/f", "relative_file_name": "adapter.safetensors"},
        {"node_rank": 3, "size_bytes": 1024, "last_modified": WHEN},
        {"node_rank": None, "size_bytes": None, "last_modified": None},
        {"node_rank": 3, "size_bytes": 1024, "last_modified": WHEN_DT},
    ),
    Case(
        t.CheckpointFilesResponse,
        {"presigned_urls": []},
        {"cursor": {"offset": 0, "limit": 10, "total_count": 0}, "expires": WHEN},
        {"cursor": None, "expires": None},
        {"cursor": t.Cursor(offset=0, limit=10, total_count=0), "expires": WHEN_DT},
    ),
    Case(
        t.InitTrainerServerResponse,
        {},
        {"model_id": "s:train:0", "base_model": "b", "lora_rank": 8, "status": "ready"},
        {"model_id": None, "base_model": None, "lora_rank": None, "status": None},
        {"model_id": "s:train:0", "base_model": "b", "lora_rank": 8, "status": "ready"},
    ),
    Case(
        t.Checkpoint,
        CHECKPOINT,
        {"user_metadata": {"k": "v"}, "expires_at": WHEN, "size_bytes": 5},
        {"user_metadata": None, "expires_at": None, "size_bytes": None, "public": False},
        {"user_metadata": {"k": "v"}, "expires_at": WHEN_DT, "size_bytes": 5},
    ),
    Case(
        t.SampleResponse,
        {"sequences": []},
        {"prompt_cache_hit_tokens": 12},
        {"prompt_cache_hit_tokens": None},
        {"prompt_cache_hit_tokens": 12},
    ),
    Case(
        t.GetInfoResponse,
        {"model_id": "m", "model_data": {}},
        {"optimizer_config": {"type": "adamw"}},
        {"optimizer_config": None},
        {"optimizer_config": {"type": "adamw"}},
    ),
    Case(
        t.WeightsInfoResponse,
        {"base_model": "b", "is_lora": True},
        {"optimizer_config": {"type": "adamw"}},
        {"optimizer_config": None},
        {"optimizer_config": {"type": "adamw"}},
    ),
    Case(
        t.GetSessionResponse,
        {"training_run_ids": [], "sampler_ids": []},
        {"user_metadata": {"k": "v"}, "display_name": "run 1"},
        {"user_metadata": None, "display_name": None},
        {"user_metadata": {"k": "v"}, "display_name": "run 1"},
    ),
    Case(
        t.AuditLogEntry,
        {"timestamp": WHEN, "event": "checkpoint_saved"},
        {"event_details": {"size_bytes": 7}},
        {"event_details": None},
        {"event_details": {"size_bytes": 7}},
    ),
]

UNKNOWN = {"field_from_the_future": {"nested": [1, 2.5, None]}, "another_one": "x"}


def _ids(cases: list[Case]) -> list[str]:
    return [c.tp.__name__ for c in cases]


def _attrs(value: object, names: dict[str, Any]) -> dict[str, Any]:
    return {name: getattr(value, name) for name in names}


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_optional_fields_absent(case: Case) -> None:
    """A server that does not send the optional fields is understood; they read as their defaults."""
    value = _codec.decode(case.tp, orjson.dumps(case.required))
    assert _attrs(value, case.absent) == case.absent


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_optional_fields_present(case: Case) -> None:
    """A server that sends the optional fields is understood, with their types."""
    value = _codec.decode(case.tp, orjson.dumps({**case.required, **case.optional}))
    assert _attrs(value, case.present) == case.present


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_unknown_fields_ignored(case: Case) -> None:
    """Unknown extra fields, with or without the optional ones, are ignored."""
    for body in (case.required, {**case.required, **case.optional}):
        with_unknown = _codec.decode(case.tp, orjson.dumps({**body, **UNKNOWN}))
        assert with_unknown == _codec.decode(case.tp, orjson.dumps(body))


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_unset_optional_fields_are_not_sent(case: Case) -> None:
    """A value built without the optional fields encodes without them (older peers never see them)."""
    value = _codec.decode(case.tp, orjson.dumps(case.required))
    sent = orjson.loads(_codec.encode(value))
    assert not set(sent) & {k for k, v in case.absent.items() if v is None}
    assert _codec.decode(case.tp, _codec.encode(value)) == value


def test_server_capabilities_with_gpu_classes() -> None:
    """ServerCapabilities (the MinT docs' name) decodes a capabilities answer mixing old and new models."""
    body = {
        "supported_models": [
            {"model_name": "old"},
            {"model_name": "new", "gpu_classes": ["H100"], "trainable": True},
        ]
    }
    caps = _codec.decode(t.ServerCapabilities, orjson.dumps(body))
    assert [m.gpu_classes for m in caps.supported_models] == [None, ["H100"]]
    assert _codec.decode(t.ServerCapabilities, b"{}").supported_models == []


def test_external_checkpoint_type_and_training_run_doc_names() -> None:
    """The 0.38 checkpoint type "external" decodes, and TrainingRun.created_at is its doc name too."""
    ck = _codec.decode(t.Checkpoint, orjson.dumps({**CHECKPOINT, "checkpoint_type": "external"}))
    assert ck.type == "external"
    run = _codec.decode(
        t.TrainingRun,
        orjson.dumps(
            {
                "training_run_id": "r",
                "base_model": "b",
                "model_owner": "o",
                "is_lora": False,
                "last_request_time": WHEN,
                "created_at": WHEN,
                "last_checkpoint": CHECKPOINT,
            }
        ),
    )
    assert (run.id, run.owner, run.created_at) == ("r", "o", WHEN_DT)
    assert [c.id for c in run.checkpoints] == ["weights/c1"]
