"""Node configuration through the API, applied by a real edge agent, and its report back.

The edge agent runs as ``python -m edge`` with a ``json`` adapter on an office broker of its
own. The session broker plays the central one. An API process on it runs the alert monitor,
which records node states and configuration reports.
"""

import json
import os

import httpx
import paho.mqtt.publish as publish
import pytest

from conftest import PIPELINE_ADMIN, PIPELINE_ADMIN_PASSWORD, create_test_user, login, start_api, wait_until
from devstack import MosquittoServer, free_port
from edge_helpers import NODE, CentralSubscriber, EdgeProcess, json_adapter, write_edge_config
from registry.db import make_engine, session_factory
from api.monitor.node_states import NodeConfigStore

pytestmark = pytest.mark.integration


class _NoInflux:
    """InfluxDB address with nothing listening, for an API that does not query it."""

    url = f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def office(tmp_path_factory, mosquitto):
    """The office's local broker, an edge agent reading ``office/a/+`` on it, and an admin API client."""
    folder = tmp_path_factory.mktemp("config-roundtrip")
    opd = "cfg-" + os.urandom(4).hex()
    local = MosquittoServer(folder / "local")
    local.start()

    config_path = write_edge_config(folder, opd, mosquitto, [json_adapter(local, "adapter-a", topics=("office/a/+",))])
    edge = EdgeProcess(config_path)
    edge.start()

    database_url = f"sqlite:///{folder / 'api-config-registry.sqlite3'}"
    create_test_user(database_url, PIPELINE_ADMIN, PIPELINE_ADMIN_PASSWORD, "admin")
    # No InfluxDB: the node routes need only the broker and the registry.
    api, url = start_api(folder, mosquitto, _NoInflux(), "unused", name="api-config")
    token = login(url, PIPELINE_ADMIN, PIPELINE_ADMIN_PASSWORD)
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=15)
    subscriber = CentralSubscriber(mosquitto, opd)

    yield {"opd": opd, "local": local, "client": client, "edge": edge, "subscriber": subscriber, "database_url": database_url}

    subscriber.close()
    client.close()
    api.stop()
    edge.stop()
    local.stop()
    # The retained configuration would outlive the module on the session broker.
    publish.single(f"smartoffice/v1/{opd}/{NODE}/config", b"", qos=1, retain=True, hostname=mosquitto.host, port=mosquitto.port)


def node_entry(office) -> dict | None:
    nodes = office["client"].get("/api/v1/nodes", params={"opd": office["opd"]}).json()["nodes"]
    return next((entry for entry in nodes if entry["node"] == NODE), None)


def reading_arrives(office, topic: str, device: str) -> bool:
    """Publish a room reading on the office broker and wait for it at the central broker."""
    local = office["local"]
    payload = json.dumps({"device": device, "room": "r1", "ts": 1_796_000_000_000, "temperature_c": 25.0})
    publish.single(topic, payload, qos=1, hostname=local.host, port=local.port)
    return bool(wait_until(lambda: any(reading["device"] == device for reading in office["subscriber"].readings()), timeout_s=10))


def test_config_applied_and_reported(office):
    assert wait_until(lambda: (node_entry(office) or {}).get("state") == "online", timeout_s=20)
    assert node_entry(office)["config_state"] == "none"

    settings = {"heartbeat_s": 1, "adapters": [json_adapter(office["local"], "adapter-b", topics=("office/b/+",))]}
    response = office["client"].put(f"/api/v1/opds/{office['opd']}/nodes/{NODE}/config", json={"settings": settings})
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 1
    assert response.json()["issued_by"] == PIPELINE_ADMIN

    def in_sync():
        body = office["client"].get(f"/api/v1/opds/{office['opd']}/nodes/{NODE}/config").json()
        return body if body["config_state"] == "in_sync" else None

    body = wait_until(in_sync, timeout_s=20)
    assert body["reported"]["version"] == 1
    assert body["reported"]["result"] == "applied"
    assert node_entry(office)["reported_version"] == 1

    # The new adapter reads office/b/+, and the old one is gone: the change took effect.
    assert reading_arrives(office, "office/b/room", "sensor-b")
    assert not reading_arrives(office, "office/a/room", "sensor-a-after")


def test_invalid_config_rejected_by_api(office):
    settings = {"heartbeat_s": 1, "adapters": [{"type": "telepathy", "id": "x"}]}
    response = office["client"].put(f"/api/v1/opds/{office['opd']}/nodes/{NODE}/config", json={"settings": settings})
    assert response.status_code == 422
    assert "telepathy" in response.json()["detail"]
    assert response.json()["parameter"] == "settings"

    body = office["client"].get(f"/api/v1/opds/{office['opd']}/nodes/{NODE}/config").json()
    assert body["version"] == 1


def test_config_rejected_by_node(office, mosquitto):
    # An API of another software version stored and published settings this node's schema
    # rejects: the node reports the error, the API shows 'failed', and the node keeps
    # running version 1.
    engine = make_engine(office["database_url"])
    row = NodeConfigStore(session_factory(engine)).add(office["opd"], NODE, {"heartbeat_s": 0.001}, "older-api", 1_796_000_000_000)
    engine.dispose()
    message = {"version": row.version, "issued_ts": 1_796_000_000_000, "settings": {"heartbeat_s": 0.001}}
    publish.single(
        f"smartoffice/v1/{office['opd']}/{NODE}/config", json.dumps(message), qos=1, retain=True,
        hostname=mosquitto.host, port=mosquitto.port,
    )

    def failed():
        body = office["client"].get(f"/api/v1/opds/{office['opd']}/nodes/{NODE}/config").json()
        return body if body["config_state"] == "failed" else None

    body = wait_until(failed, timeout_s=20)
    assert body["reported"]["version"] == 2
    assert body["reported"]["result"] == "rejected"
    assert "heartbeat_s" in body["reported"]["error"]
    assert node_entry(office)["config_error"] == body["reported"]["error"]
    assert reading_arrives(office, "office/b/room", "sensor-b-still")


def test_config_of_unknown_node(office):
    response = office["client"].get(f"/api/v1/opds/{office['opd']}/nodes/gw-99/config")
    assert response.status_code == 404
