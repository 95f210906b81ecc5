"""Wire contract: topics, ids and payload validation, one case per kind of bad input."""

import json

import pytest

from contract import (
    MAX_PAYLOAD_BYTES,
    ContractError,
    Stream,
    TopicError,
    build_topic,
    id_problem,
    parse_payload,
    parse_topic,
    shared_filter,
    stream_filter,
)

TS = 1_796_000_000_000  # 2026-11-29T01:33:20Z


def room(**fields) -> bytes:
    payload = {"device": "sensor-01", "ts": TS, "room": "ruang-rapat", "temperature_c": 25.5}
    payload.update(fields)
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    "value",
    ["dinkes", "gw-01", "a", "0", "kec-senayang", "x" * 64],
)
def test_id_valid(value):
    assert id_problem(value) is None


@pytest.mark.parametrize(
    ("value", "expected_words"),
    [
        ("", "empty"),
        ("Dinkes", "lowercase"),
        ("din kes", "invalid"),
        ("a/b", "invalid"),
        ("a+b", "invalid"),
        ("a#", "invalid"),
        ("-gw", "invalid"),
        ("x" * 65, "maximum is 64"),
        ("dinas_kesehatan", "invalid"),
    ],
)
def test_id_invalid_names_the_problem(value, expected_words):
    problem = id_problem(value)
    assert problem is not None
    assert expected_words in problem


def test_topic_round_trip():
    topic = build_topic("dinkes", "gw-01", Stream.ROOM)
    assert topic == "smartoffice/v1/dinkes/gw-01/room"
    assert parse_topic(topic).opd == "dinkes"
    assert parse_topic(topic).node == "gw-01"
    assert parse_topic(topic).stream is Stream.ROOM


def test_topic_config_reported_is_two_levels():
    parts = parse_topic("smartoffice/v1/dinkes/gw-01/config/reported")
    assert parts.stream is Stream.CONFIG_REPORTED


@pytest.mark.parametrize(
    ("topic", "expected_words"),
    [
        ("other/v1/dinkes/gw-01/room", "outside the contract tree"),
        ("smartoffice/v2/dinkes/gw-01/room", "outside the contract tree"),
        ("smartoffice/v1/dinkes/room", "must have the form"),
        ("smartoffice/v1/Dinkes/gw-01/room", "opd"),
        ("smartoffice/v1/dinkes/gw 01/room", "node"),
        ("smartoffice/v1/dinkes/gw-01/weather", "unknown stream 'weather'"),
        ("smartoffice/v1/dinkes/gw-01/room/extra", "unknown stream"),
    ],
)
def test_parse_topic_rejects(topic, expected_words):
    with pytest.raises(TopicError) as raised:
        parse_topic(topic)
    assert expected_words in str(raised.value)


def test_build_topic_rejects_wildcard_id():
    with pytest.raises(TopicError):
        build_topic("dinkes", "+", Stream.ROOM)


def test_filters_cover_all_nodes():
    assert stream_filter(Stream.ENERGY) == "smartoffice/v1/+/+/energy"
    assert shared_filter("ingest", stream_filter("room")) == "$share/ingest/smartoffice/v1/+/+/room"


def test_parse_payload_valid_room():
    parsed = parse_payload("room", room(humidity_pct=61, co2_ppm=812.5, occupancy=True, occupancy_count=4))
    assert parsed.issues == ()
    assert parsed.model.humidity_pct == 61.0
    assert isinstance(parsed.model.humidity_pct, float)
    assert parsed.model.occupancy_count == 4


def test_parse_payload_attendance_defaults():
    payload = json.dumps({"device": "absen-01", "ts": TS, "employee_id": "198706152010011002"}).encode()
    parsed = parse_payload("attendance", payload)
    assert parsed.model.punch.value == "unknown"
    assert parsed.model.verify.value == "other"


def test_parse_payload_status_last_will_has_no_ts():
    parsed = parse_payload("status", b'{"state":"offline"}')
    assert parsed.model.ts is None


