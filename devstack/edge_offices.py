"""Offices of the local platform whose node runs as a real edge agent, reading simulated devices.

For each node of ``SMARTOFFICE_EDGE_NODES`` the local platform starts three children:

* the office broker: a second Mosquitto on loopback that plays the office LAN, so it
  accepts anonymous clients;
* ``python -m firmware_sim.protocol_devices``: an SDM630 and an SDM120 behind one Modbus TCP
  server and a ZKTeco terminal that pushes punches to the agent's ADMS port. A Tasmota plug,
  Shelly Gen1 and Gen2 plugs and a Zigbee2MQTT bridge with one sensor per room sensor of the
  node publish on the office broker;
* ``python -m edge`` with the configuration ``<local dir>/edge/<opd>-<node>/edge.yaml``, written
  at every start. It logs in to the central broker with the node's user name, password and
  client id from the node credentials file, as a real node would.

Every office has a broker of its own, because the simulated devices use the same topics in
every office. Device ids follow the catalogue where the node has a matching device: the
SDM630 is the node's energy meter, the Zigbee2MQTT sensors are its room sensors, and the
terminal its attendance terminal. The SDM120 and the plugs keep the simulator's ids, which
the catalogue does not list.

The ports of the office broker, the Modbus server and the ADMS server are chosen free at the
first start and kept in ``ports.json`` next to ``edge.yaml``. A remote configuration that the
agent applied names these ports, and the agent runs it again after a restart.
"""

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from contract.catalogue import Catalogue, DeviceKind, Node
from firmware_sim import protocol_devices
from registry.node_credentials import read_node_entries

from .mosquitto import MosquittoServer
from .ports import free_port, port_accepts
from .process import ManagedProcess, ProcessError

REPO_ROOT = Path(__file__).resolve().parent.parent

HEARTBEAT_S = 60.0
"""Interval of the agents' retained status, s: the edge agent's default."""


class _PlainDumper(yaml.SafeDumper):
    """YAML dumper that writes a repeated object again instead of as an anchor and alias."""

    def ignore_aliases(self, data) -> bool:
        return True


class EdgeOfficeError(ValueError):
    """Raised when ``SMARTOFFICE_EDGE_NODES`` names a node that cannot run as an edge agent."""


@dataclass(frozen=True, slots=True)
class OfficePorts:
    """Loopback ports of one office: its broker, its Modbus TCP server and the agent's ADMS server."""

    office_mqtt: int
    modbus: int
    adms: int


def parse_edge_nodes(text: str, catalogue: Catalogue) -> list[tuple[str, Node]]:
    """Return the ``(opd id, node)`` pairs of a comma-separated ``<opd>/<node>`` list, in its order.

    Raises:
        EdgeOfficeError: an entry is not ``<opd>/<node>``, repeats, or is not in the catalogue.
    """
    nodes: list[tuple[str, Node]] = []
    for key in filter(None, (part.strip() for part in text.split(","))):
        opd_id, _, node_id = key.partition("/")
        opd = catalogue.opd(opd_id)
        node = None
        if opd is not None:
            node = next((candidate for candidate in opd.nodes if candidate.id == node_id), None)
        if node is None:
            raise EdgeOfficeError(
                f"SMARTOFFICE_EDGE_NODES entry {key!r} is not a node of the catalogue: use '<opd>/<node>', "
                "e.g. dinkes/gw-01, or an empty value to run no edge agent"
            )
        if any(opd_id == known_opd and node.id == known.id for known_opd, known in nodes):
            raise EdgeOfficeError(f"SMARTOFFICE_EDGE_NODES lists {key!r} twice: list each node once")
        nodes.append((opd_id, node))
    return nodes


