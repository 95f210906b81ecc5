"""Scenario: the central broker is down for ten minutes under an edge agent with every adapter type.

Not a test: a measurement whose figures go to docs/benchmarks.md. In a temporary folder it
starts, all on free loopback ports:

* the central Mosquitto (anonymous, with persistence) and the office's local Mosquitto;
* one office's simulated devices, driven by this script so that it records every reading
  they produce. An SDM630 and an SDM120 respond behind a Modbus TCP server. A Tasmota plug,
  Shelly Gen2 and Gen1 plugs and a Zigbee2MQTT room sensor publish on the office broker, and
  a ZKTeco terminal pushes one punch per interval to the agent's ADMS server;
* ``python -m edge`` with one adapter of each type (``modbus_sdm``, ``tasmota``, ``shelly``,
  ``zigbee2mqtt``, ``zkteco_adms``), with the agent's default broker and queue settings;
* a subscriber on the central broker with a persistent session (clean_session false) that
  records every message of the node.

Timeline: ``--warmup-s`` of normal traffic, then the central broker is stopped with SIGTERM for
``--outage-s`` (default 600 s), started again on the same port and data, and the script waits
until every reading produced before the restart has arrived. After ``--after-s`` more of live
traffic the devices stop, and the script waits until the queue is empty and one more heartbeat
has logged the agent's counters.

Each device reading carries its sequence number in a value the adapter passes through (a
counter register, or the device time), so the central side maps every message back to the
reading it came from. The Modbus meters have no readings of their own, because the agent polls
them, so their count is compared with the readings the agent's modbus adapter logged.

Report: readings produced and received per device, duplicates, readings lost, readings of one
device that arrived out of order, the largest queue depth, the reconnect and drain times, and
the agent's RSS.

Usage: ``python bench/edge_outage.py [--outage-s 600] [--interval-s 5] [--warmup-s 60]
[--after-s 60] [--json-out FILE]``
"""

import argparse
import asyncio
import json
import os
import platform
import random
import re
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import paho.mqtt.client as mqtt

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from devstack import ManagedProcess, MosquittoServer, free_port  # noqa: E402
from firmware_sim import protocol_devices  # noqa: E402
from firmware_sim.adms_terminal import AdmsTerminal, SimulatedPunch  # noqa: E402
from firmware_sim.local_mqtt_devices import (  # noqa: E402
    ShellyGen1Device,
    ShellyGen2Device,
    TasmotaDevice,
    Zigbee2MqttBridge,
    format_local_time,
)
from firmware_sim.sdm_meter import MeterValues, SdmModbusServer, SimulatedSdmMeter  # noqa: E402

OPD = "bench"
NODE = "gw-01"
ZONE = ZoneInfo("Asia/Jakarta")
HEARTBEAT_S = 10.0
TELEMETRY_STREAMS = ("room", "energy", "attendance")

TASMOTA_BASE_KWH = 152.0
"""Tasmota ``Total`` of reading 0, kWh. Reading n reports ``TASMOTA_BASE_KWH + n / 1000``."""
GEN2_BASE_WH = 15_000
"""Shelly Gen2 ``aenergy.total`` of reading 0, Wh. Reading n reports ``GEN2_BASE_WH + n``."""
GEN1_BASE_WATT_MINUTES = 900_000
"""Shelly Gen1 energy counter of reading 0, Watt-minutes. Reading n reports ``GEN1_BASE_WATT_MINUTES + n``."""
EMPLOYEE_PINS = ("1001", "1002", "1003", "1004", "1005")

