"""The blocking twin of :class:`mint_async.ServiceClient`: one portal thread per client."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from anyio.from_thread import BlockingPortal, start_blocking_portal

from .. import types as t
from .._loss_handle import LossHandle, PerDatumLossFn
from .._service import ServiceClient as AsyncServiceClient
from ._bridge import Bridge, Twin
from ._rest import RestClient
from ._sampling import SamplingClient
from ._training import TrainingClient

if TYPE_CHECKING:
    import httpx

    from .._config import ClientConfig

__all__ = ["ServiceClient"]


def _close(
    bridge: Bridge,
    cm: contextlib.AbstractContextManager[Any],
    portal_cm: contextlib.AbstractContextManager[Any],
) -> None:
    bridge.closed = True
    try:
        try:
            cm.__exit__(None, None, None)
        finally:
            portal_cm.__exit__(None, None, None)
    finally:
        bridge.shutdown_callbacks()


class ServiceClient(Twin[AsyncServiceClient]):
    """Blocking twin of :class:`mint_async.ServiceClient`. Close it with ``close()`` or ``with``.

    ``backend`` picks the event loop the portal thread runs (``"asyncio"`` or
    ``"trio"``); ``transport`` (an ``httpx.AsyncBaseTransport``) runs on that loop.

    Example::

        with mint.ServiceClient(base_url="http://127.0.0.1:8000", api_key="sk-...") as svc:
            tc = svc.create_lora_training_client(base_model="Qwen/Qwen3-0.6B", rank=16)
            print(tc.forward_backward(batch, "cross_entropy").result(timeout=60).loss)
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        base_model: str | None = None,
        lora_rank: int | None = None,
        project_id: str | None = None,
        user_metadata: Mapping[str, str] | None = None,
        tags: Sequence[str] | None = None,
        display_name: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        config: ClientConfig | None = None,
        backend: Literal["asyncio", "trio"] = "asyncio",
        **settings: Any,
    ) -> None:
        inner = AsyncServiceClient(
            api_key=api_key,
            base_url=base_url,
            base_model=base_model,
            lora_rank=lora_rank,
            project_id=project_id,
            user_metadata=user_metadata,
            tags=tags,
            display_name=display_name,
            transport=transport,
            config=config,
            **settings,
        )
        portal_cm = start_blocking_portal(backend)
        portal = portal_cm.__enter__()
        try:
            cm = portal.wrap_async_context_manager(inner)
            cm.__enter__()
        except BaseException:
            portal_cm.__exit__(None, None, None)
            raise
        super().__init__(Bridge(portal), inner)
        # Closed by close(), by `with`, or at interpreter exit at the latest.
        self._finalizer = weakref.finalize(self, _close, self._bridge, cm, portal_cm)

    def close(self) -> None:
        """End the session and stop the portal thread (idempotent)."""
        self._finalizer()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def config(self) -> ClientConfig:
        """The resolved settings (the API key is never shown in reprs)."""
        return self._inner.config

    @property
    def session_id(self) -> str:
        """The server's id of this client's session."""
        return self._inner.session_id

    @property
    def portal(self) -> BlockingPortal:
        """The portal running the async client (to call your own coroutines on its loop)."""
        return self._bridge.portal

    def create_lora_training_client(
        self,
        base_model: str | None = None,
        rank: int | None = None,
        seed: int | None = None,
        train_mlp: bool = True,
        train_attn: bool = True,
        train_unembed: bool = True,
        user_metadata: Mapping[str, str] | None = None,
        optimizer: Mapping[str, Any] | None = None,
        *,
        wandb: t.WandbConfig | None = None,
    ) -> TrainingClient:
        """Create a LoRA training run (``optimizer``: AdamW, the only one served)."""
        inner = self._bridge.call(
            self._inner.create_lora_training_client,
            base_model,
            rank,
            seed,
            train_mlp,
            train_attn,
            train_unembed,
            user_metadata,
            optimizer,
            wandb=wandb,
        )
        return TrainingClient(self._bridge, inner)

    def create_training_client_from_state(
        self,
        path: str,
        user_metadata: Mapping[str, str] | None = None,
        *,
        base_model: str | None = None,
        weights_access_token: str | None = None,
        optimizer: Mapping[str, Any] | None = None,
    ) -> TrainingClient:
        """A training run initialised from a checkpoint's weights (fresh optimizer)."""
        inner = self._bridge.call(
            self._inner.create_training_client_from_state,
            path,
            user_metadata,
            base_model=base_model,
            weights_access_token=weights_access_token,
            optimizer=optimizer,
        )
        return TrainingClient(self._bridge, inner)

    def create_training_client_from_state_with_optimizer(
        self,
        path: str,
        user_metadata: Mapping[str, str] | None = None,
        *,
        base_model: str | None = None,
        weights_access_token: str | None = None,
    ) -> TrainingClient:
        """A training run resuming a checkpoint (weights and optimizer)."""
        inner = self._bridge.call(
            self._inner.create_training_client_from_state_with_optimizer,
            path,
            user_metadata,
            base_model=base_model,
            weights_access_token=weights_access_token,
        )
        return TrainingClient(self._bridge, inner)

    def create_sampling_client(
        self, model_path: str | None = None, base_model: str | None = None
    ) -> SamplingClient:
        """A sampling client for a checkpoint or a base model."""
        return SamplingClient(
            self._bridge,
            self._bridge.call(self._inner.create_sampling_client, model_path, base_model),
        )

    def create_custom_loss(self, fn: PerDatumLossFn, input_ranks: Mapping[str, int]) -> LossHandle:
        """A per-datum loss for ``forward_backward_custom`` (runs client-side; nothing is sent)."""
        return self._inner.create_custom_loss(fn, input_ranks)

    def get_server_capabilities(self) -> t.GetServerCapabilitiesResponse:
        """Supported base models."""
        return self._bridge.call(self._inner.get_server_capabilities)

    def create_rest_client(self) -> RestClient:
        """The REST API."""
        return RestClient(self._bridge, self._bridge.run_sync(self._inner.create_rest_client))

    def copy_weights(
        self,
        path: str,
        *,
        ttl_seconds: int | None = None,
        weights_access_token: str | None = None,
    ) -> str:
        """[tinker 0.38] Copy a checkpoint (into the project, else this session); the copy's path."""
        return self._bridge.call(
            self._inner.copy_weights,
            path,
            ttl_seconds=ttl_seconds,
            weights_access_token=weights_access_token,
        )

    def interpolate_checkpoints(
        self,
        source_paths: Sequence[str],
        coefficients: Sequence[float],
        output_path: str | None = None,
    ) -> t.InterpolateCheckpointsResponse:
        """MinT: mix sampler checkpoints."""
        return self._bridge.call(
            self._inner.interpolate_checkpoints, source_paths, coefficients, output_path
        )
