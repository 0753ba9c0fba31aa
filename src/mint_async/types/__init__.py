"""Every MinT / Tinker wire type, as msgspec Structs.

Field names, tags, defaults and which fields go on the wire follow
``protocol.md`` §4 and §8 (tinker 0.22, the version MinT pins), so that our
encoding of a value equals what the official SDK sends:

* optional fields whose value is ``None`` are **omitted**;
* fields with a non-None default (``temperature=1.0``, ``"overwrite": false``)
  are **always sent** — they are declared with :func:`._base.sent`, a default factory,
  because msgspec's ``omit_defaults`` leaves factory defaults alone;
* ``type`` discriminators are msgspec tags, always sent, checked when present;
* unknown fields in anything we decode are ignored (schema evolution).

Invalid values raise :class:`~mint_async.InvalidInputError` at construction
(``__post_init__``), so bad input never reaches the network.

User conveniences from the MinT docs live here too: ``ModelInput.from_ints``,
``TensorData.from_numpy``, ``AdamParams(betas=...)``,
``SamplingParams(stop_token_ids=...)``, ``ForwardBackwardOutput.loss`` and the
doc names of ``Checkpoint``/``TrainingRun`` fields.
"""

from __future__ import annotations

from .._arrays import TensorDtype as TensorDtype
from .._exceptions import RequestErrorCategory as RequestErrorCategory

