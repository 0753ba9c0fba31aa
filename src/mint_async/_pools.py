"""Which connection pool serves a traffic class: httpx's own, or the built-in HTTP/1.1 pool.

The transport keeps one pool per traffic class (session, train, sample,
retrieve) and asks :func:`open_pool` for each on first use:

* a transport the user plugged in (``MockTransport``, ``ASGITransport``...) serves every class;
* ``http_client="httpx"`` or ``http2=True``: one ``httpx.AsyncHTTPTransport`` per class,
  sized by the class's limit, honouring the environment's proxy (:func:`environment_proxy`);
* otherwise the lean built-in pool (:class:`~mint_async._http11.Http11Transport`), one
  shared by every class: the transport's per-class limiters keep the classes apart.
"""

from __future__ import annotations

import collections
import urllib.request
from collections.abc import Iterable

import anyio
import httpx

from ._config import ClientConfig, TrafficClass
from ._http11 import Http11Transport

__all__ = ["Slots", "environment_proxy", "open_pool"]

_CLASSES: tuple[TrafficClass, ...] = ("session", "train", "sample", "retrieve")


def environment_proxy(base_url: str) -> str | None:
    """The proxy the environment names for ``base_url``, as ``httpx.AsyncClient(trust_env=True)`` reads it.

    ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` (either case) by the URL's
    scheme, none when ``NO_PROXY`` covers the host. Used by
    ``http_client="httpx"``; the built-in pool connects directly.
    """
    url = httpx.URL(base_url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(url.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(url.host):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def open_pool(
    config: ClientConfig,
    traffic: TrafficClass,
    *,
    base_url: str,
    user_transport: httpx.AsyncBaseTransport | None,
    open_pools: Iterable[httpx.AsyncBaseTransport],
) -> httpx.AsyncBaseTransport:
    """The pool for ``traffic``: the user's transport, a new httpx pool, or the shared built-in one."""
    if user_transport is not None:
        return user_transport
    if config.http_client == "httpx" or config.http2:
        cap = config.limits.for_class(traffic)
        limits = httpx.Limits(
            max_connections=cap + 16,
            max_keepalive_connections=min(cap, config.limits.keepalive),
        )
        return httpx.AsyncHTTPTransport(
            limits=limits, http2=config.http2, retries=0, proxy=environment_proxy(base_url)
        )
    # One lean pool serves every class; the limiters keep the classes apart.
    shared = next((p for p in open_pools if isinstance(p, Http11Transport)), None)
    if shared is not None:
        return shared
    most = config.limits.max_response_bytes
    # As many idle connections as the per-class httpx pools would keep in total: with
    # one class's cap (512 samples in flight, each with a poll) the pool would close
    # and reopen connections on every burst.
    caps = config.limits
    idle = sum(min(caps.for_class(tc), caps.keepalive) for tc in _CLASSES)
    return Http11Transport(max_idle=idle, max_inline=most if most is not None else 1 << 62)


class Slots:
    """A traffic class's in-flight limit: first come, first served, like ``anyio.CapacityLimiter``.

    Taking a free slot touches neither the event loop nor the current task
    (``CapacityLimiter`` looks the task up to record it as the borrower, on
    every request: a measurable share of a small request's CPU). A released
    slot goes straight to the longest waiter, so a free slot never coexists
    with a waiter and a newcomer cannot overtake the queue.
    """

    __slots__ = ("_free", "_waiters")

    def __init__(self, total: int) -> None:
        self._free = total
        self._waiters: collections.deque[anyio.Event] = collections.deque()

    def take_nowait(self) -> bool:
        """Take a slot if one is free (no checkpoint); False when all are taken."""
        if self._free > 0:
            self._free -= 1
            return True
        return False

    async def take(self) -> None:
        """Take a slot, waiting in line for one when all are taken."""
        if self.take_nowait():
            return
        event = anyio.Event()
        self._waiters.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():
                self.release()  # handed a slot while being cancelled: pass it on
            else:
                self._waiters.remove(event)
            raise

    def release(self) -> None:
        """Give a slot back (to the longest waiter, if any)."""
        if self._waiters:
            self._waiters.popleft().set()
        else:
            self._free += 1
