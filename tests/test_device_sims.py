"""Simulated devices speak their protocols: checked with plain clients, without the edge adapters."""

import asyncio
import contextlib
import json
import struct
import threading
import uuid
from datetime import datetime

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pymodbus.client import AsyncModbusTcpClient

from conftest import wait_until
from devstack.ports import free_port
from edge.adapters import adapter_class
from edge_adapter_harness import running_adapter
from firmware_sim.adms_terminal import AdmsTerminal, SimulatedPunch
from firmware_sim.local_mqtt_devices import DeviceMqttClient, ShellyGen2Device, TasmotaDevice, Zigbee2MqttBridge
from firmware_sim.protocol_devices import adapter_config, build_parser, run
from firmware_sim.sdm_meter import NAN_WORDS, MeterValues, SdmModbusServer, SimulatedSdmMeter


class Recorder:
    """A paho subscriber that keeps every message it receives."""

    def __init__(self, mosquitto, topic_filter: str) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="recorder-" + uuid.uuid4().hex[:8])
        self.client.on_message = self._on_message
        self.client.connect(mosquitto.host, mosquitto.port)
        self.client.subscribe(topic_filter, qos=1)
        self.client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.messages.append(message)

    def payloads(self, topic: str) -> list[tuple[bytes, bool]]:
        with self._lock:
            return [(m.payload, bool(m.retain)) for m in self.messages if m.topic == topic]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def decode(words: list[int], address: int) -> float:
    return struct.unpack(">f", struct.pack(">HH", words[address], words[address + 1]))[0]


def test_sdm_import_rises_with_power():
    clock = [0.0]
    meter = SimulatedSdmMeter(model="sdm630", values=MeterValues(power_w=2000.0, import_kwh=100.0), monotonic=lambda: clock[0])

    first = decode(meter.registers(), 0x0048)
    clock[0] += 1800.0
    second = decode(meter.registers(), 0x0048)

    assert first == 100.0
    assert second == 101.0


def test_sdm_nan_injection_and_overrides():
    meter = SimulatedSdmMeter(model="sdm120", rising=False)

    meter.inject_nan("power_factor_l1")
    words = meter.registers()
    meter.clear_overrides()
    restored = meter.registers()

    assert tuple(words[0x001E:0x0020]) == NAN_WORDS
    assert decode(restored, 0x001E) == pytest.approx(0.98)


def test_sdm_rejects_unknown_model():
    with pytest.raises(ValueError, match="sdm630 or sdm120"):
        SimulatedSdmMeter(model="sdm72")


async def test_sdm_server_answers_function_code_4():
    server = SdmModbusServer([SimulatedSdmMeter(unit_id=3, model="sdm630", rising=False)], free_port())
    await server.start()
    client = AsyncModbusTcpClient("127.0.0.1", port=server.port, timeout=2, retries=0)
    try:
        await client.connect()
        response = await client.read_input_registers(0x0000, count=2, device_id=3)
        energy = await client.read_input_registers(0x0048, count=4, device_id=3)
    finally:
        client.close()
        await server.stop()

    assert response.registers == [0x4366, 0x199A]
    assert energy.registers == [0x4640, 0xE6B6, 0x0000, 0x0000]


async def test_adms_terminal_wire_format():
    """The terminal's upload reaches a raw TCP server as the firmware sends it."""
    received: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        received.append(head + await reader.readexactly(length))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nOK")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    punches = [
        SimulatedPunch("1001", datetime(2025, 3, 10, 8, 2, 11)),
        SimulatedPunch("1002", datetime(2025, 3, 10, 8, 3, 47), verify=15, extended=True, time_offset_s=3600),
    ]
    try:
        async with AdmsTerminal(f"http://127.0.0.1:{port}", "CQZ7231000123") as terminal:
            reply = await terminal.push_attlog(punches)
    finally:
        server.close()
        await server.wait_closed()

    request = received[0]
    head, _, body = request.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /iclock/cdata?SN=CQZ7231000123&table=ATTLOG&Stamp=9999 HTTP/1.1")
    assert body == (
        b"1001\t2025-03-10 08:02:11\t0\t1\t0\t0\t0\r\n"
        b"1002\t2025-03-10 08:03:47\t0\t15\t0\t0\t0\t0\t36.4\t36.4\t+3600\t\r\n"
    )
    assert reply.text == "OK"


@pytest.mark.integration
def test_tasmota_lwt_online_and_will(mosquitto):
    topic = "tasmota_" + uuid.uuid4().hex[:6].upper()
    recorder = Recorder(mosquitto, f"tele/{topic}/#")
    device = TasmotaDevice(mosquitto.host, mosquitto.port, topic)
    try:
        device.start()
        device.publish_sensor("2025-01-11T14:56:50", energy={"Total": 1.0, "Power": 5})
        device.crash()
        wait_until(lambda: len(recorder.payloads(f"tele/{topic}/LWT")) >= 2)
    finally:
        recorder.close()
        cleaner = DeviceMqttClient(mosquitto.host, mosquitto.port)
        cleaner.start()
        cleaner.clear_retained(f"tele/{topic}/LWT")
        cleaner.stop()

    assert recorder.payloads(f"tele/{topic}/LWT") == [(b"Online", False), (b"Offline", False)]
    sensor = json.loads(recorder.payloads(f"tele/{topic}/SENSOR")[0][0])
    assert sensor == {"Time": "2025-01-11T14:56:50", "ENERGY": {"Total": 1.0, "Power": 5}}


