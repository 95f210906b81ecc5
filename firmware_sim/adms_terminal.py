"""Simulated ZKTeco attendance terminal that pushes punches to an ADMS server over HTTP (httpx).

It behaves like the terminal firmware: a handshake (``GET /iclock/cdata?options=all``),
``ATTLOG`` uploads as TAB-separated lines with CRLF endings, and command polls. When the
server does not respond to an upload within ``timeout_s``, the terminal sends the same batch
again, which is how duplicate uploads happen in the field.
"""

import logging
from dataclasses import dataclass
from datetime import datetime

import httpx

logger = logging.getLogger(__name__)

DEVICE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True, slots=True)
class SimulatedPunch:
    """One punch as the terminal stores it: PIN, local time, state code and verify code."""

    pin: str
    local_time: datetime
    status: int = 0
    verify: int = 1
    extended: bool = False
    """Add the extended fields of newer firmware (MaskFlag, temperatures, TimeOffset)."""

    time_offset_s: int = 25_200

    def attlog_line(self) -> str:
        """Format the punch as one ``ATTLOG`` record, without line ending."""
        time_text = self.local_time.strftime(DEVICE_TIME_FORMAT)
        fields = [self.pin, time_text, str(self.status), str(self.verify), "0", "0", "0"]
        if self.extended:
            fields += ["0", "36.4", "36.4", f"{self.time_offset_s:+d}", ""]
        return "\t".join(fields)


class AdmsTerminal:
    """A terminal with serial number ``serial_number`` talking to the ADMS server at ``base_url``."""

    def __init__(self, base_url: str, serial_number: str, timeout_s: float = 5.0, max_attempts: int = 3) -> None:
        self.base_url = base_url.rstrip("/")
        self.serial_number = serial_number
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.stamp = 9999
        self.uploads = 0
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        """Open the HTTP connection pool."""
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout_s)

    async def stop(self) -> None:
        """Close the HTTP connection pool."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> "AdmsTerminal":
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()

    async def handshake(self) -> dict[str, str]:
        """Request the terminal options and return them as a dict (``TimeZone``, ``Delay``, ...)."""
        response = await self._http().get(
            "/iclock/cdata", params={"SN": self.serial_number, "options": "all", "pushver": "2.4.1", "language": "69"}
        )
        response.raise_for_status()
        options = {}
        for line in response.text.splitlines():
            key, separator, value = line.partition("=")
            if separator:
                options[key.strip()] = value.strip()
        return options

    async def push_attlog(self, punches: list[SimulatedPunch | str]) -> httpx.Response:
        """Upload one ``ATTLOG`` batch, sending it again after a timeout or a broken connection,
        up to ``max_attempts`` times.

        Items may be ``SimulatedPunch`` objects or raw record lines (to send malformed ones). A
        broken connection is the usual race of HTTP keep-alive: the server closed an idle
        connection just as the terminal sent on it.

        Raises:
            httpx.TransportError: every attempt timed out or lost its connection.
        """
        lines = [punch.attlog_line() if isinstance(punch, SimulatedPunch) else punch for punch in punches]
        body = "".join(line + "\r\n" for line in lines).encode()
        params = {"SN": self.serial_number, "table": "ATTLOG", "Stamp": str(self.stamp)}

        for attempt in range(1, self.max_attempts + 1):
            self.uploads += 1
            try:
                response = await self._http().post(
                    "/iclock/cdata", params=params, content=body, headers={"Content-Type": "text/plain"}
                )
            except httpx.TransportError as exc:
                if attempt == self.max_attempts:
                    raise
                logger.info(
                    "terminal %s: upload failed (%s), sending the batch again (attempt %d)",
                    self.serial_number,
                    type(exc).__name__,
                    attempt + 1,
                )
                continue
            return response
        raise AssertionError("unreachable: the loop returns or raises")

    async def poll_commands(self) -> str:
        """Poll for server commands and return the reply text (``OK`` when there are none)."""
        response = await self._http().get("/iclock/getrequest", params={"SN": self.serial_number})
        response.raise_for_status()
        return response.text

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError(f"terminal {self.serial_number} is not started: call start() or use 'async with'")
        return self._client
