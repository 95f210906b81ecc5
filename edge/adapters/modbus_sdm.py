"""Eastron SDM630 and SDM120 energy meters polled over Modbus TCP (pymodbus).

Meters are reached directly (a meter with a Modbus TCP interface) or through an RS485 to
TCP gateway, where several meters share one host and port and differ by unit id. The adapter
keeps one connection per host and port and polls its meters one after another every
``poll_interval_s``, and different gateways are polled concurrently. Each meter takes two or
three requests per cycle (see ``sdm_registers.plan_blocks``).

Failure handling, per meter and cycle:

- A read that gets no response within ``timeout_s`` is counted as ``read_timeout``, and the
  meter is skipped until the next cycle. The other meters of the gateway are still polled.
- A Modbus exception response (wrong unit id, unsupported address) is counted as
  ``modbus_exception``, and the fields of that block are missing from the reading.
- A value that decodes to NaN or to something a meter cannot report is dropped and counted
  (``nan_field``, ``implausible_value``), while the other fields are emitted.
- A lost or refused connection is counted (``connection_lost``, ``connect_failed``) and
  retried with exponential backoff, with a log line per attempt.

``ts`` is the node's clock when the poll of the meter started, because SDM meters have no clock.
"""

import asyncio
import logging
import time
from collections import defaultdict
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from contract.ids import Id

from .base import Adapter, AdapterSettings, AdapterStats, DeviceReading, Emit
from .readings import FieldCollector, ProblemLog
from .retry import Backoff
from .sdm_registers import REGISTERS_BY_MODEL, Block, DecodeError, SdmModel, decode_register, plan_blocks

logger = logging.getLogger(__name__)


class _MeterUnreachable(Exception):
    """Raised to skip the rest of a meter's poll cycle after a timeout or a lost connection."""