# Messages that are rejected as a whole: (name, stream, payload, reason, words in the message).
REJECTED = [
    ("not json", "room", b"{bad", "invalid_json", "not valid JSON"),
    ("json list", "room", b"[1, 2]", "invalid_json", "JSON list"),
    ("not utf-8", "room", b"\xff\xfe{}", "invalid_json", "UTF-8"),
    ("too large", "room", b"{" + b" " * MAX_PAYLOAD_BYTES + b"}", "payload_too_large", "exceeds"),
    ("missing device", "room", json.dumps({"ts": TS, "room": "r1", "co2_ppm": 500}).encode(), "missing_field", "device is missing"),
    ("missing ts", "energy", json.dumps({"device": "m1", "power_w": 5.0}).encode(), "missing_field", "ts is missing"),
    ("ts in seconds", "room", room(ts=1_736_603_810), "invalid_value", "epoch seconds"),
    ("ts before 2020", "room", room(ts=86_400_000), "invalid_value", "before 2020"),
    ("ts in microseconds", "room", room(ts=1_736_603_810_490_000), "invalid_value", "microseconds"),
    ("ts as string", "room", room(ts="1736603810490"), "invalid_value", "ts="),
    ("device with space", "room", room(device="TH 01"), "invalid_value", "device: id 'TH 01'"),
    ("device with slash", "room", room(device="a/b"), "invalid_value", "device"),
    ("no measurement", "room", json.dumps({"device": "s1", "ts": TS, "room": "r1"}).encode(), "no_measurement", "at least one"),
    ("only a NaN", "room", room(temperature_c=float("nan")), "no_measurement", "finite"),
    ("only unknown field", "room", b'{"device":"s1","ts":1796000000000,"room":"r1","temperature":21}', "no_measurement", "temperature_c"),
    ("bad employee id", "attendance", json.dumps({"device": "t1", "ts": TS, "employee_id": "12 34"}).encode(), "invalid_value", "employee_id"),
    ("unknown punch", "attendance", json.dumps({"device": "t1", "ts": TS, "employee_id": "1001", "punch": "255"}).encode(), "invalid_value", "punch"),
    ("unknown state", "status", b'{"state":"sleeping"}', "invalid_value", "state"),
]


@pytest.mark.parametrize(("stream", "payload", "reason", "words"), [case[1:] for case in REJECTED], ids=[case[0] for case in REJECTED])
def test_parse_payload_rejects(stream, payload, reason, words):
    with pytest.raises(ContractError) as raised:
        parse_payload(stream, payload)
    assert raised.value.reason == reason
    assert words in str(raised.value)


# Invalid measurements dropped from an otherwise valid message: (name, payload, dropped field).
DROPPED = [
    ("NaN", b'{"device":"s1","ts":1796000000000,"room":"r1","temperature_c":25.0,"humidity_pct":NaN}', "humidity_pct"),
    ("Infinity", b'{"device":"s1","ts":1796000000000,"room":"r1","temperature_c":25.0,"co2_ppm":Infinity}', "co2_ppm"),
    ("-Infinity", b'{"device":"s1","ts":1796000000000,"room":"r1","temperature_c":25.0,"co2_ppm":-Infinity}', "co2_ppm"),
    ("string number", b'{"device":"s1","ts":1796000000000,"room":"r1","temperature_c":25.0,"co2_ppm":"800"}', "co2_ppm"),
    ("bool as number", b'{"device":"s1","ts":1796000000000,"room":"r1","temperature_c":25.0,"co2_ppm":true}', "co2_ppm"),
    ("out of range", b'{"device":"s1","ts":1796000000000,"room":"r1","temperature_c":25.0,"humidity_pct":140}', "humidity_pct"),
    ("unknown field", b'{"device":"s1","ts":1796000000000,"room":"r1","temperature_c":25.0,"temp":25}', "temp"),
    ("number as bool", b'{"device":"s1","ts":1796000000000,"room":"r1","temperature_c":25.0,"occupancy":1}', "occupancy"),
]


@pytest.mark.parametrize(("payload", "field"), [case[1:] for case in DROPPED], ids=[case[0] for case in DROPPED])
def test_parse_payload_drops_only_the_bad_field(payload, field):
    parsed = parse_payload("room", payload)
    assert [issue.field for issue in parsed.issues] == [field]
    assert parsed.model.temperature_c == 25.0
    assert getattr(parsed.model, field, None) is None


def test_parse_payload_unknown_field_suggests_name():
    parsed = parse_payload("room", room(temperature=25, humidity_pct=50))
    assert "did you mean 'temperature_c'" in parsed.issues[0].message


def test_parse_payload_many_bad_fields_keep_the_good_one():
    payload = b'{"device":"m1","ts":1796000000000,"power_w":NaN,"voltage_v":"x","current_a":-1,"energy_kwh_total":12.5}'
    parsed = parse_payload("energy", payload)
    assert sorted(issue.field for issue in parsed.issues) == ["current_a", "power_w", "voltage_v"]
    assert parsed.model.energy_kwh_total == 12.5
