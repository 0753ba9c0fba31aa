"""Futures: retrieve requests and their answers (protocol §5)."""

from __future__ import annotations

from .._exceptions import RequestErrorCategory
from ._base import QueueState, WireStruct, sent


class UntypedAPIFuture(WireStruct, kw_only=True):
    """The promise a submission returns; its result is fetched with ``retrieve_future``."""

    request_id: str
    model_id: str | None = None
    sample_sequence_ids: list[str] | None = None


class FutureRetrieveRequest(WireStruct, kw_only=True):
    """Body of one ``retrieve_future`` poll."""

    request_id: str
    allow_metadata_only: bool = sent(False)


class TryAgainResponse(WireStruct, tag="try_again", tag_field="type", kw_only=True):
    """Poll answer: not done yet; re-poll (the server long-polls)."""

    request_id: str
    queue_state: str = "unknown"
    queue_state_reason: str | None = None

    @property
    def state(self) -> QueueState:
        """``queue_state`` normalised to the four known values."""
        qs = self.queue_state
        if qs in ("active", "paused_capacity", "paused_rate_limit"):
            return qs  # type: ignore[return-value]
        return "unknown"


class CompleteMetadataResponse(
    WireStruct, tag="complete_metadata", tag_field="status", kw_only=True
):
    """Poll answer: done, but too large to inline; poll again with ``allow_metadata_only=false``."""

    response_payload_size: int


class RequestFailedResponse(WireStruct, kw_only=True):
    """Poll answer: the request ran and failed."""

    error: str
    category: str = "unknown"

    @property
    def error_category(self) -> RequestErrorCategory:
        """``category`` normalised (anything unknown becomes ``"unknown"``)."""
        cat = self.category
        if cat in ("server", "user"):
            return cat  # type: ignore[return-value]
        return "unknown"