class SdmMeterSettings(BaseModel):
    """One meter: where to reach it and which contract device it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: Id
    circuit: Id | None = None
    model: SdmModel
    host: str = Field(min_length=1, description="IP address or host name of the meter or RS485 gateway")
    port: int = Field(default=502, ge=1, le=65_535)
    unit_id: int = Field(default=1, ge=1, le=247, description="Modbus unit (slave) id set on the meter")


class SdmSettings(AdapterSettings):
    """Settings of the ``modbus_sdm`` adapter."""

    type: Literal["modbus_sdm"] = "modbus_sdm"
    poll_interval_s: float = Field(default=10.0, ge=0.2)
    timeout_s: float = Field(default=2.0, gt=0, le=60, description="Wait for one response before counting a timeout")
    reconnect_min_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=60.0, gt=0)
    meters: list[SdmMeterSettings] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_meters(self):
        devices = [meter.device for meter in self.meters]
        duplicates = sorted({device for device in devices if devices.count(device) > 1})
        if duplicates:
            raise ValueError(f"devices {duplicates} appear twice: configure each meter once")

        addresses = [(meter.host, meter.port, meter.unit_id) for meter in self.meters]
        shared = sorted({f"{h}:{p} unit {u}" for h, p, u in addresses if addresses.count((h, p, u)) > 1})
        if shared:
            raise ValueError(f"{shared} is configured for two meters: give each meter its own unit id")

        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError(f"reconnect_max_s={self.reconnect_max_s} is below reconnect_min_s={self.reconnect_min_s}")
        return self


class SdmAdapter(Adapter):
    """Polls SDM meters and emits one energy reading per meter and cycle."""

    type_name = "modbus_sdm"
    Settings = SdmSettings

    def __init__(self, settings: SdmSettings, emit: Emit, stats: AdapterStats) -> None:
        super().__init__(settings, emit, stats)
        self.problems = ProblemLog(stats, logger, settings.id)
        self._blocks = {model: plan_blocks(registers) for model, registers in REGISTERS_BY_MODEL.items()}

    async def run(self) -> None:
        """Poll every gateway concurrently until cancelled."""
        gateways: dict[tuple[str, int], list[SdmMeterSettings]] = defaultdict(list)
        for meter in self.settings.meters:
            gateways[(meter.host, meter.port)].append(meter)

        logger.info(
            "%s: starting SDM adapter for %d meters on %d Modbus TCP endpoints, every %g s",
            self.settings.id, len(self.settings.meters), len(gateways), self.settings.poll_interval_s,
        )
        try:
            async with asyncio.TaskGroup() as group:
                for (host, port), meters in gateways.items():
                    group.create_task(self._poll_gateway(host, port, meters))
        finally:
            logger.info("%s: SDM adapter stopped", self.settings.id)

    async def _poll_gateway(self, host: str, port: int, meters: list[SdmMeterSettings]) -> None:
        client = AsyncModbusTcpClient(host, port=port, timeout=self.settings.timeout_s, retries=0, reconnect_delay=0)
        backoff = Backoff(self.settings.reconnect_min_s, self.settings.reconnect_max_s)
        next_cycle = time.monotonic()
        try:
            while True:
                if not client.connected and not await self._connect(client, host, port, meters, backoff):
                    continue

                for meter in meters:
                    await self._poll_meter(client, meter)
                    if not client.connected:
                        break

                next_cycle = max(next_cycle + self.settings.poll_interval_s, time.monotonic())
                await asyncio.sleep(next_cycle - time.monotonic())
        finally:
            client.close()

    async def _connect(
        self, client: AsyncModbusTcpClient, host: str, port: int, meters: list[SdmMeterSettings], backoff: Backoff
    ) -> bool:
        if await client.connect():
            logger.info("%s: connected to Modbus TCP %s:%d (%d meters)", self.settings.id, host, port, len(meters))
            backoff.reset()
            return True

        self.stats.count_error("connect_failed")
        delay_s = backoff.next_delay_s()
        logger.warning(
            "%s: connection to Modbus TCP %s:%d failed (meters %s), retrying in %.1f s (attempt %d)",
            self.settings.id, host, port, ", ".join(m.device for m in meters), delay_s, backoff.attempt,
        )
        await asyncio.sleep(delay_s)
        return False

    async def _poll_meter(self, client: AsyncModbusTcpClient, meter: SdmMeterSettings) -> None:
        ts = time.time_ns() // 1_000_000
        collector = FieldCollector()

        for block in self._blocks[meter.model]:
            try:
                words = await self._read_block(client, meter, block)
            except _MeterUnreachable:
                return
            if words is None:
                continue
            for register in block.registers:
                offset = register.address - block.address
                try:
                    collector.fields[register.field] = decode_register(register, words[offset], words[offset + 1])
                except DecodeError as exc:
                    collector.drop(exc.reason, register.field, str(exc))

        self.problems.report_fields(meter.device, collector.problems)
        if not collector.fields:
            return

        payload: dict[str, object] = {"device": meter.device, "ts": ts, **collector.fields}
        if meter.circuit is not None:
            payload["circuit"] = meter.circuit
        await self.emit(DeviceReading("energy", payload))
        self.stats.saw(meter.device, ts)

    async def _read_block(
        self, client: AsyncModbusTcpClient, meter: SdmMeterSettings, block: Block
    ) -> list[int] | None:
        """Read one block and return its registers, or None after counting and logging the failure.

        Raises:
            _MeterUnreachable: the read timed out or the connection is lost, so the other
                blocks of the meter are not tried in this cycle.
        """
        where = (
            f"{block.count} registers at 0x{block.address:04X} from unit {meter.unit_id} at {meter.host}:{meter.port}"
        )
        try:
            response = await client.read_input_registers(block.address, count=block.count, device_id=meter.unit_id)
        except ConnectionException as exc:
            self.problems.report("connection_lost", meter.device, f"read of {where} failed ({exc}), reconnecting")
            client.close()
            raise _MeterUnreachable from None
        except ModbusIOException:
            self.problems.report(
                "read_timeout",
                meter.device,
                f"read of {where} timed out after {self.settings.timeout_s:g} s, retrying next cycle",
            )
            raise _MeterUnreachable from None
        except ModbusException as exc:
            self.problems.report("modbus_error", meter.device, f"read of {where} failed: {exc}")
            return None

        if response.isError():
            code = getattr(response, "exception_code", "?")
            self.problems.report(
                "modbus_exception",
                meter.device,
                f"read of {where} returned exception code {code}: check unit_id and model ({meter.model})",
            )
            return None

        if len(response.registers) < block.count:
            self.problems.report(
                "short_response", meter.device, f"read of {where} returned only {len(response.registers)} registers"
            )
            return None
        return response.registers
