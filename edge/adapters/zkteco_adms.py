"""ZKTeco attendance terminals over ADMS, the "push SDK" HTTP protocol, served by the edge node.

The terminal is the HTTP client and the node the server (starlette, served by uvicorn inside
the agent's event loop):

- ``GET /iclock/cdata?SN=<serial>&options=all`` is the handshake. The reply lists the
  terminal's options (push delays, real-time upload, its UTC offset).
- ``POST /iclock/cdata?SN=<serial>&table=ATTLOG&Stamp=<n>`` uploads punches, one
  TAB-separated record per line (see ``attlog``). The reply ``OK`` comes only after every new
  punch was emitted, that is, stored in the agent's durable queue. Until then the terminal
  keeps its records and retries. Other tables (``OPERLOG``, ``ATTPHOTO``) are acknowledged
  and ignored.
- ``GET /iclock/getrequest?SN=<serial>`` polls for commands. The node has none (``OK``).
  ``GET /iclock/ping`` (keepalive during long uploads) and ``POST /iclock/devicecmd``
  (command results) are acknowledged with ``OK`` too.

Device times are the terminal's local wall-clock time, converted with the terminal's or the
adapter's ``timezone``. A punch already emitted (same serial number, PIN and device time) is
counted as ``duplicate_record`` and not emitted again, but still acknowledged, because the
terminal would otherwise retry it forever. The keys live in a SQLite file (``dedup_db_path``),
so re-sent batches are recognised across restarts. Re-scans a few seconds apart have
different times and are all emitted, and the attendance recap decides which one counts.
"""

import asyncio
import contextlib
import logging
import socket
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import uvicorn
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from contract.ids import Id
from contract.payloads import TS_MAX_MS, TS_MIN_MS, VerifyMethod

from .attlog import DEFAULT_VERIFY_METHODS, AttlogError, PunchRecord, parse_attlog_line, split_attlog_lines
from .base import Adapter, AdapterSettings, AdapterStats, DeviceReading, Emit
from .device_time import TimeZoneName, local_time_to_ms
from .punch_store import PunchStore
from .readings import ProblemLog
from .retry import Backoff

logger = logging.getLogger(__name__)

MS_PER_DAY = 86_400_000


