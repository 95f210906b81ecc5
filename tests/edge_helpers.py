"""Helpers of the edge agent tests: brokers, the agent as a child process, a feed and a subscriber.

The agent runs as ``python -m edge`` against two real Mosquitto brokers on loopback: the
office's local broker, where a feed publishes contract JSON for the ``json`` adapter, and
the central broker, where a subscriber with a persistent session records what arrives.
"""

import json
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml

from devstack import ManagedProcess, MosquittoServer, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
NODE = "gw-01"


def json_adapter(local: MosquittoServer, adapter_id: str = "local-json", topics=("office/+/room",), **extra) -> dict:
    """Return the settings entry of a ``json`` adapter reading ``topics`` on ``local``."""
    entry = {
        "type": "json",
        "id": adapter_id,
        "host": local.host,
        "port": local.port,
        "reconnect_min_s": 0.2,
        "reconnect_max_s": 1,
        "subscriptions": [{"topic": topic} for topic in topics],
    }
    entry.update(extra)
    return entry


def write_edge_config(
    folder: Path, opd: str, central: MosquittoServer, adapters: list[dict], **settings: object
) -> Path:
    """Write an ``edge.yaml`` with short test timings; return its path."""
    config = {
        "opd": opd,
        "node": NODE,
        "data_dir": str(folder / "data"),
        "log_level": "DEBUG",
        "broker": {
            "host": central.host,
            "port": central.port,
            "keepalive_s": 5,
            "reconnect_min_s": 0.2,
            "reconnect_max_s": 1,
            "publish_timeout_s": 10,
        },
        "settings": {"heartbeat_s": 1, **settings, "adapters": adapters},
    }
    path = folder / "edge.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


class EdgeProcess:
    """``python -m edge --config <path>`` as a child process, one log file per start."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.process: ManagedProcess | None = None
        self.starts = 0

    def start(self, ready_line: str = "connected to broker", timeout_s: float = 20.0) -> None:
        """Start the agent and wait until its log shows ``ready_line``."""
        self.starts += 1
        log_path = self.config_path.parent / f"edge-{self.starts}.log"
        self.process = ManagedProcess(
            "edge", [sys.executable, "-m", "edge", "--config", str(self.config_path)], log_path, cwd=REPO_ROOT
        )
        self.process.start()
        self.wait_for_log(ready_line, timeout_s)

    def wait_for_log(self, text: str, timeout_s: float = 20.0) -> None:
        """Wait until this start's log contains ``text``."""
        self.process.wait_ready(lambda: text in self.log(), timeout_s)

    def log(self) -> str:
        """Return this start's whole log."""
        return self.process.log_path.read_text(encoding="utf-8", errors="replace")

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def kill(self) -> None:
        self.process.kill()


def queue_rows(config_path: Path) -> int:
    """Count the rows in the agent's queue, reading the SQLite file next to it."""
    database = config_path.parent / "data" / "outbox.sqlite3"
    if not database.exists():
        return 0
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return connection.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        connection.close()


@dataclass
class Received:
    """One message that arrived at the central subscriber."""

    topic: str
    payload: bytes
    retain: bool
    arrived: float

    @property
    def stream(self) -> str:
        return self.topic.split("/", 4)[4]

    def json(self) -> dict:
        return json.loads(self.payload)


class CentralSubscriber:
    """Records every message under one node's topics, across broker restarts.

    The session is persistent (clean_session false), so messages published while this
    client reconnects after a broker restart are queued by the broker and not lost.
    """

    def __init__(self, broker: MosquittoServer, opd: str) -> None:
        self.topic_filter = f"smartoffice/v1/{opd}/{NODE}/#"
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="test-sub-" + uuid.uuid4().hex[:8], clean_session=False
        )
        self.client.reconnect_delay_set(min_delay=0.1, max_delay=0.5)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port, keepalive=5)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError(f"the test subscriber did not subscribe to {self.topic_filter}")

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        client.subscribe(self.topic_filter, qos=1)

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.messages.append(Received(message.topic, message.payload, bool(message.retain), time.monotonic()))

    def received(self, stream: str | None = None) -> list[Received]:
        """Return the messages of ``stream`` (all when None) in arrival order."""
        with self._lock:
            return [message for message in self.messages if stream is None or message.stream == stream]

    def readings(self, streams=("room", "energy", "attendance")) -> list[dict]:
        """Return the telemetry payloads in arrival order."""
        return [message.json() for message in self.received() if message.stream in streams]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def retained_status(broker: MosquittoServer, opd: str, timeout_s: float = 5.0) -> tuple[bytes, bool] | None:
    """Return the retained payload on the node's ``status`` topic and its retain flag, via a fresh client."""
    topic = f"smartoffice/v1/{opd}/{NODE}/status"
    found: list[tuple[bytes, bool]] = []
    arrived = threading.Event()

    def on_message(client, userdata, message) -> None:
        found.append((message.payload, bool(message.retain)))
        arrived.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-status-" + uuid.uuid4().hex[:8])
    client.on_message = on_message
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        arrived.wait(timeout_s)
    finally:
        client.loop_stop()
        client.disconnect()
    return found[0] if found else None


