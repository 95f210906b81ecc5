"""InfluxDB line protocol encoding with the escaping rules of InfluxDB 1.x.

* Measurement names: ``,`` and space are escaped with ``\\``.
* Tag keys, tag values and field keys: ``,``, ``=`` and space are escaped.
* String field values: ``"`` and ``\\`` are escaped, the value is wrapped in ``"``.
* Floats are written with a decimal point or exponent (``21.0``), integers with an ``i``
  suffix (``3i``), so a field keeps one type whatever number the device sent.

A tag value that ends in ``\\`` cannot be written (the parser reads ``\\,`` as an escaped
comma), and no part may contain a line break. Both raise ``LineProtocolError``, so only that
point is rejected, never the batch it would have joined.
"""

import math

_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STRING_ESCAPES = str.maketrans({'"': r"\"", "\\": "\\\\"})


class LineProtocolError(ValueError):
    """Raised when a value cannot be expressed in line protocol."""


def escape_measurement(name: str) -> str:
    """Escape a measurement name."""
    _check_text("measurement", name)
    return name.translate(_MEASUREMENT_ESCAPES)


def escape_key(text: str, what: str = "tag") -> str:
    """Escape a tag key, tag value or field key."""
    _check_text(what, text)
    if text.endswith("\\"):
        raise LineProtocolError(
            f"{what} {text!r} ends with a backslash, which line protocol cannot express: remove or replace it"
        )
    return text.translate(_KEY_ESCAPES)


def format_string(value: str) -> str:
    """Return a string field value, quoted and escaped."""
    if "\n" in value or "\r" in value:
        raise LineProtocolError(f"string field {value[:40]!r} contains a line break: remove it")
    return '"' + value.translate(_STRING_ESCAPES) + '"'


def format_float(value: float) -> str:
    """Return a float field value; ``repr`` keeps the full precision and a ``.`` or exponent."""
    if not math.isfinite(value):
        raise LineProtocolError(f"float field value {value!r} is not finite: InfluxDB rejects NaN and Infinity")
    return repr(float(value))


def format_field_value(value: bool | int | float | str) -> str:
    """Return a field value in the type its Python type stands for."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return format_float(value)
    return format_string(value)


def encode_tags(tags: dict[str, str]) -> str:
    """Return ``,k=v,k=v`` for the non-empty tags, sorted by key as InfluxDB prefers."""
    parts = []
    for key in sorted(tags):
        value = tags[key]
        if value is None or value == "":
            continue
        parts.append(f",{escape_key(key, 'tag key')}={escape_key(value, 'tag value')}")
    return "".join(parts)


def encode_line(
    measurement: str,
    tags: dict[str, str],
    fields: dict[str, bool | int | float | str],
    timestamp_ns: int,
) -> str:
    """Encode one point; fields are sorted by key and fields set to None are left out.

    Raises:
        LineProtocolError: no field is set, or a name or value cannot be expressed.
    """
    field_parts = []
    for key in sorted(fields):
        value = fields[key]
        if value is None:
            continue
        field_parts.append(f"{escape_key(key, 'field key')}={format_field_value(value)}")

    if not field_parts:
        raise LineProtocolError(f"point of measurement {measurement!r} has no field")

    return f"{escape_measurement(measurement)}{encode_tags(tags)} {','.join(field_parts)} {timestamp_ns}"


def _check_text(what: str, text: str) -> None:
    if not text:
        raise LineProtocolError(f"{what} is empty")
    if "\n" in text or "\r" in text:
        raise LineProtocolError(f"{what} {text[:40]!r} contains a line break: remove it")
