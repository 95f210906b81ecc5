"""Wire contract v1 of Kantor Pintar: MQTT topics, payload models and their validation.

Every service imports its topics and payload models from here, so that the broker ACLs, the
edge node, the ingest service, the API and the simulators agree on one definition.
"""

from .ids import ID_MAX_LENGTH, ID_PATTERN, Id, id_problem, is_valid_id
from .payloads import (
    MAX_PAYLOAD_BYTES,
    MODEL_BY_STREAM,
    TS_MAX_MS,
    TS_MIN_MS,
    AttendanceEvent,
    ConfigReport,
    ConfigResult,
    ContractModel,
    EnergyReading,
    NodeConfig,
    NodeState,
    NodeStatus,
    Punch,
    RoomReading,
    VerifyMethod,
)
from .topics import (
    RETAINED_STREAMS,
    TELEMETRY_STREAMS,
    TOPIC_ROOT,
    Stream,
    TopicError,
    TopicParts,
    build_topic,
    parse_topic,
    shared_filter,
    stream_filter,
)
from .validation import ContractError, FieldIssue, ParsedPayload, parse_payload

__all__ = [
    "ID_MAX_LENGTH",
    "ID_PATTERN",
    "MAX_PAYLOAD_BYTES",
    "MODEL_BY_STREAM",
    "RETAINED_STREAMS",
    "TELEMETRY_STREAMS",
    "TOPIC_ROOT",
    "TS_MAX_MS",
    "TS_MIN_MS",
    "AttendanceEvent",
    "ConfigReport",
    "ConfigResult",
    "ContractError",
    "ContractModel",
    "EnergyReading",
    "FieldIssue",
    "Id",
    "NodeConfig",
    "NodeState",
    "NodeStatus",
    "ParsedPayload",
    "Punch",
    "RoomReading",
    "Stream",
    "TopicError",
    "TopicParts",
    "VerifyMethod",
    "build_topic",
    "id_problem",
    "is_valid_id",
    "parse_payload",
    "parse_topic",
    "shared_filter",
    "stream_filter",
]
