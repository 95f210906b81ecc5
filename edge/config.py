"""Configuration of one edge agent: a YAML file, with ``SMARTOFFICE_EDGE_*`` environment overrides.

The file names the node, the central broker, the durable queue and the initial node settings
(see ``edge/example.yaml``). An environment variable overrides one key of the file: nested
keys are joined with ``__``, for example ``SMARTOFFICE_EDGE_BROKER__HOST`` or
``SMARTOFFICE_EDGE_QUEUE__MAX_ROWS``. Nothing deeper in the agent reads the environment.

Exceptions::

    ValueError
    └── ConfigError      the file is missing, unreadable or invalid, and the message names the key
"""

from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contract import ID_PATTERN, Id, id_problem

ENV_PREFIX = "SMARTOFFICE_EDGE_"


class ConfigError(ValueError):
    """Raised when the agent's configuration cannot be used. The message names the key and the fix."""


class TlsConfig(BaseModel):
    """TLS towards the central broker, on when this section is present."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: Path | None = Field(None, description="CA bundle (PEM) that signed the broker's certificate. Unset: the system CAs")
    cert_file: Path | None = Field(None, description="Client certificate (PEM) of this node, for brokers that require one")
    key_file: Path | None = Field(None, description="Private key (PEM) of the client certificate")
    insecure: bool = Field(False, description="Skip the check of the broker's host name, for testing only")

    @model_validator(mode="after")
    def _files_exist(self) -> "TlsConfig":
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("broker.tls: set both cert_file and key_file, or neither")
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"broker.tls.{name} {str(path)!r} is not a file: check the path")
        return self


class BrokerConfig(BaseModel):
    """Connection to the central MQTT broker, as this node's own MQTT identity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(description="Host name or address of the central broker")
    port: int = Field(1883, ge=1, le=65535, description="TCP port, usually 8883 for MQTT over TLS")
    username: str | None = Field(None, description="MQTT user name of this node. Unset: anonymous")
    password: SecretStr | None = Field(None, description="MQTT password. A password_file keeps it out of the configuration")
    password_file: Path | None = Field(None, description="File whose first line is the MQTT password")
    client_id: str | None = Field(
        None, description="MQTT client id, by default edge-<opd>-<node>. It must stay the same, or the broker drops the session"
    )
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keepalive interval, s")
    connect_timeout_s: float = Field(10.0, gt=0, description="Time to wait for the broker's CONNACK, s")
    publish_timeout_s: float = Field(
        60.0, gt=0, description="Time to wait for the PUBACK of one message before the connection is dropped and rebuilt, s"
    )
    reconnect_min_s: float = Field(1.0, gt=0, description="First pause before a reconnect, which doubles on each failure, s")
    reconnect_max_s: float = Field(60.0, gt=0, description="Maximum pause between reconnects, s")
    max_inflight_messages: int = Field(
        100, ge=1, le=65_000, description="QoS 1 messages sent and not yet acknowledged by the broker, at most"
    )
    tls: TlsConfig | None = Field(None, description="TLS settings. Unset: plain TCP")

    @model_validator(mode="after")
    def _one_password_source(self) -> "BrokerConfig":
        if self.password is not None and self.password_file is not None:
            raise ValueError("broker: set password or password_file, not both")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError(
                f"broker.reconnect_max_s={self.reconnect_max_s} is below reconnect_min_s={self.reconnect_min_s}"
            )
        return self

    def resolved_password(self) -> str | None:
        """Return the password from ``password`` or the first line of ``password_file``.

        Raises:
            ConfigError: the password file cannot be read.
        """
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is None:
            return None

        try:
            text = self.password_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"broker.password_file {str(self.password_file)!r} cannot be read ({exc.strerror}): "
                "check the path and that the agent's user may read it"
            ) from None
        lines = text.splitlines()
        return lines[0] if lines else ""


class QueueConfig(BaseModel):
    """The durable queue (outbox) of readings waiting for the central broker."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path | None = Field(None, description="SQLite file of the queue, by default <data_dir>/outbox.sqlite3")
    max_rows: int = Field(1_000_000, ge=100, description="Maximum queued readings. The oldest are dropped beyond it")
    max_bytes: int = Field(
        200_000_000, ge=100_000, description="Maximum sum of queued payload sizes, bytes. The oldest are dropped beyond it"
    )
    max_age_days: float = Field(7.0, gt=0, description="Queued readings older than this are dropped, days")
    synchronous: Literal["FULL", "NORMAL"] = Field(
        "FULL",
        description="SQLite synchronous mode. FULL survives a power loss after emit returned. NORMAL may lose the "
        "last commits on power loss but needs fewer fsyncs",
    )


class EdgeConfig(BaseSettings):
    """Every option of one edge agent, with its default and unit."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid")

    opd: Id = Field(description="Id of the OPD that owns this office")
    node: Id = Field(description="Id of this edge node within the OPD")
    timezone: str = Field("Asia/Jakarta", description="IANA time zone of the office, for device-local clocks")
    data_dir: Path = Field(
        Path("/var/lib/smartoffice-edge"), description="Folder of the queue and of the applied remote configuration"
    )
    broker: BrokerConfig
    queue: QueueConfig = QueueConfig()
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="Node settings used until a remote configuration is applied: heartbeat_s, backlog_rate_per_s, adapters",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Logging level")

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):
        # The file's content arrives as init arguments, and the environment overrides it key by key.
        return (env_settings, init_settings)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone {value!r} is not a known IANA time zone: use e.g. 'Asia/Jakarta'") from None
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def client_id(self) -> str:
        """MQTT client id towards the central broker, fixed per node so the session persists."""
        return self.broker.client_id or f"edge-{self.opd}-{self.node}"

    @property
    def queue_path(self) -> Path:
        """SQLite file of the durable queue."""
        return self.queue.path or self.data_dir / "outbox.sqlite3"

    @property
    def applied_config_path(self) -> Path:
        """JSON file of the remote configuration in force, read at start-up."""
        return self.data_dir / "applied-config.json"


def load_config(path: Path | None) -> EdgeConfig:
    """Read the YAML file at ``path`` (or only the environment when None) and validate it.

    Raises:
        ConfigError: the file is missing, is not a YAML mapping, or a value is invalid.
    """
    values: dict[str, Any] = {}
    if path is not None:
        values = _read_yaml(path)

    try:
        return EdgeConfig(**values)
    except ValidationError as exc:
        problems = "; ".join(_describe(error) for error in exc.errors())
        source = f"{path}" if path is not None else "the environment"
        raise ConfigError(f"invalid edge configuration in {source}: {problems}") from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"configuration file {str(path)!r} cannot be read ({exc.strerror})") from None

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"configuration file {str(path)!r} is not valid YAML: {exc}") from None

    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"configuration file {str(path)!r} must be a YAML mapping, not a {type(data).__name__}")
    return data


def _describe(error: dict) -> str:
    location = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        variable = ENV_PREFIX + "__".join(str(part) for part in error["loc"]).upper()
        return f"{location} is missing: set it in the file or as {variable}"
    if error["type"] == "extra_forbidden":
        return f"{location} is not a known key"
    if "password" in location:
        return f"{location}: {message}"
    if error["type"] == "string_pattern_mismatch" and error.get("ctx", {}).get("pattern") == ID_PATTERN:
        return f"{location}: {id_problem(error['input'])}"
    return f"{location}={error.get('input')!r}: {message}"
