"""Command line that runs one office's simulated devices in their own protocols, for the edge agent.

It starts the devices that the options request:

- ``--modbus-port``: a Modbus TCP server with an SDM630 at unit 1 and an SDM120 at unit 2.
- ``--mqtt-port``: a Tasmota plug, a Shelly Plus 1PM (Gen2), a Shelly Plug S (Gen1) and a
  Zigbee2MQTT bridge with one room sensor, publishing to that local broker.
- ``--adms-url``: a ZKTeco terminal pushing punches to that ADMS server. With
  ``--punch-schedule office`` (the default) each employee punches in once between 06:45 and
  08:00 and out once between 16:00 and 17:30 local time, Monday to Friday. With
  ``continuous`` the terminal sends one punch per interval at any hour, for tests.

``--print-adapter-config`` prints the edge adapter entries (JSON) that read these devices.

Example::

    python -m firmware_sim.protocol_devices --mqtt-port 1883 --modbus-port 5020 \\
        --adms-url http://127.0.0.1:8081 --interval-s 10
"""

import argparse
import asyncio
import json
import logging
import random
import signal
import sys
from datetime import date, datetime, time
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx

from .adms_terminal import AdmsTerminal, SimulatedPunch
from .local_mqtt_devices import ShellyGen1Device, ShellyGen2Device, TasmotaDevice, Zigbee2MqttBridge, format_local_time
from .sdm_meter import MeterValues, SdmModbusServer, SimulatedSdmMeter

logger = logging.getLogger("firmware_sim.protocol_devices")

TASMOTA_TOPIC = "tasmota_51A0C1"
SHELLY_GEN2_PREFIX = "shellyplus1pm-sim0000000001"
SHELLY_GEN1_ID = "shellyplug-s-51A0C2"
ZIGBEE_BASE_TOPIC = "zigbee2mqtt"
ZIGBEE_SENSOR = "ruang-rapat/th-01"
TERMINAL_SERIAL = "SIM0000000001"
EMPLOYEE_PINS = ("1001", "1002", "1003", "1004", "1005")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m firmware_sim.protocol_devices", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--mqtt-host", default="127.0.0.1", help="local broker address (default: 127.0.0.1)")
    parser.add_argument("--mqtt-port", type=int, help="local broker port (without it no MQTT devices run)")
    parser.add_argument(
        "--modbus-host", default="127.0.0.1", help="address the Modbus TCP server listens on (default: 127.0.0.1)"
    )
    parser.add_argument("--modbus-port", type=int, help="Modbus TCP port (without it no meters run)")
    parser.add_argument("--adms-url", help="base URL of the ADMS server, e.g. http://127.0.0.1:8081")
    parser.add_argument("--interval-s", type=float, default=10.0, help="seconds between two readings (default: 10)")
    parser.add_argument(
        "--timezone", default="Asia/Jakarta", help="zone of the devices' clocks (default: Asia/Jakarta)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated values (default: 1)")
    parser.add_argument(
        "--zigbee-sensors", type=int, default=1, help="room sensors behind the Zigbee2MQTT bridge (default: 1)"
    )
    parser.add_argument(
        "--punch-schedule",
        choices=("office", "continuous"),
        default="office",
        help="office: punches in the morning and afternoon of weekdays; continuous: one per interval (default: office)",
    )
    parser.add_argument(
        "--print-adapter-config", action="store_true", help="print the matching edge adapter entries and exit"
    )
    return parser


