"""Map validated contract messages to InfluxDB points.

Measurements, tags and field types follow ``contract.storage``: tags are the ids with bounded
cardinality (``opd`` and ``node`` from the topic; ``device``, ``room``, ``circuit``, ``punch``,
``verify`` from the payload), and each field's type comes from the contract model, never from
the JSON value, so a device that sends ``800`` and then ``800.5`` writes two floats.

Point time: the message's ``ts`` in milliseconds plus a sub-millisecond offset of 0 to
999,999 ns taken from a CRC-32 of the point's series and fields. A redelivered message yields
the same point (same series, same time), so it overwrites itself; two different events of one
device in the same millisecond (two punches, two readings) get different times and both stay.
Two different events collide only when their CRC-32 values are equal modulo 10^6.

Personal data: with a ``Pseudonymizer``, the ``employee_id`` of an attendance event is written
as its keyed pseudonym (see ``ingest.pseudonyms``), never as the id the terminal sent.
"""

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from contract import MODEL_BY_STREAM, ContractModel, TopicParts
from contract.storage import CLOCK_FIELDS, MEASUREMENT_BY_STREAM, FieldKind, stored_fields, tag_names

from .line_protocol import escape_key, escape_measurement, format_string
from .pseudonyms import Pseudonymizer

_OFFSET_MODULUS = 1_000_000

PSEUDONYMIZED_FIELDS = {"attendance": "employee_id"}
"""Field of each stream that identifies a person and is stored only as a pseudonym."""


def _format_bool(value: bool) -> str:
    return "true" if value else "false"


def _format_int(value: int) -> str:
    return f"{value}i"


def _format_enum_string(value) -> str:
    return format_string(value.value if isinstance(value, Enum) else value)


_FORMATTERS: dict[FieldKind, Callable] = {
    # The contract's models reject NaN and Infinity, so repr needs no finiteness check here.
    FieldKind.FLOAT: float.__repr__,
    FieldKind.INTEGER: _format_int,
    FieldKind.BOOLEAN: _format_bool,
    FieldKind.STRING: _format_enum_string,
}


@dataclass(frozen=True, slots=True)
class _StreamSpec:
    measurement: str
    tags: tuple[str, ...]
    fields: tuple[tuple[str, str, Callable], ...]  # (attribute, "escaped key=", formatter)
    personal_field: str | None


def _build_spec(stream: str) -> _StreamSpec:
    fields = tuple(
        (name, escape_key(name, "field key") + "=", _FORMATTERS[kind])
        for name, kind in stored_fields(stream).items()
        if name not in CLOCK_FIELDS
    )
    return _StreamSpec(
        escape_measurement(MEASUREMENT_BY_STREAM[stream]),
        tag_names(MODEL_BY_STREAM[stream]),
        fields,
        PSEUDONYMIZED_FIELDS.get(stream),
    )


_SPECS: dict[type[ContractModel], _StreamSpec] = {
    MODEL_BY_STREAM[stream]: _build_spec(stream) for stream in MEASUREMENT_BY_STREAM
}


class PointEncoder:
    """Encode contract messages as line protocol, caching the series prefix of each device.

    The cache is bounded by ``max_cached_series``; it is cleared when full, which costs only
    the time to rebuild the prefixes. Without ``pseudonyms``, employee ids are stored as sent,
    which only a development set-up may choose (``SMARTOFFICE_PSEUDONYMIZE=false``).
    """

    def __init__(self, max_cached_series: int = 100_000, pseudonyms: Pseudonymizer | None = None) -> None:
        self._series_cache: dict[tuple, str] = {}
        self._max_cached_series = max_cached_series
        self._pseudonyms = pseudonyms

    def encode(self, parts: TopicParts, model: ContractModel, received_ms: int, restamp: bool = False) -> str:
        """Return the line for ``model``, received on the topic ``parts`` at ``received_ms``.

        With ``restamp``, the point gets the receive time and keeps the device's ``ts`` in the
        ``device_ts`` field, flagged by ``clock_invalid=true``. A message without ``ts`` (a
        last will) always gets the receive time.

        Raises:
            KeyError: the model's stream is not stored (``config``, ``config/reported``).
            LineProtocolError: a value cannot be expressed in line protocol.
        """
        spec = _SPECS[type(model)]
        series = self._series(spec, parts, model)

        values = model.__dict__
        personal_field = spec.personal_field if self._pseudonyms is not None else None
        field_parts = []
        for attribute, prefix, formatter in spec.fields:
            value = values[attribute]
            if value is not None:
                if attribute == personal_field:
                    value = self._pseudonyms.pseudonym(parts.opd, value)
                field_parts.append(prefix + formatter(value))
        if restamp:
            field_parts.append(f"device_ts={model.ts}i,clock_invalid=true")
        field_set = ",".join(field_parts)

        ts_ms = received_ms if restamp or model.ts is None else model.ts
        offset = zlib.crc32(f"{series} {field_set}".encode()) % _OFFSET_MODULUS
        return f"{series} {field_set} {ts_ms * 1_000_000 + offset}"

    def _series(self, spec: _StreamSpec, parts: TopicParts, model: ContractModel) -> str:
        values = model.__dict__
        tag_values = tuple([values[name] for name in spec.tags])
        cache_key = (spec.measurement, parts.opd, parts.node, tag_values)
        series = self._series_cache.get(cache_key)
        if series is not None:
            return series

        tags = {"opd": parts.opd, "node": parts.node}
        for name, value in zip(spec.tags, tag_values):
            if value is not None:
                tags[name] = value.value if isinstance(value, Enum) else value
        series = spec.measurement + "".join(
            f",{escape_key(key, 'tag key')}={escape_key(tags[key], 'tag value')}" for key in sorted(tags)
        )

        if len(self._series_cache) >= self._max_cached_series:
            self._series_cache.clear()
        self._series_cache[cache_key] = series
        return series