def publish(broker: MosquittoServer, topic: str, payload: bytes | str, retain: bool = False) -> None:
    """Publish one QoS 1 message and wait for its PUBACK."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-pub-" + uuid.uuid4().hex[:8])
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


@dataclass
class Sent:
    """One reading the feed published on the local broker."""

    device: str
    seq: int
    sent: float


@dataclass
class ReadingFeed:
    """Publishes room readings of several devices on the local broker at a steady rate, in a thread.

    Each device has its own ``seq`` counter from 0 and its own topic ``office/<device>/room``.
    """

    broker: MosquittoServer
    devices: tuple[str, ...]
    interval_s: float
    sent: list[Sent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-feed-" + uuid.uuid4().hex[:8])
        self.client.connect(self.broker.host, self.broker.port)
        self.client.loop_start()

    def start(self) -> "ReadingFeed":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self.client.loop_stop()
        self.client.disconnect()

    def publish_round(self, seq: int) -> None:
        """Publish reading ``seq`` of every device and wait for the local broker's PUBACKs."""
        infos = []
        for device in self.devices:
            payload = {
                "device": device,
                "ts": time.time_ns() // 1_000_000,
                "room": "ruang-rapat",
                "seq": seq,
                "temperature_c": 20.0 + seq % 10,
            }
            infos.append(self.client.publish(f"office/{device}/room", json.dumps(payload), qos=1))
            self.sent.append(Sent(device, seq, time.monotonic()))
        for info in infos:
            info.wait_for_publish(10)

    def _run(self) -> None:
        seq = 0
        next_round = time.monotonic()
        while not self._stop.is_set():
            self.publish_round(seq)
            seq += 1
            next_round += self.interval_s
            self._stop.wait(max(0.0, next_round - time.monotonic()))


def first_arrivals(readings: list[dict]) -> dict[str, list[int]]:
    """Return each device's ``seq`` values in order of first arrival, duplicates left out.

    Readings without ``seq`` are skipped.
    """
    seen: set[tuple[str, int]] = set()
    order: dict[str, list[int]] = {}
    for reading in readings:
        if "seq" not in reading:
            continue
        key = (reading["device"], reading["seq"])
        if key in seen:
            continue
        seen.add(key)
        order.setdefault(reading["device"], []).append(reading["seq"])
    return order



@dataclass(frozen=True)
class TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1 that it signed."""

    ca: Path
    cert: Path
    key: Path


def make_tls_files(folder: Path, name: str = "test") -> TlsFiles:
    """Create a CA and a server certificate with subjectAltName IP:127.0.0.1, using the openssl CLI."""
    if shutil.which("openssl") is None:
        import pytest

        pytest.skip("the openssl command is not installed")
    folder.mkdir(parents=True, exist_ok=True)

    def openssl(*arguments: str) -> None:
        subprocess.run(["openssl", *arguments], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}-ca",
            "-keyout", "ca.key", "-out", "ca.pem")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
            "-out", "server.csr")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n", encoding="utf-8")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "1", "-extfile", "san.ext", "-out", "server.pem")
    return TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server.key")


def tls_listener(files: TlsFiles) -> tuple[int, str]:
    """Return a free port and the Mosquitto configuration of a TLS listener on it."""
    port = free_port()
    config = f"listener {port} 127.0.0.1\ncafile {files.ca}\ncertfile {files.cert}\nkeyfile {files.key}\n"
    return port, config
