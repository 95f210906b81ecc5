"""Live view: readings published over MQTT reach Server-Sent Events clients of the API.

The integration tests open ``/api/v1/live`` on the ``pipeline`` API process and publish to
the session's Mosquitto. Each stream is opened in a ``with`` block, so the API detects the
disconnect when a test ends. The unit tests drive ``LiveHub`` and ``LiveSubscriber`` directly.
"""

import asyncio
import json
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import httpx
import pytest

from api.config import ApiSettings
from api.live import LiveEvent, LiveHub, LiveSubscriber
from conftest import pseudonym_of, wait_until
from devstack import free_port

WIB = timezone(timedelta(hours=7))
READ_TIMEOUT_S = 5.0
"""Maximum wait for one line. It is shorter than the 15 s keep-alive, so a missing event fails the test."""

OPD = "live-test-opd"
OTHER_OPD = "live-other-opd"


def ms(year, month, day, hour=0, minute=0) -> int:
    """Epoch milliseconds of a WIB wall-clock time."""
    return int(datetime(year, month, day, hour, minute, tzinfo=WIB).timestamp() * 1000)


def topic(opd: str, stream: str, node: str = "gw-01") -> str:
    return f"smartoffice/v1/{opd}/{node}/{stream}"


def room_message(device: str, ts: int = ms(2026, 12, 1, 8, 10), **fields) -> str:
    return json.dumps({"device": device, "ts": ts, "room": "ruang-rapat", "temperature_c": 24.0, **fields})


@pytest.fixture(scope="module")
def live(pipeline):
    """The pipeline, once the API's live-view subscription is in place on the broker."""
    subscribed = wait_until(lambda: "live view subscribed to" in pipeline.api.log_tail(2000), timeout_s=20)
    assert subscribed, pipeline.api.log_tail(30)
    return pipeline


@contextmanager
def live_stream(pipeline, **params):
    """Open the live stream; yield the response and its line iterator, and close both on exit.

    The first block (``retry: 5000``) is read before yielding: the API registers the client
    before it sends that line, so messages published afterwards reach this client.
    """
    timeout = httpx.Timeout(10.0, read=READ_TIMEOUT_S)
    with httpx.Client(base_url=pipeline.api_url, headers=pipeline.headers, timeout=timeout) as client:
        with client.stream("GET", "/api/v1/live", params=params) as response:
            lines = response.iter_lines()
            if response.status_code == 200:
                first = read_block(lines)
                assert first == {"retry": "5000"}
            yield response, lines


def read_block(lines) -> dict[str, str]:
    """Read one SSE block up to its blank line; comment lines are skipped."""
    block: dict[str, str] = {}
    for line in lines:
        if line == "":
            if block:
                return block
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        block[name] = value.removeprefix(" ")
    raise AssertionError(f"stream ended inside a block: {block}")


def next_reading(lines) -> dict:
    """Return the data of the next ``reading`` event, failing on any other event."""
    block = read_block(lines)
    assert block.get("event") == "reading", block
    return {"id": int(block["id"]), **json.loads(block["data"])}


@pytest.mark.integration
def test_live_forwards_room_reading(live):
    with live_stream(live, opd=OPD) as (response, lines):
        live.publish([(topic(OPD, "room"), room_message("sensor-live", co2_ppm=650))])
        event = next_reading(lines)

    assert response.headers["content-type"].startswith("text/event-stream")
    assert event["opd"] == OPD
    assert event["node"] == "gw-01"
    assert event["stream"] == "room"
    assert event["device"] == "sensor-live"
    assert event["ts"] == ms(2026, 12, 1, 8, 10)
    assert event["time"] == "2026-12-01T08:10:00+07:00"
    assert event["room"] == "ruang-rapat"
    assert event["temperature_c"] == 24.0
    assert event["co2_ppm"] == 650.0
    assert event["retained"] is False