class AdmsTerminalSettings(BaseModel):
    """One terminal, by the serial number it sends as ``SN``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    serial_number: str = Field(pattern=r"^[0-9A-Za-z_-]{1,40}$")
    device: Id
    timezone: TimeZoneName | None = Field(
        default=None, description="Zone of the terminal's clock (default: the adapter's timezone)"
    )


class AdmsSettings(AdapterSettings):
    """Settings of the ``zkteco_adms`` adapter."""

    type: Literal["zkteco_adms"] = "zkteco_adms"
    host: str = Field(min_length=1, description="Address to listen on, e.g. the node's LAN address")
    port: int = Field(default=8081, ge=0, le=65_535, description="TCP port, or 0 for any free port")
    timezone: TimeZoneName = "Asia/Jakarta"
    dedup_db_path: Path = Field(description="SQLite file of the keys of emitted punches")
    dedup_keep_days: int = Field(default=400, ge=1, description="Keys of older punches are deleted at start")
    verify_methods: dict[int, VerifyMethod] = Field(
        default_factory=dict, description="Verify codes that differ from the protocol's table, e.g. {2: rfid}"
    )
    push_delay_s: int = Field(default=10, ge=1, le=3_600, description="Delay option sent in the handshake")
    error_delay_s: int = Field(default=30, ge=1, le=3_600, description="ErrorDelay option sent in the handshake")
    max_body_bytes: int = Field(default=4_000_000, ge=1_024)
    rebind_min_s: float = Field(default=1.0, gt=0)
    rebind_max_s: float = Field(default=60.0, gt=0)
    terminals: list[AdmsTerminalSettings] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_terminals(self):
        serials = [terminal.serial_number for terminal in self.terminals]
        duplicates = sorted({serial for serial in serials if serials.count(serial) > 1})
        if duplicates:
            raise ValueError(f"terminal serial numbers {duplicates} appear twice: configure each terminal once")
        if self.rebind_max_s < self.rebind_min_s:
            raise ValueError(f"rebind_max_s={self.rebind_max_s} is below rebind_min_s={self.rebind_min_s}")
        return self


class _EmbeddedServer(uvicorn.Server):
    """uvicorn server that leaves SIGINT and SIGTERM to the agent.

    ``uvicorn.Server.serve`` (uvicorn 0.55) replaces the process's signal handlers while it
    runs. Inside the agent the handlers belong to the agent, which stops adapters by cancelling them.
    """

    def capture_signals(self):
        return contextlib.nullcontext()


class AdmsAdapter(Adapter):
    """Serves the ADMS endpoints and emits one attendance event per new punch."""

    type_name = "zkteco_adms"
    Settings = AdmsSettings

    def __init__(self, settings: AdmsSettings, emit: Emit, stats: AdapterStats) -> None:
        super().__init__(settings, emit, stats)
        self.problems = ProblemLog(stats, logger, settings.id)
        self.terminals = {terminal.serial_number: terminal for terminal in settings.terminals}
        self.verify_methods = {**DEFAULT_VERIFY_METHODS, **settings.verify_methods}
        self.listening = asyncio.Event()
        self.bound_port: int | None = None
        self.store: PunchStore | None = None
        self._lock = asyncio.Lock()
        self.app = self._build_app()

    async def run(self) -> None:
        """Open the punch store, serve HTTP until cancelled, and listen again after a failure."""
        logger.info("%s: starting ADMS adapter for terminals %s", self.settings.id, ", ".join(self.terminals))
        async with self._lock:
            store = await self._open_store()
        pruned = await asyncio.to_thread(store.prune, _now_ms() - self.settings.dedup_keep_days * MS_PER_DAY)
        if pruned:
            logger.info(
                "%s: deleted %d punch keys older than %d days", self.settings.id, pruned, self.settings.dedup_keep_days
            )

        backoff = Backoff(self.settings.rebind_min_s, self.settings.rebind_max_s)
        try:
            while True:
                try:
                    listener = _listen(self.settings.host, self.settings.port)
                except OSError as exc:
                    delay_s = backoff.next_delay_s()
                    self.stats.count_error("listen_failed")
                    logger.error(
                        "%s: listening on %s:%d failed (%s), retrying in %.1f s (attempt %d)",
                        self.settings.id, self.settings.host, self.settings.port, exc.strerror or exc, delay_s,
                        backoff.attempt,
                    )
                    await asyncio.sleep(delay_s)
                    continue

                backoff.reset()
                await self._serve(listener)
                logger.error("%s: ADMS server stopped unexpectedly, listening again", self.settings.id)
        finally:
            store.close()
            self.store = None
            logger.info("%s: ADMS adapter stopped", self.settings.id)

    async def process_records(self, records: list[PunchRecord]) -> int:
        """Emit the punches not emitted before, store their keys, and return how many were emitted.

        Used by the ``ATTLOG`` endpoint and usable for records read with pyzk
        (``attlog.record_from_pyzk``), so both paths share one deduplication.
        """
        async with self._lock:
            store = await self._open_store()
            known = await asyncio.to_thread(store.known, [record.dedup_key for record in records])
            emitted: list[tuple[tuple[str, str, str], int]] = []
            try:
                for record in records:
                    key = record.dedup_key
                    terminal = self.terminals.get(record.serial_number)
                    if terminal is None:
                        message = "record of an unconfigured terminal skipped"
                        self.problems.report("unknown_terminal", record.serial_number, message)
                        continue
                    if key in known:
                        message = f"punch of PIN {record.employee_id} at {key[2]} (device time) was emitted before"
                        self.problems.report("duplicate_record", terminal.device, message, level=logging.INFO)
                        continue

                    known.add(key)
                    reading = self._reading(terminal, record)
                    if reading is None:
                        continue
                    await self.emit(reading)
                    self.stats.saw(terminal.device, reading.payload["ts"])
                    emitted.append((key, reading.payload["ts"]))
            finally:
                await asyncio.to_thread(store.add, emitted)
        return len(emitted)

    async def _open_store(self) -> PunchStore:
        """Open the punch store on first use. Callers hold ``_lock``."""
        if self.store is None:
            self.store = await asyncio.to_thread(PunchStore, self.settings.dedup_db_path)
        return self.store

    def _reading(self, terminal: AdmsTerminalSettings, record: PunchRecord) -> DeviceReading | None:
        zone = ZoneInfo(terminal.timezone or self.settings.timezone)
        ts = local_time_to_ms(record.local_time, zone)
        if not TS_MIN_MS <= ts < TS_MAX_MS:
            self.problems.report(
                "invalid_time",
                terminal.device,
                f"punch of PIN {record.employee_id} at {record.local_time} is outside 2020..2100: "
                "set the terminal clock",
            )
            return None

        self._check_time_offset(terminal, record, zone)
        payload = {
            "device": terminal.device,
            "ts": ts,
            "employee_id": record.employee_id,
            "punch": record.punch.value,
            "verify": record.verify.value,
        }
        return DeviceReading("attendance", payload)

    def _check_time_offset(self, terminal: AdmsTerminalSettings, record: PunchRecord, zone: ZoneInfo) -> None:
        """Count a terminal whose stated UTC offset differs from the configured zone, which is used."""
        if record.time_offset_s is None:
            return
        offset = record.local_time.replace(tzinfo=zone).utcoffset() or timedelta(0)
        if int(offset.total_seconds()) != record.time_offset_s:
            self.problems.report(
                "time_offset_mismatch",
                terminal.device,
                f"terminal states UTC offset {record.time_offset_s:+d} s but zone {zone.key} gives "
                f"{int(offset.total_seconds()):+d} s at {record.local_time}, so the zone is used: "
                "check the terminal's clock settings and the adapter's timezone",
            )

    def _build_app(self) -> Starlette:
        routes = []
        for suffix in ("", ".aspx"):
            routes += [
                Route(f"/iclock/cdata{suffix}", self._cdata, methods=["GET", "POST"]),
                Route(f"/iclock/getrequest{suffix}", self._acknowledge, methods=["GET"]),
                Route(f"/iclock/devicecmd{suffix}", self._acknowledge, methods=["POST"]),
                Route(f"/iclock/ping{suffix}", self._acknowledge, methods=["GET"]),
            ]
        return Starlette(routes=routes)

    async def _cdata(self, request: Request) -> PlainTextResponse:
        terminal, rejection = self._terminal_of(request)
        if rejection is not None:
            return rejection

        if request.method == "GET":
            if "options" in request.query_params:
                logger.info(
                    "%s: handshake of terminal %s (%s)", self.settings.id, terminal.serial_number, terminal.device
                )
                return PlainTextResponse(self._options(terminal))
            return PlainTextResponse("OK")

        table = request.query_params.get("table", "")
        body = await _read_body(request, self.settings.max_body_bytes)
        if body is None:
            message = f"upload larger than {self.settings.max_body_bytes} bytes rejected"
            self.problems.report("body_too_large", terminal.device, message)
            return PlainTextResponse("body too large", status_code=413)
        if table.upper() != "ATTLOG":
            logger.debug(
                "%s: ignored %d bytes of table %s from %s", self.settings.id, len(body), table, terminal.serial_number
            )
            return PlainTextResponse("OK")

        await self._handle_attlog(terminal, body)
        return PlainTextResponse("OK")

    async def _handle_attlog(self, terminal: AdmsTerminalSettings, body: bytes) -> None:
        text = body.decode("utf-8", errors="replace")
        if text.startswith("data="):
            # Some firmware sends the lines form-encoded as the field "data".
            text = parse_qs(text).get("data", [""])[0]

        records: list[PunchRecord] = []
        invalid = 0
        for line in split_attlog_lines(text):
            try:
                records.append(parse_attlog_line(line, terminal.serial_number, self.verify_methods))
            except AttlogError as exc:
                invalid += 1
                self.problems.report("invalid_record", terminal.device, str(exc))

        emitted = await self.process_records(records)
        logger.info(
            "%s: terminal %s pushed %d ATTLOG records: %d new, %d already emitted or skipped, %d invalid",
            self.settings.id, terminal.serial_number, len(records) + invalid, emitted, len(records) - emitted, invalid,
        )

    async def _acknowledge(self, request: Request) -> PlainTextResponse:
        _, rejection = self._terminal_of(request)
        return rejection or PlainTextResponse("OK")

    def _terminal_of(self, request: Request) -> tuple[AdmsTerminalSettings | None, PlainTextResponse | None]:
        serial_number = request.query_params.get("SN", "")
        if not serial_number:
            return None, PlainTextResponse("missing SN query parameter", status_code=400)

        terminal = self.terminals.get(serial_number)
        if terminal is None:
            message = f"request {request.url.path} rejected: add SN to the adapter's terminals"
            self.problems.report("unknown_terminal", serial_number[:40], message)
            return None, PlainTextResponse(f"unknown terminal SN={serial_number[:40]}", status_code=403)
        return terminal, None

    def _options(self, terminal: AdmsTerminalSettings) -> str:
        zone = ZoneInfo(terminal.timezone or self.settings.timezone)
        offset_minutes = int((datetime.now(zone).utcoffset() or timedelta(0)).total_seconds() // 60)
        # Whole hours are sent in hours, half and quarter hours in minutes (e.g. 330), per the protocol.
        time_zone = offset_minutes // 60 if offset_minutes % 60 == 0 else offset_minutes
        lines = [
            f"GET OPTION FROM: {terminal.serial_number}",
            "ATTLOGStamp=None",
            "OPERLOGStamp=9999",
            "ATTPHOTOStamp=None",
            f"ErrorDelay={self.settings.error_delay_s}",
            f"Delay={self.settings.push_delay_s}",
            "TransTimes=00:00;14:05",
            "TransInterval=1",
            "TransFlag=TransData AttLog",
            f"TimeZone={time_zone}",
            "Realtime=1",
            "Encrypt=None",
        ]
        return "\n".join(lines) + "\n"

    async def _serve(self, listener: socket.socket) -> None:
        self.bound_port = listener.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            http="h11",
            ws="none",
            lifespan="off",
            log_config=None,
            access_log=False,
            # Longer than the terminals' upload interval, so an idle connection is rarely closed
            # just as a terminal sends on it (uvicorn's default is 5 s).
            timeout_keep_alive=75,
            timeout_graceful_shutdown=5,
        )
        server = _EmbeddedServer(config)
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        logger.info("%s: ADMS server listening on http://%s:%d", self.settings.id, self.settings.host, self.bound_port)
        self.listening.set()
        try:
            await asyncio.shield(serving)
        except asyncio.CancelledError:
            # Let uvicorn finish the requests in progress, so no terminal gets a reset after its punch was queued.
            server.should_exit = True
            await serving
            raise
        finally:
            self.listening.clear()
            listener.close()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(128)
        listener.setblocking(False)
    except OSError:
        listener.close()
        raise
    return listener


async def _read_body(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None

    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
