"""mint_async: an async-first, fully typed client for MinT and the Tinker training API.

Example::

    import mint_async
    from mint_async import types

    async with mint_async.ServiceClient() as svc:          # MINT_API_KEY / MINT_BASE_URL
        tc = await svc.create_lora_training_client("Qwen/Qwen3-0.6B", rank=16)
        fb = await tc.forward_backward(batch, "cross_entropy")
        opt = await tc.optim_step(types.AdamParams(learning_rate=5e-5))
        print((await fb).loss, await opt)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

from ._config import ClientConfig as ClientConfig
from ._config import Limits as Limits
from ._config import RetryPolicy as RetryPolicy
from ._config import Timeouts as Timeouts
from ._exceptions import APIConnectionError as APIConnectionError
from ._exceptions import APIError as APIError
from ._exceptions import APIResponseValidationError as APIResponseValidationError
from ._exceptions import APIStatusError as APIStatusError
from ._exceptions import APITimeoutError as APITimeoutError
from ._exceptions import AuthenticationError as AuthenticationError
from ._exceptions import BadRequestError as BadRequestError
from ._exceptions import BillingError as BillingError
from ._exceptions import ClientClosedError as ClientClosedError
from ._exceptions import ConflictError as ConflictError
from ._exceptions import DecodeError as DecodeError
from ._exceptions import DownloadError as DownloadError
from ._exceptions import FutureTimeoutError as FutureTimeoutError
from ._exceptions import InternalServerError as InternalServerError
from ._exceptions import InvalidInputError as InvalidInputError
from ._exceptions import MintError as MintError
from ._exceptions import NotFoundError as NotFoundError
from ._exceptions import PermissionDeniedError as PermissionDeniedError
from ._exceptions import PromiseExpiredError as PromiseExpiredError
from ._exceptions import RateLimitError as RateLimitError
from ._exceptions import RemoteProtocolError as RemoteProtocolError
from ._exceptions import RequestErrorCategory as RequestErrorCategory
from ._exceptions import RequestFailedError as RequestFailedError
from ._exceptions import ResponseTooLargeError as ResponseTooLargeError
from ._exceptions import SequenceBrokenError as SequenceBrokenError
from ._exceptions import StuckRequestError as StuckRequestError
from ._exceptions import TokenizerUnavailableError as TokenizerUnavailableError
from ._exceptions import UnprocessableEntityError as UnprocessableEntityError
from ._exceptions import WandbUnavailableError as WandbUnavailableError
from ._version import __version__ as __version__

if TYPE_CHECKING:
    from . import types as types
    from ._futures import APIFuture as APIFuture
    from ._futures import QueueStateObserver as QueueStateObserver
    from ._futures import QueueStatus as QueueStatus
    from ._loss_handle import LossHandle as LossHandle
    from ._pipeline import Handle as Handle
    from ._pipeline import PipelineStatistics as PipelineStatistics
    from ._pipeline import SamplePipeline as SamplePipeline
    from ._pipeline import TrainingPipeline as TrainingPipeline
    from ._rest import ProgressCallback as ProgressCallback
    from ._rest import RestClient as RestClient
    from ._retry import set_testing as set_testing
    from ._sampling import SampleFuture as SampleFuture
    from ._sampling import SamplingClient as SamplingClient
    from ._service import ServiceClient as ServiceClient
    from ._training import ForwardBackwardFuture as ForwardBackwardFuture
    from ._training import MetricsSink as MetricsSink
    from ._training import TrainingClient as TrainingClient

    OperationFuture = APIFuture
    """The MinT docs' name for :class:`APIFuture`."""

# Import time (issue 16): the settings, the errors and the version are loaded with the
# package; the clients (and with them httpx, anyio, numpy, msgspec and the protobuf
# codec) when first named — ``from mint_async import ServiceClient`` or
# ``mint_async.ServiceClient`` — so ``import mint_async`` stays cheap for tools, CLIs
# and process pools that import it without sending a request. PEP 562.
_LAZY: Final[dict[str, tuple[str, str]]] = {
    "types": (".types", ""),
    "APIFuture": ("._futures", "APIFuture"),
    "QueueStateObserver": ("._futures", "QueueStateObserver"),
    "QueueStatus": ("._futures", "QueueStatus"),
    "LossHandle": ("._loss_handle", "LossHandle"),
    "Handle": ("._pipeline", "Handle"),
    "PipelineStatistics": ("._pipeline", "PipelineStatistics"),
    "SamplePipeline": ("._pipeline", "SamplePipeline"),
    "TrainingPipeline": ("._pipeline", "TrainingPipeline"),
    "ProgressCallback": ("._rest", "ProgressCallback"),
    "RestClient": ("._rest", "RestClient"),
    "set_testing": ("._retry", "set_testing"),
    "SampleFuture": ("._sampling", "SampleFuture"),
    "SamplingClient": ("._sampling", "SamplingClient"),
    "ServiceClient": ("._service", "ServiceClient"),
    "ForwardBackwardFuture": ("._training", "ForwardBackwardFuture"),
    "MetricsSink": ("._training", "MetricsSink"),
    "TrainingClient": ("._training", "TrainingClient"),
    "OperationFuture": ("._futures", "APIFuture"),
}


if not TYPE_CHECKING:  # type checkers see the imports above; a typo stays an error

    def __getattr__(name: str) -> Any:
        target = _LAZY.get(name)
        if target is None:
            msg = f"module {__name__!r} has no attribute {name!r}"
            raise AttributeError(msg)
        module_name, attribute = target
        module = importlib.import_module(module_name, __name__)
        value = getattr(module, attribute) if attribute else module
        globals()[name] = value  # later lookups skip __getattr__
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "__version__",
    "types",
    # clients
    "ServiceClient",
    "TrainingClient",
    "SamplingClient",
    "RestClient",
    "LossHandle",
    # pipelines
    "SamplePipeline",
    "TrainingPipeline",
    "Handle",
    "PipelineStatistics",
    # futures
    "APIFuture",
    "OperationFuture",
    "ForwardBackwardFuture",
    "SampleFuture",
    "QueueStatus",
    "QueueStateObserver",
    "MetricsSink",
    "ProgressCallback",
    # settings
    "ClientConfig",
    "Limits",
    "RetryPolicy",
    "Timeouts",
    "set_testing",
    # errors
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BillingError",
    "ClientClosedError",
    "ConflictError",
    "DecodeError",
    "DownloadError",
    "FutureTimeoutError",
    "InternalServerError",
    "InvalidInputError",
    "MintError",
    "NotFoundError",
    "PermissionDeniedError",
    "PromiseExpiredError",
    "RateLimitError",
    "RemoteProtocolError",
    "RequestErrorCategory",
    "RequestFailedError",
    "ResponseTooLargeError",
    "SequenceBrokenError",
    "StuckRequestError",
    "TokenizerUnavailableError",
    "UnprocessableEntityError",
    "WandbUnavailableError",
]
