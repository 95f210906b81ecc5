"""The edge agent: its configuration, then end to end on real brokers.

End to end means local broker, json adapter, agent process, central broker. Each of those
tests starts two Mosquitto brokers on loopback (the office's local broker and the
central one) and runs ``python -m edge`` as a child process, so a crash is a real SIGKILL
and an outage is a real broker stop.
"""

import json
import time
from importlib import metadata

import pytest
import yaml

from conftest import wait_until
from contract import NodeStatus
from devstack import MosquittoServer
from edge.config import ConfigError, load_config
from edge_helpers import (
    CentralSubscriber,
    EdgeProcess,
    ReadingFeed,
    first_arrivals,
    json_adapter,
    make_tls_files,
    publish,
    queue_rows,
    retained_status,
    tls_listener,
    write_edge_config,
)

# Configuration loading, without a broker.


def test_config_environment_overrides_file(tmp_path, monkeypatch):
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump({"opd": "dinkes", "node": "gw-01", "broker": {"host": "file-host", "port": 1883}}))
    monkeypatch.setenv("SMARTOFFICE_EDGE_BROKER__HOST", "env-host")
    monkeypatch.setenv("SMARTOFFICE_EDGE_QUEUE__MAX_ROWS", "5000")

    config = load_config(path)

    assert config.broker.host == "env-host"
    assert config.broker.port == 1883
    assert config.queue.max_rows == 5000
    assert config.client_id == "edge-dinkes-gw-01"
    assert config.timezone == "Asia/Jakarta"


@pytest.mark.parametrize(
    "values, expected",
    [
        pytest.param({"node": "gw-01", "broker": {"host": "h"}}, "SMARTOFFICE_EDGE_OPD", id="missing-opd"),
        pytest.param({"opd": "Dinkes", "node": "gw-01", "broker": {"host": "h"}}, "id 'Dinkes' is invalid", id="bad-id"),
        pytest.param(
            {"opd": "a", "node": "b", "broker": {"host": "h"}, "timezone": "Asia/Jakartaa"}, "not a known IANA", id="bad-zone"
        ),
        pytest.param(
            {"opd": "a", "node": "b", "broker": {"host": "h", "tls": {"ca_file": "/nonexistent/ca.pem"}}},
            "is not a file",
            id="missing-ca",
        ),
        pytest.param({"opd": "a", "node": "b", "broker": {"host": "h", "passwd": "x"}}, "broker.passwd is not a known key", id="typo"),
    ],
)
def test_config_invalid_values_named(tmp_path, values, expected):
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(values))
    with pytest.raises(ConfigError, match=expected):
        load_config(path)


def test_config_password_file_first_line(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("s3cret-value\n")
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump({"opd": "a", "node": "b", "broker": {"host": "h", "password_file": str(secret)}}))

    config = load_config(path)

    assert config.broker.resolved_password() == "s3cret-value"


def test_config_inline_password_hidden_in_repr(tmp_path):
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump({"opd": "a", "node": "b", "broker": {"host": "h", "password": "inline-secret"}}))

    config = load_config(path)

    assert config.broker.resolved_password() == "inline-secret"
    assert "inline-secret" not in repr(config)


# The agent process on real brokers.


integration = pytest.mark.integration


@pytest.fixture
def central(tmp_path):
    server = MosquittoServer(tmp_path / "central")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def local(tmp_path):
    server = MosquittoServer(tmp_path / "local")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def agent_folder(tmp_path):
    folder = tmp_path / "agent"
    folder.mkdir()
    return folder


@pytest.fixture
def subscriber(central, unique_id):
    client = CentralSubscriber(central, unique_id)
    yield client
    client.close()


@pytest.fixture
def agent(agent_folder):
    process = None

    def start(config_path, **options) -> EdgeProcess:
        nonlocal process
        process = EdgeProcess(config_path)
        process.start(**options)
        return process

    yield start
    if process is not None:
        process.stop()


def every_seq_arrived(subscriber, devices, count) -> bool:
    arrived = first_arrivals(subscriber.readings())
    return all(len(arrived.get(device, [])) >= count for device in devices)


def assert_complete_and_ordered(arrivals: dict[str, list[int]], sent) -> None:
    for device in {item.device for item in sent}:
        expected = [item.seq for item in sent if item.device == device]
        assert sorted(arrivals.get(device, [])) == expected, f"{device}: readings lost"
        assert arrivals[device] == expected, f"{device}: readings out of order"


