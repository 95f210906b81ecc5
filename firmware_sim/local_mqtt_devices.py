"""Simulated Tasmota, Shelly Gen1/Gen2 and Zigbee2MQTT devices that publish to a local broker (paho-mqtt).

Each device publishes in its firmware's own format and topics, with its own availability
messages. A Tasmota device sets the retained last will ``Offline`` on ``tele/<topic>/LWT``
and publishes a retained ``Online`` on connect. Shelly devices do the same with
``false``/``true`` on ``<prefix>/online``, and a Zigbee2MQTT bridge with its
``bridge/state``. ``crash()`` drops the TCP connection without an MQTT DISCONNECT, so the
broker publishes the will as after a power cut.

The classes are usable from Python (``start()``/``stop()``) and from
``python -m firmware_sim.protocol_devices``.
"""

import json
import logging
import time
import uuid
from datetime import datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

logger = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 5.0


class DeviceMqttClient:
    """One device's MQTT connection with an optional retained last will."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str | None = None,
        will: tuple[str, str] | None = None,
        online: tuple[str, str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id or "sim-device-" + uuid.uuid4().hex[:8]
        self.online = online
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv311)
        if will is not None:
            self._client.will_set(will[0], will[1], qos=1, retain=True)
        self._client.on_connect = self._on_connect

    def start(self) -> None:
        """Connect, start paho's network thread, and return once connected."""
        self._client.connect(self.host, self.port, keepalive=30)
        self._client.loop_start()
        if not self._connected_within(PUBLISH_TIMEOUT_S):
            raise ConnectionError(f"simulated device {self.client_id} could not connect to {self.host}:{self.port}")

    def stop(self) -> None:
        """Disconnect cleanly: the broker discards the last will."""
        self._client.disconnect()
        self._client.loop_stop()

    def crash(self) -> None:
        """Drop the connection without DISCONNECT, so the broker publishes the last will."""
        self._client.loop_stop()
        sock = self._client.socket()
        if sock is not None:
            sock.close()

    def publish(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> None:
        """Publish and wait until the broker acknowledged (QoS 1) or the message was sent (QoS 0)."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(PUBLISH_TIMEOUT_S)
        if not info.is_published():
            raise TimeoutError(f"publish to {topic} was not acknowledged within {PUBLISH_TIMEOUT_S:g} s")

    def clear_retained(self, topic: str) -> None:
        """Delete the retained message of ``topic`` by publishing an empty retained payload."""
        self.publish(topic, b"", retain=True)

    def _connected_within(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._client.is_connected():
                return True
            time.sleep(0.02)
        return False

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            logger.warning("simulated device %s: connection refused: %s", self.client_id, reason_code)
            return
        if self.online is not None:
            client.publish(self.online[0], self.online[1], qos=1, retain=True)


class TasmotaDevice(DeviceMqttClient):
    """A Tasmota device with MQTT ``Topic`` ``topic`` and the default FullTopic ``%prefix%/%topic%/``."""

    def __init__(self, host: str, port: int, topic: str) -> None:
        self.topic = topic
        lwt = f"tele/{topic}/LWT"
        client_id = f"DVES_{uuid.uuid4().hex[:6].upper()}"
        super().__init__(host, port, client_id=client_id, will=(lwt, "Offline"), online=(lwt, "Online"))

    def publish_sensor(self, time_text: str, energy: dict | None = None, sensors: dict | None = None) -> dict:
        """Publish ``tele/<topic>/SENSOR`` with ``Time`` as given (local, or with an offset) and return the payload."""
        payload: dict = {"Time": time_text}
        if energy is not None:
            payload["ENERGY"] = energy
        payload.update(sensors or {})
        self.publish(f"tele/{self.topic}/SENSOR", json.dumps(payload), qos=0)
        return payload

    def publish_raw(self, suffix: str, payload: str | bytes, retain: bool = False) -> None:
        """Publish ``payload`` on ``tele/<topic>/<suffix>`` as is, e.g. a malformed SENSOR."""
        self.publish(f"tele/{self.topic}/{suffix}", payload, qos=0, retain=retain)


class ShellyGen2Device(DeviceMqttClient):
    """A Shelly Gen2+ device with MQTT topic prefix ``prefix`` (by default its device id)."""

    def __init__(self, host: str, port: int, prefix: str) -> None:
        self.prefix = prefix
        online = f"{prefix}/online"
        client_id = prefix + "-" + uuid.uuid4().hex[:4]
        super().__init__(host, port, client_id=client_id, will=(online, "false"), online=(online, "true"))

    def notify_status(self, ts_s: float, changes: dict, method: str = "NotifyStatus") -> None:
        """Publish a ``NotifyStatus`` frame with ``params.ts`` in float seconds and the changed components."""
        params = {"ts": ts_s, **changes}
        frame = {"src": self.prefix, "dst": f"{self.prefix}/events", "method": method, "params": params}
        self.publish(f"{self.prefix}/events/rpc", json.dumps(frame))

    def publish_status(self, component: str, status: dict | str, retain: bool = False) -> None:
        """Publish the full status of ``component`` (e.g. ``switch:0``) on ``<prefix>/status/<component>``."""
        payload = status if isinstance(status, str) else json.dumps(status)
        self.publish(f"{self.prefix}/status/{component}", payload, retain=retain)

    def publish_raw(self, topic: str, payload: str | bytes, retain: bool = False) -> None:
        """Publish ``payload`` on ``topic`` as is, e.g. a replayed frame from a field capture."""
        self.publish(topic, payload, retain=retain)


class ShellyGen1Device(DeviceMqttClient):
    """A Shelly Gen1 device publishing under ``shellies/<device_id>``."""

    def __init__(self, host: str, port: int, device_id: str) -> None:
        self.device_id = device_id
        self.prefix = f"shellies/{device_id}"
        online = f"{self.prefix}/online"
        client_id = device_id + "-" + uuid.uuid4().hex[:4]
        super().__init__(host, port, client_id=client_id, will=(online, "false"), online=(online, "true"))

    def publish_power(self, watts: float | str, relay: int = 0) -> None:
        """Publish the instantaneous power in W as plain text."""
        self.publish(f"{self.prefix}/relay/{relay}/power", str(watts))

    def publish_energy(self, watt_minutes: int | str, relay: int = 0) -> None:
        """Publish the energy counter in Watt-minutes as plain text."""
        self.publish(f"{self.prefix}/relay/{relay}/energy", str(watt_minutes))

    def publish_online(self, online: bool) -> None:
        """Publish the retained availability as the device does on boot (``true``) or as its will (``false``)."""
        self.publish(f"{self.prefix}/online", "true" if online else "false", retain=True)


class Zigbee2MqttBridge(DeviceMqttClient):
    """A Zigbee2MQTT bridge with base topic ``base_topic``, publishing for its paired devices."""

    def __init__(self, host: str, port: int, base_topic: str = "zigbee2mqtt", legacy: bool = False) -> None:
        self.base_topic = base_topic
        self.legacy = legacy
        state_topic = f"{base_topic}/bridge/state"
        super().__init__(
            host, port, client_id="zigbee2mqtt-" + uuid.uuid4().hex[:6],
            will=(state_topic, self._state_payload(False)), online=(state_topic, self._state_payload(True)),
        )  # fmt: skip

    def publish_bridge_state(self, online: bool, legacy: bool | None = None) -> None:
        """Publish the retained ``bridge/state`` in the plain (legacy) or JSON format."""
        self.publish(f"{self.base_topic}/bridge/state", self._state_payload(online, legacy), retain=True)

    def publish_device_state(self, friendly_name: str, state: dict | str, retain: bool = False) -> None:
        """Publish a device's state message on ``<base_topic>/<friendly_name>``."""
        payload = state if isinstance(state, str) else json.dumps(state)
        self.publish(f"{self.base_topic}/{friendly_name}", payload, retain=retain)

    def publish_availability(self, friendly_name: str, online: bool, legacy: bool | None = None) -> None:
        """Publish a device's retained availability in the plain (legacy) or JSON format."""
        topic = f"{self.base_topic}/{friendly_name}/availability"
        self.publish(topic, self._state_payload(online, legacy), retain=True)

    def _state_payload(self, online: bool, legacy: bool | None = None) -> str:
        state = "online" if online else "offline"
        legacy = self.legacy if legacy is None else legacy
        return state if legacy else json.dumps({"state": state})


def format_local_time(moment: datetime, with_offset: bool = False) -> str:
    """Format ``moment`` as Tasmota's ``Time``: local ISO 8601 to the second, with the offset only when asked."""
    if with_offset:
        return moment.isoformat(timespec="seconds")
    return moment.replace(tzinfo=None).isoformat(timespec="seconds")
