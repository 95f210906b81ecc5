"""Dead-letter replay against a real Mosquitto 2 with dynamic security: only an accepted PUBLISH deletes an entry.

The broker drops a PUBLISH its access rules deny. Under MQTT 5 its PUBACK then carries reason
code 0x87, and 0x10 when no session subscribes to the topic, so the replay keeps those
entries. An absent point is proven by a marker: the marker is replayed after the denied
entries on the same topic, and once it is stored, the denied entries would have been stored
before it.
"""

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest

from contract import Stream, build_topic
from devstack import InfluxServer, ManagedProcess
from ingest.dead_letters import DeadLetter, DeadLetterStore
from ingest.replay import ReplayError, replay

from broker_helpers import SecureBroker, start_secure_broker
from conftest import REPO_ROOT, create_test_user, login, start_api, start_ingest, wait_until

pytestmark = pytest.mark.integration

NODE = "gw-01"


@dataclass
class SecuredPipeline:
    """A broker with dynamic security and an ingest service logged in as the ingest identity."""

    broker: SecureBroker
    influx: InfluxServer
    database: str
    ingest: ManagedProcess
    folder: Path

    def password_file(self, identity: str) -> Path:
        return write_password_file(self.folder, self.broker, identity)

    def login(self, identity: str) -> tuple[str, str]:
        credentials = getattr(self.broker.identities, identity)
        return credentials.username, credentials.password

    def stored_devices(self, opd: str) -> list[str]:
        """Return the device tag of every room point of ``opd`` in InfluxDB."""
        answer = self.influx.query(self.database, f"SELECT temperature_c, device FROM room WHERE opd = '{opd}'")
        series = answer["results"][0].get("series", [])
        if not series:
            return []
        device_column = series[0]["columns"].index("device")
        return [row[device_column] for row in series[0]["values"]]


def write_password_file(folder: Path, broker: SecureBroker, identity: str) -> Path:
    """Return a 0600 file whose only line is the password of ``identity`` (admin, ingest or api)."""
    path = folder / f"{identity}-password"
    if not path.exists():
        path.write_text(getattr(broker.identities, identity).password + "\n", encoding="utf-8")
        path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def secured(tmp_path_factory, influx) -> SecuredPipeline:
    folder = tmp_path_factory.mktemp("replay-acl")
    broker = start_secure_broker(folder / "broker")
    database = "replay_" + uuid.uuid4().hex[:8]
    influx.create_database(database)
    # The ingest reads its password from a file, as in docker-compose.yml.
    ingest = start_ingest(
        folder,
        broker.server,
        influx,
        database,
        "ingest-" + uuid.uuid4().hex[:8],
        mqtt_username=broker.identities.ingest.username,
        mqtt_password_file=str(write_password_file(folder, broker, "ingest")),
    )
    yield SecuredPipeline(broker, influx, database, ingest, folder)
    ingest.stop()
    broker.server.stop()


@pytest.fixture
def opd() -> str:
    """An OPD id of the test's own, so that its points are apart from other tests'."""
    return "t" + uuid.uuid4().hex[:10]


def room_letter(opd: str, device: str) -> DeadLetter:
    """Return a dead letter of a valid room reading, as if it had been rejected before a fix."""
    now_ms = int(time.time() * 1000)
    payload = {"device": device, "ts": now_ms, "room": "aula", "temperature_c": 26.5, "co2_ppm": 950}
    topic = build_topic(opd, NODE, Stream.ROOM)
    return DeadLetter(topic, json.dumps(payload).encode(), "invalid_value", "test", now_ms)


def status_letter(opd: str) -> DeadLetter:
    now_ms = int(time.time() * 1000)
    payload = json.dumps({"state": "online", "ts": now_ms}).encode()
    return DeadLetter(build_topic(opd, NODE, Stream.STATUS), payload, "invalid_value", "test", now_ms)


def open_store(path: Path, letters: list[DeadLetter]) -> tuple[DeadLetterStore, list[DeadLetter]]:
    """Return a store at ``path`` with ``letters`` added, and its entries with their ids."""
    store = DeadLetterStore(path)
    store.add(letters)
    return store, store.entries(limit=1000)


def stored_ids(store: DeadLetterStore) -> list[int]:
    return [entry.id for entry in store.entries(limit=1000)]


