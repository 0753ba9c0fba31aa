"""tinker 0.38's ``RestClient``: every REST call returns an :class:`APIFuture`.

Each method of mint_async's async ``RestClient`` (``get_training_run``,
``list_checkpoints``, ``delete_checkpoint_from_tinker_path``, ...) is offered
under the same name returning a future (await it or ``.result()`` it), and as
``<name>_async`` returning the result (tinker's deprecated spelling).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._exceptions import InvalidInputError
from .._rest import check_copy
from ._futures import APIFuture
from ._runtime import runtime
from ._session import Session

if TYPE_CHECKING:
    from .._rest import RestClient as AsyncRestClient

__all__ = ["RestClient"]


class RestClient:
    """Runs, checkpoints and sessions; ``RestClient()`` alone opens its own connection.

    Example::

        run = rest.get_training_run_by_tinker_path("tinker://run/weights/ckpt").result()
        await rest.delete_checkpoint_from_tinker_path("tinker://run/weights/ckpt")
    """

    def __init__(
        self,
        _holder: Any = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        _aio: AsyncRestClient | None = None,
        _base_url: str | None = None,
    ) -> None:
        if _holder is not None:
            msg = "RestClient(holder) is tinker-internal; use RestClient() or ServiceClient().create_rest_client()"
            raise InvalidInputError(msg)
        self._owned: Session | None = None
        if _aio is None:
            self._owned = Session(base_url=base_url, api_key=api_key)
            _aio = self._owned.inner.create_rest_client()
            _base_url = self._owned.inner.config.base_url
        self._inner: AsyncRestClient = _aio
        self._base_url = _base_url

    def __repr__(self) -> str:
        return f"tinker_compat.RestClient({self._base_url!r})"

    @property
    def aio(self) -> AsyncRestClient:
        """The mint_async client underneath."""
        return self._inner

    def close(self) -> None:
        """Close the connection a standalone ``RestClient()`` opened."""
        if self._owned is not None:
            self._owned.close()

    def copy_weights(
        self,
        path: str,
        destination_project_id: str | None = None,
        *,
        ttl_seconds: int | None = None,
        weights_access_token: str | None = None,
    ) -> APIFuture[str]:
        """Copy a checkpoint into a project (default: ``project_id`` / ``TINKER_PROJECT_ID``).

        The future gives the copy's ``tinker://`` path. Bad input (a
        ``weights_access_token``, a TTL outside 3600 s..10 years, a malformed path)
        raises InvalidInputError here, before anything is sent; no project at all
        (argument, client's ``project_id``, ``MINT_PROJECT_ID``/``TINKER_PROJECT_ID``)
        fails the future with InvalidInputError, nothing sent.
        """
        check_copy(path, ttl_seconds, weights_access_token)
        inner = self._inner
        return APIFuture(
            runtime().spawn(
                lambda: inner.copy_weights(path, destination_project_id, ttl_seconds=ttl_seconds)
            )
        )

    async def copy_weights_async(
        self,
        path: str,
        destination_project_id: str | None = None,
        *,
        ttl_seconds: int | None = None,
        weights_access_token: str | None = None,
    ) -> str:
        """Deprecated in tinker 0.38: await :meth:`copy_weights` instead."""
        return await self.copy_weights(
            path,
            destination_project_id,
            ttl_seconds=ttl_seconds,
            weights_access_token=weights_access_token,
        )

    def __dir__(self) -> list[str]:
        names = [n for n in dir(self._inner) if not n.startswith("_")]
        return sorted({*super().__dir__(), *names, *(f"{n}_async" for n in names)})

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        base = name.removesuffix("_async")
        method: Callable[..., Any] | None = getattr(self._inner, base, None)
        if method is None or not inspect.iscoroutinefunction(method):
            msg = f"tinker_compat.RestClient has no method {name!r}"
            raise AttributeError(msg)

        def call(*args: Any, **kwargs: Any) -> APIFuture[Any]:
            # The client's connections live on the runtime's loop: run it there.
            return APIFuture(runtime().spawn(lambda: method(*args, **kwargs)))

        async def call_async(*args: Any, **kwargs: Any) -> Any:
            return await call(*args, **kwargs)

        chosen = call_async if name.endswith("_async") else call
        chosen.__name__ = name
        chosen.__doc__ = method.__doc__
        return chosen
