"""The README's first command, end to end: ``python -m devstack`` with simulated offices.

It must show live readings for every OPD of the catalogue within 60 seconds. The nodes of
``SMARTOFFICE_EDGE_NODES`` run as real edge agents that read simulated devices in their own
protocols: their readings reach the API, the API lists them online with the agent's software
version, and a configuration change made through the API is applied and reported by the node.
Ctrl-C (SIGINT) stops every child process.

The tests that use the platform share one, and run in file order up to the SIGINT test.
"""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from conftest import REPO_ROOT, wait_until
from contract.catalogue import DeviceKind, load_catalogue
from devstack import MosquittoServer, free_port
from devstack.edge_offices import EdgeOffice, EdgeOfficeError, parse_edge_nodes
from edge.heartbeat import SW_VERSION
from firmware_sim.config import SimSettings

pytestmark = pytest.mark.integration

CATALOGUE = load_catalogue(REPO_ROOT / "config" / "regency.yaml")

EDGE_NODES = [("setda", "gw-01"), ("dinkes", "gw-01")]
"""Nodes that run as edge agents in these tests, as ``SMARTOFFICE_EDGE_NODES`` sets them."""

PROCESSES_PER_EDGE_NODE = 3
"""Office broker, simulated devices and edge agent."""


@dataclass
class Platform:
    """A running ``python -m devstack`` and what the tests need to reach it."""

    process: subprocess.Popen
    started: float
    local_dir: Path
    output_path: Path
    api: str
    api_port: int

    def output(self) -> str:
        return self.output_path.read_text()[-3000:]

    def edge_config(self, opd: str, node: str) -> dict:
        """Return the edge agent configuration that devstack wrote for ``opd``/``node``."""
        path = self.local_dir / "edge" / f"{opd}-{node}" / "edge.yaml"
        return yaml.safe_load(path.read_text(encoding="utf-8"))


def _json(url: str, headers: dict[str, str] | None = None):
    try:
        response = httpx.get(url, headers=headers, timeout=5)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def _admin_headers(local_dir, api: str) -> dict[str, str] | None:
    """Log in as the first admin, whose password devstack writes to admin-password; None until it can."""
    password_file = local_dir / "admin-password"
    if not password_file.exists():
        return None
    try:
        response = httpx.post(
            api + "/api/v1/auth/token", data={"username": "admin", "password": password_file.read_text().strip()}, timeout=5
        )
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """Start ``python -m devstack`` on free ports, and stop it with SIGINT at the end unless a test did."""
    folder = tmp_path_factory.mktemp("local-platform")
    api_port = free_port()
    env = dict(
        os.environ,
        SMARTOFFICE_LOCAL_DIR=str(folder / "local"),
        SMARTOFFICE_API_PORT=str(api_port),
        SMARTOFFICE_MQTT_PORT=str(free_port()),
        SMARTOFFICE_INFLUX_PORT=str(free_port()),
        SMARTOFFICE_INFLUX_RPC_PORT=str(free_port()),
        SMARTOFFICE_METRICS_PORT=str(free_port()),
        SMARTOFFICE_EDGE_NODES=",".join(f"{opd}/{node}" for opd, node in EDGE_NODES),
        # Punches at any hour, so the attendance check does not depend on the time of day.
        SMARTOFFICE_EDGE_PUNCH_SCHEDULE="continuous",
    )
    output = open(folder / "devstack.out", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack", "--backfill-hours", "0.1", "--interval-s", "5"],
        cwd=REPO_ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    running = Platform(
        process, time.monotonic(), folder / "local", folder / "devstack.out", f"http://127.0.0.1:{api_port}", api_port
    )
    try:
        yield running
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGINT)
            process.wait(timeout=60)
        output.close()


@pytest.fixture(scope="module")
def headers(platform) -> dict[str, str]:
    """Bearer header of the first admin."""
    found = wait_until(lambda: _admin_headers(platform.local_dir, platform.api), timeout_s=60, interval_s=1)
    assert found, platform.output()
    return found


