"""Check of every reading an adapter emits, against the wire contract, before it is queued.

Each reading is encoded as JSON and validated with ``contract.parse_payload``, exactly as the
ingest service will validate it. Invalid measurement fields are dropped and counted, and the
rest of the reading is queued. A reading with an invalid identifying field (``device``,
``ts``, ``room``...) or with no valid measurement left is rejected, counted by reason and
logged, and nothing is queued. Each reading is checked on its own, so a bad one never drops
its neighbours.
"""

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from contract import TELEMETRY_STREAMS, ContractError, FieldIssue, parse_payload

from .adapters.base import DeviceReading
from .log_limits import RateLimitedLogger
from .outbox import OutboxError

logger = logging.getLogger(__name__)

Append = Callable[[str, str, bytes], Awaitable[None]]
"""Queue ``(stream, device, payload)`` durably, as ``Outbox.append`` does."""

_TELEMETRY = frozenset(stream.value for stream in TELEMETRY_STREAMS)
_RETRY_MIN_S = 1.0
_RETRY_MAX_S = 30.0


@dataclass(frozen=True, slots=True)
class EncodedReading:
    """A reading that passed the contract check, ready for the queue."""

    stream: str
    device: str
    payload: bytes
    issues: tuple[FieldIssue, ...] = ()


def encode_reading(reading: DeviceReading) -> EncodedReading:
    """Encode ``reading`` as contract JSON, dropping invalid measurement fields.

    Raises:
        ContractError: the stream is not a telemetry stream, the payload cannot be encoded
            as JSON, or ``contract.parse_payload`` rejects it.
    """
    stream = str(reading.stream)
    if stream not in _TELEMETRY:
        raise ContractError(
            "invalid_stream",
            f"stream {stream!r} is not a telemetry stream: use one of {', '.join(sorted(_TELEMETRY))}",
        )

    try:
        raw = json.dumps(reading.payload, separators=(",", ":"), allow_nan=True).encode()
    except (TypeError, ValueError) as exc:
        raise ContractError("unencodable", f"payload cannot be encoded as JSON: {exc}") from None

    parsed = parse_payload(stream, raw)
    payload = raw
    if parsed.issues:
        # The salvaged model has the invalid fields removed, so NaN never reaches the wire.
        payload = parsed.model.model_dump_json(exclude_none=True).encode()
    return EncodedReading(stream, parsed.model.device, payload, parsed.issues)


@dataclass
class GateCounters:
    """Outcome counters of the readings of one adapter since the agent started."""

    queued: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    """Rejected readings by reason (``ContractError.reason``)."""
    fields_dropped: int = 0


class ReadingGate:
    """Contract check and durable queueing of the readings of one adapter, whose ``Emit`` is ``emit``."""

    def __init__(self, adapter_id: str, append: Append) -> None:
        self.adapter_id = adapter_id
        self.counters = GateCounters()
        self._append = append
        self._log = RateLimitedLogger(logger)

    async def emit(self, reading: DeviceReading) -> None:
        """Check ``reading`` and queue it. Return once it is committed, or at once when it is rejected."""
        try:
            encoded = encode_reading(reading)
        except ContractError as exc:
            self.counters.rejected[exc.reason] += 1
            device = reading.payload.get("device") if isinstance(reading.payload, dict) else None
            self._log.warning(
                f"rejected:{exc.reason}",
                "adapter %s: reading of device %.70r on stream %s rejected (%s): %s",
                self.adapter_id,
                device,
                reading.stream,
                exc.reason,
                exc,
            )
            return

        for issue in encoded.issues:
            self.counters.fields_dropped += 1
            self._log.warning(
                f"field:{issue.reason}",
                "adapter %s: device %s: field %s dropped (%s): %s",
                self.adapter_id,
                encoded.device,
                issue.field,
                issue.reason,
                issue.message,
            )

        await self._append_until_stored(encoded)
        self.counters.queued += 1

    async def _append_until_stored(self, encoded: EncodedReading) -> None:
        """Queue the reading, retrying while the queue cannot be written (a full disk, an I/O error).

        Waiting here keeps the adapter from acknowledging its device, so the device keeps the
        reading until the queue accepts it.
        """
        delay_s = _RETRY_MIN_S
        while True:
            try:
                await self._append(encoded.stream, encoded.device, encoded.payload)
                return
            except OutboxError as exc:
                self._log.error(
                    "queue_write_failed",
                    "adapter %s: queueing a reading of device %s failed: %s; retrying in %.0f s",
                    self.adapter_id,
                    encoded.device,
                    exc,
                    delay_s,
                )
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, _RETRY_MAX_S)
