"""Device adapters of the edge agent, by the ``type`` used in the node configuration."""

from importlib import import_module

from .base import Adapter

ADAPTER_CLASSES = {
    "json": "edge.adapters.json_passthrough:JsonAdapter",
    "modbus_sdm": "edge.adapters.modbus_sdm:SdmAdapter",
    "tasmota": "edge.adapters.tasmota:TasmotaAdapter",
    "shelly": "edge.adapters.shelly:ShellyAdapter",
    "zigbee2mqtt": "edge.adapters.zigbee2mqtt:Zigbee2MqttAdapter",
    "zkteco_adms": "edge.adapters.zkteco_adms:AdmsAdapter",
}
"""Adapter class of each type, as ``module:Class``; imported on first use."""


def adapter_class(type_name: str) -> type[Adapter]:
    """Return the adapter class of ``type_name``.

    Raises:
        ValueError: the type is unknown; the message lists the known types.
    """
    target = ADAPTER_CLASSES.get(type_name)
    if target is None:
        known = ", ".join(sorted(ADAPTER_CLASSES))
        raise ValueError(f"unknown adapter type {type_name!r}: use one of {known}")

    module_name, class_name = target.split(":")
    return getattr(import_module(module_name), class_name)
