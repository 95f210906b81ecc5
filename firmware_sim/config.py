"""Settings of the device simulator, read once from ``SMARTOFFICE_*`` environment variables.

Options that only the simulator has start with ``SMARTOFFICE_SIM_``, so that one environment
file can serve every service. What to simulate (seed, OPDs, rate) is given on the command line.
"""

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_CATALOGUE_FILE = Path(__file__).resolve().parent.parent / "config" / "regency.yaml"

_PLACEHOLDER_PASSWORDS = frozenset({"changeme", "change-me", "change_me", "password", "secret", "xxx"})


class SimSettings(BaseSettings):
    """Every setting of the simulator, with its default and unit."""

    model_config = SettingsConfigDict(env_prefix="SMARTOFFICE_", extra="ignore")

    catalogue_file: Path = Field(DEFAULT_CATALOGUE_FILE, description="Catalogue YAML of OPDs, nodes and devices")

    mqtt_host: str = Field("127.0.0.1", description="Broker host name or address")
    mqtt_port: int = Field(1883, ge=1, le=65535, description="Broker TCP port")
    mqtt_username: str | None = Field(
        None, description="Broker user name of every node without an entry in the credentials file. Anonymous when unset"
    )
    mqtt_password: SecretStr | None = Field(None, description="Broker password that goes with mqtt_username")
    sim_credentials_file: Path | None = Field(
        None,
        description="JSON file of per-node broker credentials, keyed '<opd>/<node>'. Nodes missing from it use "
        "mqtt_username and mqtt_password",
    )
    mqtt_keepalive_s: int = Field(30, ge=5, description="MQTT keepalive interval, s")
    sim_exclude_nodes: str = Field(
        "",
        description="Comma-separated '<opd>/<node>' nodes not to simulate, e.g. because a real edge agent "
        "publishes as them. Empty: simulate every node",
    )

    sim_status_interval_s: float = Field(60.0, gt=0, description="Interval of the retained online status, s")
    sim_reconnect_min_delay_s: int = Field(
        1, ge=1, description="Wait before the first reconnect attempt, s. It doubles after each failed attempt"
    )
    sim_reconnect_max_delay_s: int = Field(60, ge=1, description="Maximum wait between reconnect attempts, s")
    sim_max_inflight_messages: int = Field(
        100, ge=1, le=65_535, description="Maximum QoS 1 messages per node sent and not yet acknowledged"
    )
    # MQTT packet identifiers are 16-bit, so one client can have at most 65,535 messages
    # unacknowledged at once.
    sim_max_queued_messages: int = Field(
        10_000,
        ge=1,
        le=60_000,
        description="Maximum messages per node queued while the broker is away or slow. When the queue is full, "
        "load mode and backfill wait, and live mode drops the message",
    )
    sim_shutdown_timeout_s: float = Field(
        10.0, ge=0, description="Maximum wait at shutdown for outstanding acknowledgements, s"
    )
    log_level: str = Field("INFO", description="Logging level: DEBUG, INFO, WARNING or ERROR")

    @field_validator("mqtt_password")
    @classmethod
    def _not_a_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().lower() in _PLACEHOLDER_PASSWORDS:
            raise ValueError("SMARTOFFICE_MQTT_PASSWORD is a placeholder: set the node password of the broker")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError(f"SMARTOFFICE_LOG_LEVEL={value!r} is invalid: use DEBUG, INFO, WARNING or ERROR")
        return level

    @field_validator("sim_exclude_nodes")
    @classmethod
    def _node_keys(cls, value: str) -> str:
        for key in filter(None, (part.strip() for part in value.split(","))):
            opd, _, node = key.partition("/")
            if not opd or not node or "/" in node:
                raise ValueError(
                    f"SMARTOFFICE_SIM_EXCLUDE_NODES entry {key!r} is invalid: use '<opd>/<node>', e.g. dinkes/gw-01"
                )
        return value

    @property
    def excluded_nodes(self) -> set[tuple[str, str]]:
        """Nodes of ``sim_exclude_nodes`` as ``(opd, node)`` pairs."""
        keys = filter(None, (part.strip() for part in self.sim_exclude_nodes.split(",")))
        return {tuple(key.split("/", 1)) for key in keys}

    @model_validator(mode="after")
    def _password_needs_username(self):
        # MQTT 3.1.1 sends a password only together with a user name, and Mosquitto's
        # password file is keyed by user name.
        if self.mqtt_password is not None and not self.mqtt_username:
            raise ValueError("SMARTOFFICE_MQTT_PASSWORD is set but SMARTOFFICE_MQTT_USERNAME is not: set both")
        if self.sim_reconnect_max_delay_s < self.sim_reconnect_min_delay_s:
            raise ValueError(
                f"SMARTOFFICE_SIM_RECONNECT_MAX_DELAY_S={self.sim_reconnect_max_delay_s} is below "
                f"SMARTOFFICE_SIM_RECONNECT_MIN_DELAY_S={self.sim_reconnect_min_delay_s}"
            )
        return self