@pytest.mark.integration
def test_live_event_ids_increase(live):
    with live_stream(live, opd=OPD) as (_, lines):
        live.publish([(topic(OPD, "room"), room_message("sensor-a")), (topic(OPD, "room"), room_message("sensor-b"))])
        first = next_reading(lines)
        second = next_reading(lines)

    assert first["device"] == "sensor-a"
    assert second["id"] > first["id"]


@pytest.mark.integration
def test_live_opd_filter_excludes_other_opd(live):
    with live_stream(live, opd=OPD) as (_, lines):
        live.publish([(topic(OTHER_OPD, "room"), room_message("sensor-other"))])
        live.publish([(topic(OPD, "room"), room_message("sensor-mine"))])
        event = next_reading(lines)

    assert event["opd"] == OPD
    assert event["device"] == "sensor-mine"


@pytest.mark.integration
def test_live_opd_filter_accepts_repeated_opds(live):
    with live_stream(live, opd=[OPD, OTHER_OPD]) as (_, lines):
        live.publish([(topic(OTHER_OPD, "room"), room_message("sensor-other"))])
        live.publish([(topic(OPD, "room"), room_message("sensor-mine"))])
        devices = [next_reading(lines)["device"], next_reading(lines)["device"]]

    assert devices == ["sensor-other", "sensor-mine"]


@pytest.mark.integration
def test_live_stream_filter_excludes_other_streams(live):
    energy = json.dumps({"device": "meter-01", "ts": ms(2026, 12, 1, 8, 10), "power_w": 1500.0})
    with live_stream(live, opd=OPD, stream="energy") as (_, lines):
        live.publish([(topic(OPD, "room"), room_message("sensor-a")), (topic(OPD, "energy"), energy)])
        event = next_reading(lines)

    assert event["stream"] == "energy"
    assert event["power_w"] == 1500.0


@pytest.mark.integration
def test_live_invalid_payload_not_forwarded(live):
    invalid = json.dumps({"device": "sensor-bad", "ts": ms(2026, 12, 1, 8, 10), "room": "ruang-rapat", "temperature_c": "hot"})
    with live_stream(live, opd=OPD) as (_, lines):
        live.publish([(topic(OPD, "room"), invalid), (topic(OPD, "room"), room_message("sensor-good"))])
        event = next_reading(lines)

    assert event["device"] == "sensor-good"


@pytest.mark.integration
def test_live_attendance_carries_employee_id(live):
    punch = json.dumps({"device": "absen-01", "ts": ms(2026, 12, 1, 7, 25), "employee_id": "198706152010011002", "punch": "in"})
    with live_stream(live, opd=OPD, stream="attendance") as (_, lines):
        live.publish([(topic(OPD, "attendance"), punch)])
        event = next_reading(lines)

    assert event["employee_id"] == pseudonym_of(OPD, "198706152010011002")
    assert event["punch"] == "in"


@pytest.mark.integration
def test_live_disconnect_is_logged(live):
    before = live.api.log_tail(2000).count("live client disconnected")
    with live_stream(live, opd=OPD):
        pass

    after = wait_until(lambda: live.api.log_tail(2000).count("live client disconnected") > before, timeout_s=10)
    assert after, live.api.log_tail(20)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("params", "parameter"),
    [({"stream": "weather"}, "stream"), ({"opd": "Dinkes"}, "opd"), ({"opd": [OPD, "din kes"]}, "opd")],
    ids=["unknown-stream", "uppercase-opd", "second-opd-with-space"],
)
def test_live_bad_parameter_is_422(live, params, parameter):
    with live_stream(live, **params) as (response, _):
        response.read()

    assert response.status_code == 422
    assert response.json()["parameter"] == parameter
    assert parameter in response.json()["detail"]


def make_event(hub: LiveHub, opd: str = OPD, stream: str = "room") -> LiveEvent:
    return LiveEvent(event_id=hub.next_id(), opd=opd, stream=stream, data="{}")


