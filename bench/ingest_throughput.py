"""Benchmark: how fast the ingest service stores a burst of QoS 1 messages, and in how much memory.

Scenario (the same as the peers it is compared with): N messages at QoS 1 from D devices.

* ``backlog``: the ingest's persistent session is created, the service stopped, the N
  messages published into its queue on the broker, then the service started again. The time
  from its start to the last point being queryable is the ingest's own drain rate.
* ``live``: the service runs while the publishers send the N messages as fast as they can;
  the time from the first publish to the last point queryable is end-to-end throughput.

Each run starts its own Mosquitto and influxd on free loopback ports in a temporary folder.
Peak memory is the ingest process's VmHWM (peak resident set size) from ``/proc``.

Usage: ``python bench/ingest_throughput.py [--messages 200000] [--devices 500] [--mode both]``
"""

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from devstack import InfluxServer, ManagedProcess, MosquittoServer  # noqa: E402

START_MS = 1_796_000_000_000  # 2026-12-01, fixed so every run writes the same points


def build_payloads(messages: int, devices: int) -> list[tuple[str, bytes]]:
    """Return (topic, payload) pairs: room readings and energy readings, alternating devices."""
    out = []
    for index in range(messages):
        device = index % devices
        opd = f"opd-{device % 40:02d}"
        node = f"gw-{device % 5:02d}"
        ts = START_MS + (index // devices) * 1000
        if device % 2:
            payload = {
                "device": f"sensor-{device:04d}",
                "ts": ts,
                "room": f"room-{device % 8}",
                "seq": index,
                "temperature_c": 24.0 + (index % 50) / 10,
                "humidity_pct": 60 + index % 20,
                "co2_ppm": 450 + index % 700,
                "occupancy": bool(index % 3),
            }
            topic = f"smartoffice/v1/{opd}/{node}/room"
        else:
            payload = {
                "device": f"meter-{device:04d}",
                "ts": ts,
                "seq": index,
                "power_w": 1500.0 + index % 900,
                "energy_kwh_total": 10_000 + index / 1000,
                "voltage_v": 229.5,
                "current_a": 6.5,
            }
            topic = f"smartoffice/v1/{opd}/{node}/energy"
        out.append((topic, json.dumps(payload, separators=(",", ":")).encode()))
    return out


def publish_all(port: int, payloads: list[tuple[str, bytes]], clients: int = 4) -> float:
    """Publish every payload at QoS 1 from ``clients`` connections; return the seconds taken."""
    done = threading.Barrier(clients + 1)

    def worker(worker_index: int) -> None:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{worker_index}")
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.connect("127.0.0.1", port)
        client.loop_start()
        infos = []
        for topic, payload in payloads[worker_index::clients]:
            infos.append(client.publish(topic, payload, qos=1))
        for info in infos:
            info.wait_for_publish(timeout=300)
        client.loop_stop()
        client.disconnect()
        done.wait()

    started = time.perf_counter()
    for worker_index in range(clients):
        threading.Thread(target=worker, args=(worker_index,), daemon=True).start()
    done.wait()
    return time.perf_counter() - started


def count_points(influx: InfluxServer, database: str) -> int:
    answer = influx.query(database, 'SELECT count("seq") FROM "room", "energy"')
    total = 0
    for series in answer["results"][0].get("series", []):
        total += series["values"][0][1]
    return total


def wait_for_points(influx: InfluxServer, database: str, expected: int, timeout_s: float) -> float:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if count_points(influx, database) >= expected:
            return time.perf_counter()
        time.sleep(0.05)
    raise TimeoutError(f"only {count_points(influx, database)} of {expected} points after {timeout_s} s")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ingest_process(folder: Path, mosquitto: MosquittoServer, influx: InfluxServer, database: str, extra_env: dict) -> ManagedProcess:
    env = dict(
        os.environ,
        SMARTOFFICE_MQTT_PORT=str(mosquitto.port),
        SMARTOFFICE_INFLUX_URL=influx.url,
        SMARTOFFICE_INFLUX_DB=database,
        SMARTOFFICE_MQTT_CLIENT_ID="bench-ingest",
        **extra_env,
    )
    return ManagedProcess("ingest", [sys.executable, "-m", "ingest"], folder / "ingest.log", env=env, cwd=REPO_ROOT)


def wait_subscribed(process: ManagedProcess) -> None:
    process.wait_ready(lambda: "subscribed to" in process.log_tail(50), timeout_s=30)


def run_backlog(folder: Path, payloads, extra_env: dict) -> dict:
    mosquitto = MosquittoServer(folder / "mosquitto")
    influx = InfluxServer(folder / "influxdb")
    mosquitto.start()
    influx.start()
    try:
        database = "bench"
        ingest = ingest_process(folder, mosquitto, influx, database, extra_env)
        ingest.start()
        wait_subscribed(ingest)
        ingest.stop()

        publish_s = publish_all(mosquitto.port, payloads)

        ingest.start()
        started = time.perf_counter()
        finished = wait_for_points(influx, database, len(payloads), timeout_s=600)
        rss = peak_rss_mb(ingest.pid)
        ingest.stop()
        seconds = finished - started
        return {
            "mode": "backlog",
            "messages": len(payloads),
            "publish_s": round(publish_s, 2),
            "drain_s": round(seconds, 2),
            "msg_per_s": round(len(payloads) / seconds),
            "peak_rss_mb": round(rss, 1),
        }
    finally:
        mosquitto.stop()
        influx.stop()


def run_live(folder: Path, payloads, extra_env: dict) -> dict:
    mosquitto = MosquittoServer(folder / "mosquitto")
    influx = InfluxServer(folder / "influxdb")
    mosquitto.start()
    influx.start()
    try:
        database = "bench"
        ingest = ingest_process(folder, mosquitto, influx, database, extra_env)
        ingest.start()
        wait_subscribed(ingest)

        started = time.perf_counter()
        publish_s = publish_all(mosquitto.port, payloads)
        finished = wait_for_points(influx, database, len(payloads), timeout_s=600)
        rss = peak_rss_mb(ingest.pid)
        ingest.stop()
        seconds = finished - started
        return {
            "mode": "live",
            "messages": len(payloads),
            "publish_s": round(publish_s, 2),
            "end_to_end_s": round(seconds, 2),
            "msg_per_s": round(len(payloads) / seconds),
            "peak_rss_mb": round(rss, 1),
        }
    finally:
        mosquitto.stop()
        influx.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000, help="messages to send (default 200000)")
    parser.add_argument("--devices", type=int, default=500, help="distinct devices (default 500)")
    parser.add_argument("--mode", choices=("backlog", "live", "both"), default="both")
    args = parser.parse_args()

    payloads = build_payloads(args.messages, args.devices)
    results = []
    for mode, runner in (("backlog", run_backlog), ("live", run_live)):
        if args.mode in (mode, "both"):
            with tempfile.TemporaryDirectory(prefix=f"bench-{mode}-") as folder:
                result = runner(Path(folder), payloads, {})
                print(json.dumps(result), flush=True)
                results.append(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