HEARTBEAT_PATTERN = re.compile(r"adapter (\S+) \((\w+)\): readings (\d+),.*?queued (\d+), rejected (\{[^}]*\})")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--outage-s", type=float, default=600.0, help="seconds the central broker is down (default 600)"
    )
    parser.add_argument(
        "--interval-s", type=float, default=5.0, help="seconds between two readings of a device (default 5)"
    )
    parser.add_argument(
        "--warmup-s", type=float, default=60.0, help="seconds of traffic before the outage (default 60)"
    )
    parser.add_argument(
        "--after-s", type=float, default=60.0, help="seconds of traffic after the backlog arrived (default 60)"
    )
    parser.add_argument(
        "--drain-timeout-s",
        type=float,
        default=900.0,
        help="seconds to wait for the backlog after the restart before reporting what is missing (default 900)",
    )
    parser.add_argument("--json-out", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--keep-log", type=Path, help="copy the agent's log to this file at the end")
    arguments = parser.parse_args()
    if arguments.interval_s < 1:
        parser.error("--interval-s must be at least 1: Tasmota and ADMS device times have a resolution of 1 s")
    return arguments


@dataclass
class Produced:
    """Readings the simulated devices produced, by device: sequence number and wall-clock time."""

    by_device: dict[str, dict[int, float]] = field(default_factory=lambda: defaultdict(dict))
    seq_by_key: dict[str, dict[tuple, int]] = field(default_factory=lambda: defaultdict(dict))
    """For devices identified by their device time: key (see ``reading_key``) to sequence number."""

    def add(self, device: str, seq: int, key: tuple | None = None) -> None:
        self.by_device[device][seq] = time.time()
        if key is not None:
            self.seq_by_key[device][key] = seq


@dataclass
class Arrival:
    """One telemetry message at the central subscriber."""

    device: str
    stream: str
    payload: dict
    arrived: float
    """Wall-clock time of arrival, s."""


class CentralSubscriber:
    """Records every message of the node on the central broker, with a persistent session."""

    def __init__(self, broker: MosquittoServer) -> None:
        self.arrivals: list[Arrival] = []
        self.statuses: list[dict] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="bench-central-" + uuid.uuid4().hex[:6], clean_session=False
        )
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.on_connect = lambda client, userdata, flags, code, properties: client.subscribe(
            f"smartoffice/v1/{OPD}/{NODE}/#", qos=1
        )
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port, keepalive=10)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise TimeoutError("the central subscriber did not subscribe within 10 s")

    def _on_message(self, client, userdata, message) -> None:
        stream = message.topic.split("/", 4)[4]
        try:
            payload = json.loads(message.payload)
        except ValueError:
            return
        with self.lock:
            if stream in TELEMETRY_STREAMS:
                self.arrivals.append(Arrival(payload["device"], stream, payload, time.time()))
            elif stream == "status":
                self.statuses.append(payload)

    def snapshot(self) -> list[Arrival]:
        with self.lock:
            return list(self.arrivals)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Office:
    """The simulated devices of one office, publishing one reading each per interval."""

    def __init__(self, local: MosquittoServer, modbus_port: int, adms_url: str, interval_s: float) -> None:
        self.interval_s = interval_s
        self.produced = Produced()
        self.rng = random.Random(1)
        self.meters = [
            SimulatedSdmMeter(unit_id=1, model="sdm630"),
            SimulatedSdmMeter(unit_id=2, model="sdm120", values=MeterValues(power_w=350.0)),
        ]
        self.modbus = SdmModbusServer(self.meters, modbus_port)
        self.tasmota = TasmotaDevice(local.host, local.port, protocol_devices.TASMOTA_TOPIC)
        self.gen2 = ShellyGen2Device(local.host, local.port, protocol_devices.SHELLY_GEN2_PREFIX)
        self.gen1 = ShellyGen1Device(local.host, local.port, protocol_devices.SHELLY_GEN1_ID)
        self.bridge = Zigbee2MqttBridge(local.host, local.port, protocol_devices.ZIGBEE_BASE_TOPIC)
        self.mqtt_devices = (self.tasmota, self.gen2, self.gen1, self.bridge)
        self.terminal = AdmsTerminal(adms_url, protocol_devices.TERMINAL_SERIAL)
        self.unacknowledged: list[tuple[int, SimulatedPunch]] = []
        self.upload_failures: list[str] = []
        """Uploads that failed or got no ``OK``: wall-clock time and reason. Their punches go again."""
        self.seq = 0
        self.stop_event = asyncio.Event()

    async def start(self) -> None:
        await self.modbus.start()
        for device in self.mqtt_devices:
            device.start()
        await self.terminal.start()

    async def stop(self) -> None:
        await self.terminal.stop()
        for device in self.mqtt_devices:
            device.stop()
        await self.modbus.stop()

    async def run(self) -> None:
        """Publish one round per interval until ``stop_event`` is set."""
        next_round = time.monotonic()
        while not self.stop_event.is_set():
            await asyncio.to_thread(self.publish_mqtt_round, self.seq)
            await self.push_punches(self.seq)
            self.seq += 1
            next_round += self.interval_s
            try:
                await asyncio.wait_for(self.stop_event.wait(), max(0.0, next_round - time.monotonic()))
            except TimeoutError:
                pass

    def publish_mqtt_round(self, seq: int) -> None:
        now = datetime.now(ZONE)
        total_kwh = round(TASMOTA_BASE_KWH + seq / 1000, 3)
        energy = {"Total": total_kwh, "Power": self.rng.randint(40, 80), "Voltage": 229, "Factor": 0.93}
        self.tasmota.publish_sensor(format_local_time(now), energy=energy)
        self.produced.add("plug-printer", seq)

        switch = {"id": 0, "apower": round(self.rng.uniform(800, 1200), 1), "aenergy": {"total": GEN2_BASE_WH + seq}}
        self.gen2.notify_status(round(now.timestamp(), 2), {"switch:0": switch})
        self.produced.add("plug-ac", seq)

        self.gen1.publish_power(round(self.rng.uniform(90, 110), 2))
        self.gen1.publish_energy(GEN1_BASE_WATT_MINUTES + seq)
        self.produced.add("plug-pantry", seq)

        last_seen_ms = time.time_ns() // 1_000_000
        state = {
            "temperature": round(self.rng.uniform(23, 27), 2),
            "humidity": round(self.rng.uniform(55, 70), 1),
            "co2": self.rng.randint(450, 900),
            "battery": 87,
            "last_seen": last_seen_ms,
        }
        self.bridge.publish_device_state(protocol_devices.ZIGBEE_SENSOR, state)
        self.produced.add("sensor-th-01", seq, (last_seen_ms,))

    async def push_punches(self, seq: int) -> None:
        """Push this round's punch with every punch not yet acknowledged, as a terminal keeps its records."""
        local_now = datetime.now(ZONE).replace(microsecond=0)
        punch = SimulatedPunch(EMPLOYEE_PINS[seq % len(EMPLOYEE_PINS)], local_now.replace(tzinfo=None), status=seq % 2)
        self.produced.add("terminal-lobby", seq, (int(local_now.timestamp() * 1000), punch.pin))
        self.unacknowledged.append((seq, punch))
        started = datetime.now().strftime("%H:%M:%S")
        try:
            response = await self.terminal.push_attlog([punch for _, punch in self.unacknowledged])
        except httpx.HTTPError as exc:
            self.upload_failures.append(f"{started} {len(self.unacknowledged)} punches: {exc!r}")
            return
        if response.status_code == 200 and response.text == "OK":
            self.unacknowledged.clear()
        else:
            self.upload_failures.append(f"{started} HTTP {response.status_code} {response.text[:80]!r}")


