"""Simulated edge nodes and devices of the Kantor Pintar offices, publishing over MQTT.

Modules:

* ``config``: ``SimSettings``, read from ``SMARTOFFICE_*`` environment variables.
* ``credentials``: per-node broker logins from a node credentials file.
* ``office_hours``: workdays, opening hours and staff presence in the deployment's zone.
* ``devices``: device identity, per-device random streams and payload encoding.
* ``room_sensor``, ``energy_meter``, ``attendance``: deterministic payload generators.
* ``regency``: one generator per device of the catalogue, grouped by edge node.
* ``timeline``: the time-ordered messages of the whole regency.
* ``clock``, ``rate_limit``: the wall clock of live mode and the token bucket of load mode.
* ``publisher``: one paho MQTT client per node, with last will and online status.
* ``runner``: the live and load loops. ``__main__``: the ``smartoffice-sim`` command.

Exceptions::

    ValueError
    ├── UnknownOpdError        an OPD id given on the command line is not in the catalogue
    └── CredentialsFileError   the node credentials file is missing or invalid
"""

from .attendance import AttendanceTerminal, Employee, ScheduledPunch, build_roster, format_nip
from .config import SimSettings
from .devices import DeviceKey, Reading
from .energy_meter import EnergyMeter
from .office_hours import OfficeHours
from .publisher import OFFLINE_PAYLOAD, Publisher, PublishTotals
from .regency import SimNode, SimRegency, UnknownOpdError, build_regency
from .room_sensor import RoomSensor
from .runner import ProgressLog, run_live, run_load
from .timeline import Message, Timeline

__all__ = [
    "OFFLINE_PAYLOAD",
    "AttendanceTerminal",
    "DeviceKey",
    "EnergyMeter",
    "Employee",
    "Message",
    "OfficeHours",
    "ProgressLog",
    "PublishTotals",
    "Publisher",
    "Reading",
    "RoomSensor",
    "ScheduledPunch",
    "SimNode",
    "SimRegency",
    "SimSettings",
    "Timeline",
    "UnknownOpdError",
    "build_regency",
    "build_roster",
    "format_nip",
    "run_live",
    "run_load",
]
