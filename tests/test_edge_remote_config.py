"""Remote configuration on the edge node: validation, apply without restart, reject, persistence.

The command server's side is played by publishing a retained ``NodeConfig`` on the node's
``config`` topic of a real central broker, and the node reports on ``config/reported``.
"""

import json
import time

import pytest

from conftest import wait_until
from contract import ConfigReport
from devstack import MosquittoServer
from edge.node_settings import SettingsError, parse_node_settings
from edge_helpers import (
    CentralSubscriber,
    EdgeProcess,
    first_arrivals,
    json_adapter,
    publish,
    write_edge_config,
)


# Validation of the settings object, without a broker.


def json_entry(adapter_id: str = "room-json", **extra) -> dict:
    return {"type": "json", "id": adapter_id, "subscriptions": [{"topic": "office/+/room"}], **extra}


def test_settings_accept_valid_adapters():
    settings = parse_node_settings(
        {"heartbeat_s": 5, "backlog_rate_per_s": 50, "adapters": [json_entry("a"), json_entry("b", port=1884)]}
    )
    assert settings.heartbeat_s == 5
    assert [adapter.id for adapter in settings.adapters] == ["a", "b"]
    assert settings.adapter("b").port == 1884


@pytest.mark.parametrize(
    "settings, expected",
    [
        pytest.param({"adapters": [{"type": "teleport", "id": "x1"}]}, ["'x1'", "unknown adapter type 'teleport'"], id="unknown-type"),
        pytest.param({"adapters": [json_entry(port="abc")]}, ["'room-json'", "field 'port'"], id="bad-field"),
        pytest.param({"adapters": [json_entry(colour="red")]}, ["'room-json'", "field 'colour' is not a known setting"], id="unknown-field"),
        pytest.param({"adapters": [json_entry(), json_entry()]}, ["'room-json' is used by 2 adapters"], id="duplicate-id"),
        pytest.param({"adapters": [json_entry("Room 1")]}, ["'Room 1'", "invalid"], id="invalid-id"),
        pytest.param({"heartbeat_s": 0}, ["settings.heartbeat_s"], id="bad-heartbeat"),
        pytest.param({"room_interval_s": 60}, ["settings.room_interval_s' is not a known setting"], id="unknown-key"),
        pytest.param({"adapters": {"type": "json"}}, ["settings.adapters must be a list"], id="adapters-not-list"),
    ],
)
def test_settings_reject_invalid_values(settings, expected):
    with pytest.raises(SettingsError) as raised:
        parse_node_settings(settings)
    for text in expected:
        assert text in str(raised.value)


def test_settings_secret_not_in_error():
    with pytest.raises(SettingsError) as raised:
        parse_node_settings({"adapters": [json_entry(password=["hunter2-secret"])]})
    assert "hunter2-secret" not in str(raised.value)
    assert "field 'password'" in str(raised.value)


# The node on real brokers.


@pytest.fixture
def brokers(tmp_path):
    central = MosquittoServer(tmp_path / "central")
    local = MosquittoServer(tmp_path / "local")
    central.start()
    local.start()
    yield central, local
    local.stop()
    central.stop()


@pytest.fixture
def node(tmp_path, brokers, unique_id):
    """The agent with one json adapter on ``office/a/+``, a subscriber and a config publisher."""
    central, local = brokers
    folder = tmp_path / "agent"
    folder.mkdir()
    config_path = write_edge_config(folder, unique_id, central, [json_adapter(local, "adapter-a", topics=("office/a/+",))])
    subscriber = CentralSubscriber(central, unique_id)
    edge = EdgeProcess(config_path)
    edge.start()
    edge.wait_for_log("subscribed on local broker")
    yield Node(unique_id, central, local, edge, subscriber)
    edge.stop()
    subscriber.close()