async def test_hub_full_queue_drops_oldest_events():
    hub = LiveHub(queue_size=3)
    client = hub.connect()
    for _ in range(5):
        hub.publish(make_event(hub))

    report = await client.next()
    remaining = [(await client.next()).event_id for _ in range(3)]

    assert report.count == 2
    assert remaining == [3, 4, 5]
    assert client.dropped == 2
    assert client.queue.qsize() == 0


async def test_hub_slow_client_does_not_affect_others():
    hub = LiveHub(queue_size=3)
    slow = hub.connect()
    fast = hub.connect()
    received = []
    for _ in range(5):
        hub.publish(make_event(hub))
        received.append((await fast.next()).event_id)

    assert received == [1, 2, 3, 4, 5]
    assert fast.dropped == 0
    assert slow.dropped == 2


def test_hub_filters_by_opd_and_stream():
    hub = LiveHub(queue_size=10)
    client = hub.connect(opds=[OPD], streams=["energy"])
    hub.publish(make_event(hub, opd=OTHER_OPD, stream="energy"))
    hub.publish(make_event(hub, opd=OPD, stream="room"))
    hub.publish(make_event(hub, opd=OPD, stream="energy"))

    assert client.queue.qsize() == 1
    assert client.queue.get_nowait().event_id == 3


def test_hub_disconnect_removes_client():
    hub = LiveHub(queue_size=10)
    client = hub.connect()
    hub.disconnect(client)
    hub.publish(make_event(hub))

    assert hub.clients == set()
    assert client.queue.qsize() == 0


@pytest.fixture
def subscriber() -> LiveSubscriber:
    return LiveSubscriber(ApiSettings(), LiveHub(queue_size=10), ZoneInfo("Asia/Jakarta"))


def test_subscriber_marks_retained_status(subscriber):
    status = json.dumps({"state": "online", "ts": ms(2026, 12, 1, 7, 0), "sw_version": "1.2.0"}).encode()
    event = subscriber.build_event(topic(OPD, "status"), status, retained=True)
    data = json.loads(event.data)

    assert data["retained"] is True
    assert data["state"] == "online"
    assert data["device"] is None
    assert data["time"] == "2026-12-01T07:00:00+07:00"


def test_subscriber_status_without_ts_uses_receive_time(subscriber):
    started_ms = int(datetime.now(timezone.utc).timestamp() * 1000)
    event = subscriber.build_event(topic(OPD, "status"), b'{"state": "offline"}', retained=False)

    assert json.loads(event.data)["ts"] >= started_ms


@pytest.mark.parametrize(
    ("message_topic", "payload"),
    [
        (topic(OPD, "room"), b'{"device": "sensor-a"}'),
        (topic(OPD, "room"), b"not json"),
        (topic(OPD, "config"), b'{"version": 1, "issued_ts": 1764547200000}'),
        ("smartoffice/v1/Bad OPD/gw-01/room", room_message("sensor-a").encode()),
    ],
    ids=["missing-ts", "not-json", "config-stream", "invalid-opd"],
)
def test_subscriber_rejects_invalid_message(subscriber, message_topic, payload):
    assert subscriber.build_event(message_topic, payload, retained=False) is None
    assert subscriber.rejected == 1


async def test_subscriber_retries_when_broker_down(caplog):
    settings = ApiSettings(mqtt_port=free_port())
    subscriber = LiveSubscriber(settings, LiveHub(queue_size=10), ZoneInfo("Asia/Jakarta"))
    task = asyncio.create_task(subscriber.run())
    try:
        retried = await asyncio.wait_for(_wait_for_failures(subscriber, 2), timeout=10)
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task

    assert retried
    assert "reconnecting in 1 s" in caplog.text


async def _wait_for_failures(subscriber: LiveSubscriber, count: int) -> bool:
    while subscriber.failures < count:
        await asyncio.sleep(0.05)
    return True
