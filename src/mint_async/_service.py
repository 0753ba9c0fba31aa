"""ServiceClient: the entry point. Owns the connections, the session and its heartbeat."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal

import anyio
import anyio.abc

from . import types as t
from ._config import PROTOCOL_SDK_VERSION, ClientConfig
from ._context import ClientContext, call, start_operation
from ._exceptions import APIConnectionError, APIStatusError, ClientClosedError, InvalidInputError
from ._foreign import as_optimizer_config
from ._loss_handle import LossHandle, PerDatumLossFn, create_loss_handle
from ._rest import RestClient, check_copy, send_copy_weights
from ._sampling import SamplingClient
from ._sampling_session import open_sampling_session
from ._training import MetricsSink, TrainingClient

if TYPE_CHECKING:
    import httpx

__all__ = ["ServiceClient"]

logger = logging.getLogger("mint_async")

_HEARTBEAT_WARN_AFTER: Final = 120.0


class ServiceClient:
    """Connects to a MinT / Tinker server; creates training, sampling and REST clients.

    Use it as an async context manager: entering fetches the server's client
    config, authenticates and creates a session (heartbeated in the background
    until exit); leaving cancels the heartbeat and closes every connection.
    Settings come from the arguments, then ``MINT_*`` / ``TINKER_*`` environment
    variables, then defaults.

    Example::

        async with ServiceClient(base_url="http://127.0.0.1:8000", api_key="sk-...") as svc:
            tc = await svc.create_lora_training_client(base_model="Qwen/Qwen3-0.6B", rank=16)
            fb = await tc.forward_backward(batch, "cross_entropy")
            print((await fb).loss)
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
        **settings: Any,
    ) -> None:
        if config is None:
            extra: dict[str, Any] = dict(settings)
            if user_metadata is not None:
                extra["user_metadata"] = dict(user_metadata)
            if tags is not None:
                extra["tags"] = tuple(tags)
            if display_name is not None:
                extra["display_name"] = display_name
            config = ClientConfig.resolve(
                api_key=api_key,
                base_url=base_url,
                base_model=base_model,
                lora_rank=lora_rank,
                project_id=project_id,
                **extra,
            )
        elif settings or api_key or base_url or display_name:
            msg = "pass either config=... or individual settings, not both"
            raise InvalidInputError(msg)
        self._config = config
        self._transport_arg = transport
        self._state: Literal["new", "open", "closed"] = "new"
        self._ctx: ClientContext | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._closers: list[Any] = []

    def __repr__(self) -> str:
        session = self._ctx.session_id if self._ctx is not None else None
        return f"ServiceClient(base_url={self._config.base_url!r}, session_id={session!r}, state={self._state})"

    @property
    def config(self) -> ClientConfig:
        """The resolved settings (the API key is never shown in reprs)."""
        return self._config

    @property
    def session_id(self) -> str:
        """The server's id of this client's session."""
        return self._context().session_id or ""

    def _context(self) -> ClientContext:
        if self._state != "open" or self._ctx is None:
            msg = "use the ServiceClient inside `async with` (it is not open)"
            raise ClientClosedError(msg)
        return self._ctx

    # -- lifecycle ------------------------------------------------------------------

    async def __aenter__(self) -> ServiceClient:
        if self._state != "new":
            msg = "a ServiceClient cannot be reopened; create a new one"
            raise ClientClosedError(msg)
        self._state = "open"
        # The clients it creates share this transport; only the ServiceClient closes it.
        self._ctx = ClientContext.standalone(
            self._config, self._transport_arg, owns_transport=False
        )
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        try:
            self._ctx.session_id = await self._create_session()
            tg.start_soon(self._heartbeat_loop, self._ctx.session_id)
        except BaseException:
            # Tear down without feeding the error into the task group (which would
            # wrap it in an ExceptionGroup): the caller gets the error itself.
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._state == "closed":
            return
        self._state = "closed"
        tg, self._tg = self._tg, None
        try:
            if tg is not None:
                # The heartbeat never raises, so the group has nothing to report: the
                # body's own exception (if any) is not fed into it, which would wrap it
                # in an ExceptionGroup — it propagates unchanged after we return.
                tg.cancel_scope.cancel()
                await tg.__aexit__(None, None, None)
        finally:
            with anyio.CancelScope(shield=True):
                for closer in self._closers:
                    try:
                        await anyio.to_thread.run_sync(closer)
                    except Exception:
                        logger.exception("closing a metrics sink failed")
                if self._ctx is not None:
                    await self._ctx.transport.aclose()

    async def aclose(self) -> None:
        """Close the session's heartbeat and every connection (like leaving ``async with``)."""
        await self.__aexit__(None, None, None)

    async def _create_session(self) -> str:
        ctx = self._ctx
        assert ctx is not None
        await ctx.transport.server_config()
        request = t.CreateSessionRequest(
            tags=list(self._config.tags),
            user_metadata=dict(self._config.user_metadata),
            sdk_version=PROTOCOL_SDK_VERSION,
            project_id=self._config.project_id,
            display_name=self._config.display_name,
        )
        resp = await call(
            ctx,
            "POST",
            "api/v1/create_session",
            t.CreateSessionResponse,
            request,
            traffic="session",
        )
        for level, message in (
            (logging.INFO, resp.info_message),
            (logging.WARNING, resp.warning_message),
            (logging.ERROR, resp.error_message),
        ):
            if message:
                logger.log(level, "server: %s", message)
        return resp.session_id

    async def _heartbeat_loop(self, session_id: str) -> None:
        """Keep the session alive; failures are logged, never raised (protocol §10)."""
        ctx = self._ctx
        assert ctx is not None
        last_ok = time.monotonic()
        warned = False
        body = t.SessionHeartbeatRequest(session_id=session_id)
        while True:
            await anyio.sleep(self._config.heartbeat_interval)
            try:
                await ctx.transport.post_json(
                    "api/v1/session_heartbeat",
                    body,
                    traffic="session",
                    timeout=self._config.timeouts.heartbeat,
                    max_retries=0,
                )
            except APIStatusError as exc:
                if exc.status_code == 404:
                    logger.debug("server has no session_heartbeat endpoint; heartbeats stopped")
                    return
                if exc.status_code == 410:
                    logger.warning(
                        "session %s was finished by the server; heartbeats stopped", session_id
                    )
                    return
                logger.debug("heartbeat failed: %s", exc)
            except APIConnectionError as exc:
                logger.debug("heartbeat failed: %s", exc)
            else:
                last_ok, warned = time.monotonic(), False
                continue
            if not warned and time.monotonic() - last_ok > _HEARTBEAT_WARN_AFTER:
                warned = True
                logger.warning(
                    "no successful heartbeat for %.0f s; the server may end session %s",
                    time.monotonic() - last_ok,
                    session_id,
                )

    # -- factories ------------------------------------------------------------------

    async def _wandb_sink(self, wandb: t.WandbConfig, run_config: dict[str, Any]) -> MetricsSink:
        from ._wandb import open_wandb_sink  # noqa: PLC0415 - wandb is optional

        sink, close = await open_wandb_sink(wandb, run_config)
        self._closers.append(close)
        return sink

    async def create_lora_training_client(
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
        """Create a LoRA training run and return its client.

        ``base_model`` and ``rank`` default to ``MINT_BASE_MODEL`` / ``MINT_LORA_RANK``
        (else ``Qwen/Qwen3-0.6B`` and 16). With ``wandb=WandbConfig(project, name)``
        every forward_backward and optim_step metric is streamed to Weights & Biases.
        ``optimizer`` (tinker 0.38) fixes the run's optimizer: ``{"type": "adamw"}`` (or
        tinker's ``AdamOptimizerConfig``), the only one served.

        Example::

            tc = await svc.create_lora_training_client("Qwen/Qwen3-0.6B", rank=16)
        """
        ctx = self._context()
        optimizer_config = as_optimizer_config(optimizer)
        model = base_model or self._config.base_model
        lora = t.LoraConfig(
            rank=rank if rank is not None else self._config.lora_rank,
            seed=seed,
            train_mlp=train_mlp,
            train_attn=train_attn,
            train_unembed=train_unembed,
        )
        sink = None
        if wandb is not None:
            sink = await self._wandb_sink(wandb, {"base_model": model, "lora_rank": lora.rank})
        assert ctx.session_id is not None
        request = t.CreateModelRequest(
            session_id=ctx.session_id,
            model_seq_id=next(ctx.model_seq),
            base_model=model,
            lora_config=lora,
            user_metadata=dict(user_metadata) if user_metadata is not None else None,
            optimizer_config=optimizer_config,
        )
        fut = await start_operation(
            ctx, "api/v1/create_model", request, t.CreateModelResponse, request_type="CreateModel"
        )
        created = await fut
        return TrainingClient(ctx, created.model_id, base_model=model, metrics_sink=sink)

    async def _from_state(
        self,
        path: str,
        *,
        optimizer: bool,
        user_metadata: Mapping[str, str] | None,
        base_model: str | None = None,
        weights_access_token: str | None = None,
        optimizer_config: Mapping[str, Any] | None = None,
    ) -> TrainingClient:
        if weights_access_token is not None:
            msg = "weights_access_token (loading another account's checkpoint) is not supported"
            raise InvalidInputError(msg)
        as_optimizer_config(optimizer_config)
        info = await self.create_rest_client().get_weights_info_by_tinker_path(path)
        if base_model is not None and base_model != info.base_model:
            msg = f"{path} was trained from {info.base_model!r}, not base_model={base_model!r}"
            raise InvalidInputError(msg)
        tc = await self.create_lora_training_client(
            base_model=info.base_model,
            rank=info.lora_rank,
            train_mlp=info.train_mlp if info.train_mlp is not None else True,
            train_attn=info.train_attn if info.train_attn is not None else True,
            train_unembed=info.train_unembed if info.train_unembed is not None else True,
            user_metadata=user_metadata,
            optimizer=optimizer_config,
        )
        load = await (tc.load_state_with_optimizer(path) if optimizer else tc.load_state(path))
        await load
        return tc

    async def create_training_client_from_state(
        self,
        path: str,
        user_metadata: Mapping[str, str] | None = None,
        *,
        base_model: str | None = None,
        weights_access_token: str | None = None,
        optimizer: Mapping[str, Any] | None = None,
    ) -> TrainingClient:
        """A new training run initialised with a checkpoint's weights (fresh optimizer).

        ``base_model`` (tinker 0.38) must match the checkpoint's when given.
        """
        return await self._from_state(
            path,
            optimizer=False,
            user_metadata=user_metadata,
            base_model=base_model,
            weights_access_token=weights_access_token,
            optimizer_config=optimizer,
        )

    async def create_training_client_from_state_with_optimizer(
        self,
        path: str,
        user_metadata: Mapping[str, str] | None = None,
        *,
        base_model: str | None = None,
        weights_access_token: str | None = None,
    ) -> TrainingClient:
        """A new training run resuming a checkpoint: weights and optimizer state."""
        return await self._from_state(
            path,
            optimizer=True,
            user_metadata=user_metadata,
            base_model=base_model,
            weights_access_token=weights_access_token,
        )

    async def create_sampling_client(
        self, model_path: str | None = None, base_model: str | None = None
    ) -> SamplingClient:
        """A client sampling from saved weights (``model_path``) or a base model.

        With neither, samples the configured base model.
        """
        return await open_sampling_session(
            self._context(), model_path=model_path, base_model=base_model
        )

    def create_custom_loss(self, fn: PerDatumLossFn, input_ranks: Mapping[str, int]) -> LossHandle:
        """A per-datum loss for :meth:`TrainingClient.forward_backward_custom` (tinker 0.38).

        ``fn(logprobs, *inputs) -> (loss, metrics)`` runs once per datum on the client, with
        the datum's target logprobs and the ``loss_fn_inputs`` named in ``input_ranks`` (name
        -> tensor rank) as torch tensors; the batch loss is the sum, ``custom/<name>:sum``
        metrics add up and ``:mean`` ones are averaged. Checked here, before anything is sent.
        """
        return create_loss_handle(fn, input_ranks)

    async def get_server_capabilities(self) -> t.GetServerCapabilitiesResponse:
        """The base models the server can train and sample."""
        return await self.create_rest_client().get_server_capabilities()

    def create_rest_client(self) -> RestClient:
        """A client for the REST API (runs, checkpoints, sessions) sharing these connections."""
        return RestClient(self._context())

    async def copy_weights(
        self,
        path: str,
        *,
        ttl_seconds: int | None = None,
        weights_access_token: str | None = None,
    ) -> str:
        """[tinker 0.38] Copy a checkpoint (yours or a published one); the copy's path.

        The copy keeps the source's kind and name and is held by a new training
        run of yours: in the configured ``project_id`` (``MINT_PROJECT_ID`` /
        ``TINKER_PROJECT_ID``) when there is one, as tinker 0.38 does; otherwise
        in this client's session, as its next training run (``model_seq_id``).
        ``ttl_seconds``: 3600 (1 hour) to 10 years, or None for no expiry.

        Example::

            path = await svc.copy_weights("tinker://run/weights/step-400")
            tc = await svc.create_training_client_from_state(path)
        """
        ctx = self._context()
        project = self._config.project_id
        if project is not None:
            return await self.create_rest_client().copy_weights(
                path, project, ttl_seconds=ttl_seconds, weights_access_token=weights_access_token
            )
        check_copy(path, ttl_seconds, weights_access_token)
        assert ctx.session_id is not None
        request = t.CopyWeightsRequest(
            source_path=path,
            session_id=ctx.session_id,
            model_seq_id=next(ctx.model_seq),
            ttl_seconds=ttl_seconds,
        )
        return await send_copy_weights(ctx, request, weights_access_token)

    async def interpolate_checkpoints(
        self,
        source_paths: Sequence[str],
        coefficients: Sequence[float],
        output_path: str | None = None,
    ) -> t.InterpolateCheckpointsResponse:
        """MinT: write a weighted mix of sampler checkpoints and return its path."""
        ctx = self._context()
        request = t.InterpolateCheckpointsRequest(
            source_paths=list(source_paths),
            coefficients=list(coefficients),
            output_path=output_path,
        )
        fut = await start_operation(
            ctx,
            "api/v1/mint/checkpoints/interpolate",
            request,
            t.InterpolateCheckpointsResponse,
            request_type="MintInterpolateCheckpoints",
        )
        return await fut
