"""Settings of the API service, read once from ``SMARTOFFICE_*`` environment variables."""

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.config import check_secret_file, read_secret_file

DEFAULT_CATALOGUE = Path(__file__).resolve().parent.parent / "config" / "regency.yaml"
DEFAULT_OFFICE_HOURS = Path(__file__).resolve().parent.parent / "config" / "office_hours.yaml"
DEFAULT_TARIFFS = Path(__file__).resolve().parent.parent / "config" / "tariffs.yaml"
DEFAULT_ALERT_RULES = Path(__file__).resolve().parent.parent / "config" / "alert_rules.yaml"


class ApiSettings(BaseSettings):
    """Every option of the API service, with its default and unit."""

    model_config = SettingsConfigDict(env_prefix="SMARTOFFICE_", extra="ignore")

    api_host: str = Field("127.0.0.1", description="Address the HTTP server binds to")
    api_port: int = Field(8000, ge=1, le=65535, description="HTTP port")

    mqtt_host: str = Field("127.0.0.1", description="Broker host name or address, for the health check and the live view")
    mqtt_port: int = Field(1883, ge=1, le=65535, description="Broker TCP port")
    mqtt_username: str | None = Field(None, description="Broker user name for replays and the live view; anonymous when unset")
    mqtt_password: SecretStr | None = Field(None, description="Broker password for replays and the live view")
    mqtt_password_file: Path | None = Field(
        None, description="File whose first line is the broker password; replaces mqtt_password"
    )
    broker_admin_username: str = Field(
        "smartoffice-admin", description="User name of the broker's dynsec administrator, for node provisioning"
    )
    broker_admin_password: SecretStr | None = Field(
        None, description="Password of the dynsec administrator. Unset, the node credential routes respond 503"
    )
    broker_admin_password_file: Path | None = Field(
        None, description="File whose first line is the dynsec administrator's password; replaces broker_admin_password"
    )
    node_broker_host: str | None = Field(
        None, description="Broker address given to provisioned nodes (default: mqtt_host)"
    )
    node_broker_port: int | None = Field(
        None, ge=1, le=65535, description="Broker port given to provisioned nodes (default: mqtt_port)"
    )
    node_broker_tls: bool = Field(False, description="Whether provisioned nodes must connect with TLS")

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
    alert_rules_file: Path = Field(
        DEFAULT_ALERT_RULES, description="YAML comfort limits, offline timeouts and expected reading intervals"
    )
    monitor_enabled: bool = Field(
        True, description="Run the alert monitor in this process; turn it on in exactly one API process"
    )
    monitor_check_interval_s: float = Field(15.0, gt=0, description="Interval of the offline and office-hours check, s")
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

    dead_letter_path: Path = Field(
        Path("dead-letters.sqlite3"), description="SQLite file of the ingest service's dead-letter store"
    )

    database_url: str = Field(
        "sqlite:///registry.sqlite3",
        description="SQLAlchemy URL of the registry (users, tokens, employees, audit log); migrated at start-up",
    )

    ssl_certfile: Path | None = Field(None, description="PEM certificate chain of the API's HTTPS listener; unset: plain HTTP")
    ssl_keyfile: Path | None = Field(None, description="PEM private key of ssl_certfile")

    auth_enabled: bool = Field(
        True, description="Require a login or an API token; false lets every request act as admin (development only)"
    )
    jwt_secret: SecretStr | None = Field(
        None,
        description="HMAC key of the access tokens (HS256), at least 32 characters; unset: a random key per process, "
        "so tokens end with a restart",
    )
    jwt_secret_file: Path | None = Field(None, description="File whose first line is the access-token key")
    access_token_ttl_s: int = Field(3600, ge=60, le=86_400, description="Lifetime of an access token, s")
    api_token_max_days: int = Field(365, ge=1, le=3650, description="Maximum lifetime of an integration token, days")

    login_max_failures: int = Field(
        5, ge=1, le=100, description="Failed logins in a row after which a user name is locked"
    )
    login_lockout_s: int = Field(900, ge=1, description="How long a locked user name stays locked, s")
    login_address_max_failures: int = Field(
        20, ge=1, description="Failed logins from one client address within login_address_window_s before it is throttled"
    )
    login_address_window_s: int = Field(300, ge=1, description="Window of the per-address login throttle, s")

    pseudonymize: bool = Field(
        True, description="Attendance employee ids are keyed pseudonyms; false only when the ingest stores them as sent"
    )
    pseudonym_key: SecretStr | None = Field(
        None, description="HMAC key of the employee pseudonyms; the same key as the ingest service's"
    )
    pseudonym_key_file: Path | None = Field(None, description="File whose first line is the pseudonym key")
    attendance_retention_days: int = Field(
        400,
        ge=0,
        description="Attendance points older than this are deleted from InfluxDB, days; 0 keeps them forever",
    )
    attendance_retention_interval_s: float = Field(
        21_600, gt=0, description="Interval of the attendance retention run in the API process, s"
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

    @field_validator("attendance_retention_days")
    @classmethod
    def _retention_covers_a_recap(cls, value: int) -> int:
        # A recap spans up to 62 days, so a shorter retention would empty recaps people still need.
        if 0 < value < 62:
            raise ValueError(
                f"SMARTOFFICE_ATTENDANCE_RETENTION_DAYS={value} is shorter than the 62 days of a recap; use 62 or more, or 0"
            )
        return value

    @field_validator("mqtt_password_file", "broker_admin_password_file")
    @classmethod
    def _password_file_alone(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        return check_secret_file(path, info)

    @model_validator(mode="after")
    def _read_password_files(self) -> "ApiSettings":
        if self.mqtt_password_file is not None:
            self.mqtt_password = read_secret_file("SMARTOFFICE_MQTT_PASSWORD", self.mqtt_password_file)
        if self.broker_admin_password_file is not None:
            self.broker_admin_password = read_secret_file(
                "SMARTOFFICE_BROKER_ADMIN_PASSWORD", self.broker_admin_password_file
            )
        return self

    @model_validator(mode="after")
    def _tls_pair(self) -> "ApiSettings":
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("set both SMARTOFFICE_SSL_CERTFILE and SMARTOFFICE_SSL_KEYFILE, or neither")
        return self

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value