def adapter_config(args: argparse.Namespace) -> list[dict]:
    """Return the edge adapter entries that read the simulated devices of ``args``."""
    broker = {"host": args.mqtt_host, "port": args.mqtt_port or 1883}
    modbus = {"host": args.modbus_host, "port": args.modbus_port or 502}
    adms_port = urlsplit(args.adms_url).port if args.adms_url else None

    meters = [
        {"device": "meter-main", "circuit": "panel-main", "model": "sdm630", "unit_id": 1, **modbus},
        {"device": "meter-server-room", "circuit": "server-room", "model": "sdm120", "unit_id": 2, **modbus},
    ]
    shelly_devices = [
        {"generation": 2, "topic_prefix": SHELLY_GEN2_PREFIX, "device": "plug-ac", "circuit": "ac-1"},
        {"generation": 1, "topic_prefix": f"shellies/{SHELLY_GEN1_ID}", "device": "plug-pantry"},
    ]
    tasmota_devices = [{"topic": TASMOTA_TOPIC, "device": "plug-printer", "circuit": "office-1"}]
    zigbee_devices = [
        {"friendly_name": name, "device": f"sensor-th-{index + 1:02d}", "room": "ruang-rapat"}
        for index, name in enumerate(zigbee_sensor_names(args.zigbee_sensors))
    ]
    terminals = [{"serial_number": TERMINAL_SERIAL, "device": "terminal-lobby"}]

    return [
        {"type": "modbus_sdm", "id": "sim-meters", "poll_interval_s": args.interval_s, "meters": meters},
        {
            "type": "tasmota",
            "id": "sim-tasmota",
            "timezone": args.timezone,
            "broker": broker,
            "devices": tasmota_devices,
        },
        {"type": "shelly", "id": "sim-shelly", "broker": broker, "devices": shelly_devices},
        {
            "type": "zigbee2mqtt",
            "id": "sim-zigbee",
            "broker": broker,
            "base_topic": ZIGBEE_BASE_TOPIC,
            "devices": zigbee_devices,
        },
        {
            "type": "zkteco_adms",
            "id": "sim-attendance",
            "host": "127.0.0.1",
            "port": adms_port or 8081,
            "timezone": args.timezone,
            "dedup_db_path": "adms-punches.sqlite3",
            "terminals": terminals,
        },
    ]


def zigbee_sensor_names(count: int) -> list[str]:
    """Return the Zigbee2MQTT friendly names of ``count`` simulated room sensors; the first is ``ZIGBEE_SENSOR``."""
    return [ZIGBEE_SENSOR] + [f"ruang-{index + 1:02d}/th-{index + 1:02d}" for index in range(1, max(count, 1))]


class MqttOffice:
    """The MQTT devices of one office, with counters that rise between readings."""

    def __init__(self, host: str, port: int, zone: ZoneInfo, rng: random.Random, zigbee_sensors: int = 1) -> None:
        self.zone = zone
        self.rng = rng
        self.tasmota = TasmotaDevice(host, port, TASMOTA_TOPIC)
        self.gen2 = ShellyGen2Device(host, port, SHELLY_GEN2_PREFIX)
        self.gen1 = ShellyGen1Device(host, port, SHELLY_GEN1_ID)
        self.bridge = Zigbee2MqttBridge(host, port, ZIGBEE_BASE_TOPIC)
        self.sensor_names = zigbee_sensor_names(zigbee_sensors)
        self.devices = (self.tasmota, self.gen2, self.gen1, self.bridge)
        self.tasmota_kwh = 152.346
        self.gen2_wh = 15230.412
        self.gen1_watt_minutes = 913_800

    def start(self) -> None:
        for device in self.devices:
            device.start()

    def stop(self) -> None:
        for device in self.devices:
            device.stop()

    def publish(self, interval_s: float) -> None:
        """Publish one reading of every device, with counters advanced by ``interval_s`` of use."""
        now = datetime.now(self.zone)
        tasmota_w = self.rng.uniform(40, 80)
        self.tasmota_kwh += tasmota_w * interval_s / 3_600_000
        energy = {"Total": round(self.tasmota_kwh, 3), "Power": round(tasmota_w), "Voltage": 229, "Factor": 0.93}
        self.tasmota.publish_sensor(format_local_time(now), energy=energy)

        gen2_w = self.rng.uniform(800, 1200)
        self.gen2_wh += gen2_w * interval_s / 3600
        switch = {"id": 0, "apower": round(gen2_w, 1), "aenergy": {"total": round(self.gen2_wh, 3)}}
        self.gen2.notify_status(round(now.timestamp(), 2), {"switch:0": switch})

        gen1_w = self.rng.uniform(90, 110)
        self.gen1_watt_minutes += round(gen1_w * interval_s / 60)
        self.gen1.publish_power(round(gen1_w, 2))
        self.gen1.publish_energy(self.gen1_watt_minutes)

        for name in self.sensor_names:
            self.bridge.publish_device_state(
                name,
                {"temperature": round(self.rng.uniform(23, 27), 2), "humidity": round(self.rng.uniform(55, 70), 1),
                 "co2": self.rng.randint(450, 900), "battery": 87, "linkquality": 120},
            )  # fmt: skip


