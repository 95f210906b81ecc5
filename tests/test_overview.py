"""Overview API against real processes, and the worst-room choice as a pure function.

The integration test publishes to an OPD id of its own, which the catalogue does not list, so
its employees are 0 and its known devices are those that sent data. Times are relative to the
test's start; the energy windows are checked against values computed by hand below.
"""

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from api.config import DEFAULT_CATALOGUE
from api.overview import RoomReading, comfort_breaches, worst_room
from conftest import wait_until
from contract.catalogue import load_catalogue

ZONE = ZoneInfo("Asia/Jakarta")
MINUTE_MS = 60_000


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _messages(opd: str, now: datetime) -> list[tuple[str, str]]:
    """Build the readings, punches and statuses of one OPD; expected values are in the test."""
    now_ms = _ms(now)
    topic = f"smartoffice/v1/{opd}"
    messages = []

    def add(node: str, stream: str, payload: dict) -> None:
        messages.append((f"{topic}/{node}/{stream}", json.dumps(payload)))

    # Rooms: r1 breaks the CO2 limit by 0.2 of it, r2 the temperature limit by 3/27 = 0.11 and
    # the humidity limit by 10/70 = 0.14, r3 is fine, r4's sensor is 30 min old, so offline.
    add("gw-01", "room", {"device": "sensor-a", "ts": now_ms - MINUTE_MS, "room": "r1", "co2_ppm": 1200.0, "temperature_c": 25.0, "humidity_pct": 50.0})
    add("gw-01", "room", {"device": "sensor-b", "ts": now_ms - MINUTE_MS, "room": "r2", "co2_ppm": 500.0, "temperature_c": 30.0, "humidity_pct": 80.0})
    add("gw-01", "room", {"device": "sensor-c", "ts": now_ms - MINUTE_MS, "room": "r3", "co2_ppm": 600.0, "temperature_c": 25.0, "humidity_pct": 55.0})
    add("gw-02", "room", {"device": "sensor-old", "ts": now_ms - 30 * MINUTE_MS, "room": "r4", "co2_ppm": 5000.0})

    # Meter: 2.5 kWh today, and 4, 6 and 10 kWh on the same weekday 1, 2 and 3 weeks ago, so the
    # median is 6 over 3 weeks. Each pair of readings is 3 and 1 minutes before the same local time.
    for weeks, first_kwh, used_kwh in ((3, 900.0, 10.0), (2, 920.0, 6.0), (1, 940.0, 4.0), (0, 1000.0, 2.5)):
        cutoff_ms = _ms(now - timedelta(weeks=weeks))
        add("gw-01", "energy", {"device": "meter-01", "ts": cutoff_ms - 3 * MINUTE_MS, "energy_kwh_total": first_kwh})
        add("gw-01", "energy", {"device": "meter-01", "ts": cutoff_ms - MINUTE_MS, "energy_kwh_total": first_kwh + used_kwh})

    # Punches: 2 distinct employees today, one of them twice; one employee 2 days ago.
    add("gw-01", "attendance", {"device": "absen-01", "ts": now_ms - 2 * 86_400_000, "employee_id": "E3"})
    add("gw-01", "attendance", {"device": "absen-01", "ts": now_ms - 2 * MINUTE_MS, "employee_id": "E1"})
    add("gw-01", "attendance", {"device": "absen-01", "ts": now_ms - MINUTE_MS, "employee_id": "E1"})
    add("gw-01", "attendance", {"device": "absen-01", "ts": now_ms - MINUTE_MS, "employee_id": "E2"})

    # Nodes: gw-01 online, gw-02 went offline after being online.
    add("gw-01", "status", {"state": "online", "ts": now_ms - MINUTE_MS})
    add("gw-02", "status", {"state": "online", "ts": now_ms - 40 * MINUTE_MS})
    add("gw-02", "status", {"state": "offline", "ts": now_ms - 20 * MINUTE_MS})
    return messages


@pytest.mark.integration
def test_overview_fields_of_published_opd(pipeline, unique_id):
    """Every field of an OPD that only sends data matches the hand-computed values."""
    now = datetime.now(ZONE)
    if now - timedelta(minutes=4) < now.replace(hour=0, minute=0, second=0, microsecond=0):
        pytest.skip("the readings of 'today' would start before local midnight")
    messages = _messages(unique_id, now)
    pipeline.publish(messages)

    def overview_of_opd():
        response = pipeline.get("/api/v1/overview")
        entry = next((opd for opd in response.json()["opds"] if opd["opd"] == unique_id), None)
        if entry and entry["attendance"]["punched"] == 2 and entry["energy"]["usual_weeks"] == 3 and entry["devices"]["offline_nodes"]:
            return entry
        return None

    entry = wait_until(overview_of_opd)
    assert entry is not None, f"overview never showed all published points of {unique_id}"

    assert entry["in_catalogue"] is False
    assert entry["devices"]["known"] == 6
    assert entry["devices"]["online"] == 5
    assert entry["devices"]["offline"] == 1
    assert entry["devices"]["offline_nodes"] == ["gw-02"]

    assert entry["attendance"]["punched"] == 2
    assert entry["attendance"]["employees"] == 0
    assert entry["attendance"]["rate"] is None

    assert entry["energy"]["today_kwh"] == pytest.approx(2.5)
    assert entry["energy"]["usual_kwh"] == pytest.approx(6.0)
    assert entry["energy"]["usual_weeks"] == 3

    # The monitor may open the gw-02 node alert at any moment, so compare with the alert list.
    def open_alerts_match() -> bool:
        listed = pipeline.get("/api/v1/alerts", opd=unique_id).json()["alerts"]
        counted = next(item for item in pipeline.get("/api/v1/overview").json()["opds"] if item["opd"] == unique_id)
        return counted["open_alerts"] == len(listed)

    assert isinstance(entry["open_alerts"], int)
    assert wait_until(open_alerts_match, timeout_s=10)

    worst = entry["worst_room"]
    assert worst["room"] == "r1"
    assert worst["name"] is None
    assert worst["device"] == "sensor-a"
    assert worst["co2_ppm"] == 1200.0
    assert worst["breaches"] == [{"field": "co2_ppm", "limit": "> 1000", "value": 1200.0}]


