"""Benchmark: resident memory (RSS) of the edge agent in steady state on a typical office.

Starts two Mosquitto brokers on free loopback ports in a temporary folder: the office's local
broker and the central one. The agent runs as ``python -m edge`` with one ``json`` adapter
subscribed to ``office/+/room``, ``office/+/energy`` and ``office/+/attendance``. A publisher
plays the office: ``--meters`` energy meters and ``--sensors`` room sensors send one reading
each every ``--interval-s`` seconds, and ``--terminals`` attendance terminals one punch each
per interval. A subscriber on the central broker counts what arrives.

After ``--warmup-s`` seconds the script reads the agent's ``VmRSS`` from ``/proc/<pid>/status``
every ``--sample-every-s`` seconds for ``--measure-s`` seconds, then prints the RSS after the
warm-up, the largest sample, the peak (``VmHWM``) and the delivery count.

Usage: ``python bench/edge_memory.py [--meters 3] [--sensors 10] [--terminals 1] [--interval-s 10]
[--warmup-s 60] [--measure-s 60]``
"""

import argparse
import json
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from devstack import ManagedProcess, MosquittoServer  # noqa: E402

OPD = "bench"
NODE = "gw-01"


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--meters", type=int, default=3, help="energy meters (default 3)")
    parser.add_argument("--sensors", type=int, default=10, help="room sensors (default 10)")
    parser.add_argument("--terminals", type=int, default=1, help="attendance terminals (default 1)")
    parser.add_argument("--interval-s", type=float, default=10.0, help="seconds between two readings of a device")
    parser.add_argument("--warmup-s", type=float, default=60.0, help="seconds before the first RSS sample")
    parser.add_argument("--measure-s", type=float, default=60.0, help="seconds of RSS sampling after the warm-up")
    parser.add_argument("--sample-every-s", type=float, default=5.0, help="seconds between two RSS samples")
    return parser.parse_args()


def memory_kb(pid: int) -> dict[str, int]:
    """Return ``VmRSS`` and ``VmHWM`` of process ``pid`` in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def write_config(folder: Path, central: MosquittoServer, local: MosquittoServer) -> Path:
    config = {
        "opd": OPD,
        "node": NODE,
        "data_dir": str(folder / "data"),
        "log_level": "INFO",
        "broker": {"host": central.host, "port": central.port},
        "settings": {
            "heartbeat_s": 60,
            "adapters": [
                {
                    "type": "json",
                    "id": "office-json",
                    "host": local.host,
                    "port": local.port,
                    "subscriptions": [
                        {"topic": "office/+/room"},
                        {"topic": "office/+/energy"},
                        {"topic": "office/+/attendance"},
                    ],
                }
            ],
        },
    }
    path = folder / "edge.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


class Office(threading.Thread):
    """Publishes the readings of the simulated devices on the local broker, once per interval."""

    def __init__(self, local: MosquittoServer, arguments: argparse.Namespace) -> None:
        super().__init__(daemon=True)
        self.arguments = arguments
        self.stop_event = threading.Event()
        self.published = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-office-" + uuid.uuid4().hex[:6])
        self.client.connect(local.host, local.port)
        self.client.loop_start()

    def run(self) -> None:
        seq = 0
        next_round = time.monotonic()
        while not self.stop_event.is_set():
            self.publish_round(seq)
            seq += 1
            next_round += self.arguments.interval_s
            self.stop_event.wait(max(0.0, next_round - time.monotonic()))

    def publish_round(self, seq: int) -> None:
        now = time.time_ns() // 1_000_000
        for index in range(self.arguments.meters):
            device = f"meter-{index:02d}"
            reading = {"device": device, "ts": now, "seq": seq, "power_w": 1500.0 + index, "energy_kwh_total": 1000.0 + seq / 360}
            self.send(f"office/{device}/energy", reading)
        for index in range(self.arguments.sensors):
            device = f"sensor-{index:02d}"
            reading = {"device": device, "ts": now, "room": f"ruang-{index:02d}", "seq": seq, "temperature_c": 25.5, "co2_ppm": 700.0}
            self.send(f"office/{device}/room", reading)
        for index in range(self.arguments.terminals):
            device = f"absen-{index:02d}"
            event = {"device": device, "ts": now, "employee_id": f"{seq % 50 + 1}", "punch": "in", "verify": "fingerprint"}
            self.send(f"office/{device}/attendance", event)

    def send(self, topic: str, payload: dict) -> None:
        self.client.publish(topic, json.dumps(payload), qos=1)
        self.published += 1

    def stop(self) -> None:
        self.stop_event.set()
        self.join(10)
        self.client.loop_stop()
        self.client.disconnect()


def main() -> int:
    arguments = parse_arguments()
    with tempfile.TemporaryDirectory(prefix="edge-memory-") as temporary:
        folder = Path(temporary)
        central = MosquittoServer(folder / "central")
        local = MosquittoServer(folder / "local")
        central.start()
        local.start()

        received = [0]
        subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-central-" + uuid.uuid4().hex[:6])
        subscriber.on_message = lambda client, userdata, message: received.__setitem__(0, received[0] + 1)
        subscriber.on_connect = lambda client, userdata, flags, code, properties: client.subscribe(
            [(f"smartoffice/v1/{OPD}/{NODE}/{stream}", 1) for stream in ("room", "energy", "attendance")]
        )
        subscriber.connect(central.host, central.port)
        subscriber.loop_start()

        config_path = write_config(folder, central, local)
        agent = ManagedProcess("edge", [sys.executable, "-m", "edge", "--config", str(config_path)], folder / "edge.log", cwd=REPO_ROOT)
        agent.start()
        office = None
        try:
            agent.wait_ready(lambda: "subscribed on local broker" in agent.log_tail(50), timeout_s=30)
            office = Office(local, arguments)
            office.start()
            devices = arguments.meters + arguments.sensors + arguments.terminals
            print(
                f"agent pid {agent.pid}: {devices} devices, one reading each per {arguments.interval_s:g} s; "
                f"warming up for {arguments.warmup_s:g} s"
            )
            time.sleep(arguments.warmup_s)

            after_warmup = memory_kb(agent.pid)
            samples = [after_warmup["VmRSS"]]
            deadline = time.monotonic() + arguments.measure_s
            while time.monotonic() < deadline:
                time.sleep(arguments.sample_every_s)
                samples.append(memory_kb(agent.pid)["VmRSS"])
            final = memory_kb(agent.pid)
        finally:
            if office is not None:
                office.stop()
            time.sleep(1)
            agent.stop()
            subscriber.loop_stop()
            subscriber.disconnect()
            local.stop()
            central.stop()

        print(f"RSS after warm-up:          {after_warmup['VmRSS'] / 1024:.1f} MiB")
        print(f"largest RSS while measured: {max(samples) / 1024:.1f} MiB ({len(samples)} samples)")
        print(f"peak RSS (VmHWM):           {final['VmHWM'] / 1024:.1f} MiB")
        print(f"readings published: {office.published if office else 0}, readings at the central broker: {received[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
