"""Response models of the API; their field descriptions appear in the OpenAPI documentation.

Every time is given twice: ``ts`` in UTC epoch milliseconds, as on the wire, and ``time`` as
an ISO 8601 string in the deployment's time zone (``+07:00`` for WIB).
"""

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field


class CheckResult(BaseModel):
    """Outcome of one dependency check."""

    ok: bool
    detail: str
    latency_ms: float = Field(description="Time the check took, milliseconds")


class Health(BaseModel):
    """State of the API and the services it depends on."""

    status: Literal["ok", "degraded"]
    timezone: str
    checks: dict[str, CheckResult]


class DeviceInfo(BaseModel):
    """A device as declared in the catalogue."""

    id: str
    kind: str
    room: str | None = None
    circuit: str | None = None


class NodeInfo(BaseModel):
    """An edge node and its devices."""

    id: str
    name: str
    devices: list[DeviceInfo]


class RoomInfo(BaseModel):
    """A room of an OPD office."""

    id: str
    name: str


class OpdSummary(BaseModel):
    """One OPD in the list of OPDs."""

    id: str
    name: str
    island: str = ""
    town: str = ""
    employees: int = 0
    node_count: int = 0
    device_count: int = 0
    in_catalogue: bool = Field(description="False for an OPD that sends data but is not in the catalogue")
    last_seen_ts: int | None = Field(None, description="Time of the newest stored point, UTC epoch ms")
    last_seen: datetime | None = None


class OpdDetail(OpdSummary):
    """An OPD with its rooms, nodes and devices."""

    rooms: list[RoomInfo]
    nodes: list[NodeInfo]


class LatestReading(BaseModel):
    """The newest point of one device (or, for ``status``, of one node)."""

    node: str
    device: str | None = None
    ts: int
    time: datetime
    tags: dict[str, str] = Field(description="Other tags of the point, e.g. room or circuit")
    values: dict[str, float | int | bool | str] = Field(description="Fields of the point, by name")


class LatestResponse(BaseModel):
    """Newest readings of an OPD on one stream."""

    opd: str
    stream: str
    timezone: str
    readings: list[LatestReading]


class SeriesPoint(BaseModel):
    """One aggregation bucket; ``ts`` and ``time`` are its start."""

    ts: int
    time: datetime
    value: float | int | bool | str | None


class DeviceSeries(BaseModel):
    """Buckets of one device."""

    node: str
    device: str
    points: list[SeriesPoint]


class SeriesResponse(BaseModel):
    """A time series per device, aggregated in windows aligned to the deployment's zone."""

    opd: str
    stream: str
    field: str
    agg: str
    window: str
    timezone: str
    start: datetime = Field(description="Start of the first bucket")
    end: datetime = Field(description="End of the range (exclusive)")
    series: list[DeviceSeries]


class AttendanceRecord(BaseModel):
    """One punch at a terminal."""

    ts: int
    time: datetime
    node: str
    device: str
    employee_id: str = Field(description="Keyed pseudonym of the id the terminal sent (see docs/security.md)")
    nip: str | None = Field(None, description="NIP from the OPD's employee list; null when not imported")
    name: str | None = Field(None, description="Name from the OPD's employee list; null when not imported")
    punch: str
    verify: str


class AttendanceDay(BaseModel):
    """The punches of one OPD on one local day, oldest first."""

    opd: str
    date: date
    timezone: str
    start: datetime
    end: datetime
    events: list[AttendanceRecord]