def test_replay_by_forbidden_login_keeps_entries(secured, opd, tmp_path):
    """The ingest identity may not publish, so the broker responds with 0x87 and both entries stay."""
    store, entries = open_store(tmp_path / "dl.sqlite3", [room_letter(opd, "denied-1"), room_letter(opd, "denied-2")])
    ids = [entry.id for entry in entries]

    result = replay(store, entries, secured.broker.server.host, secured.broker.port, *secured.login("ingest"))

    assert result.replayed == []
    assert sorted(result.failed) == ids
    for entry_id in ids:
        assert result.failed[entry_id].startswith("not authorized (0x87)"), result.failed[entry_id]
    assert stored_ids(store) == ids

    # The marker follows on the same topic, so once it is stored the denied points would be too.
    marker_store, markers = open_store(tmp_path / "marker.sqlite3", [room_letter(opd, "marker")])
    marker = replay(marker_store, markers, secured.broker.server.host, secured.broker.port, *secured.login("api"))
    assert marker.replayed == [markers[0].id], marker.failed
    assert wait_until(lambda: "marker" in secured.stored_devices(opd)), "the marker was not stored"
    assert secured.stored_devices(opd) == ["marker"]
    store.close()
    marker_store.close()


def test_replay_by_api_login_deletes_and_stores(secured, opd, tmp_path):
    store, entries = open_store(tmp_path / "dl.sqlite3", [room_letter(opd, "fixed-1"), room_letter(opd, "fixed-2")])

    result = replay(store, entries, secured.broker.server.host, secured.broker.port, *secured.login("api"))

    assert result.failed == {}
    assert result.replayed == [entry.id for entry in entries]
    assert stored_ids(store) == []
    stored = wait_until(lambda: sorted(secured.stored_devices(opd)) == ["fixed-1", "fixed-2"])
    assert stored, f"stored devices: {secured.stored_devices(opd)}"
    store.close()


def test_replay_keeps_stream_api_may_not_publish(secured, opd, tmp_path):
    """The API may replay telemetry but not a node's status, so only the room entry goes."""
    store, entries = open_store(tmp_path / "dl.sqlite3", [room_letter(opd, "room-1"), status_letter(opd)])
    room_entry, status_entry = entries

    result = replay(store, entries, secured.broker.server.host, secured.broker.port, *secured.login("api"))

    assert result.replayed == [room_entry.id]
    assert list(result.failed) == [status_entry.id]
    assert result.failed[status_entry.id].startswith("not authorized (0x87)"), result.failed[status_entry.id]
    assert stored_ids(store) == [status_entry.id]
    store.close()


def test_replay_without_subscriber_keeps_entries(opd, tmp_path):
    """With no session subscribed, the broker responds with 0x10 and drops the message, so the entry stays."""
    broker = start_secure_broker(tmp_path / "broker")
    try:
        store, entries = open_store(tmp_path / "dl.sqlite3", [room_letter(opd, "unheard")])
        api = broker.identities.api

        result = replay(store, entries, broker.server.host, broker.port, api.username, api.password)

        assert result.replayed == []
        assert result.failed[entries[0].id].startswith("no matching subscribers (0x10)"), result.failed
        assert stored_ids(store) == [entries[0].id]
        store.close()
    finally:
        broker.server.stop()