# Public aliases and constants outside __all__ (annotations and helpers use them).
from ._base import LOSS_FNS as LOSS_FNS
from ._base import MAX_LORA_RANK as MAX_LORA_RANK
from ._base import AnyArray as AnyArray
from ._base import AuditEventType as AuditEventType
from ._base import CheckpointType as CheckpointType
from ._base import Float32Array as Float32Array
from ._base import Int32Array as Int32Array
from ._base import LossFnType as LossFnType
from ._base import QueueState as QueueState
from ._base import Severity as Severity
from ._base import Stop as Stop
from ._base import StopReason as StopReason
from ._base import TokenSequence as TokenSequence
from ._checkpoints import AuditLogEntry as AuditLogEntry
from ._checkpoints import AuditLogResponse as AuditLogResponse
from ._checkpoints import Checkpoint as Checkpoint
from ._checkpoints import CheckpointArchiveUrlResponse as CheckpointArchiveUrlResponse
from ._checkpoints import CheckpointFile as CheckpointFile
from ._checkpoints import CheckpointFilesResponse as CheckpointFilesResponse
from ._checkpoints import CheckpointsListResponse as CheckpointsListResponse
from ._checkpoints import Cursor as Cursor
from ._checkpoints import GetSessionResponse as GetSessionResponse
from ._checkpoints import ListSessionsResponse as ListSessionsResponse
from ._checkpoints import ParsedCheckpointTinkerPath as ParsedCheckpointTinkerPath
from ._checkpoints import SessionProjectRequest as SessionProjectRequest
from ._checkpoints import SetCheckpointTTLRequest as SetCheckpointTTLRequest
from ._checkpoints import TrainingRun as TrainingRun
from ._checkpoints import TrainingRunsResponse as TrainingRunsResponse
from ._futures import CompleteMetadataResponse as CompleteMetadataResponse
from ._futures import FutureRetrieveRequest as FutureRetrieveRequest
from ._futures import RequestFailedResponse as RequestFailedResponse
from ._futures import TryAgainResponse as TryAgainResponse
from ._futures import UntypedAPIFuture as UntypedAPIFuture
from ._mint import ForwardBackwardReverseKLRequest as ForwardBackwardReverseKLRequest
from ._mint import ForwardBackwardReverseKLResponse as ForwardBackwardReverseKLResponse
from ._mint import InterpolateCheckpointsRequest as InterpolateCheckpointsRequest
from ._mint import InterpolateCheckpointsResponse as InterpolateCheckpointsResponse
from ._mint import MintTensorData as MintTensorData
from ._mint import ReverseKLDatum as ReverseKLDatum
from ._mint import ReverseKLItemOutput as ReverseKLItemOutput
from ._model_input import EncodedTextChunk as EncodedTextChunk
from ._model_input import ImageAssetPointerChunk as ImageAssetPointerChunk
from ._model_input import ImageChunk as ImageChunk
from ._model_input import ModelInput as ModelInput
from ._model_input import ModelInputChunk as ModelInputChunk
from ._models import CreateModelRequest as CreateModelRequest
from ._models import CreateModelResponse as CreateModelResponse
from ._models import ForwardBackwardRequest as ForwardBackwardRequest
from ._models import ForwardRequest as ForwardRequest
from ._models import GetInfoRequest as GetInfoRequest
from ._models import GetInfoResponse as GetInfoResponse
from ._models import ModelData as ModelData
from ._models import OptimStepRequest as OptimStepRequest
from ._models import OptimStepResponse as OptimStepResponse
from ._models import UnloadModelRequest as UnloadModelRequest
from ._models import UnloadModelResponse as UnloadModelResponse
from ._params import AdamParams as AdamParams
from ._params import LoraConfig as LoraConfig
from ._params import SamplingParams as SamplingParams
from ._params import WandbConfig as WandbConfig
from ._provenance import PromptProvenanceSpan as PromptProvenanceSpan
from ._provenance import ProvenanceSpan as ProvenanceSpan
from ._provenance import SampledProvenanceSpan as SampledProvenanceSpan
from ._sampled import PromptAltTokens as PromptAltTokens
from ._sampled import SampledSequence as SampledSequence
from ._sampled import SampleResponse as SampleResponse
from ._sampled import SampleResult as SampleResult
from ._sampled import TopkEntry as TopkEntry
from ._sampling import CreateSamplingSessionRequest as CreateSamplingSessionRequest
from ._sampling import CreateSamplingSessionResponse as CreateSamplingSessionResponse
from ._sampling import GetSamplerResponse as GetSamplerResponse
from ._sampling import SampleRequest as SampleRequest
from ._session import AuthTokenRequest as AuthTokenRequest
from ._session import AuthTokenResponse as AuthTokenResponse
from ._session import ClientConfigRequest as ClientConfigRequest
from ._session import ClientConfigResponse as ClientConfigResponse
from ._session import CreateSessionRequest as CreateSessionRequest
from ._session import CreateSessionResponse as CreateSessionResponse
from ._session import GetServerCapabilitiesResponse as GetServerCapabilitiesResponse
from ._session import HealthResponse as HealthResponse
from ._session import InitTrainerServerResponse as InitTrainerServerResponse
from ._session import ServerCapabilities as ServerCapabilities
from ._session import SessionHeartbeatRequest as SessionHeartbeatRequest
from ._session import SessionHeartbeatResponse as SessionHeartbeatResponse
from ._session import SupportedModel as SupportedModel
from ._telemetry import GenericEvent as GenericEvent
from ._telemetry import SessionEndEvent as SessionEndEvent
from ._telemetry import SessionStartEvent as SessionStartEvent
from ._telemetry import TelemetryEvent as TelemetryEvent
from ._telemetry import TelemetryResponse as TelemetryResponse
from ._telemetry import TelemetrySendRequest as TelemetrySendRequest
from ._telemetry import UnhandledExceptionEvent as UnhandledExceptionEvent
from ._tensors import Datum as Datum
from ._tensors import ForwardBackwardInput as ForwardBackwardInput
from ._tensors import ForwardBackwardOutput as ForwardBackwardOutput
from ._tensors import ForwardBackwardResult as ForwardBackwardResult
from ._tensors import LossFnInputValue as LossFnInputValue
from ._tensors import TensorData as TensorData
from ._weights import CopyWeightsRequest as CopyWeightsRequest
from ._weights import CopyWeightsResponse as CopyWeightsResponse
from ._weights import LoadWeightsRequest as LoadWeightsRequest
from ._weights import LoadWeightsResponse as LoadWeightsResponse
from ._weights import SaveWeightsForSamplerRequest as SaveWeightsForSamplerRequest
from ._weights import SaveWeightsForSamplerResponse as SaveWeightsForSamplerResponse
from ._weights import SaveWeightsForSamplerResponseInternal as SaveWeightsForSamplerResponseInternal
from ._weights import SaveWeightsRequest as SaveWeightsRequest
from ._weights import SaveWeightsResponse as SaveWeightsResponse
from ._weights import WeightsInfoRequest as WeightsInfoRequest
from ._weights import WeightsInfoResponse as WeightsInfoResponse

