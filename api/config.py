"""Settings of the API service, read once from ``SMARTOFFICE_*`` environment variables."""

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_CATALOGUE = Path(__file__).resolve().parent.parent / "config" / "regency.yaml"
DEFAULT_OFFICE_HOURS = Path(__file__).resolve().parent.parent / "config" / "office_hours.yaml"
DEFAULT_TARIFFS = Path(__file__).resolve().parent.parent / "config" / "tariffs.yaml"


class ApiSettings(BaseSettings):
    """Every option of the API service, with its default and unit."""

    model_config = SettingsConfigDict(env_prefix="SMARTOFFICE_", extra="ignore")

    api_host: str = Field("127.0.0.1", description="Address the HTTP server binds to")
    api_port: int = Field(8000, ge=1, le=65535, description="HTTP port")

    mqtt_host: str = Field("127.0.0.1", description="Broker host name or address, for the health check and the live view")
    mqtt_port: int = Field(1883, ge=1, le=65535, description="Broker TCP port")
    mqtt_username: str | None = Field(None, description="Broker user name for replays and the live view; anonymous when unset")
    mqtt_password: SecretStr | None = Field(None, description="Broker password for replays and the live view")

    influx_url: str = Field("http://127.0.0.1:8086", description="Base URL of InfluxDB's v1 HTTP API")
    influx_db: str = Field("smartoffice", description="InfluxDB database")
    influx_username: str | None = Field(None, description="InfluxDB user name; no authentication when unset")
    influx_password: SecretStr | None = Field(None, description="InfluxDB password")
    influx_timeout_s: float = Field(10.0, gt=0, description="Timeout of one query, s")

    timezone: str = Field("Asia/Jakarta", description="IANA zone for day, week and month boundaries (WIB)")
    catalogue_file: Path = Field(DEFAULT_CATALOGUE, description="YAML catalogue of OPDs, rooms, nodes and devices")
    tariffs_file: Path = Field(
        DEFAULT_TARIFFS, description="YAML table of electricity tariff classes, prices and the class of each meter"
    )
    office_hours_file: Path = Field(
        DEFAULT_OFFICE_HOURS, description="YAML office hours, cuti bersama dates and Ramadan periods of the recap"
    )
    latest_lookback_days: int = Field(
        30, ge=1, le=3650, description="How far back a 'latest reading' query looks, days"
    )
    device_offline_s: int = Field(
        900, ge=1, description="Age of a device's newest point after which the overview counts it as offline, s"
    )
    max_series_points: int = Field(10_000, ge=10, description="Most buckets one time-series request may return")
    live_queue_size: int = Field(
        1_000, ge=1, description="Maximum events queued per live-view client. A slower client loses its oldest events"
    )
    live_keepalive_s: float = Field(15.0, gt=0, description="Interval of the live view's keep-alive comment, s")

    database_url: str = Field(
        "sqlite:///registry.sqlite3",
        description="SQLAlchemy URL of the registry: sqlite:///path or postgresql+psycopg://user:password@host/db",
    )

    dead_letter_path: Path = Field(
        Path("dead-letters.sqlite3"), description="SQLite file of the ingest service's dead-letter store"
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Logging level")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"SMARTOFFICE_TIMEZONE={value!r} is not an IANA time zone, e.g. Asia/Jakarta") from None
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value