def sequence_of(arrival: Arrival, produced: Produced) -> int | None:
    """Return the sequence number of the reading a central message carries, or None for a Modbus meter."""
    payload = arrival.payload
    if arrival.device == "plug-printer":
        return round((payload["energy_kwh_total"] - TASMOTA_BASE_KWH) * 1000)
    if arrival.device == "plug-ac":
        return round(payload["energy_kwh_total"] * 1000 - GEN2_BASE_WH)
    if arrival.device == "plug-pantry":
        return round(payload["energy_kwh_total"] * 60_000 - GEN1_BASE_WATT_MINUTES)
    if arrival.device in produced.seq_by_key:
        return produced.seq_by_key[arrival.device].get(reading_key(arrival), -1)
    return None


def reading_key(arrival: Arrival) -> tuple:
    """Return what identifies a reading of a device dated by its own clock: ``ts``, and the PIN of a punch."""
    if arrival.stream == "attendance":
        return (arrival.payload["ts"], arrival.payload["employee_id"])
    return (arrival.payload["ts"],)


def write_agent_config(
    folder: Path, central: MosquittoServer, local: MosquittoServer, modbus_port: int, adms_port: int, interval_s: float
) -> Path:
    """Write ``edge.yaml`` with the simulator's adapter entries and the agent's default broker and queue settings."""
    device_arguments = [
        "--mqtt-port", str(local.port), "--modbus-port", str(modbus_port),
        "--adms-url", f"http://127.0.0.1:{adms_port}", "--interval-s", f"{interval_s:g}",
    ]  # fmt: skip
    adapters = protocol_devices.adapter_config(protocol_devices.build_parser().parse_args(device_arguments))
    for adapter in adapters:
        if adapter["type"] == "zkteco_adms":
            adapter["dedup_db_path"] = str(folder / "data" / "adms-punches.sqlite3")

    config = {
        "opd": OPD,
        "node": NODE,
        "data_dir": str(folder / "data"),
        "log_level": "INFO",
        "broker": {"host": central.host, "port": central.port},
        "settings": {"heartbeat_s": HEARTBEAT_S, "adapters": adapters},
    }
    path = folder / "edge.yaml"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


