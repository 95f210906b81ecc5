"""Health of the API and of the broker and InfluxDB behind it."""

import logging
import time
import uuid
from typing import Annotated

import aiomqtt
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from ..deps import AppContext, get_context
from ..errors import Unavailable
from ..schemas import CheckResult, Health

logger = logging.getLogger(__name__)
router = APIRouter(tags=["health"])

_MQTT_TIMEOUT_S = 3.0


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
async def read_health(context: Annotated[AppContext, Depends(get_context)]) -> JSONResponse:
    """Check that Mosquitto accepts an MQTT connection and InfluxDB responds to a ping, else 503."""
    checks = {"mqtt": await _check_mqtt(context), "influxdb": await _check_influx(context)}
    healthy = all(check.ok for check in checks.values())
    body = Health(status="ok" if healthy else "degraded", timezone=context.settings.timezone, checks=checks)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if healthy else 503)


async def _check_mqtt(context: AppContext) -> CheckResult:
    settings = context.settings
    started = time.perf_counter()
    client = aiomqtt.Client(
        settings.mqtt_host,
        settings.mqtt_port,
        identifier=f"smartoffice-api-health-{uuid.uuid4().hex[:8]}",
        username=settings.mqtt_username,
        password=settings.mqtt_password.get_secret_value() if settings.mqtt_password else None,
        timeout=_MQTT_TIMEOUT_S,
    )
    try:
        async with client:
            pass
    except aiomqtt.MqttError as exc:
        logger.warning("health check: broker %s:%d failed: %s", settings.mqtt_host, settings.mqtt_port, exc)
        return CheckResult(ok=False, detail=f"MQTT connect failed: {exc}", latency_ms=_elapsed_ms(started))
    return CheckResult(ok=True, detail="MQTT connect accepted", latency_ms=_elapsed_ms(started))


async def _check_influx(context: AppContext) -> CheckResult:
    started = time.perf_counter()
    try:
        await context.reader.check()
    except Unavailable as exc:
        logger.warning("health check: %s", exc.reason)
        return CheckResult(ok=False, detail=exc.reason, latency_ms=_elapsed_ms(started))
    return CheckResult(ok=True, detail="ping succeeded", latency_ms=_elapsed_ms(started))


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
