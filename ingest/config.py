"""Settings of the ingest service, read once from ``SMARTOFFICE_*`` environment variables."""

from pathlib import Path

from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contract import id_problem


def read_secret_file(variable: str, path: Path) -> SecretStr:
    """Return the first line of ``path``, the file that the ``<variable>_FILE`` setting names.

    Docker secrets and the credential volumes of docker-compose.yml hand secrets over as files.

    Raises:
        ValueError: the file cannot be read, or its first line is empty.
    """
    try:
        first_line = path.read_text(encoding="utf-8").partition("\n")[0].strip()
    except OSError as exc:
        raise ValueError(f"{variable}_FILE={str(path)!r} cannot be read: {exc.strerror}") from None
    if not first_line:
        raise ValueError(f"{variable}_FILE={str(path)!r}: the first line is empty, but it must contain the secret")
    return SecretStr(first_line)


def check_secret_file(path: Path | None, info: ValidationInfo) -> Path | None:
    """Validate a ``<name>_file`` field: readable, and not set together with its field ``<name>``.

    A field validator runs this, not a model validator, because pydantic shows the failing
    input in the error. Here that is the path, while a model validator's input contains every
    setting, secrets included.
    """
    if path is None:
        return None
    secret_field = info.field_name.removesuffix("_file")
    variable = f"SMARTOFFICE_{secret_field.upper()}"
    if info.data.get(secret_field) is not None:
        raise ValueError(f"set {variable} or {variable}_FILE, not both")
    read_secret_file(variable, path)
    return path


class IngestSettings(BaseSettings):
    """Every option of the ingest service, with its default and unit."""

    model_config = SettingsConfigDict(env_prefix="SMARTOFFICE_", extra="ignore")

    mqtt_host: str = Field("127.0.0.1", description="Broker host name or address")
    mqtt_port: int = Field(1883, ge=1, le=65535, description="Broker TCP port")
    mqtt_username: str | None = Field(None, description="Broker user name; anonymous when unset")
    mqtt_password: SecretStr | None = Field(None, description="Broker password")
    mqtt_password_file: Path | None = Field(
        None, description="File whose first line is the broker password; replaces mqtt_password"
    )
    mqtt_client_id: str = Field(
        "smartoffice-ingest-1",
        description="MQTT client id; it must stay the same across restarts, or the broker drops the session",
    )
    mqtt_share_group: str | None = Field(
        None,
        description="Shared-subscription group ($share/<group>/...) for several ingest replicas; unset: a plain "
        "subscription. Mosquitto 2.0.11 does not restore shared subscriptions after a restart, see docs/delivery.md",
    )
    mqtt_keepalive_s: int = Field(30, ge=5, description="MQTT keepalive interval, s")

    influx_url: str = Field("http://127.0.0.1:8086", description="Base URL of InfluxDB's v1 HTTP API")
    influx_db: str = Field("smartoffice", description="InfluxDB database")
    influx_username: str | None = Field(None, description="InfluxDB user name; no authentication when unset")
    influx_password: SecretStr | None = Field(None, description="InfluxDB password")
    influx_timeout_s: float = Field(10.0, gt=0, description="Timeout of one /write request, s")
    influx_create_db: bool = Field(True, description="Create the database at start-up when it is missing")

    batch_size: int = Field(
        5_000,
        ge=1,
        le=100_000,
        description="Messages per /write request, at most; keep it at most half the broker's max_inflight_messages",
    )
    max_unacknowledged: int = Field(
        40_000,
        ge=2,
        description="Messages read but not yet stored at which reading pauses; it bounds memory (about 1 KB each)",
    )
    max_pause_s: float = Field(
        15.0,
        gt=0,
        description="Reads paused this long mean InfluxDB is down, so disconnect until it responds; keep below the keepalive, s",
    )
    flush_interval_s: float = Field(0.2, gt=0, le=60, description="Maximum time a point waits for its batch, s")
    write_retry_max_s: float = Field(30.0, gt=0, description="Maximum pause between write retries, s")

    ack_after_write: bool = Field(
        True,
        description="Acknowledge a message only once stored; false loses messages on a crash (benchmarks only)",
    )
    max_clock_ahead_s: float = Field(
        300.0, gt=0, description="A ts further ahead of the receive time is replaced by the receive time and flagged, s"
    )
    max_age_days: float = Field(
        90.0, gt=0, description="A ts older than this goes to the dead-letter store (reason too_old), days"
    )
    dead_letter_path: Path = Field(Path("dead-letters.sqlite3"), description="SQLite file of the dead-letter store")
    dead_letter_max_entries: int = Field(
        100_000, ge=1, description="Entries kept in the dead-letter store; the oldest are deleted beyond it"
    )

    pseudonymize: bool = Field(
        True,
        description="Store attendance employee ids only as keyed pseudonyms; false stores them as sent (development only)",
    )
    pseudonym_key: SecretStr | None = Field(
        None, description="HMAC key of the employee pseudonyms, at least 32 characters; the API must use the same key"
    )
    pseudonym_key_file: Path | None = Field(None, description="File whose first line is the pseudonym key")

    metrics_host: str = Field("127.0.0.1", description="Address of the /metrics endpoint")
    metrics_port: int = Field(0, ge=0, le=65535, description="Port of the /metrics endpoint; 0 turns it off")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Logging level")

    @field_validator("mqtt_share_group")
    @classmethod
    def _group_is_an_id(cls, value: str | None) -> str | None:
        if not value:
            return None
        problem = id_problem(value)
        if problem:
            raise ValueError(f"SMARTOFFICE_MQTT_SHARE_GROUP: {problem}")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("mqtt_password_file")
    @classmethod
    def _password_file_alone(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        return check_secret_file(path, info)

    @model_validator(mode="after")
    def _read_password_file(self) -> "IngestSettings":
        if self.mqtt_password_file is not None:
            self.mqtt_password = read_secret_file("SMARTOFFICE_MQTT_PASSWORD", self.mqtt_password_file)
        return self
