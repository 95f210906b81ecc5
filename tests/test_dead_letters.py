"""Dead-letter store (SQLite) and the ``smartoffice-dead-letters`` command."""

import json
import os
import subprocess
import sys
import uuid

import paho.mqtt.client as mqtt
import pytest

from conftest import REPO_ROOT, wait_until
from ingest.dead_letters import DeadLetter, DeadLetterStore


def letter(n: int, reason: str = "invalid_json") -> DeadLetter:
    return DeadLetter("smartoffice/v1/dinkes/gw-01/room", f"payload-{n}".encode(), reason, f"error {n}", 1_796_000_000_000 + n)


def test_store_keeps_order_and_counts(tmp_path):
    store = DeadLetterStore(tmp_path / "dl.sqlite3")
    store.add([letter(1), letter(2, "too_old"), letter(3)])
    assert [entry.payload for entry in store.entries()] == [b"payload-1", b"payload-2", b"payload-3"]
    assert store.counts() == {"invalid_json": 2, "too_old": 1}
    assert [entry.payload for entry in store.entries(reason="too_old")] == [b"payload-2"]
    store.close()


def test_store_evicts_oldest_beyond_bound(tmp_path):
    store = DeadLetterStore(tmp_path / "dl.sqlite3", max_entries=3)
    assert store.add([letter(n) for n in range(5)]) == 2
    assert [entry.payload for entry in store.entries()] == [b"payload-2", b"payload-3", b"payload-4"]
    assert store.evicted_total() == 2
    store.close()


def test_store_survives_reopen(tmp_path):
    path = tmp_path / "dl.sqlite3"
    store = DeadLetterStore(path)
    store.add([letter(1)])
    store.close()
    reopened = DeadLetterStore(path)
    assert reopened.counts() == {"invalid_json": 1}
    reopened.close()


def run_cli(tmp_path, *arguments, port: int = 1883) -> subprocess.CompletedProcess:
    env = dict(os.environ, SMARTOFFICE_DEAD_LETTER_PATH=str(tmp_path / "dl.sqlite3"), SMARTOFFICE_MQTT_PORT=str(port))
    return subprocess.run(
        [sys.executable, "-m", "ingest.dead_letters_cli", *arguments], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=30
    )


def test_cli_counts_lists_and_deletes(tmp_path):
    store = DeadLetterStore(tmp_path / "dl.sqlite3")
    store.add([letter(1), letter(2, "too_old")])
    store.close()

    counts = run_cli(tmp_path, "counts")
    assert counts.returncode == 0
    assert "invalid_json\t1" in counts.stdout
    assert "total\t2" in counts.stdout

    listed = run_cli(tmp_path, "list", "--json", "--reason", "too_old")
    records = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [record["payload"] for record in records] == ["payload-2"]

    deleted = run_cli(tmp_path, "delete", "--id", str(records[0]["id"]))
    assert "deleted 1 entries" in deleted.stdout


@pytest.mark.integration
def test_cli_replay_publishes_and_deletes(tmp_path, mosquitto):
    topic = f"smartoffice/v1/t{uuid.uuid4().hex[:8]}/gw-01/room"
    store = DeadLetterStore(tmp_path / "dl.sqlite3")
    store.add([DeadLetter(topic, b'{"fixed": true}', "invalid_value", "error", 1_796_000_000_000)])
    store.close()

    received = []
    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="replay-check-" + uuid.uuid4().hex[:6])
    subscriber.on_message = lambda client, userdata, message: received.append(message.payload)
    subscriber.connect(mosquitto.host, mosquitto.port)
    subscriber.subscribe(topic, qos=1)
    subscriber.loop_start()
    try:
        wait_until(lambda: subscriber.is_connected(), timeout_s=5)
        replayed = run_cli(tmp_path, "replay", "--all", port=mosquitto.port)
        assert replayed.returncode == 0, replayed.stderr
        assert wait_until(lambda: received == [b'{"fixed": true}'])
    finally:
        subscriber.loop_stop()
        subscriber.disconnect()

    assert "total\t0" in run_cli(tmp_path, "counts").stdout


def test_cli_replay_without_broker_fails_cleanly(tmp_path):
    store = DeadLetterStore(tmp_path / "dl.sqlite3")
    store.add([letter(1)])
    store.close()
    from devstack import free_port

    result = run_cli(tmp_path, "replay", "--all", port=free_port())
    assert result.returncode == 1
    assert "cannot reach the broker" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_without_store_names_the_setting(tmp_path):
    result = run_cli(tmp_path, "counts")
    assert result.returncode == 2
    assert "SMARTOFFICE_DEAD_LETTER_PATH" in result.stderr
    assert not (tmp_path / "dl.sqlite3").exists()


def test_cli_replay_unknown_id_fails(tmp_path):
    store = DeadLetterStore(tmp_path / "dl.sqlite3")
    store.add([letter(1)])
    store.close()
    result = run_cli(tmp_path, "replay", "--id", "999")
    assert result.returncode == 1
    assert "no dead letter with id 999" in result.stderr
