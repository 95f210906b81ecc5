"""Benchmark: throughput, publish-to-queryable latency and memory of the ingest service.

Scenarios, each with its own Mosquitto and influxd on free loopback ports in a temporary
folder, and each run with the delivery guarantee on (PUBACK after the InfluxDB write, the
default) and off (``SMARTOFFICE_ACK_AFTER_WRITE=false``: paho acknowledges on receipt):

* ``backlog``: the ingest's persistent session is created, the service stopped, N messages
  published into its queue, then the service started again; the time from its start to the
  last point being queryable is the ingest's own drain rate.
* ``burst``: with the service running, 8 ``mosquitto_pub -l`` processes (the C client) send
  N messages at QoS 1 as fast as they can; the time from the first publish to the last point
  queryable is end-to-end throughput.
* ``latency``: the same publishers paced at ``--rate`` msg/s for ``--seconds``. A poller counts
  stored points every 25 ms; since one writer stores batches in order, message k is taken as
  queryable at the first poll whose count exceeds k. Latency = that time minus k's scheduled
  publish time, so the figures include up to 25 ms of polling resolution.

Peak memory is the ingest process's VmHWM (peak resident set size) from ``/proc``.

Usage: ``python bench/ingest_throughput.py [--messages 200000] [--scenario all] [--guarantee both]``
"""

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

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
    """Publish every payload at QoS 1 from ``clients`` paho connections; return the seconds taken."""
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


PUBLISHERS = 8


def start_c_publishers(port: int) -> list[subprocess.Popen]:
    """Start ``mosquitto_pub -l`` processes, one topic each; every stdin line is one QoS 1 message."""
    processes = []
    for index in range(PUBLISHERS):
        stream = "room" if index % 2 else "energy"
        topic = f"smartoffice/v1/opd-{index // 2:02d}/gw-01/{stream}"
        processes.append(
            subprocess.Popen(
                ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", topic, "-l", "-i", f"bench-c-{index}"],
                stdin=subprocess.PIPE,
            )
        )
    return processes


def c_payload_lines(messages: int, devices: int, ts_of=lambda index: START_MS + index) -> list[list[bytes]]:
    """Return the stdin lines of each C publisher: publisher i sends room (odd) or energy (even) readings."""
    lines: list[list[bytes]] = [[] for _ in range(PUBLISHERS)]
    for index in range(messages):
        publisher = index % PUBLISHERS
        device = index % devices
        if publisher % 2:
            body = {"device": f"sensor-{device:04d}", "ts": ts_of(index), "room": f"room-{device % 8}", "seq": index,
                    "temperature_c": 24.0 + (index % 50) / 10, "co2_ppm": 450 + index % 700, "occupancy": bool(index % 3)}
        else:
            body = {"device": f"meter-{device:04d}", "ts": ts_of(index), "seq": index, "power_w": 1500.0 + index % 900,
                    "energy_kwh_total": 10_000 + index / 1000, "voltage_v": 229.5}
        lines[publisher].append(json.dumps(body, separators=(",", ":")).encode() + b"\n")
    return lines


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


def ingest_process(folder: Path, mosquitto: MosquittoServer, influx: InfluxServer, guarantee: bool) -> ManagedProcess:
    env = dict(
        os.environ,
        SMARTOFFICE_MQTT_PORT=str(mosquitto.port),
        SMARTOFFICE_INFLUX_URL=influx.url,
        SMARTOFFICE_INFLUX_DB=DATABASE,
        SMARTOFFICE_MQTT_CLIENT_ID="bench-ingest",
        SMARTOFFICE_DEAD_LETTER_PATH=str(folder / "dead-letters.sqlite3"),
        SMARTOFFICE_MAX_AGE_DAYS="36500",
        # Attendance employee ids are stored as keyed pseudonyms, as in production.
        SMARTOFFICE_PSEUDONYM_KEY=secrets.token_hex(32),
        SMARTOFFICE_ACK_AFTER_WRITE="true" if guarantee else "false",
    )
    log = folder / f"ingest-{time.monotonic_ns()}.log"
    return ManagedProcess("ingest", [sys.executable, "-m", "ingest"], log, env=env, cwd=REPO_ROOT)


DATABASE = "bench"


