"""Catalogue of a deployment: its OPDs, rooms, edge nodes and devices, read from YAML.

The API names OPDs from it and the simulators build their offices from it. Ids are checked
with the wire contract's rules when the file is loaded, so a typo fails at start-up with the
file and the id in the message, not later as a rejected message.
"""

from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .ids import Id


class CatalogueError(ValueError):
    """Raised when a catalogue file is missing, not YAML, or breaks a rule."""


class DeviceKind(StrEnum):
    """What a device measures, and so which stream it publishes on."""

    ATTENDANCE_TERMINAL = "attendance_terminal"
    ENERGY_METER = "energy_meter"
    ROOM_SENSOR = "room_sensor"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Device(_Strict):
    """One physical device behind an edge node."""

    id: Id
    kind: DeviceKind
    room: Id | None = None
    circuit: Id | None = None

    @model_validator(mode="after")
    def _room_sensor_has_room(self):
        if self.kind is DeviceKind.ROOM_SENSOR and self.room is None:
            raise ValueError(f"room sensor {self.id!r} needs a room")
        return self


class Node(_Strict):
    """One edge node (gateway) in an office."""

    id: Id
    name: str = ""
    devices: list[Device] = Field(default_factory=list)


class Room(_Strict):
    """A room of an OPD office."""

    id: Id
    name: str


class Opd(_Strict):
    """An OPD (organisasi perangkat daerah) and its office."""

    id: Id
    name: str
    island: str = ""
    town: str = ""
    employees: int = Field(default=0, ge=0)
    rooms: list[Room] = Field(default_factory=list)
    nodes: list[Node] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rooms_exist(self):
        room_ids = {room.id for room in self.rooms}
        for node in self.nodes:
            for device in node.devices:
                if device.room is not None and device.room not in room_ids:
                    raise ValueError(f"device {node.id}/{device.id} names unknown room {device.room!r}")
        return self


class Regency(_Strict):
    """The deployment itself: a regency and its time zone."""

    id: Id
    name: str
    province: str = ""
    timezone: str = "Asia/Jakarta"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}, e.g. Asia/Jakarta, Asia/Makassar") from None
        return value


class Catalogue(_Strict):
    """Everything a catalogue file declares."""

    regency: Regency
    opds: list[Opd]

    @model_validator(mode="after")
    def _unique_opds(self):
        seen: set[str] = set()
        for opd in self.opds:
            if opd.id in seen:
                raise ValueError(f"OPD id {opd.id!r} appears twice")
            seen.add(opd.id)
        return self

    def opd(self, opd_id: str) -> Opd | None:
        """Return the OPD with ``opd_id``, or None."""
        return next((opd for opd in self.opds if opd.id == opd_id), None)


def load_catalogue(path: str | Path) -> Catalogue:
    """Read and validate a catalogue file.

    Raises:
        CatalogueError: the file cannot be read or parsed, or an entry is invalid.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogueError(f"cannot read catalogue {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise CatalogueError(f"catalogue {path} is not valid YAML: {exc}") from None

    try:
        return Catalogue.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise CatalogueError(f"catalogue {path}: {where}: {first['msg']}") from None