def test_local_platform_shows_every_opd(platform, headers):
    api = platform.api

    def every_opd_seen():
        opds = _json(api + "/api/v1/opds", headers)
        if not opds:
            return False
        seen = {opd["id"] for opd in opds if opd["last_seen_ts"]}
        return seen >= {opd.id for opd in CATALOGUE.opds}

    assert wait_until(every_opd_seen, timeout_s=60, interval_s=1), platform.output()
    assert time.monotonic() - platform.started < 60

    latest = _json(api + "/api/v1/opds/dinkes/latest?stream=room", headers)
    assert latest["readings"], "no room readings for dinkes"
    # devstack prints the banner once every child has started.
    assert wait_until(lambda: "Press Ctrl-C to stop." in platform.output(), timeout_s=30), platform.output()
    assert f"API:        http://127.0.0.1:{platform.api_port}" in platform.output()
    assert "Edge nodes: setda/gw-01, dinkes/gw-01" in platform.output()
    # mosquitto, influxd, ingest, API and simulator, besides the runner itself, and the
    # children of each edge node.
    expected = 6 + PROCESSES_PER_EDGE_NODE * len(EDGE_NODES)
    assert len(_processes_with_env(f"SMARTOFFICE_LOCAL_DIR={platform.local_dir}")) == expected


def _adapter(config: dict, adapter_type: str) -> dict:
    return next(adapter for adapter in config["settings"]["adapters"] if adapter["type"] == adapter_type)


def _catalogue_devices(opd: str, node: str, kind: DeviceKind) -> set[str]:
    entry = next(candidate for candidate in CATALOGUE.opd(opd).nodes if candidate.id == node)
    return {device.id for device in entry.devices if device.kind is kind}


@pytest.mark.parametrize(("opd", "node"), EDGE_NODES, ids=[f"{opd}-{node}" for opd, node in EDGE_NODES])
def test_edge_node_readings_reach_api(platform, headers, opd, node):
    config = platform.edge_config(opd, node)
    meter = next(entry["device"] for entry in _adapter(config, "modbus_sdm")["meters"] if entry["model"] == "sdm630")
    sensors = {entry["device"] for entry in _adapter(config, "zigbee2mqtt")["devices"]}
    terminal = _adapter(config, "zkteco_adms")["terminals"][0]["device"]
    assert meter in _catalogue_devices(opd, node, DeviceKind.ENERGY_METER)
    # Every room sensor of the node has a simulated Zigbee device, so none is silent.
    assert sensors == _catalogue_devices(opd, node, DeviceKind.ROOM_SENSOR)
    assert terminal in _catalogue_devices(opd, node, DeviceKind.ATTENDANCE_TERMINAL)

    def latest_devices(stream: str) -> set[str]:
        body = _json(f"{platform.api}/api/v1/opds/{opd}/latest?stream={stream}", headers) or {"readings": []}
        return {reading["device"] for reading in body["readings"] if reading["node"] == node}

    # The simulator leaves this node out, so these readings come from the edge agent.
    energy = wait_until(lambda: {meter, "plug-ac", "plug-printer"} <= latest_devices("energy"), timeout_s=60, interval_s=1)
    assert energy, f"energy of {opd}/{node}: {latest_devices('energy')}"
    room = wait_until(lambda: sensors <= latest_devices("room"), timeout_s=60, interval_s=1)
    assert room, f"room readings of {opd}/{node}: {latest_devices('room')}"
    attendance = wait_until(lambda: terminal in latest_devices("attendance"), timeout_s=60, interval_s=1)
    assert attendance, f"attendance of {opd}/{node}: {latest_devices('attendance')}"


