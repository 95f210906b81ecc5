"""Runs one edge adapter in the test's event loop with an ``emit`` that collects its readings.

Every emitted payload is also checked against the wire contract (``parse_payload``), so a
test fails when an adapter produces a reading that the agent would reject or trim.
"""

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

from contract.validation import ContractError, parse_payload
from edge.adapters.base import Adapter, AdapterStats, DeviceReading


@dataclass
class RunningAdapter:
    """An adapter task with what it emitted so far."""

    adapter: Adapter
    task: asyncio.Task
    stats: AdapterStats
    readings: list[DeviceReading] = field(default_factory=list)
    contract_problems: list[str] = field(default_factory=list)
    """Payloads the contract rejected or trimmed, with the reason."""

    def payloads(self, stream: str | None = None) -> list[dict]:
        """Return the emitted payloads, optionally of one stream only."""
        return [reading.payload for reading in self.readings if stream is None or reading.stream == stream]

    async def until(self, condition, timeout_s: float = 10.0, interval_s: float = 0.05):
        """Wait until ``condition()`` is truthy and return its value, or fail early if the adapter task died."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.task.done():
                self.task.result()
                raise AssertionError("adapter task ended without an error")
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                return value
            await asyncio.sleep(interval_s)


@contextlib.asynccontextmanager
async def running_adapter(adapter_class: type[Adapter], settings: dict, emit_delay_s: float = 0.0):
    """Build ``adapter_class`` from ``settings``, run it, and cancel it on exit."""
    stats = AdapterStats()
    readings: list[DeviceReading] = []
    problems: list[str] = []

    async def emit(reading: DeviceReading) -> None:
        if emit_delay_s:
            await asyncio.sleep(emit_delay_s)
        body = json.dumps(reading.payload).encode()
        try:
            parsed = parse_payload(reading.stream, body)
        except ContractError as exc:
            problems.append(f"{reading.payload}: rejected ({exc.reason}: {exc})")
        else:
            problems.extend(f"{reading.payload}: {issue.field} dropped ({issue.message})" for issue in parsed.issues)
        readings.append(reading)

    adapter = adapter_class(adapter_class.Settings.model_validate(settings), emit, stats)
    task = asyncio.create_task(adapter.run())
    running = RunningAdapter(adapter, task, stats, readings, problems)
    try:
        yield running
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