class Servers:
    """Mosquitto and influxd in a temporary folder, for one scenario."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.mosquitto = MosquittoServer(folder / "mosquitto")
        self.influx = InfluxServer(folder / "influxdb")

    def __enter__(self) -> "Servers":
        self.mosquitto.start()
        self.influx.start()
        self.influx.create_database(DATABASE)
        return self

    def __exit__(self, *exc_info) -> None:
        self.mosquitto.stop()
        self.influx.stop()


def wait_subscribed(process: ManagedProcess) -> None:
    process.wait_ready(lambda: "subscribed to" in process.log_tail(50), timeout_s=30)


def run_backlog(servers: Servers, messages: int, devices: int, guarantee: bool) -> dict:
    ingest = ingest_process(servers.folder, servers.mosquitto, servers.influx, guarantee)
    ingest.start()
    wait_subscribed(ingest)
    ingest.stop()

    publish_s = publish_all(servers.mosquitto.port, build_payloads(messages, devices))

    ingest.start()
    started = time.perf_counter()
    finished = wait_for_points(servers.influx, DATABASE, messages, timeout_s=600)
    rss = peak_rss_mb(ingest.pid)
    ingest.stop()
    seconds = finished - started
    return {"drain_s": round(seconds, 2), "msg_per_s": round(messages / seconds), "peak_rss_mb": round(rss, 1),
            "publish_s": round(publish_s, 2)}


def run_burst(servers: Servers, messages: int, devices: int, guarantee: bool) -> dict:
    ingest = ingest_process(servers.folder, servers.mosquitto, servers.influx, guarantee)
    ingest.start()
    wait_subscribed(ingest)
    lines = c_payload_lines(messages, devices)

    started = time.perf_counter()
    publishers = start_c_publishers(servers.mosquitto.port)
    feeders = [threading.Thread(target=_feed, args=(process, chunk)) for process, chunk in zip(publishers, lines)]
    for feeder in feeders:
        feeder.start()
    for feeder in feeders:
        feeder.join()
    for process in publishers:
        process.wait()
    publish_s = time.perf_counter() - started
    finished = wait_for_points(servers.influx, DATABASE, messages, timeout_s=600)
    rss = peak_rss_mb(ingest.pid)
    ingest.stop()
    seconds = finished - started
    return {"end_to_end_s": round(seconds, 2), "msg_per_s": round(messages / seconds), "peak_rss_mb": round(rss, 1),
            "publish_s": round(publish_s, 2)}


def _feed(process: subprocess.Popen, chunk: list[bytes]) -> None:
    process.stdin.write(b"".join(chunk))
    process.stdin.close()


def run_latency(servers: Servers, rate: int, seconds: float, devices: int, guarantee: bool) -> dict:
    ingest = ingest_process(servers.folder, servers.mosquitto, servers.influx, guarantee)
    ingest.start()
    wait_subscribed(ingest)
    messages = int(rate * seconds)
    lines = c_payload_lines(messages, devices)
    publishers = start_c_publishers(servers.mosquitto.port)

    counts: list[tuple[float, int]] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            counts.append((time.perf_counter(), count_points(servers.influx, DATABASE)))
            time.sleep(0.025)

    poller = threading.Thread(target=poll, daemon=True)
    started = time.perf_counter()
    poller.start()
    for index in range(messages):
        delay = started + index / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        publisher = publishers[index % PUBLISHERS]
        publisher.stdin.write(lines[index % PUBLISHERS][index // PUBLISHERS])
        publisher.stdin.flush()
    for process in publishers:
        process.stdin.close()
        process.wait()
    wait_for_points(servers.influx, DATABASE, messages, timeout_s=300)
    time.sleep(0.1)
    stop.set()
    poller.join()
    rss = peak_rss_mb(ingest.pid)
    ingest.stop()

    latencies = []
    position = 0
    for index in range(messages):
        while position < len(counts) and counts[position][1] <= index:
            position += 1
        if position == len(counts):
            break
        latencies.append(counts[position][0] - (started + index / rate))
    latencies.sort()
    return {
        "rate_msg_per_s": rate,
        "messages": messages,
        "p50_ms": round(1000 * latencies[len(latencies) // 2]),
        "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)]),
        "max_ms": round(1000 * latencies[-1]),
        "peak_rss_mb": round(rss, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="Measure ingest throughput, latency and memory.")
    parser.add_argument("--messages", type=int, default=200_000, help="messages per backlog or burst run (default 200000)")
    parser.add_argument("--devices", type=int, default=500, help="distinct devices (default 500)")
    parser.add_argument("--rate", type=int, default=5_000, help="latency run: messages per second (default 5000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="latency run: duration, s (default 20)")
    parser.add_argument("--scenario", choices=("backlog", "burst", "latency", "all"), default="all")
    parser.add_argument("--guarantee", choices=("on", "off", "both"), default="both")
    args = parser.parse_args()

    modes = {"on": [True], "off": [False], "both": [True, False]}[args.guarantee]
    scenarios = ("backlog", "burst", "latency") if args.scenario == "all" else (args.scenario,)
    for scenario in scenarios:
        for guarantee in modes:
            with tempfile.TemporaryDirectory(prefix=f"bench-{scenario}-") as folder, Servers(Path(folder)) as servers:
                if scenario == "backlog":
                    result = run_backlog(servers, args.messages, args.devices, guarantee)
                elif scenario == "burst":
                    result = run_burst(servers, args.messages, args.devices, guarantee)
                else:
                    result = run_latency(servers, args.rate, args.seconds, args.devices, guarantee)
            record = {"scenario": scenario, "guarantee": "on" if guarantee else "off", **result}
            print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
