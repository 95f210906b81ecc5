"""Tests of the device simulator: generators, office calendar, timeline, pacing and MQTT.

Unit tests run the generators over a simulated Tuesday and Saturday in WIB. Integration tests
run the publisher and the ``smartoffice-sim`` command against the session's real Mosquitto,
with OPD ids of their own, and remove their retained status messages afterwards.
"""

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
import yaml
from pydantic import ValidationError

from contract import NodeStatus, Stream, build_topic, parse_payload, parse_topic
from contract.catalogue import load_catalogue
from devstack import MosquittoServer
from firmware_sim import (
    OFFLINE_PAYLOAD,
    ProgressLog,
    Publisher,
    SimSettings,
    Timeline,
    build_regency,
    run_live,
    run_load,
)
from firmware_sim.attendance import AttendanceTerminal, build_roster, format_nip
from firmware_sim.clock import WallClock, parse_start
from firmware_sim.devices import DeviceKey
from firmware_sim.office_hours import OfficeHours
from firmware_sim.publisher import NodeClient
from firmware_sim.rate_limit import TokenBucket

REPO_ROOT = Path(__file__).resolve().parent.parent
CATALOGUE_FILE = REPO_ROOT / "config" / "regency.yaml"
WIB = ZoneInfo("Asia/Jakarta")
HOURS = OfficeHours(WIB)

TUESDAY = date(2025, 1, 14)
SATURDAY = date(2025, 1, 18)
READING_INTERVAL_S = 120


def wib_ms(day: date, hour: int, minute: int = 0) -> int:
    """Return UTC epoch milliseconds of a wall-clock time in WIB."""
    return HOURS.to_ms(day, clock_time(hour, minute))


class Sample(NamedTuple):
    """One generated message, decoded."""

    stream: Stream
    topic: str
    payload: dict


def collect_day(regency, start_ms: int, day: date) -> list[Sample]:
    """Run the timeline from ``start_ms`` to the end of the local ``day`` and return the decoded messages."""
    end_ms = wib_ms(day + timedelta(days=1), 0)
    timeline = Timeline(regency, start_ms, READING_INTERVAL_S)
    messages = itertools.takewhile(lambda message: message.ts_ms < end_ms, timeline)
    return [Sample(message.stream, message.topic, json.loads(message.payload)) for message in messages]


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue(CATALOGUE_FILE)


@pytest.fixture(scope="module")
def tuesday_messages(catalogue) -> list[Sample]:
    """Every message of the regency from Monday 12:00 WIB to the end of Tuesday."""
    regency = build_regency(catalogue, seed=1)
    return collect_day(regency, wib_ms(TUESDAY - timedelta(days=1), 12), TUESDAY)


@pytest.fixture(scope="module")
def saturday_messages(catalogue) -> list[Sample]:
    """Every message of the regency from Friday 16:00 WIB to the end of Saturday."""
    regency = build_regency(catalogue, seed=1)
    return collect_day(regency, wib_ms(SATURDAY - timedelta(days=1), 16), SATURDAY)


def on_local_date(samples: list[Sample], stream: Stream, day: date) -> list[dict]:
    return [s.payload for s in samples if s.stream is stream and HOURS.local_date(s.payload["ts"]) == day]


def of_stream(samples: list[Sample], stream: Stream) -> list[dict]:
    return [sample.payload for sample in samples if sample.stream is stream]


def between(payloads: list[dict], day: date, start: tuple[int, int], end: tuple[int, int]) -> list[dict]:
    start_ms, end_ms = wib_ms(day, *start), wib_ms(day, *end)
    return [payload for payload in payloads if start_ms <= payload["ts"] < end_ms]


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


# Determinism


def first_payloads(catalogue, seed: int, count: int, opd_ids=None) -> list[bytes]:
    regency = build_regency(catalogue, seed=seed, opd_ids=opd_ids)
    timeline = Timeline(regency, wib_ms(TUESDAY, 7), 10)
    return [message.topic.encode() + b" " + message.payload for message in itertools.islice(timeline, count)]


def test_timeline_same_seed_gives_identical_bytes(catalogue):
    assert first_payloads(catalogue, seed=5, count=3000) == first_payloads(catalogue, seed=5, count=3000)


