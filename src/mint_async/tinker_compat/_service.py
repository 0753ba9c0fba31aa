"""tinker 0.38's ``ServiceClient`` on mint_async's async ``ServiceClient``."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

from .. import types as t
from .._exceptions import InvalidInputError
from .._foreign import as_optimizer_config
from .._loss_handle import LossHandle, PerDatumLossFn, create_loss_handle
from .._rest import check_copy
from .._service import ServiceClient as AsyncServiceClient
from ._futures import APIFuture, ClientFuture, completed
from ._rest import RestClient
from ._runtime import runtime
from ._sampling import SamplingClient
from ._session import Session
from ._training import TrainingClient

__all__ = ["ServiceClient"]


class ServiceClient:
    """Connects to a MinT / Tinker server (``TINKER_API_KEY`` / ``TINKER_BASE_URL`` or ``MINT_*``).

    Creating it opens a session (heartbeated in the background); ``close()`` or
    leaving ``with`` ends it. Client-creating methods return futures that can be
    awaited or ``.result()``-ed, as in tinker 0.38.

    Example::

        with tinker.ServiceClient(base_url="http://127.0.0.1:8000") as svc:
            tc = svc.create_lora_training_client("Qwen/Qwen3-8B", rank=16).result()
    """

    def __init__(
        self,
        user_metadata: Mapping[str, str] | None = None,
        project_id: str | None = None,
        *,
        display_name: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        default_headers_overrides: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        settings: dict[str, Any] = dict(kwargs)
        if default_headers_overrides is not None:
            settings["default_headers"] = dict(default_headers_overrides)
        self._session = Session(
            api_key=api_key,
            base_url=base_url,
            project_id=project_id,
            user_metadata=user_metadata,
            display_name=display_name,
            **settings,
        )
        self._inner = self._session.inner

    def __repr__(self) -> str:
        return f"tinker_compat.{self._inner!r}"

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._session.close()

    def close(self, status: str = "success", detail: str | None = None) -> APIFuture[None]:
        """End the session (idempotent); a finished future, as tinker returns one."""
        del status, detail
        self._session.close()
        return completed(None)

    @property
    def aio(self) -> AsyncServiceClient:
        """The mint_async client underneath."""
        return self._inner

    @property
    def base_url(self) -> str:
        """The server's URL."""
        return self._inner.config.base_url

    # -- training clients -----------------------------------------------------------

    def create_lora_training_client(
        self,
        base_model: str,
        rank: int = 32,
        seed: int | None = None,
        train_mlp: bool = True,
        train_attn: bool = True,
        train_unembed: bool = True,
        user_metadata: Mapping[str, str] | None = None,
        optimizer: Any = None,
    ) -> ClientFuture[TrainingClient]:
        """A future of a new LoRA training run's client."""
        config = as_optimizer_config(optimizer)  # refused here, before anything is sent

        async def run() -> TrainingClient:
            tc = await self._inner.create_lora_training_client(
                base_model, rank, seed, train_mlp, train_attn, train_unembed, user_metadata, config
            )
            return TrainingClient(tc, base_url=self.base_url)

        return ClientFuture(runtime().spawn(run))

    def create_training_client_from_state(
        self,
        path: str,
        base_model: str | None = None,
        user_metadata: Mapping[str, str] | None = None,
        weights_access_token: str | None = None,
        optimizer: Any = None,
    ) -> ClientFuture[TrainingClient]:
        """A future of a new run initialised with a checkpoint's weights (fresh optimizer)."""
        return self._from_state(
            path, base_model, user_metadata, weights_access_token, optimizer, False
        )

    def create_training_client_from_state_with_optimizer(
        self,
        path: str,
        base_model: str | None = None,
        user_metadata: Mapping[str, str] | None = None,
        weights_access_token: str | None = None,
    ) -> ClientFuture[TrainingClient]:
        """A future of a new run resuming a checkpoint: weights and optimizer state."""
        return self._from_state(path, base_model, user_metadata, weights_access_token, None, True)

    def _from_state(
        self,
        path: str,
        base_model: str | None,
        user_metadata: Mapping[str, str] | None,
        weights_access_token: str | None,
        optimizer: Any,
        with_optimizer: bool,
    ) -> ClientFuture[TrainingClient]:
        if weights_access_token is not None:
            msg = (
                "weights_access_token (another account's checkpoint) is not supported by mint_async"
            )
            raise InvalidInputError(msg)
        config = as_optimizer_config(optimizer)

        async def run() -> TrainingClient:
            if with_optimizer:
                tc = await self._inner.create_training_client_from_state_with_optimizer(
                    path, user_metadata, base_model=base_model
                )
            else:
                tc = await self._inner.create_training_client_from_state(
                    path, user_metadata, base_model=base_model, optimizer=config
                )
            return TrainingClient(tc, base_url=self.base_url)

        return ClientFuture(runtime().spawn(run))

    # -- sampling and REST -------------------------------------------------------------

    def create_sampling_client(
        self,
        model_path: str | None = None,
        base_model: str | None = None,
        retry_config: Any = None,
        record_stability_info: bool = False,
    ) -> ClientFuture[SamplingClient]:
        """A future of a client sampling saved weights (``model_path``) or a base model."""
        del retry_config  # mint_async's ClientConfig.retry applies

        async def run() -> SamplingClient:
            sc = await self._inner.create_sampling_client(model_path, base_model)
            return SamplingClient(
                sc, base_url=self.base_url, record_stability_info=record_stability_info
            )

        return ClientFuture(runtime().spawn(run))

    def create_custom_loss(
        self, fn: PerDatumLossFn, input_ranks: Mapping[str, int]
    ) -> APIFuture[LossHandle]:
        """A per-datum loss for ``forward_backward_custom`` (runs client-side; see LossHandle)."""
        return completed(create_loss_handle(fn, input_ranks))

    def copy_weights(
        self,
        path: str,
        *,
        ttl_seconds: int | None = None,
        weights_access_token: str | None = None,
    ) -> APIFuture[str]:
        """Copy a checkpoint (yours or a published one); the future gives the copy's path.

        Into this client's ``project_id`` (or ``TINKER_PROJECT_ID``) as tinker 0.38 does;
        without a project, into this session as its next training run (where tinker
        raises). Bad input (a ``weights_access_token``, a TTL outside 3600 s..10
        years, a malformed path) raises InvalidInputError here, before anything is sent.
        """
        check_copy(path, ttl_seconds, weights_access_token)
        inner = self._inner
        return APIFuture(runtime().spawn(lambda: inner.copy_weights(path, ttl_seconds=ttl_seconds)))

    def create_rest_client(self) -> RestClient:
        """A REST client sharing this session's connections."""
        return RestClient(_aio=self._inner.create_rest_client(), _base_url=self.base_url)

    def get_server_capabilities(self) -> t.GetServerCapabilitiesResponse:
        """The base models the server serves (blocking)."""
        return runtime().call(self._inner.get_server_capabilities)

    async def get_server_capabilities_async(self) -> t.GetServerCapabilitiesResponse:
        """The base models the server serves."""
        return await APIFuture(runtime().spawn(self._inner.get_server_capabilities))

    # -- tinker's deprecated *_async spellings -------------------------------------------

    async def create_lora_training_client_async(self, *args: Any, **kwargs: Any) -> TrainingClient:
        """Deprecated in tinker 0.38: await :meth:`create_lora_training_client` instead."""
        return await self.create_lora_training_client(*args, **kwargs)

    async def create_training_client_from_state_async(
        self, *args: Any, **kwargs: Any
    ) -> TrainingClient:
        """Deprecated in tinker 0.38: await :meth:`create_training_client_from_state` instead."""
        return await self.create_training_client_from_state(*args, **kwargs)

    async def create_training_client_from_state_with_optimizer_async(
        self, *args: Any, **kwargs: Any
    ) -> TrainingClient:
        """Deprecated in tinker 0.38: await the non-async method instead."""
        return await self.create_training_client_from_state_with_optimizer(*args, **kwargs)

    async def create_sampling_client_async(self, *args: Any, **kwargs: Any) -> SamplingClient:
        """Deprecated in tinker 0.38: await :meth:`create_sampling_client` instead."""
        return await self.create_sampling_client(*args, **kwargs)