def queue_rows(database: Path) -> int | None:
    """Return the queue's row count from its ``queue_totals`` table, or None while it cannot be read."""
    if not database.exists():
        return None
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1)
        try:
            return connection.execute("SELECT rows FROM queue_totals").fetchone()[0]
        finally:
            connection.close()
    except sqlite3.Error:
        return None


def rss_kb(pid: int) -> dict[str, int]:
    """Return ``VmRSS`` and ``VmHWM`` of process ``pid`` in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


@dataclass
class Samples:
    """Queue depth and RSS of the agent, sampled once a second, with the phase of the scenario."""

    rows: list[tuple[float, str, int]] = field(default_factory=list)
    rss: list[tuple[float, str, int]] = field(default_factory=list)
    phase: str = "warm-up"


async def sample_loop(agent: ManagedProcess, database: Path, samples: Samples, stop: asyncio.Event) -> None:
    """Sample the queue depth and the agent's RSS once a second until ``stop`` is set."""
    while not stop.is_set():
        now = time.time()
        rows = await asyncio.to_thread(queue_rows, database)
        if rows is not None:
            samples.rows.append((now, samples.phase, rows))
        if agent.running():
            samples.rss.append((now, samples.phase, rss_kb(agent.pid)["VmRSS"]))
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            pass


def log_lines_after(log_path: Path, after: float) -> list[tuple[float, str]]:
    """Return the agent's log lines written after wall-clock time ``after``, with their times."""
    lines = []
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        except ValueError:
            continue
        if stamp >= after:
            lines.append((stamp, line))
    return lines


def agent_counters(log_path: Path) -> dict[str, dict]:
    """Return the adapter counters of the agent's last heartbeat line that lists adapters.

    A heartbeat during the shutdown runs after the adapters stopped and lists none.
    """
    lines = log_path.read_text(errors="replace").splitlines()
    heartbeat = [line for line in lines if "edge.agent: status:" in line and HEARTBEAT_PATTERN.search(line)]
    if not heartbeat:
        return {}
    counters = {}
    for adapter_id, adapter_type, readings, queued, rejected in HEARTBEAT_PATTERN.findall(heartbeat[-1]):
        counters[adapter_id] = {
            "type": adapter_type, "readings": int(readings), "queued": int(queued), "rejected": rejected
        }
    return counters


