"""A blocking facade over the async clients, for scripts and notebooks.

One anyio ``BlockingPortal`` (an event loop in a helper thread) per
``ServiceClient``; every method is a single ``portal.call`` into the async
client, so there is one implementation of everything. Works from threads that
already run an event loop (Jupyter), and from several threads at once.

The MinT docs' examples run unchanged with only the import changed::

    from mint_async import sync as mint
    from mint_async import types

    service_client = mint.ServiceClient()
    training_client = service_client.create_lora_training_client(base_model="Qwen/Qwen3-0.6B", rank=16)
    result = training_client.forward_backward(batch, loss_fn="cross_entropy").result()
    training_client.optim_step(types.AdamParams(learning_rate=5e-5)).result()

Callbacks. Queue-state observers (``on_queue_state_change``) run in one
callback thread per ``ServiceClient``, in the order the changes happened: never
on the event loop, so an observer may block, call this client, or raise (the
error is logged) without stalling or failing any request. Two callbacks run on
the portal's event-loop thread, as their async twins run on the caller's loop:
the ``progress`` of ``download_checkpoint`` and the loss function of
``forward_backward_custom``. Keep those quick and do not call the blocking
clients from them (anyio refuses a portal call from its own loop thread).
"""

from __future__ import annotations

from ._futures import APIFuture as APIFuture
from ._futures import SampleFuture as SampleFuture
from ._rest import RestClient as RestClient
from ._sampling import SamplingClient as SamplingClient
from ._service import ServiceClient as ServiceClient
from ._training import TrainingClient as TrainingClient

__all__ = [
    "APIFuture",
    "RestClient",
    "SampleFuture",
    "SamplingClient",
    "ServiceClient",
    "TrainingClient",
]
