"""``GET /api/v1/meta``: deployment facts for the dashboard, such as the regency and the time zone."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, Field

from .. import overview
from ..deps import AppContext, get_context
from ..messages import DEFAULT_LANGUAGE, LANGUAGES
from ..monitor.rules import COMFORT_MEASUREMENTS, AlertRules, comfort_limits

router = APIRouter(prefix="/api/v1", tags=["meta"])

FEATURE_PATHS = {
    "auth": "/api/v1/auth/token",
    "alerts": "/api/v1/alerts",
    "nodes": "/api/v1/nodes",
}
"""Route whose presence turns each optional dashboard screen on."""


class Regency(BaseModel):
    """The regency (kabupaten) of the deployment, from the catalogue."""

    id: str
    name: str
    province: str


class ComfortLimit(BaseModel):
    """A comfort limit of one room measurement: the warning level that the overview's worst room and the alerts use."""

    field: str = Field(description="co2_ppm, temperature_c or humidity_pct")
    side: Literal[">", "<"] = Field(description="'>' when a value above the limit is uncomfortable, '<' when one below it is")
    limit: float


class Meta(BaseModel):
    """Deployment facts a client needs to label and format the API's data."""

    regency: Regency
    timezone: str = Field(description="IANA zone of every local day, week and month, e.g. Asia/Jakarta")
    timezone_abbreviation: str = Field(description="Abbreviation of the zone now, e.g. WIB")
    utc_offset: str = Field(description="Offset of the zone from UTC now, e.g. +07:00")
    languages: list[str] = Field(description="Languages of the API's messages and of the dashboard")
    default_language: str
    device_offline_s: int = Field(description="Age of a device's newest point after which it counts as offline, s")
    comfort: list[ComfortLimit] = Field(description="Comfort limits of every OPD without limits of its own")
    comfort_by_opd: dict[str, list[ComfortLimit]] = Field(
        description="Comfort limits of the OPDs that the alert rules give limits of their own"
    )
    features: dict[str, bool] = Field(
        description="Optional routes this API serves: auth (login), alerts and nodes (edge node configuration)"
    )


@router.get("/meta", response_model=Meta)
async def read_meta(request: Request, context: Annotated[AppContext, Depends(get_context)]) -> Meta:
    """Return the regency, the time zone with its abbreviation and the optional features of this API."""
    now = datetime.now(context.zone)
    regency = context.catalogue.regency
    paths = _route_paths(request.app)
    rules = getattr(request.app.state, "alert_rules", None)

    return Meta(
        regency=Regency(id=regency.id, name=regency.name, province=regency.province),
        timezone=context.settings.timezone,
        timezone_abbreviation=now.tzname() or context.settings.timezone,
        utc_offset=_format_offset(now),
        languages=list(LANGUAGES),
        default_language=DEFAULT_LANGUAGE,
        device_offline_s=context.settings.device_offline_s,
        comfort=_limits(_default_limits(rules)),
        comfort_by_opd={opd: _limits(comfort_limits(rules, opd)) for opd in rules.opds} if rules else {},
        features={name: path in paths for name, path in FEATURE_PATHS.items()},
    )


def _format_offset(moment: datetime) -> str:
    """Return the UTC offset of ``moment`` as ``+HH:MM``."""
    minutes = int(moment.utcoffset().total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def _route_paths(app: FastAPI) -> set[str]:
    """Return the path of every route of ``app``, those of included routers too.

    FastAPI 0.165 keeps an included router as one entry of ``app.routes``, so the paths of
    its routes come from ``iter_route_contexts``.
    """
    return {context.path for context in iter_route_contexts(app.routes)}


def _default_limits(rules: AlertRules | None) -> tuple[tuple[str, str, float], ...]:
    """Return the warning levels of the rules' defaults, or the overview's built-in limits without rules."""
    if rules is None:
        return overview.DEFAULT_LIMITS
    limits = []
    for measurement in COMFORT_MEASUREMENTS:
        rule = rules.comfort.get(measurement)
        if rule is not None and rule.high is not None:
            limits.append((measurement, ">", rule.high.warning))
        if rule is not None and rule.low is not None:
            limits.append((measurement, "<", rule.low.warning))
    return tuple(limits)


def _limits(limits: tuple[tuple[str, str, float], ...]) -> list[ComfortLimit]:
    return [ComfortLimit(field=field, side=side, limit=limit) for field, side, limit in limits]