def progress(message: str) -> None:
    print(f"{datetime.now().strftime('%H:%M:%S')} {message}", flush=True)


PHASES = ("warm-up", "outage", "drain", "after")


@dataclass
class Timeline:
    """Wall-clock times of the scenario's steps, s."""

    start: float = 0.0
    broker_stopped: float = 0.0
    broker_restarted: float = 0.0
    backlog_arrived: float = 0.0
    devices_stopped: float = 0.0
    end: float = 0.0


async def scenario(arguments: argparse.Namespace, folder: Path) -> dict:
    """Run the scenario in ``folder`` and return the report."""
    central = MosquittoServer(folder / "central")
    local = MosquittoServer(folder / "local")
    central.start()
    local.start()
    modbus_port, adms_port = free_port(), free_port()

    office = Office(local, modbus_port, f"http://127.0.0.1:{adms_port}", arguments.interval_s)
    subscriber = CentralSubscriber(central)
    config_path = write_agent_config(folder, central, local, modbus_port, adms_port, arguments.interval_s)
    agent = ManagedProcess(
        "edge", [sys.executable, "-m", "edge", "--config", str(config_path)], folder / "edge.log", cwd=REPO_ROOT
    )
    database = folder / "data" / "outbox.sqlite3"
    samples = Samples()
    stop_sampling = asyncio.Event()
    times = Timeline()
    office_task = sampler = None

    try:
        await office.start()
        agent.start()
        await asyncio.to_thread(agent.wait_ready, lambda: "ADMS server listening" in agent.log_tail(100), 30)
        await asyncio.to_thread(agent.wait_ready, lambda: "connected to broker" in agent.log_tail(100), 30)
        sampler = asyncio.create_task(sample_loop(agent, database, samples, stop_sampling))
        office_task = asyncio.create_task(office.run())
        times.start = time.time()
        progress(
            f"agent pid {agent.pid} running, 7 devices, one reading each per {arguments.interval_s:g} s; "
            f"warm-up {arguments.warmup_s:g} s"
        )
        await asyncio.sleep(arguments.warmup_s)

        await run_outage(central, samples, times, arguments.outage_s)
        times.backlog_arrived = await wait_for_backlog(
            office.produced, subscriber, times.broker_restarted, arguments.drain_timeout_s
        )
        progress(f"backlog arrived {times.backlog_arrived - times.broker_restarted:.1f} s after the restart")

        samples.phase = "after"
        await asyncio.sleep(arguments.after_s)
        office.stop_event.set()
        await office_task
        office_task = None
        # The agent polls the meters by itself, so the Modbus server stops too.
        await office.modbus.stop()
        times.devices_stopped = time.time()
        await wait_for_empty_queue(database, subscriber)

        # One more heartbeat logs the adapter counters after the last reading.
        await asyncio.sleep(HEARTBEAT_S + 2)
        times.end = time.time()
        final_memory = rss_kb(agent.pid)
    finally:
        stop_sampling.set()
        if sampler is not None:
            await sampler
        if office_task is not None:
            office.stop_event.set()
            await office_task
        agent.stop()
        await office.stop()
        subscriber.close()
        local.stop()
        central.stop()

    return {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "arguments": {key: str(value) if isinstance(value, Path) else value for key, value in vars(arguments).items()},
        **agent_figures(agent.log_path, samples, times, final_memory),
        "terminal_upload_failures": office.upload_failures,
        "devices": device_figures(office.produced, subscriber.snapshot()),
    }