async def run(args: argparse.Namespace, stop: asyncio.Event) -> None:
    """Run the requested simulated devices until ``stop`` is set."""
    zone = ZoneInfo(args.timezone)
    rng = random.Random(args.seed)
    server = office = terminal = None
    pending_punches: list[SimulatedPunch] = []
    schedule = PunchSchedule(args.punch_schedule == "continuous", rng)

    if args.modbus_port:
        meters = [
            SimulatedSdmMeter(unit_id=1, model="sdm630"),
            # 350 W at 230.1 V and power factor 0.98 draws 1.55 A.
            SimulatedSdmMeter(unit_id=2, model="sdm120", values=MeterValues(power_w=350.0, current_a=1.55)),
        ]
        server = SdmModbusServer(meters, args.modbus_port, args.modbus_host)
        await server.start()
    if args.mqtt_port:
        office = MqttOffice(args.mqtt_host, args.mqtt_port, zone, rng, args.zigbee_sensors)
        office.start()
    if args.adms_url:
        terminal = AdmsTerminal(args.adms_url, TERMINAL_SERIAL)
        await terminal.start()

    logger.info("simulated devices running: modbus=%s mqtt=%s adms=%s", bool(server), bool(office), bool(terminal))
    try:
        while not stop.is_set():
            if office is not None:
                office.publish(args.interval_s)
            if terminal is not None:
                await _push_punch(terminal, pending_punches, schedule, zone)
            try:
                await asyncio.wait_for(stop.wait(), args.interval_s)
            except TimeoutError:
                pass
    finally:
        if terminal is not None:
            await terminal.stop()
        if office is not None:
            office.stop()
        if server is not None:
            await server.stop()
        logger.info("simulated devices stopped")


MAX_PENDING_PUNCHES = 10_000
"""Punches the simulated terminal keeps until the server confirms them, like a terminal's log memory."""

CHECK_IN_WINDOW = (time(6, 45), time(8, 0))
CHECK_OUT_WINDOW = (time(16, 0), time(17, 30))
"""Local times in which the simulated staff punch in and out on weekdays."""


class PunchSchedule:
    """Punch plan of the simulated staff: each employee in once and out once per weekday, or anyone at any time."""

    def __init__(self, continuous: bool, rng: random.Random) -> None:
        self.continuous = continuous
        self.rng = rng
        self._done: set[tuple[date, str, int]] = set()

    def next_punch(self, local_now: datetime) -> SimulatedPunch | None:
        """Return the punch to record at ``local_now`` (naive local time), or None."""
        if self.continuous:
            return SimulatedPunch(self.rng.choice(EMPLOYEE_PINS), local_now, status=self.rng.choice((0, 1)))
        if local_now.weekday() >= 5:
            return None

        moment = local_now.time()
        if CHECK_IN_WINDOW[0] <= moment < CHECK_IN_WINDOW[1]:
            status = 0
        elif CHECK_OUT_WINDOW[0] <= moment < CHECK_OUT_WINDOW[1]:
            status = 1
        else:
            return None

        waiting = [pin for pin in EMPLOYEE_PINS if (local_now.date(), pin, status) not in self._done]
        # About one employee in three arrives at each tick, so punches spread over the window.
        if not waiting or self.rng.random() > 0.35:
            return None
        pin = self.rng.choice(waiting)
        self._done.add((local_now.date(), pin, status))
        return SimulatedPunch(pin, local_now, status=status)


async def _push_punch(
    terminal: AdmsTerminal, pending: list[SimulatedPunch], schedule: PunchSchedule, zone: ZoneInfo
) -> None:
    """Record the schedule's next punch, if any, and upload every punch the server has not confirmed with ``OK`` yet.

    A real terminal keeps its records until the server acknowledges them, so a failed upload
    loses nothing: the punches go again with the next upload.
    """
    local_now = datetime.now(zone).replace(tzinfo=None, microsecond=0)
    punch = schedule.next_punch(local_now)
    if punch is not None:
        pending.append(punch)
    del pending[:-MAX_PENDING_PUNCHES]
    if not pending:
        return
    try:
        response = await terminal.push_attlog(pending)
    except httpx.HTTPError as exc:
        logger.warning(
            "terminal %s: upload failed (%s); %d punches kept for the next upload", terminal.serial_number, exc, len(pending)
        )
        return
    if response.status_code == 200 and response.text.strip().startswith("OK"):
        pending.clear()
        return
    logger.warning(
        "terminal %s: server replied %d %r; %d punches kept for the next upload",
        terminal.serial_number,
        response.status_code,
        response.text[:80],
        len(pending),
    )


def main(argv: list[str] | None = None) -> int:
    """Run the simulated devices until SIGINT or SIGTERM."""
    args = build_parser().parse_args(argv)
    if args.print_adapter_config:
        print(json.dumps(adapter_config(args), indent=2))
        return 0

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def run_until_signal() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await run(args, stop)

    asyncio.run(run_until_signal())
    return 0


if __name__ == "__main__":
    sys.exit(main())