@pytest.mark.integration
def test_overview_lists_catalogue_opds(pipeline):
    """Catalogue OPDs without data appear with their catalogue counts and nothing measured."""
    catalogue = load_catalogue(DEFAULT_CATALOGUE)
    response = pipeline.get("/api/v1/overview")
    assert response.status_code == 200
    body = response.json()
    assert body["device_offline_s"] == 900
    by_id = {entry["opd"]: entry for entry in body["opds"]}

    for opd in catalogue.opds:
        entry = by_id[opd.id]
        assert entry["in_catalogue"] is True
        assert entry["devices"]["known"] == sum(len(node.devices) for node in opd.nodes)
        assert entry["devices"]["online"] == 0
        assert entry["attendance"]["employees"] == opd.employees
        assert entry["attendance"]["punched"] == 0
        assert entry["energy"]["today_kwh"] is None
        assert entry["worst_room"] is None


NOW_MS = 1_796_000_000_000


def _reading(room: str, age_s: int = 60, **values: float) -> RoomReading:
    return RoomReading(room=room, node="gw-01", device=f"sensor-{room}", ts=NOW_MS - age_s * 1000, **values)


# (case id, readings, expected room or None)
WORST_ROOM_CASES = [
    ("all-fine", [_reading("a", co2_ppm=800.0, temperature_c=25.0, humidity_pct=60.0)], None),
    ("no-readings", [], None),
    ("co2-beats-humidity", [_reading("a", humidity_pct=80.0), _reading("b", co2_ppm=1200.0)], "b"),
    ("cold-beats-co2", [_reading("a", co2_ppm=1100.0), _reading("b", temperature_c=20.0)], "b"),
    ("stale-reading-ignored", [_reading("a", age_s=1000, co2_ppm=5000.0), _reading("b", co2_ppm=1050.0)], "b"),
    ("newest-reading-of-room-counts", [_reading("a", age_s=120, co2_ppm=3000.0), _reading("a", co2_ppm=500.0)], None),
    ("tie-goes-to-first-id", [_reading("b", co2_ppm=1200.0), _reading("a", co2_ppm=1200.0)], "a"),
    ("limit-itself-is-fine", [_reading("a", co2_ppm=1000.0, temperature_c=27.0, humidity_pct=70.0)], None),
]


@pytest.mark.parametrize(("readings", "expected"), [case[1:] for case in WORST_ROOM_CASES], ids=[case[0] for case in WORST_ROOM_CASES])
def test_worst_room_choice(readings, expected):
    """The room with the largest relative excess over a comfort limit wins."""
    chosen = worst_room(readings, NOW_MS, max_age_ms=900_000)
    assert (chosen.reading.room if chosen else None) == expected


def test_comfort_breaches_lists_each_limit():
    """A reading that breaks three limits lists all three with their values."""
    breaches = comfort_breaches(_reading("a", co2_ppm=1500.0, temperature_c=28.0, humidity_pct=77.0))
    assert [(b.field, b.limit, b.value) for b in breaches] == [
        ("co2_ppm", "> 1000", 1500.0),
        ("temperature_c", "> 27", 28.0),
        ("humidity_pct", "> 70", 77.0),
    ]
    assert breaches[0].excess == pytest.approx(0.5)
    assert breaches[1].excess == pytest.approx(1 / 27)
    assert breaches[2].excess == pytest.approx(0.1)


def test_silent_terminal_counts_online_while_node_up():
    from api.overview import count_devices

    terminal = ("gw-01", "absen-01")
    meter = ("gw-01", "meter-01")
    counts = count_devices({terminal, meter}, {meter: NOW_MS - 60_000}, {"gw-01": "online"}, NOW_MS, 900_000, {terminal})
    assert (counts.known, counts.online, counts.offline) == (2, 2, 0)

    down = count_devices({terminal, meter}, {meter: NOW_MS - 60_000}, {"gw-01": "offline"}, NOW_MS, 900_000, {terminal})
    assert (down.online, down.offline) == (1, 1)


def test_worst_room_only_in_office_hours():
    """With comfort limited to office hours, the overview judges no room on a Saturday night."""
    from datetime import datetime

    from api.config import DEFAULT_ALERT_RULES, DEFAULT_OFFICE_HOURS
    from api.monitor.rules import load_alert_rules
    from api.office_hours import load_office_hours
    from api.routes.overview import _comfort_applies

    class Context:
        office_hours = load_office_hours(DEFAULT_OFFICE_HOURS)

    rules = load_alert_rules(DEFAULT_ALERT_RULES)
    assert _comfort_applies(Context, rules, "dinkes", datetime(2026, 12, 3, 10, 0, tzinfo=ZONE)) is True
    assert _comfort_applies(Context, rules, "dinkes", datetime(2026, 12, 5, 21, 0, tzinfo=ZONE)) is False
    any_hour = rules.model_copy(update={"office_hours_only": False})
    assert _comfort_applies(Context, any_hour, "dinkes", datetime(2026, 12, 5, 21, 0, tzinfo=ZONE)) is True
