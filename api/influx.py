"""Read-only InfluxQL client for the v1 ``/query`` endpoint.

Statements are built by the API from validated ids and numbers only; ``quote_ident`` and
``quote_string`` escape what goes inside quotes all the same.
"""

import logging
from dataclasses import dataclass, field

import httpx

from ingest.influx_http import InfluxHttpClient

from .errors import Unavailable

logger = logging.getLogger(__name__)


class QueryFailed(Exception):
    """Raised when InfluxDB rejects a statement, which is a bug in the API."""


@dataclass(slots=True)
class Series:
    """One series of an InfluxQL result: rows as dictionaries, with the GROUP BY tags."""

    name: str
    tags: dict[str, str] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)


def quote_ident(name: str) -> str:
    """Quote an identifier (measurement, tag or field key)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    """Quote a string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class InfluxReader(InfluxHttpClient):
    """Runs InfluxQL statements against one database, with times as epoch milliseconds."""

    async def check(self) -> None:
        """Check that InfluxDB responds to ``/ping``.

        Raises:
            Unavailable: no response, or not 204.
        """
        if not await self.ping():
            raise Unavailable("influx_unavailable", f"ping of {self.url} failed or did not return 204")

    async def query(self, statements: str) -> list[list[Series]]:
        """Run one or more ``;``-separated statements; return the series of each statement.

        A missing database or measurement yields empty results, not an error.

        Raises:
            Unavailable: InfluxDB cannot be reached or responded with 5xx.
            QueryFailed: InfluxDB rejected a statement.
        """
        try:
            response = await self._client.post(
                "/query", data={"db": self.database, "q": statements, "epoch": "ms"}
            )
        except httpx.HTTPError as exc:
            raise Unavailable("influx_unavailable", f"query to {self.url} failed: {exc!r}") from None

        if response.status_code >= 500:
            raise Unavailable("influx_unavailable", f"InfluxDB responded with HTTP {response.status_code}: {response.text[:200]}")
        body = response.json()
        if response.status_code != 200 or "error" in body:
            raise QueryFailed(f"InfluxDB rejected {statements[:300]!r}: {body.get('error')}")

        answers = []
        for result in body.get("results", []):
            error = result.get("error")
            if error and "database not found" not in error:
                raise QueryFailed(f"InfluxDB rejected {statements[:300]!r}: {error}")
            answers.append([_series(raw) for raw in result.get("series", [])])
        return answers


def _series(raw: dict) -> Series:
    columns = raw["columns"]
    rows = [dict(zip(columns, values)) for values in raw.get("values", [])]
    return Series(name=raw["name"], tags=raw.get("tags", {}), rows=rows)
