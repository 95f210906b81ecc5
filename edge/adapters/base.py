"""Interface between the edge agent and its device adapters.

An adapter speaks one device protocol (Modbus TCP, Tasmota MQTT, ZKTeco ADMS, ...) and turns
what its devices send into wire contract v1 payloads. It hands each one to ``emit``; the agent
validates it against the contract, queues it durably and publishes it to the central broker.

Contract between the agent and an adapter:

- The agent builds an adapter from its type's ``Settings`` model (pydantic, unknown keys are
  errors), validated from one entry of the node configuration's ``adapters`` list.
- ``run()`` runs until cancelled. It reconnects to its devices or local broker by itself, with
  backoff, and logs every retry. It raises only for a programming error, never for bad device
  data: a missing field, a NaN, a timed-out register read or a duplicated record is counted in
  ``stats`` and logged (rate-limited), and the rest of the message is still emitted.
- ``emit`` awaits until the reading is in the agent's durable queue, so an adapter that
  acknowledges its device (an ADMS ``OK``, a Modbus poll cycle) does so only after ``emit``
  returned.
- Payloads use the contract's field names and units: ``ts`` in UTC epoch milliseconds, energy
  registers in kWh (``energy_kwh_total``), power in W. Unit conversions (Wh, Watt-minutes,
  device-local times) happen inside the adapter.
"""

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from contract.topics import Stream


class AdapterSettings(BaseModel):
    """Base of each adapter type's settings; ``id`` names the adapter instance on the node."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    id: str
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class DeviceReading:
    """One telemetry payload in the contract's shape, for stream ``stream``."""

    stream: Stream
    payload: dict[str, object]


Emit = Callable[[DeviceReading], Awaitable[None]]
"""Queue one reading durably; returns once it is stored on the node."""


@dataclass
class AdapterStats:
    """Counters of one adapter instance, reported in the node's heartbeat and logs."""

    readings: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    """Problems by reason, such as ``read_timeout``, ``nan_field`` or ``duplicate_record``."""

    fields_dropped: int = 0
    last_seen_ms: dict[str, int] = field(default_factory=dict)
    """Last time each contract device id produced a reading, UTC epoch ms."""

    def count_error(self, reason: str) -> None:
        """Count one problem of kind ``reason``."""
        self.errors[reason] += 1

    def saw(self, device: str, ts_ms: int) -> None:
        """Record that ``device`` produced a reading at ``ts_ms``."""
        self.readings += 1
        if ts_ms > self.last_seen_ms.get(device, 0):
            self.last_seen_ms[device] = ts_ms


class Adapter(ABC):
    """One configured adapter instance; see the module docstring for the contract."""

    type_name: ClassVar[str]
    Settings: ClassVar[type[AdapterSettings]]

    def __init__(self, settings: AdapterSettings, emit: Emit, stats: AdapterStats) -> None:
        self.settings = settings
        self.emit = emit
        self.stats = stats

    @abstractmethod
    async def run(self) -> None:
        """Read the devices and emit their readings until cancelled."""