_DIGEST_SCRIPT = """
import hashlib, itertools
from contract.catalogue import load_catalogue
from firmware_sim import Timeline, build_regency
regency = build_regency(load_catalogue("config/regency.yaml"), seed=3)
digest = hashlib.sha256()
for message in itertools.islice(Timeline(regency, 1736812800000, 10), 5000):
    digest.update(message.topic.encode() + message.payload)
print(digest.hexdigest())
"""


def test_timeline_same_bytes_across_processes():
    """Two processes with different hash seeds produce the same 5,000 messages."""
    digests = []
    for hash_seed in ("1", "2"):
        environment = dict(os.environ, PYTHONHASHSEED=hash_seed)
        result = subprocess.run(
            [sys.executable, "-c", _DIGEST_SCRIPT], cwd=REPO_ROOT, env=environment, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        digests.append(result.stdout.strip())

    assert digests[0] == digests[1]


def test_timeline_other_seed_gives_other_payloads(catalogue):
    assert first_payloads(catalogue, seed=5, count=200) != first_payloads(catalogue, seed=6, count=200)


def test_timeline_opd_filter_keeps_device_payloads(catalogue):
    """A device's payloads depend on the seed and its own identity, not on the other devices."""
    setda_only = first_payloads(catalogue, seed=5, count=500, opd_ids=["setda"])
    setda_in_all = [line for line in first_payloads(catalogue, seed=5, count=7000) if b"/setda/" in line][:500]

    assert setda_only == setda_in_all


def test_timeline_timestamps_never_decrease(tuesday_messages):
    timestamps = [sample.payload["ts"] for sample in tuesday_messages]

    assert timestamps == sorted(timestamps)


def test_timeline_spreads_devices_within_interval(catalogue):
    regency = build_regency(catalogue, seed=1)
    start_ms = wib_ms(TUESDAY, 7)
    periodic_devices = sum(len(node.sensors) for node in regency.nodes)
    first_round = [
        message
        for message in itertools.islice(Timeline(regency, start_ms, 10), 2 * periodic_devices)
        if message.ts_ms < start_ms + 10_000 and message.stream is not Stream.ATTENDANCE
    ]
    offsets_ms = {message.ts_ms - start_ms for message in first_round}

    assert len(first_round) == periodic_devices

    assert len(offsets_ms) > len(first_round) * 0.9


# Contract


def test_payloads_validate_without_dropped_fields(tuesday_messages, saturday_messages):
    issues = []
    for stream, _, payload in tuesday_messages + saturday_messages:
        parsed = parse_payload(stream.value, json.dumps(payload).encode())
        if parsed.issues or parsed.model.model_dump(exclude_none=True) != payload:
            issues.append((stream, payload, parsed.issues))

    assert issues == []


def test_payloads_cover_every_telemetry_stream(tuesday_messages):
    streams = Counter(sample.stream for sample in tuesday_messages)

    assert set(streams) == {Stream.ROOM, Stream.ENERGY, Stream.ATTENDANCE}


def test_status_payloads_validate():
    settings = SimSettings(mqtt_host="127.0.0.1", mqtt_port=1)
    regency = build_regency(load_catalogue(CATALOGUE_FILE), seed=1, opd_ids=["dinsos"])
    node_client = NodeClient(regency.nodes[0], settings)

    online = parse_payload("status", node_client.status_payload())
    offline = parse_payload("status", OFFLINE_PAYLOAD)

    assert online.issues == ()
    assert online.model.state == "online"
    assert offline.issues == ()
    assert offline.model.state == "offline"


# Office hours and rooms


def test_room_co2_rises_in_office_hours(tuesday_messages):
    """Mean CO2 of all rooms at 10:00 WIB on a Tuesday is well above that at 02:00."""
    rooms = on_local_date(tuesday_messages, Stream.ROOM, TUESDAY)
    night_co2 = mean(payload["co2_ppm"] for payload in between(rooms, TUESDAY, (2, 0), (2, 10)))
    morning_co2 = mean(payload["co2_ppm"] for payload in between(rooms, TUESDAY, (10, 0), (10, 10)))

    assert morning_co2 > night_co2 + 150


def test_room_occupancy_rises_in_office_hours(tuesday_messages):
    """Rooms are empty at 02:00 WIB on a Tuesday and hold over 100 people at 10:00."""
    rooms = on_local_date(tuesday_messages, Stream.ROOM, TUESDAY)
    night_people = sum(payload["occupancy_count"] for payload in between(rooms, TUESDAY, (2, 0), (2, 10)))
    morning_people = sum(payload["occupancy_count"] for payload in between(rooms, TUESDAY, (10, 0), (10, 10)))

    assert night_people == 0
    assert morning_people > 100


def test_room_occupancy_zero_on_saturday(saturday_messages):
    rooms = on_local_date(saturday_messages, Stream.ROOM, SATURDAY)
    occupied = [payload for payload in rooms if payload["occupancy"] or payload["occupancy_count"]]

    assert rooms
    assert occupied == []


def test_room_temperature_cooled_in_office_hours(tuesday_messages):
    rooms = on_local_date(tuesday_messages, Stream.ROOM, TUESDAY)
    office_rooms = [p for p in between(rooms, TUESDAY, (10, 0), (11, 0)) if "server" not in p["room"]]
    temperatures = [payload["temperature_c"] for payload in office_rooms]

    assert min(temperatures) >= 23.5
    assert max(temperatures) <= 27.5


def test_room_temperature_warm_without_air_conditioning(tuesday_messages):
    rooms = on_local_date(tuesday_messages, Stream.ROOM, TUESDAY)
    night_rooms = [payload for payload in between(rooms, TUESDAY, (2, 0), (4, 0)) if "server" not in payload["room"]]
    temperatures = [payload["temperature_c"] for payload in night_rooms]

    assert min(temperatures) >= 27.0
    assert max(temperatures) <= 31.5


def test_room_humidity_within_55_to_80(tuesday_messages):
    humidity = [payload["humidity_pct"] for payload in of_stream(tuesday_messages, Stream.ROOM)]

    assert min(humidity) >= 55.0
    assert max(humidity) <= 80.0


def test_room_battery_drains_slowly(tuesday_messages):
    by_device = {}
    for sample in tuesday_messages:
        if sample.stream is Stream.ROOM:
            by_device.setdefault((sample.topic, sample.payload["device"]), []).append(sample.payload["battery_pct"])
    daily_drops = [series[0] - series[-1] for series in by_device.values() if series[0] >= series[-1]]

    assert len(daily_drops) >= len(by_device) - 1
    assert max(daily_drops) < 1.0


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        pytest.param(date(2025, 1, 16), 0.5, id="thursday lunch break"),
        pytest.param(date(2025, 1, 17), 0.2, id="friday prayer break"),
    ],
)
def test_office_presence_at_1230_follows_break(day, expected):
    assert HOURS.presence(wib_ms(day, 12, 30)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("utc_text", "local_day"),
    [
        pytest.param("2025-01-14T16:30:00+00:00", date(2025, 1, 14), id="23:30 WIB is the same local date"),
        pytest.param("2025-01-14T17:30:00+00:00", date(2025, 1, 15), id="00:30 WIB is the next local date"),
        pytest.param("2025-01-14T23:50:00+00:00", date(2025, 1, 15), id="06:50 WIB belongs to the next UTC day"),
    ],
)
def test_office_local_date_uses_zone(utc_text, local_day):
    ts_ms = round(datetime.fromisoformat(utc_text).timestamp() * 1000)

    assert HOURS.local_date(ts_ms) == local_day


