"""The simulated regency: one generator per device of the catalogue, grouped by edge node."""

from dataclasses import dataclass, field

from contract.catalogue import Catalogue, DeviceKind, Opd

from .attendance import AttendanceTerminal, build_roster
from .devices import DeviceKey
from .energy_meter import EnergyMeter
from .office_hours import OfficeHours
from .room_sensor import RoomSensor


class UnknownOpdError(ValueError):
    """Raised when an OPD id given to limit the simulation is not in the catalogue."""


@dataclass(slots=True)
class SimNode:
    """One simulated edge node and the generators of its devices."""

    opd: str
    node: str
    sensors: list[RoomSensor | EnergyMeter] = field(default_factory=list)
    """Devices that report at a fixed interval."""
    terminals: list[AttendanceTerminal] = field(default_factory=list)
    """Devices that report when an employee punches."""

    @property
    def client_id(self) -> str:
        """MQTT client id of the node, ``sim-<opd>-<node>``."""
        return f"sim-{self.opd}-{self.node}"


@dataclass(slots=True)
class SimRegency:
    """Every simulated node, in catalogue order, and the office calendar they share."""

    office_hours: OfficeHours
    nodes: list[SimNode]

    def device_count(self) -> int:
        """Return the number of simulated devices."""
        return sum(len(node.sensors) + len(node.terminals) for node in self.nodes)


def build_regency(catalogue: Catalogue, seed: int, opd_ids: list[str] | None = None) -> SimRegency:
    """Create a generator for every device of the catalogue's OPDs, or of ``opd_ids`` only.

    Raises:
        UnknownOpdError: an id of ``opd_ids`` is not in the catalogue.
    """
    office_hours = OfficeHours(catalogue.regency.timezone)
    opds = catalogue.opds
    if opd_ids:
        known = {opd.id for opd in catalogue.opds}
        unknown = [opd_id for opd_id in opd_ids if opd_id not in known]
        if unknown:
            raise UnknownOpdError(
                f"unknown OPD id {unknown[0]!r}: the catalogue has {', '.join(sorted(known))}"
            )
        opds = [opd for opd in catalogue.opds if opd.id in opd_ids]

    nodes = []
    for opd in opds:
        nodes.extend(_build_opd_nodes(opd, seed, office_hours))
    return SimRegency(office_hours=office_hours, nodes=nodes)


def _build_opd_nodes(opd: Opd, seed: int, office_hours: OfficeHours) -> list[SimNode]:
    devices = [(node, device) for node in opd.nodes for device in node.devices]
    meter_count = sum(1 for _, device in devices if device.kind is DeviceKind.ENERGY_METER)
    terminal_count = sum(1 for _, device in devices if device.kind is DeviceKind.ATTENDANCE_TERMINAL)
    staff_per_meter = opd.employees // max(1, meter_count)

    # Employees enrol at one terminal each, dealt out in turn when the OPD has several.
    roster = build_roster(seed, opd.id, opd.employees)
    terminal_index = 0

    nodes = {node.id: SimNode(opd=opd.id, node=node.id) for node in opd.nodes}
    for node, device in devices:
        key = DeviceKey(seed=seed, opd=opd.id, node=node.id, device=device.id)
        sim_node = nodes[node.id]
        if device.kind is DeviceKind.ROOM_SENSOR:
            sim_node.sensors.append(RoomSensor(key, device.room, office_hours))
        elif device.kind is DeviceKind.ENERGY_METER:
            sim_node.sensors.append(EnergyMeter(key, device.circuit, office_hours, staff_per_meter))
        elif device.kind is DeviceKind.ATTENDANCE_TERMINAL:
            employees = roster[terminal_index::terminal_count]
            sim_node.terminals.append(AttendanceTerminal(key, employees, office_hours))
            terminal_index += 1
    return list(nodes.values())
