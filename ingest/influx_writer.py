"""Batched writes of line protocol to InfluxDB's v1 ``/write`` endpoint.

Exceptions::

    Exception
    └── WriteError
        └── InfluxUnavailable   nothing was written; retry later (connection refused, timeout,
                                5xx, authentication, database being created)

A ``400`` response is not an exception: ``write`` isolates the refused points and returns them
with InfluxDB's reason, after the rest of the batch is stored.
"""

import logging
import time
from dataclasses import dataclass, field

import httpx

from .influx_http import InfluxHttpClient

logger = logging.getLogger(__name__)

class WriteError(Exception):
    """Base of the writer's errors."""


class InfluxUnavailable(WriteError):
    """Raised when InfluxDB did not store the batch; the caller keeps it and retries."""


@dataclass(frozen=True, slots=True)
class RejectedPoint:
    """A line that InfluxDB refused, with its position in the batch and InfluxDB's reason."""

    index: int
    line: str
    error: str


@dataclass(slots=True)
class WriteResult:
    """Outcome of writing one batch: how many points were stored and which were refused."""

    written: int = 0
    rejected: list[RejectedPoint] = field(default_factory=list)
    requests: int = 0
    duration_s: float = 0.0


class InfluxWriter(InfluxHttpClient):
    """Writes line protocol to one InfluxDB database, reusing its connections."""

    async def ensure_database(self) -> None:
        """Create the database when it is missing (``CREATE DATABASE`` is idempotent).

        Raises:
            InfluxUnavailable: InfluxDB did not respond or rejected the statement.
        """
        quoted = self.database.replace("\\", "\\\\").replace('"', '\\"')
        response = await self._request("POST", "/query", data={"q": f'CREATE DATABASE "{quoted}"'})
        if response.status_code != 200:
            raise InfluxUnavailable(
                f"CREATE DATABASE {self.database!r} failed with HTTP {response.status_code}: {_error_text(response)}"
            )
        logger.info("database %r is ready at %s", self.database, self.url)

    async def write(self, lines: list[str]) -> WriteResult:
        """Write ``lines`` (nanosecond timestamps), isolating the points InfluxDB refuses.

        InfluxDB 1.x returns ``400`` both when it wrote the good points of a batch and when it
        wrote none of them (a field type conflict inside one batch), and does not always say
        which line was bad. So a refused batch is split in halves and each half written again
        until every refused point stands alone. Points that were already written are written
        again with the same series and time, which changes nothing.

        Raises:
            InfluxUnavailable: InfluxDB could not be reached or failed; the points already
                written stay written, and the caller sends the whole batch again later.
        """
        result = WriteResult()
        started = time.perf_counter()
        pending = [(0, lines)]
        while pending:
            offset, chunk = pending.pop()
            error = await self._post(chunk)
            result.requests += 1
            if error is None:
                result.written += len(chunk)
            elif len(chunk) == 1:
                result.rejected.append(RejectedPoint(offset, chunk[0], error))
            else:
                middle = len(chunk) // 2
                pending.append((offset + middle, chunk[middle:]))
                pending.append((offset, chunk[:middle]))
        result.duration_s = time.perf_counter() - started
        return result

    async def _post(self, lines: list[str]) -> str | None:
        """Send one ``/write`` request; return None when stored, InfluxDB's error on ``400``."""
        response = await self._request(
            "POST", "/write", params={"db": self.database, "precision": "ns"}, content="\n".join(lines).encode()
        )
        if response.status_code == 204:
            return None

        error = _error_text(response)
        if response.status_code == 400:
            return error

        if response.status_code == 404 and "database not found" in error:
            await self.ensure_database()
            raise InfluxUnavailable(f"database {self.database!r} was missing and has been created; write again")

        raise InfluxUnavailable(f"InfluxDB responded with HTTP {response.status_code} to /write: {error}")

    async def _request(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            return await self._client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise InfluxUnavailable(f"InfluxDB at {self.url} timed out on {path}") from None
        except httpx.TransportError as exc:
            raise InfluxUnavailable(f"cannot reach InfluxDB at {self.url}: {exc}") from None


def _error_text(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", response.text))[:500]
    except ValueError:
        return response.text[:500]