# Energy meters


def meters_of_day(samples: list[Sample], day: date) -> dict[tuple[str, str], list[dict]]:
    """Group one local day's energy readings by meter, keyed by topic and device id."""
    meters: dict[tuple[str, str], list[dict]] = {}
    for sample in samples:
        if sample.stream is Stream.ENERGY and HOURS.local_date(sample.payload["ts"]) == day:
            meters.setdefault((sample.topic, sample.payload["device"]), []).append(sample.payload)
    return meters


def test_energy_counter_monotonic_over_a_day(tuesday_messages):
    meters = meters_of_day(tuesday_messages, TUESDAY)
    decreases = [
        (key, before["energy_kwh_total"], after["energy_kwh_total"])
        for key, series in meters.items()
        for before, after in itertools.pairwise(series)
        if after["energy_kwh_total"] < before["energy_kwh_total"]
    ]

    assert len(meters) == 26
    assert decreases == []


def test_energy_counter_increase_matches_power_integral(tuesday_messages):
    for key, series in meters_of_day(tuesday_messages, TUESDAY).items():
        integral_kwh = sum(
            (before["power_w"] + after["power_w"]) / 2 * (after["ts"] - before["ts"]) / 3_600_000_000
            for before, after in itertools.pairwise(series)
        )
        increase_kwh = series[-1]["energy_kwh_total"] - series[0]["energy_kwh_total"]

        assert increase_kwh == pytest.approx(integral_kwh, rel=0.01), key