@integration
def test_agent_forwards_json_readings_once(central, local, agent_folder, subscriber, agent, unique_id):
    config = write_edge_config(
        agent_folder, unique_id, central, [json_adapter(local, topics=("office/+/room", "office/+/energy"))]
    )
    edge = agent(config)
    edge.wait_for_log("subscribed on local broker")

    devices = ("sensor-a", "sensor-b", "sensor-c")
    feed = ReadingFeed(local, devices, interval_s=0.0)
    for seq in range(30):
        feed.publish_round(seq)
        if seq == 15:
            # Bad readings between good ones must not take their neighbours with them.
            now = time.time_ns() // 1_000_000
            publish(local, "office/bad/room", json.dumps({"device": "sensor-x", "ts": now, "room": "r", "co2_ppm": -5}))
            publish(local, "office/bad/room", b"{not json")
            meter = {"device": "meter-1", "ts": now, "power_w": 1200.5, "voltage_v": -3.0}
            publish(local, "office/meter-1/energy", json.dumps(meter))
    feed.stop()

    assert wait_until(lambda: every_seq_arrived(subscriber, devices, 30))
    assert wait_until(lambda: subscriber.received("energy"))
    time.sleep(0.5)

    room = subscriber.received("room")
    assert len(room) == 90, "a reading arrived twice"
    assert all(message.topic == f"smartoffice/v1/{unique_id}/gw-01/room" for message in room)
    assert not any(message.retain for message in room)
    assert_complete_and_ordered(first_arrivals(subscriber.readings()), feed.sent)
    energy = [message.json() for message in subscriber.received("energy")]
    assert [reading["power_w"] for reading in energy] == [1200.5]
    assert "voltage_v" not in energy[0], "the out-of-range field was not dropped"
    assert "sensor-x" not in {reading["device"] for reading in subscriber.readings()}
    assert "rejected (no_measurement)" in edge.log()
    edge.wait_for_log("rejected {'no_measurement': 1}")
    assert "adapter errors {'invalid_json': 1}" in edge.log()
    assert "contract fields dropped 1" in edge.log()