class Node:
    def __init__(self, opd, central, local, edge, subscriber) -> None:
        self.opd = opd
        self.central = central
        self.local = local
        self.edge = edge
        self.subscriber = subscriber
        self.seq = 0

    def publish_config(self, version: int, settings: dict | None = None, raw: bytes | None = None) -> None:
        body = raw
        if body is None:
            body = json.dumps({"version": version, "issued_ts": time.time_ns() // 1_000_000, "settings": settings})
        publish(self.central, f"smartoffice/v1/{self.opd}/gw-01/config", body, retain=True)

    def reports(self) -> list[dict]:
        return [message.json() for message in self.subscriber.received("config/reported")]

    def wait_for_report(self, version: int, count: int = 1) -> dict | None:
        def found():
            matching = [report for report in self.reports() if report["version"] == version]
            return matching[count - 1] if len(matching) >= count else None

        return wait_until(found, timeout_s=20)

    def reading_flows(self, room: str) -> bool:
        """Publish one reading under ``office/<room>/room`` and wait until it reaches the central broker."""
        self.seq += 1
        device = f"sensor-{room}"
        reading = {"device": device, "ts": time.time_ns() // 1_000_000, "room": room, "seq": self.seq, "co2_ppm": 600}
        publish(self.local, f"office/{room}/room", json.dumps(reading))
        return bool(wait_until(lambda: self.seq in first_arrivals(self.subscriber.readings()).get(device, []), 5))


def settings_b(local, heartbeat_s: float = 1) -> dict:
    """Settings that replace adapter-a with adapter-b on ``office/b/+``."""
    return {"heartbeat_s": heartbeat_s, "adapters": [json_adapter(local, "adapter-b", topics=("office/b/+",))]}


@pytest.mark.integration
def test_valid_config_applied_without_restart(node):
    pid = node.edge.pid
    assert node.reading_flows("a")

    node.publish_config(1, settings_b(node.local))
    report = node.wait_for_report(1)

    assert report is not None
    ConfigReport.model_validate(report)
    assert report["result"] == "applied"
    assert "error" not in report
    node.edge.wait_for_log("adapter adapter-b: subscribed")
    assert node.reading_flows("b")
    assert not node.reading_flows("a"), "the removed adapter still runs"
    assert node.edge.pid == pid
    assert node.edge.process.running()
    assert "1 started, 1 stopped" in node.edge.log()


@pytest.mark.integration
def test_unchanged_adapter_keeps_running(node):
    settings = {"heartbeat_s": 1, "adapters": [json_adapter(node.local, "adapter-a", topics=("office/a/+",))]}
    settings["adapters"].append(json_adapter(node.local, "adapter-b", topics=("office/b/+",)))

    node.publish_config(1, settings)

    assert node.wait_for_report(1)["result"] == "applied"
    assert "2 running (1 kept, 1 started, 0 stopped)" in node.edge.log()
    assert node.edge.log().count("adapter adapter-a (type json) started") == 1
    node.edge.wait_for_log("adapter adapter-b: subscribed")
    assert node.reading_flows("a")
    assert node.reading_flows("b")


@pytest.mark.integration
def test_config_with_unknown_adapter_rejected(node):
    node.publish_config(1, settings_b(node.local))
    assert node.wait_for_report(1)["result"] == "applied"
    node.edge.wait_for_log("adapter adapter-b: subscribed")

    broken = settings_b(node.local)
    broken["adapters"].append({"type": "teleport", "id": "mystery"})
    node.publish_config(2, broken)
    report = node.wait_for_report(2)

    assert report is not None
    ConfigReport.model_validate(report)
    assert report["result"] == "rejected"
    assert "'mystery'" in report["error"]
    assert "unknown adapter type 'teleport'" in report["error"]
    assert node.reading_flows("b"), "the working configuration stopped"


@pytest.mark.integration
def test_config_with_bad_field_rejected(node):
    bad = settings_b(node.local)
    bad["adapters"][0]["port"] = "not-a-port"
    node.publish_config(1, bad)
    report = node.wait_for_report(1)

    assert report["result"] == "rejected"
    assert "'adapter-b'" in report["error"]
    assert "field 'port'" in report["error"]
    assert node.reading_flows("a"), "the working configuration stopped"
    status = [message.json() for message in node.subscriber.received("status")][-1]
    assert "config_version" not in status


@pytest.mark.integration
def test_config_repeat_and_rollback_versions(node):
    node.publish_config(2, settings_b(node.local))
    assert node.wait_for_report(2)["result"] == "applied"

    node.publish_config(2, settings_b(node.local))
    again = node.wait_for_report(2, count=2)
    node.publish_config(1, {"adapters": []})
    node.edge.wait_for_log("configuration version 1 ignored")

    assert again["result"] == "applied"
    assert [report["version"] for report in node.reports()] == [2, 2]
    assert node.reading_flows("b")


@pytest.mark.integration
def test_applied_config_survives_restart(node):
    node.publish_config(3, settings_b(node.local))
    assert node.wait_for_report(3)["result"] == "applied"
    node.edge.stop()

    # Clear the retained configuration, so only the saved file can bring adapter-b back.
    node.publish_config(0, raw=b"")
    node.edge.start()
    node.edge.wait_for_log("adapter adapter-b: subscribed")

    assert "running the saved configuration version 3" in node.edge.log()
    assert node.reading_flows("b")

    def status_with_version():
        statuses = [message.json() for message in node.subscriber.received("status")]
        return any(status.get("config_version") == 3 for status in statuses[-3:])

    assert wait_until(status_with_version)