def test_energy_power_higher_by_day_than_at_night(tuesday_messages):
    readings = on_local_date(tuesday_messages, Stream.ENERGY, TUESDAY)
    night_w = mean(payload["power_w"] for payload in between(readings, TUESDAY, (1, 0), (4, 0)))
    day_w = mean(payload["power_w"] for payload in between(readings, TUESDAY, (9, 0), (11, 0)))

    assert night_w < 1_000
    assert day_w > 2 * night_w


def test_energy_current_consistent_with_power(tuesday_messages):
    mismatches = []
    for payload in of_stream(tuesday_messages, Stream.ENERGY):
        computed_power_w = payload["voltage_v"] * payload["current_a"] * payload["power_factor"]
        if abs(computed_power_w - payload["power_w"]) > 0.01 * payload["power_w"] + 1:
            mismatches.append(payload)

    assert mismatches == []


def test_energy_voltage_and_frequency_within_grid_range(tuesday_messages):
    readings = of_stream(tuesday_messages, Stream.ENERGY)

    assert all(220.0 <= payload["voltage_v"] <= 235.0 for payload in readings)
    assert all(49.8 <= payload["frequency_hz"] <= 50.2 for payload in readings)


# Attendance


def punches_on(samples: list[Sample], day: date, punch: str) -> list[dict]:
    return [payload for payload in on_local_date(samples, Stream.ATTENDANCE, day) if payload["punch"] == punch]


def test_attendance_none_on_weekend(saturday_messages):
    punches = on_local_date(saturday_messages, Stream.ATTENDANCE, SATURDAY)

    assert punches == []


@pytest.mark.parametrize("day", [SATURDAY, SATURDAY + timedelta(days=1)], ids=["saturday", "sunday"])
def test_attendance_terminal_plans_nothing_on_weekend(day):
    roster = build_roster(seed=1, opd="setda", employees=140)
    terminal = AttendanceTerminal(DeviceKey(1, "setda", "gw-01", "absen-01"), roster, HOURS)

    assert terminal.punches_on(day) == []


def test_attendance_nip_format(catalogue):
    for opd in catalogue.opds:
        for employee in build_roster(seed=1, opd=opd.id, employees=opd.employees):
            nip = employee.nip
            birth = datetime.strptime(nip[:8], "%Y%m%d").date()
            appointed_year, appointed_month = int(nip[8:12]), int(nip[12:14])

            assert len(nip) == 18, nip
            assert nip.isdigit(), nip
            assert appointed_year >= birth.year + 18, nip
            assert 1 <= appointed_month <= 12, nip
            assert nip[14] in "12", nip
            assert int(nip[15:]) >= 1, nip


@pytest.mark.parametrize(
    ("gender", "sequence"),
    [
        pytest.param(3, 1, id="gender digit 3"),
        pytest.param(1, 0, id="sequence 0"),
        pytest.param(2, 1000, id="sequence 1000"),
    ],
)
def test_format_nip_rejects_invalid_parts(gender, sequence):
    with pytest.raises(ValueError, match="is invalid"):
        format_nip(date(1980, 5, 17), 2005, 3, gender, sequence)


def test_format_nip_joins_parts():
    assert format_nip(date(1980, 5, 17), 2005, 3, 2, 7) == "198005172005032007"


def test_attendance_nip_unique_within_opd(catalogue):
    for opd in catalogue.opds:
        nips = [employee.nip for employee in build_roster(seed=1, opd=opd.id, employees=opd.employees)]

        assert len(set(nips)) == opd.employees, opd.id


