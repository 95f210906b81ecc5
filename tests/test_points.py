"""Mapping of contract messages to InfluxDB points (pure logic, no servers)."""

import json

from contract import parse_payload, parse_topic
from contract.storage import FieldKind, stored_fields
from ingest.points import PointEncoder

TS = 1_796_000_000_000


def encode(stream: str, payload: dict, opd: str = "dinkes", node: str = "gw-01", received_ms: int = 0) -> str:
    topic = parse_topic(f"smartoffice/v1/{opd}/{node}/{stream}")
    model = parse_payload(stream, json.dumps(payload).encode()).model
    return PointEncoder().encode(topic, model, received_ms)


def split_line(line: str) -> tuple[str, dict[str, str], int]:
    series, fields, timestamp = line.split(" ")
    return series, dict(part.split("=", 1) for part in fields.split(",")), int(timestamp)


def test_room_point_has_tags_and_typed_fields():
    line = encode("room", {"device": "sensor-01", "ts": TS, "room": "aula", "temperature_c": 25, "occupancy": True, "occupancy_count": 12})
    series, fields, _ = split_line(line)
    assert series == "room,device=sensor-01,node=gw-01,opd=dinkes,room=aula"
    assert fields == {"temperature_c": "25.0", "occupancy": "true", "occupancy_count": "12i"}


def test_integer_json_value_is_written_as_float():
    whole = split_line(encode("energy", {"device": "m1", "ts": TS, "power_w": 800}))[1]
    decimal = split_line(encode("energy", {"device": "m1", "ts": TS + 1, "power_w": 800.5}))[1]
    assert whole["power_w"] == "800.0"
    assert decimal["power_w"] == "800.5"


def test_attendance_point_keeps_employee_id_as_string_field():
    line = encode("attendance", {"device": "absen-01", "ts": TS, "employee_id": "198706152010011002", "punch": "in", "verify": "fingerprint"})
    series, fields, _ = split_line(line)
    assert series == "attendance,device=absen-01,node=gw-01,opd=dinkes,punch=in,verify=fingerprint"
    assert fields == {"employee_id": '"198706152010011002"'}


def test_status_without_ts_uses_receive_time():
    line = encode("status", {"state": "offline"}, received_ms=TS)
    series, fields, timestamp = split_line(line)
    assert series == "node_status,node=gw-01,opd=dinkes"
    assert fields == {"state": '"offline"'}
    assert timestamp // 1_000_000 == TS


def test_point_time_stays_in_the_millisecond_of_ts():
    _, _, timestamp = split_line(encode("room", {"device": "s1", "ts": TS, "room": "aula", "co2_ppm": 600}))
    assert timestamp // 1_000_000 == TS


def test_same_message_gives_same_point():
    payload = {"device": "s1", "ts": TS, "room": "aula", "co2_ppm": 600}
    assert encode("room", payload) == encode("room", payload)


def test_two_readings_in_one_millisecond_get_distinct_times():
    first = encode("room", {"device": "s1", "ts": TS, "room": "aula", "co2_ppm": 600})
    second = encode("room", {"device": "s1", "ts": TS, "room": "aula", "co2_ppm": 601})
    assert split_line(first)[2] != split_line(second)[2]


def test_two_punches_in_one_millisecond_get_distinct_times():
    first = encode("attendance", {"device": "absen-01", "ts": TS, "employee_id": "1001", "punch": "in"})
    second = encode("attendance", {"device": "absen-01", "ts": TS, "employee_id": "1002", "punch": "in"})
    assert split_line(first)[2] != split_line(second)[2]


def test_stored_fields_types_come_from_the_model():
    room_fields = stored_fields("room")
    assert room_fields["temperature_c"] is FieldKind.FLOAT
    assert room_fields["occupancy"] is FieldKind.BOOLEAN
    assert room_fields["occupancy_count"] is FieldKind.INTEGER
    assert "room" not in room_fields
    assert "ts" not in room_fields
