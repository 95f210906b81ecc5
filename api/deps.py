"""Shared request dependencies: settings, catalogue, InfluxDB reader, zone, known OPDs."""

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from fastapi import Path, Request

from contract import ID_PATTERN
from contract.catalogue import Catalogue
from ingest.dead_letters import DeadLetterStore
from sqlalchemy.orm import Session, sessionmaker

from .config import ApiSettings
from .errors import ApiError
from .influx import InfluxReader, quote_ident
from .office_hours import OfficeHours


@dataclass(slots=True)
class AppContext:
    """Shared state of the routes, built once at start-up."""

    settings: ApiSettings
    catalogue: Catalogue
    reader: InfluxReader
    zone: ZoneInfo
    dead_letters: DeadLetterStore
    registry: sessionmaker[Session]
    """Sessions of the relational registry (users, nodes, alerts, audit log)."""
    office_hours: OfficeHours | None = None
    """Office hours, holidays and cuti bersama of every OPD; None only in tests of single routes."""


def get_context(request: Request) -> AppContext:
    """Return the application's context."""
    return request.app.state.context


OpdPath = Path(..., pattern=ID_PATTERN, max_length=64, description="OPD id, e.g. dinkes")


async def ensure_known_opd(context: AppContext, opd: str) -> None:
    """Raise 404 unless ``opd`` is in the catalogue or has data in InfluxDB."""
    if context.catalogue.opd(opd) is not None:
        return
    if opd in await seen_opds(context):
        return
    raise ApiError(404, "opd_not_found", opd=opd)


async def seen_opds(context: AppContext) -> set[str]:
    """Return the OPD ids that appear as a tag value in any measurement."""
    answers = await context.reader.query(f"SHOW TAG VALUES WITH KEY = {quote_ident('opd')}")
    return {row["value"] for series in answers[0] for row in series.rows}