def test_attendance_check_ins_mostly_0645_to_0815(tuesday_messages):
    """No check-in is earlier than 06:45 WIB, and at least 85 % are by 08:15."""
    check_ins = punches_on(tuesday_messages, TUESDAY, "in")
    on_time = between(check_ins, TUESDAY, (6, 45), (8, 16))
    too_early = between(check_ins, TUESDAY, (0, 0), (6, 45))

    assert too_early == []
    assert len(on_time) >= 0.85 * len(check_ins)


def test_attendance_some_employees_absent_or_late(catalogue, tuesday_messages):
    check_ins = punches_on(tuesday_messages, TUESDAY, "in")
    late = between(check_ins, TUESDAY, (8, 16), (12, 0))
    employees = sum(opd.employees for opd in catalogue.opds)

    assert 0 < len(late) < 0.15 * len(check_ins)
    assert 0.85 * employees < len(check_ins) < employees


def test_attendance_check_outs_between_closing_and_1730(tuesday_messages):
    check_outs = punches_on(tuesday_messages, TUESDAY, "out")
    in_window = between(check_outs, TUESDAY, (16, 0), (17, 31))

    assert check_outs
    assert len(in_window) == len(check_outs)


def test_attendance_mostly_fingerprint(tuesday_messages):
    methods = Counter(payload["verify"] for payload in of_stream(tuesday_messages, Stream.ATTENDANCE))

    assert methods["fingerprint"] > 0.75 * sum(methods.values())
    assert methods["rfid"] + methods["face"] > 0


def test_attendance_punches_fall_on_their_local_date():
    roster = build_roster(seed=1, opd="setda", employees=140)
    terminal = AttendanceTerminal(DeviceKey(1, "setda", "gw-01", "absen-01"), roster, HOURS)
    punches = terminal.punches_on(TUESDAY)
    utc_dates = {datetime.fromtimestamp(punch.ts_ms / 1000, UTC).date() for punch in punches}

    assert {HOURS.local_date(punch.ts_ms) for punch in punches} == {TUESDAY}
    assert TUESDAY - timedelta(days=1) in utc_dates


def test_attendance_check_ins_follow_zone_across_dst():
    """Europe/Madrid moves to summer time on Sunday 2025-03-30, and Monday check-ins still start at 06:45."""
    madrid = OfficeHours("Europe/Madrid")
    roster = build_roster(seed=1, opd="setda", employees=140)
    terminal = AttendanceTerminal(DeviceKey(1, "setda", "gw-01", "absen-01"), roster, madrid)
    monday = date(2025, 3, 31)
    check_ins = [punch for punch in terminal.punches_on(monday) if punch.punch == "in"]
    local_times = [madrid.local_datetime(punch.ts_ms).time() for punch in check_ins]

    assert min(local_times) >= clock_time(6, 45)
    assert madrid.to_ms(monday, clock_time(7, 30)) == round(datetime(2025, 3, 31, 5, 30, tzinfo=UTC).timestamp() * 1000)


# Pacing, clock and settings


