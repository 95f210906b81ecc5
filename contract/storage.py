"""How contract messages are stored in InfluxDB: measurements, tags and field types.

The ingest service writes with these rules and the API reads with them, so both agree on
which payload field is a tag and which InfluxDB type each field has. A field's type comes from
the payload model, never from a JSON value: ``800`` and ``800.5`` are both floats.
"""

import types
import typing
from enum import Enum, StrEnum

from .payloads import MODEL_BY_STREAM, ContractModel

MEASUREMENT_BY_STREAM = {
    "room": "room",
    "energy": "energy",
    "attendance": "attendance",
    "status": "node_status",
}
"""InfluxDB measurement of each stored stream; ``config`` streams are not time series."""

TOPIC_TAGS = ("opd", "node")
"""Tags taken from the topic."""

TAG_FIELDS = ("device", "room", "circuit", "punch", "verify")
"""Payload fields stored as tags; each has a small set of values per node."""

NOT_STORED = frozenset({"ts", "device_last_seen"})
"""Payload fields that are not stored as fields: ``ts`` becomes the point's time, and a status
message's ``device_last_seen`` map repeats what the readings' own times already hold."""

CLOCK_FIELDS = {"device_ts": "integer", "clock_invalid": "boolean"}
"""Fields added to a reading whose ``ts`` was too far in the future and was replaced by the
receive time: the device's own ``ts`` (epoch ms) and a flag. Absent on every other point."""


class FieldKind(StrEnum):
    """InfluxDB field type."""

    FLOAT = "float"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    STRING = "string"


def field_kind(annotation) -> FieldKind:
    """Return the InfluxDB type of a model field from its declared Python type."""
    candidates = [annotation]
    while candidates:
        current = candidates.pop()
        origin = typing.get_origin(current)
        if origin in (typing.Union, types.UnionType):
            candidates.extend(arg for arg in typing.get_args(current) if arg is not type(None))
            continue
        if origin is typing.Annotated:
            candidates.append(typing.get_args(current)[0])
            continue
        if current is bool:
            return FieldKind.BOOLEAN
        if current is int:
            return FieldKind.INTEGER
        if current is float:
            return FieldKind.FLOAT
        if current is str or (isinstance(current, type) and issubclass(current, Enum)):
            return FieldKind.STRING
    raise TypeError(f"no InfluxDB field type for annotation {annotation!r}")


def tag_names(model: type[ContractModel]) -> tuple[str, ...]:
    """Return the payload fields of ``model`` stored as tags."""
    return tuple(name for name in TAG_FIELDS if name in model.model_fields)


def stored_fields(stream: str) -> dict[str, FieldKind]:
    """Return the InfluxDB fields of ``stream``'s measurement and their types, sorted by name."""
    model = MODEL_BY_STREAM[stream]
    tags = tag_names(model)
    fields = {
        name: field_kind(info.annotation)
        for name, info in model.model_fields.items()
        if name not in tags and name not in NOT_STORED
    }
    if "ts" in model.model_fields and stream != "status":
        fields.update({name: FieldKind(kind) for name, kind in CLOCK_FIELDS.items()})
    return dict(sorted(fields.items()))