@pytest.mark.integration
def test_shelly_gen2_notify_status_frame(mosquitto):
    prefix = "shellyplus1pm-" + uuid.uuid4().hex[:12]
    recorder = Recorder(mosquitto, f"{prefix}/#")
    device = ShellyGen2Device(mosquitto.host, mosquitto.port, prefix)
    try:
        device.start()
        device.notify_status(1736603810.49, {"switch:0": {"id": 0, "apower": 57.3}})
        wait_until(lambda: recorder.payloads(f"{prefix}/events/rpc"))
        device.stop()
    finally:
        recorder.close()

    frame = json.loads(recorder.payloads(f"{prefix}/events/rpc")[0][0])
    assert frame["method"] == "NotifyStatus"
    assert frame["params"] == {"ts": 1736603810.49, "switch:0": {"id": 0, "apower": 57.3}}
    assert recorder.payloads(f"{prefix}/online")[0] == (b"true", False)


@pytest.mark.integration
def test_zigbee_bridge_state_formats_and_clear(mosquitto):
    base = "z2m-" + uuid.uuid4().hex[:8]
    bridge = Zigbee2MqttBridge(mosquitto.host, mosquitto.port, base_topic=base)
    bridge.start()
    bridge.publish_bridge_state(False, legacy=True)
    bridge.clear_retained(f"{base}/bridge/state")
    bridge.stop()

    # A new subscriber gets no retained state once the empty payload cleared it.
    recorder = Recorder(mosquitto, f"{base}/#")
    try:
        bridge = Zigbee2MqttBridge(mosquitto.host, mosquitto.port, base_topic=base)
        bridge.start()
        bridge.publish_bridge_state(True, legacy=True)
        wait_until(lambda: len(recorder.payloads(f"{base}/bridge/state")) >= 2)
        bridge.clear_retained(f"{base}/bridge/state")
        bridge.stop()
    finally:
        recorder.close()

    assert recorder.payloads(f"{base}/bridge/state")[:2] == [(b'{"state": "online"}', False), (b"online", False)]


@pytest.mark.integration
async def test_protocol_devices_feed_edge_adapters(mosquitto, tmp_path):
    """The command-line office and its printed adapter entries work together."""
    modbus_port = free_port()
    args = build_parser().parse_args(
        ["--mqtt-port", str(mosquitto.port), "--modbus-port", str(modbus_port), "--interval-s", "0.5", "--timezone", "Asia/Jakarta",
         "--punch-schedule", "continuous"]
    )  # fmt: skip
    entries = {entry["type"]: entry for entry in adapter_config(args)}
    entries["zkteco_adms"].update(port=0, dedup_db_path=str(tmp_path / "punches.sqlite3"))
    for kind in ("tasmota", "shelly", "zigbee2mqtt"):
        entries[kind]["broker"] = {**entries[kind]["broker"], "client_id": f"edge-{kind}-" + uuid.uuid4().hex[:6]}

    async with contextlib.AsyncExitStack() as stack:
        runs = {kind: await stack.enter_async_context(running_adapter(adapter_class(kind), entry)) for kind, entry in entries.items()}
        for kind in ("tasmota", "shelly", "zigbee2mqtt"):
            await runs[kind].adapter.subscription.connected.wait()
        await runs["zkteco_adms"].adapter.listening.wait()
        args.adms_url = f"http://127.0.0.1:{runs['zkteco_adms'].adapter.bound_port}"

        stop = asyncio.Event()
        devices = asyncio.create_task(run(args, stop))
        try:
            for running in runs.values():
                await running.until(lambda running=running: running.readings, timeout_s=15)
        finally:
            stop.set()
            await devices

    streams = {kind: {reading.stream for reading in running.readings} for kind, running in runs.items()}
    assert streams == {
        "modbus_sdm": {"energy"},
        "tasmota": {"energy"},
        "shelly": {"energy"},
        "zigbee2mqtt": {"room"},
        "zkteco_adms": {"attendance"},
    }
    assert [problem for running in runs.values() for problem in running.contract_problems] == []


def test_punch_schedule_office_hours():
    import random
    from datetime import datetime

    from firmware_sim.protocol_devices import EMPLOYEE_PINS, PunchSchedule

    schedule = PunchSchedule(continuous=False, rng=random.Random(1))
    # Saturday morning and a weekday night: no punches.
    assert schedule.next_punch(datetime(2026, 12, 5, 7, 15)) is None
    assert schedule.next_punch(datetime(2026, 12, 4, 22, 0)) is None

    # Friday 4 December 2026: every employee punches in once in the morning, out once later.
    morning = [schedule.next_punch(datetime(2026, 12, 4, 7, 0, second)) for second in range(0, 60)]
    ins = [punch for punch in morning if punch is not None]
    assert sorted(punch.pin for punch in ins) == sorted(EMPLOYEE_PINS)
    assert {punch.status for punch in ins} == {0}
    afternoon = [schedule.next_punch(datetime(2026, 12, 4, 16, 30, second)) for second in range(0, 60)]
    outs = [punch for punch in afternoon if punch is not None]
    assert sorted(punch.pin for punch in outs) == sorted(EMPLOYEE_PINS)
    assert {punch.status for punch in outs} == {1}


def test_punch_schedule_continuous():
    import random
    from datetime import datetime

    from firmware_sim.protocol_devices import PunchSchedule

    schedule = PunchSchedule(continuous=True, rng=random.Random(1))
    assert schedule.next_punch(datetime(2026, 12, 5, 2, 0)) is not None
