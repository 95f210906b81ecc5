"""Line protocol encoding: escaping, field types, and the round trip through a real InfluxDB."""

import json

import httpx
import pytest

from conftest import CASES_DIR
from ingest.line_protocol import (
    LineProtocolError,
    encode_line,
    encode_tags,
    escape_key,
    escape_measurement,
    format_field_value,
)

ESCAPING_INPUT = CASES_DIR / "escaping.jsonl"
ESCAPING_EXPECTED = CASES_DIR / "escaping_expected.lp"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("with space", r"with\ space"),
        ("a,b", r"a\,b"),
        ("k=v", r"k\=v"),
        ("Despacho Nº 3 – Dirección", r"Despacho\ Nº\ 3\ –\ Dirección"),
        ("Ruang Rapat, Lantai 2", r"Ruang\ Rapat\,\ Lantai\ 2"),
    ],
)
def test_escape_key_escapes_space_comma_equals(text, expected):
    assert escape_key(text) == expected


def test_escape_measurement_keeps_equals():
    assert escape_measurement("room env,a=b") == r"room\ env\,a=b"


@pytest.mark.parametrize("text", ["ends with \\", "line\nbreak", "carriage\rreturn", ""])
def test_escape_key_rejects_inexpressible(text):
    with pytest.raises(LineProtocolError):
        escape_key(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (21.0, "21.0"),
        (21.5, "21.5"),
        (1e-7, "1e-07"),
        (3, "3i"),
        (True, "true"),
        (False, "false"),
        ('Sensor "B" \\ test', r'"Sensor \"B\" \\ test"'),
    ],
)
def test_format_field_value_by_type(value, expected):
    assert format_field_value(value) == expected


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_format_field_value_rejects_non_finite(value):
    with pytest.raises(LineProtocolError):
        format_field_value(value)


def test_encode_line_skips_empty_tags_and_none_fields():
    line = encode_line("room", {"opd": "dinkes", "room": ""}, {"co2_ppm": 800.0, "humidity_pct": None}, 5)
    assert line == "room,opd=dinkes co2_ppm=800.0 5"


def test_encode_line_without_fields_raises():
    with pytest.raises(LineProtocolError):
        encode_line("room", {"opd": "dinkes"}, {"co2_ppm": None}, 5)


def _escaping_case_lines() -> tuple[list[str], list[str], list[dict]]:
    """Encode the escaping case messages as the case describes them; return (lines, expected, cases)."""
    cases = [json.loads(line) for line in ESCAPING_INPUT.read_text(encoding="utf-8").splitlines() if line.strip()]
    expected = [
        line for line in ESCAPING_EXPECTED.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")
    ]
    lines = []
    for case in cases[:2]:
        payload = json.loads(case["payload"])
        tags = {"device": case["topic"].split("/", 1)[1], **{k: v for k, v in case["meta"].items() if k != "note"}}
        fields = {"temperature": payload["temperature"], "humidity": payload["humidity"]}
        if "note" in case["meta"]:
            fields["note"] = case["meta"]["note"]
        timestamp_ns = int(_epoch_s(case["recv"]) * 1e9)
        lines.append(encode_line("room_env", tags, fields, timestamp_ns))
    return lines, expected, cases


def _epoch_s(iso_utc: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso_utc.replace("Z", "+00:00")).timestamp()


def test_escaping_matches_expected_lines():
    lines, expected, _ = _escaping_case_lines()
    assert lines == expected


def test_trailing_backslash_tag_is_rejected():
    _, _, cases = _escaping_case_lines()
    alias = cases[2]["meta"]["device_alias"]
    assert alias.endswith("\\")
    with pytest.raises(LineProtocolError) as raised:
        encode_tags({"device_alias": alias, "site": cases[2]["meta"]["site"]})
    assert "backslash" in str(raised.value)


@pytest.mark.integration
def test_round_trip_returns_original_strings(influx, influx_db):
    lines, _, cases = _escaping_case_lines()
    response = httpx.post(
        f"{influx.url}/write", params={"db": influx_db, "precision": "ns"}, content="\n".join(lines).encode()
    )
    assert response.status_code == 204

    answer = influx.query(influx_db, 'SELECT * FROM "room_env" ORDER BY time ASC')
    rows = answer["results"][0]["series"][0]
    records = [dict(zip(rows["columns"], values)) for values in rows["values"]]
    assert [record["room"] for record in records] == [case["meta"]["room"] for case in cases[:2]]
    assert {record["building"] for record in records} == {"Edificio A=Norte"}
    assert records[0]["device"] == "planta2/sala juntas/th-01"
    assert records[1]["note"] == 'Sensor "B" \\ test'
