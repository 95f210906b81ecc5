"""Validation of raw payloads against the contract, salvaging what is valid.

``parse_payload`` first tries pydantic's JSON parser on the raw bytes (the fast path every
valid message takes). When that fails it parses the JSON with the standard library, which also
reads the ``NaN`` and ``Infinity`` that some firmware sends, drops each invalid or unknown
measurement field, records why, and validates the rest. A message is rejected as a whole only
when a field that identifies it (``device``, ``ts``, ``room``, ``employee_id``...) is invalid
or when no measurement remains.

Exceptions::

    ValueError
    └── ContractError      payload rejected; ``reason`` is a stable label for metrics
"""

import json
from dataclasses import dataclass

from pydantic import ValidationError

from .ids import ID_PATTERN, id_problem
from .payloads import MAX_PAYLOAD_BYTES, MODEL_BY_STREAM, TS_MAX_MS, TS_MIN_MS, ContractModel

_VALUE_PREVIEW_CHARS = 60


class ContractError(ValueError):
    """Raised when a payload cannot be accepted; the message names the value and the fix."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class FieldIssue:
    """One field dropped from an otherwise valid message."""

    field: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class ParsedPayload:
    """A validated payload and the fields that were dropped from it."""

    model: ContractModel
    issues: tuple[FieldIssue, ...] = ()


def parse_payload(stream: str, payload: bytes) -> ParsedPayload:
    """Validate ``payload`` as a message of ``stream``.

    Raises:
        ContractError: the payload is too large, not a JSON object, misses or has an invalid
            identifying field, or has no valid measurement left.
    """
    model_class = MODEL_BY_STREAM[stream]
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ContractError(
            "payload_too_large",
            f"payload of {len(payload)} bytes exceeds the limit of {MAX_PAYLOAD_BYTES} bytes",
        )

    try:
        return ParsedPayload(model_class.model_validate_json(payload))
    except ValidationError:
        pass

    return _salvage(model_class, payload)


def _salvage(model_class: type[ContractModel], payload: bytes) -> ParsedPayload:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise ContractError("invalid_json", "payload is not UTF-8 text: send a UTF-8 JSON object") from None

    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractError("invalid_json", f"payload is not valid JSON ({exc}): send one JSON object") from None

    if not isinstance(data, dict):
        raise ContractError("invalid_json", f"payload is a JSON {type(data).__name__}: send one JSON object")

    issues: list[FieldIssue] = []
    while True:
        try:
            model = model_class.model_validate(data)
        except ValidationError as exc:
            droppable, fatal = _split_errors(model_class, exc)
            if fatal or not droppable:
                raise _contract_error(fatal or exc.errors(), issues) from None

            for issue in droppable:
                data.pop(issue.field, None)
                issues.append(issue)
            continue

        return ParsedPayload(model, tuple(issues))


def _split_errors(model_class: type[ContractModel], exc: ValidationError) -> tuple[list[FieldIssue], list[dict]]:
    """Separate errors on droppable fields (measurements, unknown fields) from fatal ones."""
    droppable: list[FieldIssue] = []
    fatal: list[dict] = []
    for error in exc.errors():
        location = error["loc"]
        name = location[0] if location else None
        if not isinstance(name, str):
            fatal.append(error)
        elif error["type"] == "extra_forbidden":
            droppable.append(FieldIssue(name, "unknown_field", _unknown_field_message(model_class, name)))
        elif name in model_class.MEASUREMENTS:
            droppable.append(FieldIssue(name, "invalid_value", _describe(error)))
        else:
            fatal.append(error)
    return droppable, fatal


def _contract_error(errors: list[dict], dropped: list[FieldIssue]) -> ContractError:
    first = errors[0]
    if first["type"] == "missing":
        reason = "missing_field"
    elif not first["loc"]:
        reason = "no_measurement"
    else:
        reason = "invalid_value"

    sentences = [_describe(error) for error in errors[:5]]
    sentences += [issue.message for issue in dropped[:5]]
    return ContractError(reason, "; ".join(sentences))


def _describe(error: dict) -> str:
    """Turn one pydantic error into a sentence naming the field, the value and the fix."""
    location = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if not location:
        return message
    if error["type"] == "missing":
        return f"{location} is missing"

    value = error.get("input")
    if error["type"] == "string_pattern_mismatch" and error.get("ctx", {}).get("pattern") == ID_PATTERN:
        return f"{location}: {id_problem(value)}"
    if location == "ts" and isinstance(value, int) and not isinstance(value, bool):
        hint = _timestamp_hint(value)
        if hint:
            return f"ts={value}: {hint}"

    preview = repr(value)
    if len(preview) > _VALUE_PREVIEW_CHARS:
        preview = preview[:_VALUE_PREVIEW_CHARS] + "..."
    return f"{location}={preview}: {message}"


def _timestamp_hint(value: int) -> str | None:
    if TS_MIN_MS // 1000 <= value < TS_MAX_MS // 1000:
        return "looks like epoch seconds; send UTC epoch milliseconds (seconds x 1000)"
    if value >= TS_MAX_MS:
        return "looks like epoch microseconds or nanoseconds; send UTC epoch milliseconds"
    if value < TS_MIN_MS:
        return "is before 2020-01-01; the device clock is not set, sync it with NTP"
    return None


def _unknown_field_message(model_class: type[ContractModel], name: str) -> str:
    close = [known for known in model_class.model_fields if known.startswith(name.split("_")[0])]
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown field {name!r} dropped (field names carry their unit, e.g. temperature_c){hint}"