async def run_outage(central: MosquittoServer, samples: Samples, times: Timeline, outage_s: float) -> None:
    """Stop the central broker for ``outage_s``, logging the queue every minute, and start it again."""
    samples.phase = "outage"
    await asyncio.to_thread(central.stop)
    times.broker_stopped = time.time()
    progress(f"central broker stopped for {outage_s:g} s")

    outage_end = time.monotonic() + outage_s
    while time.monotonic() < outage_end:
        await asyncio.sleep(min(60.0, max(0.0, outage_end - time.monotonic())))
        depth = samples.rows[-1][2] if samples.rows else None
        progress(f"outage: queue {depth} readings, agent RSS {samples.rss[-1][2] / 1024:.1f} MiB")

    # The agent may connect while start() still waits for the port, so the time is taken first.
    samples.phase = "drain"
    times.broker_restarted = time.time()
    await asyncio.to_thread(central.start)
    progress("central broker started again; waiting for the backlog")


async def wait_for_backlog(
    produced: Produced, subscriber: CentralSubscriber, restarted: float, timeout_s: float
) -> float:
    """Wait until every reading produced before ``restarted`` arrived, and return the time of the last one."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        arrivals = subscriber.snapshot()
        received = defaultdict(set)
        for arrival in arrivals:
            seq = sequence_of(arrival, produced)
            if seq is not None:
                received[arrival.device].add(seq)
        missing = sum(
            1
            for device, readings in produced.by_device.items()
            for seq, produced_at in list(readings.items())
            if produced_at < restarted and seq not in received[device]
        )
        if missing == 0:
            return max((arrival.arrived for arrival in arrivals), default=time.time())
        await asyncio.sleep(0.5)
    progress(f"the backlog did not arrive within {timeout_s:g} s")
    return time.time()


async def wait_for_empty_queue(database: Path, subscriber: CentralSubscriber, timeout_s: float = 60.0) -> None:
    """Wait until the queue is empty and no message arrived for 3 s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        arrivals = subscriber.snapshot()
        quiet = not arrivals or time.time() - arrivals[-1].arrived > 3
        if quiet and queue_rows(database) == 0:
            return
        await asyncio.sleep(0.5)
    progress(f"the queue was not empty {timeout_s:g} s after the devices stopped")


def device_figures(produced: Produced, arrivals: list[Arrival]) -> dict[str, dict]:
    """Compare what each device produced with what arrived centrally, by sequence number.

    A Modbus meter has no readings of its own, so its polls are identified by ``ts``, and the
    largest gap between two polls shows a lost one.
    """
    by_device: dict[str, list[Arrival]] = defaultdict(list)
    for arrival in arrivals:
        by_device[arrival.device].append(arrival)

    figures = {}
    for device in sorted(set(by_device) | set(produced.by_device)):
        messages = by_device.get(device, [])
        polled = device not in produced.by_device
        keys = [message.payload["ts"] if polled else sequence_of(message, produced) for message in messages]
        unique = set(keys)
        first_arrivals = list(dict.fromkeys(keys))
        entry = {
            "received_messages": len(messages),
            "received_unique": len(unique),
            "duplicates": len(messages) - len(unique),
            "out_of_order": sum(1 for before, after in zip(first_arrivals, first_arrivals[1:]) if after < before),
        }
        if polled:
            stamps = sorted(unique)
            gaps_s = [(after - before) / 1000 for before, after in zip(stamps, stamps[1:])]
            entry["max_gap_s"] = max(gaps_s, default=None)
        else:
            produced_seqs = set(produced.by_device[device])
            entry["produced"] = len(produced_seqs)
            entry["lost"] = sorted(produced_seqs - unique)
            entry["unexpected"] = sorted(unique - produced_seqs)
        figures[device] = entry
    return figures