class EdgeOffice:
    """The office broker, simulated devices and edge agent of one node, as child processes.

    ``prepare()`` writes the files, and ``processes`` lists the children in their start order.
    """

    def __init__(
        self,
        opd: str,
        node: Node,
        local_dir: Path,
        central: MosquittoServer,
        timezone: str,
        interval_s: float,
        seed: int,
        punch_schedule: str = "office",
    ) -> None:
        self.opd = opd
        self.node = node
        self.key = f"{opd}/{node.id}"
        self.folder = Path(local_dir) / "edge" / f"{opd}-{node.id}"
        self.logs = Path(local_dir) / "logs"
        self.central = central
        self.timezone = timezone
        self.interval_s = interval_s
        self.seed = seed
        self.punch_schedule = punch_schedule
        self.ports: OfficePorts | None = None
        self.broker: MosquittoServer | None = None
        self.devices: ManagedProcess | None = None
        self.agent: ManagedProcess | None = None

    @property
    def config_path(self) -> Path:
        """The agent's configuration file, written at every start."""
        return self.folder / "edge.yaml"

    @property
    def processes(self) -> list:
        """The office broker, the agent and the devices, in the order they start."""
        return [self.broker, self.agent, self.devices]

    def prepare(self, nodes_file: Path) -> None:
        """Choose or reload the ports, write the password file and ``edge.yaml``, and create the children.

        Raises:
            EdgeOfficeError: the node has no credentials in ``nodes_file``.
            ProcessError: a kept port is in use by another program.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        credentials = read_node_entries(nodes_file).get(self.key)
        if credentials is None:
            raise EdgeOfficeError(
                f"node {self.key} has no broker credentials in {nodes_file}, so it cannot run as an edge agent: "
                "it may be revoked in the registry. Remove it from SMARTOFFICE_EDGE_NODES"
            )

        self.ports = self._load_or_choose_ports()
        device_arguments = self._device_arguments()
        adapters = self._adapters(device_arguments)
        self._write_config(credentials, adapters)

        environment = dict(os.environ, PYTHONUNBUFFERED="1")
        self.broker = MosquittoServer(self.folder / "broker", self.ports.office_mqtt)
        self.broker.process.name = f"office broker {self.key}"
        self.agent = ManagedProcess(
            f"edge agent {self.key}",
            [sys.executable, "-m", "edge", "--config", str(self.config_path)],
            self.logs / f"edge-{self.opd}-{self.node.id}.log",
            env=environment,
            cwd=REPO_ROOT,
        )
        self.devices = ManagedProcess(
            f"devices {self.key}",
            [sys.executable, "-m", "firmware_sim.protocol_devices", *device_arguments],
            self.logs / f"devices-{self.opd}-{self.node.id}.log",
            env=environment,
            cwd=REPO_ROOT,
        )

    def _load_or_choose_ports(self) -> OfficePorts:
        ports_file = self.folder / "ports.json"
        if not ports_file.exists():
            chosen: set[int] = set()
            while len(chosen) < 3:
                chosen.add(free_port())
            ports = OfficePorts(*sorted(chosen))
            ports_file.write_text(json.dumps(asdict(ports)) + "\n", encoding="utf-8")
            return ports

        try:
            ports = OfficePorts(**json.loads(ports_file.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            raise ProcessError(f"ports file {ports_file} is invalid ({exc}): delete it to choose new ports") from None
        for name, port in asdict(ports).items():
            if port_accepts("127.0.0.1", port):
                raise ProcessError(
                    f"port {port} ({name}) of edge office {self.key} is in use by another program: stop that "
                    f"program, or delete {ports_file} to choose new ports"
                )
        return ports

    def _device_arguments(self) -> list[str]:
        return [
            "--mqtt-port", str(self.ports.office_mqtt),
            "--modbus-port", str(self.ports.modbus),
            "--adms-url", f"http://127.0.0.1:{self.ports.adms}",
            "--interval-s", f"{self.interval_s:g}",
            "--timezone", self.timezone,
            "--seed", str(self.seed),
            "--punch-schedule", self.punch_schedule,
            "--zigbee-sensors", str(max(len(self._room_sensors()), 1)),
        ]  # fmt: skip

    def _adapters(self, device_arguments: list[str]) -> list[dict]:
        """Return the simulator's own adapter entries, with the catalogue's device ids where the node has them.

        Parsing the same arguments that the devices get keeps topics, serial numbers and ports
        the same on both sides.
        """
        arguments = protocol_devices.build_parser().parse_args(device_arguments)
        adapters = protocol_devices.adapter_config(arguments)
        meter = self._first_device(DeviceKind.ENERGY_METER)
        sensors = self._room_sensors()
        terminal = self._first_device(DeviceKind.ATTENDANCE_TERMINAL)

        for adapter in adapters:
            if adapter["type"] == "modbus_sdm" and meter is not None:
                sdm630 = next(entry for entry in adapter["meters"] if entry["model"] == "sdm630")
                sdm630.update(device=meter.id, circuit=meter.circuit)
            elif adapter["type"] == "zigbee2mqtt":
                # One simulated Zigbee sensor per catalogue room sensor of the node, in order.
                for entry, sensor in zip(adapter["devices"], sensors):
                    entry.update(device=sensor.id, room=sensor.room)
            elif adapter["type"] == "zkteco_adms":
                adapter["dedup_db_path"] = str(self.folder / "data" / "adms-punches.sqlite3")
                if terminal is not None:
                    adapter["terminals"][0]["device"] = terminal.id
        return adapters

    def _first_device(self, kind: DeviceKind):
        return next((device for device in self.node.devices if device.kind is kind), None)

    def _room_sensors(self):
        """Return the node's room sensors, in catalogue order."""
        return [device for device in self.node.devices if device.kind is DeviceKind.ROOM_SENSOR]

    def _write_config(self, credentials: dict, adapters: list[dict]) -> None:
        password_file = self.folder / "mqtt-password"
        descriptor = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(credentials["password"] + "\n")

        config = {
            "opd": self.opd,
            "node": self.node.id,
            "timezone": self.timezone,
            "data_dir": str(self.folder / "data"),
            "log_level": "INFO",
            "broker": {
                "host": self.central.host,
                "port": self.central.port,
                "username": credentials["username"],
                "password_file": str(password_file),
                "client_id": credentials["client_id"],
            },
            "settings": {"heartbeat_s": HEARTBEAT_S, "adapters": adapters},
        }
        header = (
            "# Written by the local platform (python -m devstack) at every start: changes here are lost.\n"
            "# A remote configuration through the API replaces the settings below until data/ is deleted.\n"
        )
        self.config_path.write_text(header + yaml.dump(config, Dumper=_PlainDumper, sort_keys=False), encoding="utf-8")
