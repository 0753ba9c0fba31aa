"""The shape of tinker 0.38's public API, implemented on mint_async.

Code written for the official ``tinker`` SDK — above all tinker-cookbook —
runs on mint_async's clients: ``ServiceClient``/``TrainingClient``/
``SamplingClient``/``RestClient`` with tinker's blocking methods, their
``*_async`` twins, and futures that can be awaited *or* ``.result()``-ed from
any thread or event loop; ``types`` (mint_async's wire types under tinker's
names) and tinker's exception names. :func:`install` makes ``import tinker``
resolve here, so unmodified tinker code runs on mint_async::

    import mint_async.tinker_compat
    mint_async.tinker_compat.install()

    import tinker
    with tinker.ServiceClient(base_url="http://127.0.0.1:8000") as svc:
        tc = svc.create_lora_training_client("Qwen/Qwen3-8B", rank=16).result()
        fb = tc.forward_backward(batch, "cross_entropy")
        opt = tc.optim_step(tinker.AdamParams(learning_rate=1e-4))
        print(fb.result().metrics, opt.result())

Everything runs on one event loop in a helper thread (as in tinker); the
clients underneath are mint_async's async clients (``.aio`` on each).
"""

from __future__ import annotations

from .._loss_handle import LossHandle as LossHandle
from .._loss_handle import PerDatumLossFn as PerDatumLossFn
from . import types as types
from ._errors import APIConnectionError as APIConnectionError
from ._errors import APIError as APIError
from ._errors import APIResponseValidationError as APIResponseValidationError
from ._errors import APIStatusError as APIStatusError
from ._errors import APITimeoutError as APITimeoutError
from ._errors import AuthenticationError as AuthenticationError
from ._errors import BadRequestError as BadRequestError
from ._errors import BillingError as BillingError
from ._errors import ConflictError as ConflictError
from ._errors import InternalServerError as InternalServerError
from ._errors import NotFoundError as NotFoundError
from ._errors import PermissionDeniedError as PermissionDeniedError
from ._errors import RateLimitError as RateLimitError
from ._errors import RequestFailedError as RequestFailedError
from ._errors import TinkerError as TinkerError
from ._errors import UnprocessableEntityError as UnprocessableEntityError
from ._futures import APIFuture as APIFuture
from ._futures import AwaitableConcurrentFuture as AwaitableConcurrentFuture
from ._futures import ClientFuture as ClientFuture
from ._install import install as install
from ._install import installed as installed
from ._install import uninstall as uninstall
from ._rest import RestClient as RestClient
from ._sampling import SamplingClient as SamplingClient
from ._service import ServiceClient as ServiceClient
from ._training import TrainingClient as TrainingClient
from .types import AdamOptimizerConfig as AdamOptimizerConfig
from .types import AdamParams as AdamParams
from .types import Checkpoint as Checkpoint
from .types import CheckpointType as CheckpointType
from .types import Datum as Datum
from .types import EncodedTextChunk as EncodedTextChunk
from .types import ForwardBackwardOutput as ForwardBackwardOutput
from .types import ImageChunk as ImageChunk
from .types import LoraConfig as LoraConfig
from .types import ModelID as ModelID
from .types import ModelInput as ModelInput
from .types import ModelInputChunk as ModelInputChunk
from .types import OptimParams as OptimParams
from .types import OptimStepResponse as OptimStepResponse
from .types import ParsedCheckpointTinkerPath as ParsedCheckpointTinkerPath
from .types import PromptProvenanceSpan as PromptProvenanceSpan
from .types import SampledProvenanceSpan as SampledProvenanceSpan
from .types import SampledSequence as SampledSequence
from .types import SampleRequest as SampleRequest
from .types import SampleResponse as SampleResponse
from .types import SamplingParams as SamplingParams
from .types import StopReason as StopReason
from .types import TensorData as TensorData
from .types import TensorDtype as TensorDtype
from .types import TrainingRun as TrainingRun

BackcompatTrainingClientFuture = ClientFuture
"""tinker's name for the future of a new TrainingClient."""
BackcompatSamplingClientFuture = ClientFuture
"""tinker's name for the future of a new SamplingClient."""


__all__ = [
    "APIConnectionError",
    "APIError",
    "APIFuture",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AdamOptimizerConfig",
    "AdamParams",
    "AuthenticationError",
    "AwaitableConcurrentFuture",
    "BackcompatSamplingClientFuture",
    "BackcompatTrainingClientFuture",
    "BadRequestError",
    "BillingError",
    "Checkpoint",
    "CheckpointType",
    "ClientFuture",
    "ConflictError",
    "Datum",
    "EncodedTextChunk",
    "ForwardBackwardOutput",
    "ImageChunk",
    "InternalServerError",
    "LoraConfig",
    "LossHandle",
    "ModelID",
    "ModelInput",
    "ModelInputChunk",
    "NotFoundError",
    "OptimParams",
    "OptimStepResponse",
    "PerDatumLossFn",
    "ParsedCheckpointTinkerPath",
    "PermissionDeniedError",
    "PromptProvenanceSpan",
    "RateLimitError",
    "RequestFailedError",
    "RestClient",
    "SampleRequest",
    "SampleResponse",
    "SampledProvenanceSpan",
    "SampledSequence",
    "SamplingClient",
    "SamplingParams",
    "ServiceClient",
    "StopReason",
    "TensorData",
    "TensorDtype",
    "TinkerError",
    "TrainingClient",
    "TrainingRun",
    "UnprocessableEntityError",
    "install",
    "installed",
    "uninstall",
    "types",
]