__all__ = [
    # model input
    "EncodedTextChunk",
    "ImageAssetPointerChunk",
    "ImageChunk",
    "ModelInput",
    "ModelInputChunk",
    # tensors and data
    "Datum",
    "PromptProvenanceSpan",
    "ProvenanceSpan",
    "SampledProvenanceSpan",
    "LossFnType",
    "TensorData",
    "TensorDtype",
    "ForwardBackwardInput",
    "ForwardBackwardOutput",
    "ForwardBackwardResult",
    # parameters
    "AdamParams",
    "LoraConfig",
    "SamplingParams",
    "StopReason",
    "WandbConfig",
    # sampling results
    "PromptAltTokens",
    "SampleResponse",
    "SampleResult",
    "SampledSequence",
    # service / session
    "AuthTokenRequest",
    "AuthTokenResponse",
    "ClientConfigRequest",
    "ClientConfigResponse",
    "CreateSessionRequest",
    "CreateSessionResponse",
    "GetServerCapabilitiesResponse",
    "HealthResponse",
    "InitTrainerServerResponse",
    "ServerCapabilities",
    "SessionHeartbeatRequest",
    "SessionHeartbeatResponse",
    "SupportedModel",
    # models and training
    "CreateModelRequest",
    "CreateModelResponse",
    "ForwardBackwardRequest",
    "ForwardRequest",
    "GetInfoRequest",
    "GetInfoResponse",
    "ModelData",
    "OptimStepRequest",
    "OptimStepResponse",
    "UnloadModelRequest",
    "UnloadModelResponse",
    # weights
    "CopyWeightsRequest",
    "CopyWeightsResponse",
    "LoadWeightsRequest",
    "LoadWeightsResponse",
    "SaveWeightsForSamplerRequest",
    "SaveWeightsForSamplerResponse",
    "SaveWeightsForSamplerResponseInternal",
    "SaveWeightsRequest",
    "SaveWeightsResponse",
    "WeightsInfoRequest",
    "WeightsInfoResponse",
    # sampling
    "CreateSamplingSessionRequest",
    "CreateSamplingSessionResponse",
    "GetSamplerResponse",
    "SampleRequest",
    # futures
    "CompleteMetadataResponse",
    "FutureRetrieveRequest",
    "QueueState",
    "RequestErrorCategory",
    "RequestFailedResponse",
    "TryAgainResponse",
    "UntypedAPIFuture",
    # checkpoints and REST
    "AuditEventType",
    "AuditLogEntry",
    "AuditLogResponse",
    "Checkpoint",
    "CheckpointArchiveUrlResponse",
    "CheckpointFile",
    "CheckpointFilesResponse",
    "CheckpointType",
    "CheckpointsListResponse",
    "Cursor",
    "GetSessionResponse",
    "ListSessionsResponse",
    "ParsedCheckpointTinkerPath",
    "SessionProjectRequest",
    "SetCheckpointTTLRequest",
    "TrainingRun",
    "TrainingRunsResponse",
    # MinT extensions
    "ForwardBackwardReverseKLRequest",
    "ForwardBackwardReverseKLResponse",
    "InterpolateCheckpointsRequest",
    "InterpolateCheckpointsResponse",
    "MintTensorData",
    "ReverseKLDatum",
    "ReverseKLItemOutput",
    # telemetry
    "GenericEvent",
    "SessionEndEvent",
    "SessionStartEvent",
    "Severity",
    "TelemetryEvent",
    "TelemetryResponse",
    "TelemetrySendRequest",
    "UnhandledExceptionEvent",
]
