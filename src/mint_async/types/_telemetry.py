"""Telemetry (protocol §4.8)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypeAlias

import msgspec

from ._base import Severity, WireStruct, sent


class _Event(WireStruct, tag_field="event", kw_only=True):
    """Fields every telemetry event has; the ``event`` tag tells the kinds apart."""

    event_id: str
    event_session_index: int
    severity: Severity
    timestamp: datetime


class SessionStartEvent(_Event, tag="SESSION_START", kw_only=True):
    """Telemetry: a session started."""


class SessionEndEvent(_Event, tag="SESSION_END", kw_only=True):
    """Telemetry: a session ended after ``duration`` (ISO 8601)."""

    duration: str


class UnhandledExceptionEvent(_Event, tag="UNHANDLED_EXCEPTION", kw_only=True):
    """Telemetry: an exception escaped a public method."""

    error_type: str
    error_message: str
    traceback: str | None = None


class GenericEvent(_Event, tag="GENERIC_EVENT", kw_only=True):
    """Telemetry: anything else, with structured data."""

    event_name: str
    event_data: dict[str, Any] = msgspec.field(default_factory=dict[str, Any])


TelemetryEvent: TypeAlias = (
    SessionStartEvent | SessionEndEvent | UnhandledExceptionEvent | GenericEvent
)


class TelemetrySendRequest(WireStruct, kw_only=True):
    """Body of ``telemetry``: a batch of events."""

    events: list[TelemetryEvent]
    platform: str
    sdk_version: str
    session_id: str
    process_uuid: str | None = None


class TelemetryResponse(WireStruct, kw_only=True):
    """Answer to ``telemetry`` (must be ``{"status": "accepted"}``)."""

    status: Literal["accepted"] = sent("accepted")