@integration
def test_agent_loses_nothing_across_central_outage(central, local, agent_folder, subscriber, agent, unique_id):
    config = write_edge_config(
        agent_folder, unique_id, central, [json_adapter(local)], backlog_rate_per_s=30
    )
    edge = agent(config)
    edge.wait_for_log("subscribed on local broker")
    devices = ("sensor-a", "sensor-b", "sensor-c", "sensor-d")
    feed = ReadingFeed(local, devices, interval_s=0.2).start()

    time.sleep(2)
    central.stop()
    outage_start = time.monotonic()
    time.sleep(10)
    central.start()
    edge.wait_for_log("(connection 2)")
    reconnected = time.monotonic()
    time.sleep(8)
    feed.stop()

    sent = feed.sent
    assert wait_until(lambda: every_seq_arrived(subscriber, devices, len(sent) // len(devices)), timeout_s=60)
    assert_complete_and_ordered(first_arrivals(subscriber.readings()), sent)

    # Readings published during the outage were queued; readings published after the
    # reconnect are live. Some live reading must arrive before the backlog is all sent.
    backlog = {(item.device, item.seq) for item in sent if outage_start < item.sent < reconnected - 1.5}
    live = {(item.device, item.seq) for item in sent if item.sent > reconnected}
    keys = [(reading["device"], reading["seq"]) for reading in subscriber.readings()]
    last_backlog_index = max(index for index, key in enumerate(keys) if key in backlog)
    first_live_index = min(index for index, key in enumerate(keys) if key in live)
    assert len(backlog) > 100
    assert first_live_index < last_backlog_index
    assert "queued backlog sent in" in edge.log()
    assert wait_until(lambda: queue_rows(config) == 0)


@integration
def test_agent_delivers_queue_after_sigkill(central, local, agent_folder, subscriber, agent, unique_id):
    config = write_edge_config(agent_folder, unique_id, central, [json_adapter(local)])
    central.stop()
    edge = agent(config, ready_line="subscribed on local broker")

    devices = ("sensor-a", "sensor-b")
    feed = ReadingFeed(local, devices, interval_s=0.0)
    for seq in range(25):
        feed.publish_round(seq)
    feed.stop()
    assert wait_until(lambda: queue_rows(config) == 50)
    edge.kill()

    central.start()
    restarted = agent(config)
    assert wait_until(lambda: every_seq_arrived(subscriber, devices, 25), timeout_s=30)
    assert_complete_and_ordered(first_arrivals(subscriber.readings()), feed.sent)
    assert "50 readings" in restarted.log()


@integration
def test_agent_heartbeat_reports_node_status(central, local, agent_folder, subscriber, agent, unique_id):
    config = write_edge_config(agent_folder, unique_id, central, [json_adapter(local)])
    agent(config).wait_for_log("subscribed on local broker")
    feed = ReadingFeed(local, ("sensor-a", "sensor-b"), interval_s=0.0)
    for seq in range(3):
        feed.publish_round(seq)
    feed.stop()
    last_ts = {}
    assert wait_until(lambda: every_seq_arrived(subscriber, ("sensor-a", "sensor-b"), 3))
    for reading in subscriber.readings():
        last_ts[reading["device"]] = reading["ts"]

    def heartbeat_with_devices():
        for message in reversed(subscriber.received("status")):
            status = message.json()
            if status.get("device_last_seen") == last_ts and status.get("queue_depth") == 0:
                return status
        return None

    status = wait_until(heartbeat_with_devices)
    assert status is not None
    NodeStatus.model_validate(status)
    assert status["state"] == "online"
    assert status["sw_version"] == metadata.version("smartoffice")
    assert status["uptime_s"] >= 0
    assert status["dropped_total"] == 0
    assert "config_version" not in status
    retained = retained_status(central, unique_id)
    assert retained is not None
    assert retained[1], "the status is not retained"
    assert json.loads(retained[0])["state"] == "online"


@integration
def test_agent_killed_leaves_offline_will(central, local, agent_folder, agent, unique_id):
    config = write_edge_config(agent_folder, unique_id, central, [json_adapter(local)])
    edge = agent(config)
    online = retained_status(central, unique_id)
    assert online is not None
    assert json.loads(online[0])["state"] == "online"

    edge.kill()

    def offline():
        status = retained_status(central, unique_id, timeout_s=1)
        return status if status and status[0] == b'{"state":"offline"}' else None

    status = wait_until(offline, timeout_s=20)
    assert status is not None
    assert status[1], "the will is not retained"


@integration
def test_agent_stopped_cleanly_says_offline(central, local, agent_folder, agent, unique_id):
    config = write_edge_config(agent_folder, unique_id, central, [json_adapter(local)])
    edge = agent(config)
    edge.stop()

    status = retained_status(central, unique_id)
    assert status is not None
    assert status[0] == b'{"state":"offline"}'
    assert "edge agent stopped" in edge.log()


@integration
def test_agent_connects_over_tls(tmp_path, local, agent_folder, agent, unique_id):
    files = make_tls_files(tmp_path / "tls")
    tls_port, listener = tls_listener(files)
    central = MosquittoServer(tmp_path / "central-tls", extra_config=listener)
    central.start()
    subscriber = CentralSubscriber(central, unique_id)
    try:
        config = write_edge_config(agent_folder, unique_id, central, [json_adapter(local)])
        values = yaml.safe_load(config.read_text())
        values["broker"]["port"] = tls_port
        values["broker"]["tls"] = {"ca_file": str(files.ca)}
        config.write_text(yaml.safe_dump(values))

        edge = agent(config)
        edge.wait_for_log("subscribed on local broker")
        ReadingFeed(local, ("sensor-a",), 0).publish_round(0)

        assert "over TLS" in edge.log()
        assert wait_until(lambda: every_seq_arrived(subscriber, ("sensor-a",), 1))
    finally:
        subscriber.close()
        central.stop()


@integration
def test_agent_rejects_broker_with_unknown_ca(tmp_path, local, agent_folder, unique_id):
    served = make_tls_files(tmp_path / "tls-served", "served")
    other = make_tls_files(tmp_path / "tls-other", "other")
    tls_port, listener = tls_listener(served)
    central = MosquittoServer(tmp_path / "central-tls", extra_config=listener)
    central.start()
    edge = None
    try:
        config = write_edge_config(agent_folder, unique_id, central, [json_adapter(local)])
        values = yaml.safe_load(config.read_text())
        values["broker"]["port"] = tls_port
        values["broker"]["tls"] = {"ca_file": str(other.ca)}
        config.write_text(yaml.safe_dump(values))

        edge = EdgeProcess(config)
        edge.start(ready_line="reconnecting in")

        assert "certificate verify failed" in edge.log()
        assert "connected to broker" not in edge.log()
    finally:
        if edge is not None:
            edge.stop()
        central.stop()