def _node_entry(platform: Platform, headers: dict[str, str], opd: str, node: str) -> dict | None:
    body = _json(f"{platform.api}/api/v1/nodes?opd={opd}", headers) or {"nodes": []}
    return next((entry for entry in body["nodes"] if entry["node"] == node), None)


@pytest.mark.parametrize(("opd", "node"), EDGE_NODES, ids=[f"{opd}-{node}" for opd, node in EDGE_NODES])
def test_edge_node_online_with_agent_version(platform, headers, opd, node):
    def online_entry():
        entry = _node_entry(platform, headers, opd, node)
        return entry if entry and entry["state"] == "online" else None

    entry = wait_until(online_entry, timeout_s=60, interval_s=1)
    assert entry, f"{opd}/{node}: {_node_entry(platform, headers, opd, node)}"
    assert entry["sw_version"] == SW_VERSION

    # Had the simulator published as this node too, the two clients would take the client id
    # from each other in turn, and Mosquitto 2 logs each takeover.
    broker_log = (platform.local_dir / "mosquitto" / "mosquitto.log").read_text(errors="replace")
    assert f"Client edge-{opd}-{node} already connected" not in broker_log


def test_edge_node_applies_config_from_api(platform, headers):
    opd, node = EDGE_NODES[0]
    settings = dict(platform.edge_config(opd, node)["settings"], heartbeat_s=30)
    url = f"{platform.api}/api/v1/opds/{opd}/nodes/{node}/config"

    response = httpx.put(url, json={"settings": settings}, headers=headers, timeout=15)
    assert response.status_code == 200, response.text
    version = response.json()["version"]

    def in_sync():
        body = _json(url, headers)
        return body if body and body["config_state"] == "in_sync" else None

    body = wait_until(in_sync, timeout_s=30, interval_s=0.5)
    assert body, _json(url, headers)
    assert body["reported"]["version"] == version
    assert body["reported"]["result"] == "applied"
    assert _node_entry(platform, headers, opd, node)["reported_version"] == version


def test_local_platform_stops_every_child_on_sigint(platform):
    os.kill(platform.process.pid, signal.SIGINT)
    exit_code = platform.process.wait(timeout=60)

    assert exit_code == 0, platform.output()
    assert _processes_with_env(f"SMARTOFFICE_LOCAL_DIR={platform.local_dir}") == []


@pytest.mark.parametrize(
    "text",
    ["dinkes", "dinkes/gw-99", "nowhere/gw-01", "dinkes/gw-01,dinkes/gw-01"],
    ids=["no-node", "unknown-node", "unknown-opd", "repeated"],
)
def test_edge_nodes_setting_rejects_invalid_entry(text):
    with pytest.raises(EdgeOfficeError, match="SMARTOFFICE_EDGE_NODES"):
        parse_edge_nodes(text, CATALOGUE)


def test_edge_nodes_setting_empty_runs_none():
    assert parse_edge_nodes("", CATALOGUE) == []
    assert parse_edge_nodes(" , ", CATALOGUE) == []


def test_sim_exclude_nodes_setting(monkeypatch):
    monkeypatch.setenv("SMARTOFFICE_SIM_EXCLUDE_NODES", "setda/gw-01, dinkes/gw-01")
    assert SimSettings().excluded_nodes == {("setda", "gw-01"), ("dinkes", "gw-01")}

    monkeypatch.setenv("SMARTOFFICE_SIM_EXCLUDE_NODES", "setda")
    with pytest.raises(ValueError, match="SMARTOFFICE_SIM_EXCLUDE_NODES entry 'setda' is invalid"):
        SimSettings()


def _office(tmp_path, opd: str, node_id: str) -> EdgeOffice:
    node = next(candidate for candidate in CATALOGUE.opd(opd).nodes if candidate.id == node_id)
    central = MosquittoServer(tmp_path / "central", free_port())
    return EdgeOffice(opd, node, tmp_path / "local", central, "Asia/Jakarta", 10.0, seed=1)


