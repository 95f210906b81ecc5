"""Publish a node's desired configuration, retained, to its ``config`` topic."""

import json
import logging
import uuid

import aiomqtt

from contract.topics import Stream, build_topic

from .config import ApiSettings

logger = logging.getLogger(__name__)

_TIMEOUT_S = 10.0


async def publish_node_config(settings: ApiSettings, opd: str, node: str, message: dict) -> None:
    """Publish ``message`` (a ``NodeConfig``) retained at QoS 1 and wait for the broker's PUBACK.

    Raises:
        aiomqtt.MqttError: the broker could not be reached or did not acknowledge in time.
    """
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    topic = build_topic(opd, node, Stream.CONFIG)
    payload = json.dumps(message, separators=(",", ":")).encode()
    async with aiomqtt.Client(
        settings.mqtt_host,
        settings.mqtt_port,
        username=settings.mqtt_username,
        password=password,
        identifier=f"smartoffice-api-config-{uuid.uuid4().hex[:12]}",
        protocol=aiomqtt.ProtocolVersion.V311,
        timeout=_TIMEOUT_S,
    ) as client:
        # aiomqtt's publish returns after the PUBACK for QoS 1.
        await client.publish(topic, payload, qos=1, retain=True, timeout=_TIMEOUT_S)
    logger.info("published configuration version %s to %s (%d bytes)", message.get("version"), topic, len(payload))
