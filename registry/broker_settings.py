"""Settings of the broker's control connection, read once from ``SMARTOFFICE_*`` environment variables.

The registry commands ``provision-node`` and ``revoke-node`` and the local platform connect
to the broker as the dynsec administrator with these settings. The API has the same
variables in ``api.config.ApiSettings``.
"""

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from .broker_acl import ADMIN_USERNAME
from .dynsec import DEFAULT_TIMEOUT_S, DynsecClient


class BrokerAdminSettings(BaseSettings):
    """Broker address, administrator login, and the broker address given to provisioned nodes."""

    model_config = SettingsConfigDict(env_prefix="SMARTOFFICE_", extra="ignore")

    mqtt_host: str = Field("127.0.0.1", description="Broker host name or address")
    mqtt_port: int = Field(1883, ge=1, le=65535, description="Broker TCP port")
    broker_cafile: Path | None = Field(
        None, description="CA certificate file to verify the broker. Set it when mqtt_port is a TLS listener"
    )
    broker_admin_username: str = Field(ADMIN_USERNAME, description="User name of the dynsec administrator")
    broker_admin_password: SecretStr | None = Field(
        None, description="Password of the dynsec administrator, from the bootstrap credentials file"
    )
    broker_timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0, description="Maximum wait for one dynsec response, s")

    node_broker_host: str | None = Field(
        None, description="Broker address given to provisioned nodes (default: mqtt_host)"
    )
    node_broker_port: int | None = Field(
        None, ge=1, le=65535, description="Broker port given to provisioned nodes (default: mqtt_port)"
    )
    node_broker_tls: bool = Field(False, description="Whether provisioned nodes must connect with TLS")

    def admin_client(self) -> DynsecClient:
        """Return an unconnected control client for these settings.

        Raises:
            ValueError: the admin password is not set.
        """
        if self.broker_admin_password is None:
            raise ValueError(
                "SMARTOFFICE_BROKER_ADMIN_PASSWORD is not set: use the admin password from the credentials "
                "file that 'smartoffice-registry bootstrap-broker' wrote"
            )
        return DynsecClient(
            self.mqtt_host,
            self.mqtt_port,
            self.broker_admin_username,
            self.broker_admin_password.get_secret_value(),
            cafile=self.broker_cafile,
            timeout_s=self.broker_timeout_s,
        )

    def node_broker(self) -> dict:
        """Return the broker address a provisioned node connects to: ``host``, ``port`` and ``tls``."""
        return {
            "host": self.node_broker_host or self.mqtt_host,
            "port": self.node_broker_port or self.mqtt_port,
            "tls": self.node_broker_tls,
        }