def test_edge_office_config_without_terminal(tmp_path):
    nodes_file = tmp_path / "nodes.json"
    login = {"username": "node.setda.gw-02", "password": "s3cret-Pw", "client_id": "edge-setda-gw-02"}
    nodes_file.write_text(json.dumps({"nodes": {"setda/gw-02": login}}))
    office = _office(tmp_path, "setda", "gw-02")

    office.prepare(nodes_file)

    config = yaml.safe_load(office.config_path.read_text())
    assert config["broker"]["username"] == "node.setda.gw-02"
    assert config["broker"]["client_id"] == "edge-setda-gw-02"
    assert "password" not in config["broker"]
    password_file = Path(config["broker"]["password_file"])
    assert password_file.read_text().strip() == "s3cret-Pw"
    assert password_file.stat().st_mode & 0o777 == 0o600
    assert "s3cret-Pw" not in office.config_path.read_text()

    meters = {entry["model"]: entry["device"] for entry in _adapter(config, "modbus_sdm")["meters"]}
    assert meters == {"sdm630": "meter-02", "sdm120": "meter-server-room"}
    zigbee = _adapter(config, "zigbee2mqtt")["devices"][0]
    assert zigbee["device"] in _catalogue_devices("setda", "gw-02", DeviceKind.ROOM_SENSOR)
    # gw-02 has no attendance terminal, so the terminal keeps the simulator's id.
    adms = _adapter(config, "zkteco_adms")
    assert adms["terminals"][0]["device"] == "terminal-lobby"
    assert Path(adms["dedup_db_path"]).parent == Path(config["data_dir"])


def test_edge_office_keeps_ports_across_starts(tmp_path):
    nodes_file = tmp_path / "nodes.json"
    login = {"username": "node.dinkes.gw-01", "password": "pw-1", "client_id": "edge-dinkes-gw-01"}
    nodes_file.write_text(json.dumps({"nodes": {"dinkes/gw-01": login}}))

    first = _office(tmp_path, "dinkes", "gw-01")
    first.prepare(nodes_file)
    second = _office(tmp_path, "dinkes", "gw-01")
    second.prepare(nodes_file)

    assert second.ports == first.ports
    assert len({first.ports.office_mqtt, first.ports.modbus, first.ports.adms}) == 3


def test_edge_office_needs_node_credentials(tmp_path):
    nodes_file = tmp_path / "nodes.json"
    nodes_file.write_text(json.dumps({"nodes": {}}))
    office = _office(tmp_path, "dinkes", "gw-01")

    with pytest.raises(EdgeOfficeError, match="dinkes/gw-01 has no broker credentials"):
        office.prepare(nodes_file)


def _processes_with_env(entry: str) -> list[int]:
    """Return the PIDs whose environment contains ``entry``: the platform's children inherit it."""
    found = []
    needle = entry.encode() + b"\0"
    for folder in os.listdir("/proc"):
        if not folder.isdigit():
            continue
        try:
            with open(f"/proc/{folder}/environ", "rb") as environ:
                if needle in environ.read():
                    found.append(int(folder))
        except OSError:
            continue
    return found


def test_taken_port_named_in_error(tmp_path):
    """A port already in use stops the start with a message naming the port and its setting."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = dict(
            os.environ,
            SMARTOFFICE_LOCAL_DIR=str(tmp_path / "local"),
            SMARTOFFICE_API_PORT=str(free_port()),
            SMARTOFFICE_MQTT_PORT=str(port),
            SMARTOFFICE_INFLUX_PORT=str(free_port()),
            SMARTOFFICE_INFLUX_RPC_PORT=str(free_port()),
            SMARTOFFICE_METRICS_PORT=str(free_port()),
        )
        result = subprocess.run(
            [sys.executable, "-m", "devstack", "--no-sim"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
        )

    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in output
    assert "SMARTOFFICE_MQTT_PORT" in output
