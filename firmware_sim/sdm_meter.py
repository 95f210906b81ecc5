"""Simulated Eastron SDM630 and SDM120 meters behind a Modbus TCP server (pymodbus).

Each meter responds to function code 04 (read input registers) at its unit id with the values
it was given, as big-endian float32 (ABCD) at the datasheet addresses (register number minus
30001). The import register rises with the configured power as time passes, like a real
meter. Tests inject faults: a NaN register, raw words (swapped or shifted), or a stall
that makes every read time out.

Usable from asyncio (``await server.start()`` ... ``await server.stop()``) or from the
command line through ``python -m firmware_sim.protocol_devices``.
"""

import asyncio
import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

logger = logging.getLogger(__name__)

REGISTER_SPACE = 0x0160
"""Input registers served from address 0: every address an SDM630 documents, through 0x015F."""

NAN_WORDS = (0x7FC0, 0x0000)
"""Quiet NaN as a meter reports an unset quantity."""

SDM630_ADDRESSES = {
    "voltage_l1": 0x0000, "voltage_l2": 0x0002, "voltage_l3": 0x0004,
    "current_l1": 0x0006, "current_l2": 0x0008, "current_l3": 0x000A,
    "power_l1": 0x000C, "power_l2": 0x000E, "power_l3": 0x0010,
    "power_factor_l1": 0x001E, "power_factor_l2": 0x0020, "power_factor_l3": 0x0022,
    "power_total": 0x0034, "power_factor_total": 0x003E, "frequency": 0x0046,
    "import_kwh": 0x0048, "export_kwh": 0x004A, "total_kwh": 0x0156,
}  # fmt: skip
"""Address of each simulated quantity on an SDM630, per the register table used by ``volkszaehler/mbmd``."""

SDM120_ADDRESSES = {
    "voltage_l1": 0x0000, "current_l1": 0x0006, "power_l1": 0x000C, "power_factor_l1": 0x001E,
    "frequency": 0x0046, "import_kwh": 0x0048, "export_kwh": 0x004A, "total_kwh": 0x0156,
}  # fmt: skip
"""Address of each simulated quantity on an SDM120."""


@dataclass
class MeterValues:
    """Present values of a simulated meter. On an SDM630, phases 2 and 3 copy phase 1."""

    voltage_v: float = 230.1
    current_a: float = 4.35
    power_w: float = 1001.0
    power_factor: float = 0.98
    frequency_hz: float = 50.0
    import_kwh: float = 12345.678
    export_kwh: float = 0.0


@dataclass
class SimulatedSdmMeter:
    """One SDM630 or SDM120 at a Modbus unit id."""

    unit_id: int = 1
    model: str = "sdm630"
    values: MeterValues = field(default_factory=MeterValues)
    rising: bool = True
    """Let the import register grow with ``power_w`` as time passes."""

    monotonic: Callable[[], float] = time.monotonic
    stall_s: float = 0.0
    """Delay before every response. A delay longer than the client's timeout makes reads time out."""

    def __post_init__(self) -> None:
        if self.model not in ("sdm630", "sdm120"):
            raise ValueError(f"meter model {self.model!r} is unknown: use sdm630 or sdm120")
        self.addresses = SDM630_ADDRESSES if self.model == "sdm630" else SDM120_ADDRESSES
        self._overrides: dict[int, tuple[int, int]] = {}
        self._last_update = self.monotonic()
        self.reads = 0

    def set_registers(self, address: int, words: tuple[int, int]) -> None:
        """Serve the raw ``words`` at ``address`` until ``clear_overrides``, whatever the values are."""
        self._overrides[address] = words

    def inject_nan(self, quantity: str) -> None:
        """Serve NaN for ``quantity``, a key of the model's address table such as ``power_factor_total``."""
        self.set_registers(self.addresses[quantity], NAN_WORDS)

    def clear_overrides(self) -> None:
        """Serve the values again at every address."""
        self._overrides.clear()

    def registers(self) -> list[int]:
        """Return the whole input register space as the meter would serve it now."""
        self._advance_import()
        words = [0] * REGISTER_SPACE
        for quantity, address in self.addresses.items():
            words[address : address + 2] = _float_words(self._value_of(quantity))
        for address, pair in self._overrides.items():
            words[address : address + 2] = pair
        return words

    def _advance_import(self) -> None:
        now = self.monotonic()
        elapsed_h = (now - self._last_update) / 3600.0
        self._last_update = now
        if self.rising and self.values.power_w > 0:
            self.values.import_kwh += self.values.power_w * elapsed_h / 1000.0

    def _value_of(self, quantity: str) -> float:
        values = self.values
        if quantity.startswith("voltage"):
            return values.voltage_v
        if quantity.startswith("current"):
            return values.current_a
        if quantity.startswith("power_factor"):
            return values.power_factor
        if quantity == "power_total":
            return values.power_w
        if quantity.startswith("power"):
            return values.power_w if self.model == "sdm120" else values.power_w / 3.0
        if quantity == "frequency":
            return values.frequency_hz
        if quantity == "import_kwh":
            return values.import_kwh
        if quantity == "export_kwh":
            return values.export_kwh
        return values.import_kwh + values.export_kwh


class SdmModbusServer:
    """A Modbus TCP server on ``host:port`` serving one or more simulated meters by unit id."""

    def __init__(self, meters: list[SimulatedSdmMeter], port: int, host: str = "127.0.0.1") -> None:
        unit_ids = [meter.unit_id for meter in meters]
        if len(set(unit_ids)) != len(unit_ids):
            raise ValueError(f"unit ids {unit_ids} repeat: give each simulated meter its own unit id")

        self.meters = {meter.unit_id: meter for meter in meters}
        self.host = host
        self.port = port
        self._server: ModbusTcpServer | None = None

    async def start(self) -> None:
        """Listen on ``host:port`` and return once the server accepts connections."""
        devices = [
            SimDevice(
                id=unit_id,
                simdata=[SimData(0, count=REGISTER_SPACE, values=0, datatype=DataType.REGISTERS)],
                action=self._action_for(meter),
            )
            for unit_id, meter in self.meters.items()
        ]
        self._server = ModbusTcpServer(devices, address=(self.host, self.port))
        await self._server.serve_forever(background=True)
        logger.info("simulated SDM meters %s listening on %s:%d", sorted(self.meters), self.host, self.port)

    async def stop(self) -> None:
        """Close the listening socket and every client connection."""
        if self._server is not None:
            await self._server.shutdown()
            self._server = None
            logger.info("simulated SDM meters on %s:%d stopped", self.host, self.port)

    def _action_for(self, meter: SimulatedSdmMeter):
        async def refresh_registers(function_code, start_address, address, count, registers, set_values):
            # pymodbus calls this before serving each request, and the registers are updated in place.
            if set_values is not None:
                return None
            if meter.stall_s > 0:
                await asyncio.sleep(meter.stall_s)
            meter.reads += 1
            words = meter.registers()
            # The block starts at address 0, so list index and register address coincide.
            registers[: len(words)] = words
            return None

        return refresh_registers


def _float_words(value: float) -> tuple[int, int]:
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return high, low