class FakeTime:
    def __init__(self) -> None:
        self.now_s = 0.0

    def monotonic(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.now_s += seconds


def test_token_bucket_limits_rate():
    fake = FakeTime()
    bucket = TokenBucket(100.0, monotonic=fake.monotonic, sleep=fake.sleep)
    for _ in range(1000):
        bucket.acquire()

    assert fake.now_s == pytest.approx(10.0, abs=0.05)


def test_token_bucket_rejects_zero_rate():
    with pytest.raises(ValueError, match="rate 0"):
        TokenBucket(0)


@pytest.mark.parametrize(
    ("text", "expected_utc"),
    [
        pytest.param("2025-01-14T07:00", datetime(2025, 1, 14, 0, 0, tzinfo=UTC), id="local time in WIB"),
        pytest.param("2025-01-14T07:00Z", datetime(2025, 1, 14, 7, 0, tzinfo=UTC), id="UTC"),
    ],
)
def test_parse_start_reads_zone(text, expected_utc):
    assert parse_start(text, WIB) == round(expected_utc.timestamp() * 1000)


def test_parse_start_rejects_invalid_text():
    with pytest.raises(ValueError, match="not ISO 8601"):
        parse_start("next tuesday", WIB)


@pytest.fixture
def clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("SMARTOFFICE_"):
            monkeypatch.delenv(name)


def test_settings_reject_password_without_username(clean_environment):
    with pytest.raises(ValidationError, match="SMARTOFFICE_MQTT_USERNAME is not"):
        SimSettings(mqtt_password="s3cret-node-pass")


def test_settings_reject_placeholder_password(clean_environment):
    with pytest.raises(ValidationError, match="placeholder"):
        SimSettings(mqtt_username="sim", mqtt_password="changeme")


# Runner with a recording publisher


class RecordingPublisher:
    """Stands in for ``Publisher``: records what would be published."""

    def __init__(self) -> None:
        self.messages = []
        self.wait_flags = []

    def publish(self, message, wait_for_queue, stop=None) -> bool:
        self.messages.append(message)
        self.wait_flags.append(wait_for_queue)
        return True


def test_run_live_backfills_history_then_waits(catalogue):
    regency = build_regency(catalogue, seed=1, opd_ids=["dinsos"])
    clock = WallClock()
    started_ms = clock.now_ms()
    timeline = Timeline(regency, started_ms - 120_000, interval_s=1.0)
    publisher = RecordingPublisher()
    progress = ProgressLog(publisher, WIB)
    history = 120 * sum(len(node.sensors) for node in regency.nodes)

    run_live(timeline, publisher, threading.Event(), progress, clock, count=history + 10, backfill_rate_per_s=50_000)
    finished_ms = clock.now_ms()
    live = publisher.messages[history:]

    assert all(message.ts_ms < started_ms for message in publisher.messages[: history - 10])
    assert all(message.ts_ms <= finished_ms for message in live)
    assert publisher.wait_flags[: history - 10] == [True] * (history - 10)
    assert publisher.wait_flags[-1] is False


def test_run_load_stops_after_count(catalogue):
    regency = build_regency(catalogue, seed=1, opd_ids=["dinsos"])
    publisher = RecordingPublisher()
    progress = ProgressLog(publisher, WIB)

    sent = run_load(Timeline(regency, wib_ms(TUESDAY, 7), 10), publisher, threading.Event(), 1e6, 250, progress)

    assert sent == 250
    assert len(publisher.messages) == 250


# Integration with the real broker


def write_catalogue(folder: Path, opd_ids: list[str], employees: int = 30) -> Path:
    """Write a catalogue of OPDs like the real ones, under ids unique to the test."""
    opds = []
    for opd_id in opd_ids:
        opds.append(
            {
                "id": opd_id,
                "name": f"Dinas Uji {opd_id}",
                "employees": employees,
                "rooms": [{"id": room, "name": room} for room in ("ruang-kepala", "ruang-rapat", "ruang-staf")],
                "nodes": [
                    {
                        "id": "gw-01",
                        "devices": [
                            {"id": "absen-01", "kind": "attendance_terminal"},
                            {"id": "meter-01", "kind": "energy_meter", "circuit": "panel-utama"},
                            {"id": "sensor-ruang-kepala", "kind": "room_sensor", "room": "ruang-kepala"},
                            {"id": "sensor-ruang-rapat", "kind": "room_sensor", "room": "ruang-rapat"},
                        ],
                    },
                    {
                        "id": "gw-02",
                        "devices": [
                            {"id": "meter-02", "kind": "energy_meter", "circuit": "panel-lantai-2"},
                            {"id": "sensor-ruang-staf", "kind": "room_sensor", "room": "ruang-staf"},
                        ],
                    },
                ],
            }
        )
    document = {"regency": {"id": "uji", "name": "Kabupaten Uji", "timezone": "Asia/Jakarta"}, "opds": opds}
    path = folder / "catalogue.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


class Recorder:
    """A paho subscriber that stores every message it receives."""

    def __init__(self, host: str, port: int, topic_filter: str) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-rec-" + uuid.uuid4().hex[:8])
        self.client.on_connect = lambda client, *_: client.subscribe(topic_filter, qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = lambda client, userdata, message: self.messages.append(message)
        self.client.connect(host, port)
        self.client.loop_start()
        assert self._subscribed.wait(5), f"no SUBACK for {topic_filter} within 5 s"

    def wait_for(self, predicate, timeout_s: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate(list(self.messages)):
                return True
            time.sleep(0.02)
        return predicate(list(self.messages))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _topics_of(messages, opd_ids: list[str]) -> set[str]:
    return {message.topic for message in messages if message.topic.split("/")[2] in opd_ids}


def retained_statuses(mosquitto, opd_ids: list[str], expected_nodes: int, state: str) -> dict[str, bytes]:
    """Read the retained status of every node of ``opd_ids``, waiting until all are in ``state``."""
    deadline = time.monotonic() + 5.0
    while True:
        recorder = Recorder(mosquitto.host, mosquitto.port, "smartoffice/v1/+/+/status")
        recorder.wait_for(lambda messages: len(_topics_of(messages, opd_ids)) >= expected_nodes, 1.0)
        recorder.close()
        statuses = {m.topic: m.payload for m in recorder.messages if m.retain and m.topic.split("/")[2] in opd_ids}
        states = {json.loads(payload)["state"] for payload in statuses.values()}
        if (len(statuses) == expected_nodes and states == {state}) or time.monotonic() > deadline:
            return statuses
        time.sleep(0.1)


def clear_retained(mosquitto, topics) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-clear-" + uuid.uuid4().hex[:8])
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    for topic in topics:
        client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


@dataclass
class LoadRun:
    opd_ids: list[str]
    expected: list[tuple[str, bytes]]
    received: list[tuple[str, bytes]]
    sent: int
    elapsed_s: float
    rate_per_s: float
    statuses_while_running: dict[str, bytes]
    statuses_after_stop: dict[str, bytes]
    unacknowledged: int


@pytest.fixture(scope="module")
def load_run(mosquitto, tmp_path_factory) -> LoadRun:
    """Run the publisher in load mode for 500 messages of three OPDs, then stop it."""
    prefix = "t" + uuid.uuid4().hex[:8]
    opd_ids = [f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"]
    catalogue = load_catalogue(write_catalogue(tmp_path_factory.mktemp("sim-catalogue"), opd_ids))
    settings = SimSettings(mqtt_host=mosquitto.host, mqtt_port=mosquitto.port, sim_shutdown_timeout_s=5)
    start_ms = wib_ms(TUESDAY, 7)
    count, rate_per_s = 500, 2_000.0

    expected_timeline = Timeline(build_regency(catalogue, seed=7), start_ms, 60)
    expected = [(message.topic, message.payload) for message in itertools.islice(expected_timeline, count)]

    def is_telemetry_of_test(message) -> bool:
        return message.topic.split("/")[2] in opd_ids and not message.topic.endswith("/status")

    regency = build_regency(catalogue, seed=7)
    status_topics = [build_topic(node.opd, node.node, Stream.STATUS) for node in regency.nodes]
    recorder = Recorder(mosquitto.host, mosquitto.port, "smartoffice/v1/#")
    publisher = Publisher(regency.nodes, settings)
    try:
        publisher.start()
        try:
            assert publisher.wait_connected(5.0) == len(regency.nodes), "not every node connected within 5 s"
            progress = ProgressLog(publisher, WIB)
            started = time.monotonic()
            timeline = Timeline(regency, start_ms, 60)
            sent = run_load(timeline, publisher, threading.Event(), rate_per_s, count, progress)
            elapsed_s = time.monotonic() - started

            recorder.wait_for(lambda messages: sum(1 for m in messages if is_telemetry_of_test(m)) >= count)
            statuses_while_running = retained_statuses(mosquitto, opd_ids, len(regency.nodes), "online")
        finally:
            unacknowledged = publisher.close(settings.sim_shutdown_timeout_s)
        statuses_after_stop = retained_statuses(mosquitto, opd_ids, len(regency.nodes), "offline")
    finally:
        recorder.close()
        clear_retained(mosquitto, status_topics)

    received = [(m.topic, m.payload) for m in recorder.messages if is_telemetry_of_test(m)]
    return LoadRun(
        opd_ids, expected, received, sent, elapsed_s, rate_per_s, statuses_while_running, statuses_after_stop,
        unacknowledged,
    )


@pytest.mark.integration
def test_load_mode_delivers_every_message(load_run):
    assert load_run.sent == 500
    assert sorted(load_run.received) == sorted(load_run.expected)


@pytest.mark.integration
def test_load_mode_topics_follow_contract(load_run):
    streams = Counter(parse_topic(topic).stream for topic, _ in load_run.received)

    assert set(streams) == {Stream.ROOM, Stream.ENERGY, Stream.ATTENDANCE}


@pytest.mark.integration
def test_load_mode_respects_rate(load_run):
    # The bucket starts with one token and stores at most 20 ms worth, so 500 messages at 2,000 msg/s
    # need at least (500 - 40) / 2000 = 0.23 s.
    assert load_run.elapsed_s >= (load_run.sent - 0.02 * load_run.rate_per_s) / load_run.rate_per_s


@pytest.mark.integration
def test_load_mode_status_retained_online(load_run):
    payloads = [json.loads(payload) for payload in load_run.statuses_while_running.values()]

    assert len(payloads) == 6
    assert [NodeStatus.model_validate(payload).state for payload in payloads] == ["online"] * 6


@pytest.mark.integration
def test_shutdown_leaves_offline_will(load_run):
    """Shutdown sends DISCONNECT with reason 0x04, so the broker publishes each node's retained will."""
    assert load_run.unacknowledged == 0
    assert sorted(load_run.statuses_after_stop.values()) == [OFFLINE_PAYLOAD] * 6


@pytest.mark.integration
def test_publisher_reconnects_after_broker_restart(tmp_path, caplog):
    """Messages published while the broker is down are delivered after the reconnect."""
    broker = MosquittoServer(tmp_path / "broker")
    broker.start()
    catalogue = load_catalogue(write_catalogue(tmp_path, ["t" + uuid.uuid4().hex[:8]]))
    regency = build_regency(catalogue, seed=1)
    settings = SimSettings(mqtt_host=broker.host, mqtt_port=broker.port, sim_shutdown_timeout_s=5)
    publisher = Publisher(regency.nodes, settings)
    timeline = Timeline(regency, wib_ms(TUESDAY, 9), 60)
    caplog.set_level("INFO", logger="firmware_sim")
    try:
        publisher.start()
        connected_before = publisher.wait_connected(5.0)
        for message in itertools.islice(timeline, 50):
            publisher.publish(message, wait_for_queue=True)

        broker.stop()
        clients = publisher.clients.values()
        deadline = time.monotonic() + 5
        while any(client.connected.is_set() for client in clients) and time.monotonic() < deadline:
            time.sleep(0.02)
        queued = [publisher.publish(message, wait_for_queue=False) for message in itertools.islice(timeline, 50)]
        broker.start()

        connected_after = publisher.wait_connected(10.0)
        deadline = time.monotonic() + 10
        while publisher.totals().in_flight and time.monotonic() < deadline:
            time.sleep(0.02)
        totals = publisher.totals()
    finally:
        publisher.close(settings.sim_shutdown_timeout_s)
        broker.stop()

    assert connected_before == 2
    assert queued == [True] * 50
    assert connected_after == 2
    assert totals.in_flight == 0
    assert totals.acknowledged >= 100 + 2 * 2
    assert "reconnected to" in caplog.text


@pytest.mark.integration
def test_cli_sigterm_exits_zero_and_goes_offline(mosquitto, tmp_path):
    opd_id = "t" + uuid.uuid4().hex[:8]
    environment = dict(os.environ)
    environment.update(
        SMARTOFFICE_MQTT_HOST=mosquitto.host,
        SMARTOFFICE_MQTT_PORT=str(mosquitto.port),
        SMARTOFFICE_CATALOGUE_FILE=str(write_catalogue(tmp_path, [opd_id])),
    )
    recorder = Recorder(mosquitto.host, mosquitto.port, f"smartoffice/v1/{opd_id}/#")
    command = [sys.executable, "-m", "firmware_sim", "--rate", "200", "--start", "2025-01-14T07:00"]
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=environment, stderr=subprocess.PIPE, text=True)
    try:
        started = recorder.wait_for(lambda messages: sum(1 for m in messages if m.topic.endswith("/room")) >= 20)
        process.send_signal(signal.SIGTERM)
        _, log = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    recorder.close()
    statuses = retained_statuses(mosquitto, [opd_id], 2, "offline")
    clear_retained(mosquitto, statuses)

    assert started, log
    assert process.returncode == 0, log
    assert "received SIGTERM" in log
    assert sorted(statuses.values()) == [OFFLINE_PAYLOAD] * 2