def open_persistent_session(port: int, username: str, password: str, client_id: str) -> tuple[mqtt.Client, list[bytes]]:
    """Connect an MQTT 3.1.1 client with clean_session false, as the ingest service does; return it and its payloads."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=False
    )
    client.username_pw_set(username, password)
    payloads: list[bytes] = []
    connected = threading.Event()
    client.on_connect = lambda client, userdata, flags, reason_code, properties: connected.set()
    client.on_message = lambda client, userdata, message: payloads.append(message.payload)
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert connected.wait(10), f"no CONNACK for {client_id}"
    return client, payloads


def close_session(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def test_replay_to_offline_session_deletes_entry(opd, tmp_path):
    """An offline persistent session still counts as a subscriber: the broker queues the message and responds 0x00."""
    broker = start_secure_broker(tmp_path / "broker")
    ingest = broker.identities.ingest
    client_id = "offline-ingest-" + uuid.uuid4().hex[:8]
    try:
        session, _ = open_persistent_session(broker.port, ingest.username, ingest.password, client_id)
        subscribed = threading.Event()
        session.on_subscribe = lambda client, userdata, mid, reason_codes, properties: subscribed.set()
        session.subscribe("smartoffice/v1/#", qos=1)
        assert subscribed.wait(10), "no SUBACK"
        close_session(session)
        store, entries = open_store(tmp_path / "dl.sqlite3", [room_letter(opd, "queued")])
        api = broker.identities.api

        result = replay(store, entries, broker.server.host, broker.port, api.username, api.password)

        assert result.replayed == [entries[0].id], result.failed
        assert stored_ids(store) == []
        store.close()
        resumed, payloads = open_persistent_session(broker.port, ingest.username, ingest.password, client_id)
        try:
            assert wait_until(lambda: payloads == [entries[0].payload], timeout_s=10), payloads
        finally:
            close_session(resumed)
    finally:
        broker.server.stop()


def test_replay_with_wrong_password_raises(secured, opd, tmp_path):
    store, entries = open_store(tmp_path / "dl.sqlite3", [room_letter(opd, "unsent")])
    username, _ = secured.login("api")

    with pytest.raises(ReplayError) as raised:
        replay(store, entries, secured.broker.server.host, secured.broker.port, username, "wrong-password-" + "x" * 20)

    assert "rejected the login 'smartoffice-api'" in str(raised.value)
    assert "not authorized (0x87)" in str(raised.value)
    assert "wrong-password" not in str(raised.value)
    assert stored_ids(store) == [entries[0].id]
    store.close()


def test_cli_replay_by_ingest_login_keeps_entries(secured, opd, tmp_path):
    """``smartoffice-dead-letters replay`` with the ingest's settings and password file exits 1 and deletes nothing."""
    path = tmp_path / "dl.sqlite3"
    store, entries = open_store(path, [room_letter(opd, "cli-1"), room_letter(opd, "cli-2")])
    store.close()
    env = {name: value for name, value in os.environ.items() if not name.startswith("SMARTOFFICE_")}
    env.update(
        SMARTOFFICE_DEAD_LETTER_PATH=str(path),
        SMARTOFFICE_MQTT_HOST=secured.broker.server.host,
        SMARTOFFICE_MQTT_PORT=str(secured.broker.port),
        SMARTOFFICE_MQTT_USERNAME=secured.broker.identities.ingest.username,
        SMARTOFFICE_MQTT_PASSWORD_FILE=str(secured.password_file("ingest")),
    )

    result = subprocess.run(
        [sys.executable, "-m", "ingest.dead_letters_cli", "replay", "--all"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "replayed 0 entries, 2 failed" in result.stdout
    for entry in entries:
        assert f"{entry.id}: not authorized (0x87)" in result.stderr, result.stderr
    reopened = DeadLetterStore(path)
    assert stored_ids(reopened) == [entry.id for entry in entries]
    reopened.close()


def test_api_replay_route_reports_kept_entry(secured, opd, tmp_path):
    """``POST /api/v1/dead-letters/replay`` deletes the room entry and reports the status entry as kept.

    The API logs in with its password file, as in docker-compose.yml.
    """
    database_url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    create_test_user(database_url, "replay-admin", "replay-admin-" + "7c1e" * 4, "admin")
    letters = [room_letter(opd, "route-1"), status_letter(opd)]
    store, entries = open_store(tmp_path / "api-dead-letters.sqlite3", letters)
    room_entry, status_entry = entries
    store.close()

    api, url = start_api(
        tmp_path,
        secured.broker.server,
        secured.influx,
        secured.database,
        database_url=database_url,
        mqtt_username=secured.broker.identities.api.username,
        mqtt_password_file=str(secured.password_file("api")),
    )
    try:
        token = login(url, "replay-admin", "replay-admin-" + "7c1e" * 4)
        response = httpx.post(
            url + "/api/v1/dead-letters/replay",
            json={"ids": [room_entry.id, status_entry.id]},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60.0,
        )
    finally:
        api.stop()

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["replayed"] == [room_entry.id]
    assert list(body["failed"]) == [str(status_entry.id)]
    assert body["failed"][str(status_entry.id)].startswith("not authorized (0x87)")
    reopened = DeadLetterStore(tmp_path / "api-dead-letters.sqlite3")
    assert stored_ids(reopened) == [status_entry.id]
    reopened.close()