def agent_figures(log_path: Path, samples: Samples, times: Timeline, final_memory: dict) -> dict:
    """Return the agent's reconnect and backlog times, queue depths, RSS and adapter counters."""
    restart_lines = log_lines_after(log_path, times.broker_restarted)
    reconnected = next((stamp for stamp, line in restart_lines if "edge.uplink: connected to broker" in line), None)

    def max_by_phase(series: list[tuple[float, str, int]], phase: str) -> int | None:
        return max((value for _, sample_phase, value in series if sample_phase == phase), default=None)

    return {
        "outage_s": times.broker_restarted - times.broker_stopped,
        "run_s": times.end - times.start,
        "reconnect_after_restart_s": (reconnected - times.broker_restarted) if reconnected else None,
        "backlog_arrived_after_restart_s": times.backlog_arrived - times.broker_restarted,
        "agent_sending_line": next((line for _, line in restart_lines if "queued readings of" in line), None),
        "agent_backlog_line": next((line for _, line in restart_lines if "queued backlog sent in" in line), None),
        "max_queue_rows": {phase: max_by_phase(samples.rows, phase) for phase in PHASES},
        "rss_mib": {
            "max_by_phase": {phase: round((max_by_phase(samples.rss, phase) or 0) / 1024, 1) for phase in PHASES},
            "end": round(final_memory["VmRSS"] / 1024, 1),
            "peak_vmhwm": round(final_memory["VmHWM"] / 1024, 1),
        },
        "agent_counters": agent_counters(log_path),
    }


def print_report(report: dict) -> None:
    print()
    machine = report["machine"]
    print(f"machine: {machine['cpus']} CPUs, {machine['platform']}, Python {machine['python']}")
    print(f"outage: {report['outage_s']:.0f} s, whole run {report['run_s']:.0f} s")
    reconnect_s = report["reconnect_after_restart_s"]
    reconnect = f"{reconnect_s:.1f} s after the restart" if reconnect_s is not None else "(no reconnect in its log)"
    print(f"agent reconnected {reconnect}")
    print(f"backlog at the central subscriber {report['backlog_arrived_after_restart_s']:.1f} s after the restart")
    print(f"agent: {report['agent_sending_line']}")
    print(f"agent: {report['agent_backlog_line']}")
    print(f"largest queue depth by phase: {report['max_queue_rows']}")
    print(f"agent RSS: {report['rss_mib']}")
    failures = report["terminal_upload_failures"]
    print(f"terminal uploads that failed or were not acknowledged: {len(failures)}")
    for failure in failures:
        print(f"  {failure}")

    print()
    print(f"{'device':<20} {'produced':>9} {'received':>9} {'unique':>7} {'dups':>5} {'lost':>5} {'order':>6}  note")
    for device, entry in report["devices"].items():
        produced = entry.get("produced", "polled")
        lost = len(entry["lost"]) if "lost" in entry else "-"
        note = f"max gap between polls {entry['max_gap_s']} s" if "max_gap_s" in entry else ""
        if entry.get("unexpected"):
            note += f" unexpected {entry['unexpected'][:5]}"
        print(
            f"{device:<20} {produced:>9} {entry['received_messages']:>9} {entry['received_unique']:>7} "
            f"{entry['duplicates']:>5} {lost:>5} {entry['out_of_order']:>6}  {note}"
        )

    meters = [entry["received_unique"] for entry in report["devices"].values() if "max_gap_s" in entry]
    modbus = report["agent_counters"].get("sim-meters", {})
    print(f"modbus readings logged by the agent: {modbus.get('readings')}, received: {sum(meters)}")
    for adapter_id, counters in report["agent_counters"].items():
        print(f"adapter {adapter_id}: {counters}")


def main() -> int:
    arguments = parse_arguments()
    with tempfile.TemporaryDirectory(prefix="edge-outage-") as temporary:
        folder = Path(temporary)
        report = asyncio.run(scenario(arguments, folder))
        print_report(report)
        if arguments.json_out:
            arguments.json_out.write_text(json.dumps(report, indent=2), encoding="utf-8")
        if arguments.keep_log:
            arguments.keep_log.write_text((folder / "edge.log").read_text(errors="replace"), encoding="utf-8")
        lost = sum(len(entry.get("lost", [])) for entry in report["devices"].values())
        if lost:
            log_copy = Path(tempfile.gettempdir()) / f"edge-outage-{int(time.time())}.log"
            log_copy.write_text((folder / "edge.log").read_text(errors="replace"))
            print(f"{lost} readings lost; the agent's log is kept in {log_copy}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
