"""Benchmark: latency of ``GET /api/v1/overview`` on a month of data for 40 OPDs.

Starts its own influxd on a free loopback port in a temporary folder (no Mosquitto: the data
is written directly as line protocol, with the measurements, tags and fields of
``contract.storage``). Each OPD has 5 nodes and 50 devices: 1 attendance terminal, 4 energy
meters and 45 room sensors. Meters and room sensors report every 15 minutes for the last
``--days`` days, every employee punches in and out on workdays (Monday to Friday), and each
node has one online status. Points go in batches of 10,000. The API then runs as
``python -m api`` with a generated catalogue of the same OPDs, and the overview is requested
``--requests`` times in a row, after one warm-up request.

Usage: ``python bench/overview_latency.py [--opds 40] [--days 30] [--requests 30]``
"""

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from api.security.principals import Role  # noqa: E402
from api.security.users_cli import create_user  # noqa: E402
from devstack import InfluxServer, ManagedProcess, free_port  # noqa: E402
from registry.db import make_engine, session_factory  # noqa: E402
from registry.migrate import upgrade  # noqa: E402

DATABASE = "bench"
BENCH_USER = "bench-leadership"
BATCH_POINTS = 10_000
STEP_MS = 15 * 60_000
NODES_PER_OPD = 5
METERS_PER_OPD = 4
SENSORS_PER_OPD = 45
EMPLOYEES_PER_OPD = 50
ZONE = ZoneInfo("Asia/Jakarta")


def build_catalogue(opds: int) -> dict:
    """Return a catalogue with ``opds`` OPDs of 50 devices each, spread over 5 nodes."""
    entries = []
    for index in range(opds):
        devices = [{"id": "absen-01", "kind": "attendance_terminal"}]
        devices += [{"id": f"meter-{m:02d}", "kind": "energy_meter", "circuit": f"panel-{m:02d}"} for m in range(METERS_PER_OPD)]
        devices += [{"id": f"sensor-{s:02d}", "kind": "room_sensor", "room": f"ruang-{s:02d}"} for s in range(SENSORS_PER_OPD)]
        nodes = [
            {"id": f"gw-{n:02d}", "devices": devices[n::NODES_PER_OPD]}
            for n in range(NODES_PER_OPD)
        ]
        entries.append(
            {
                "id": f"opd-{index:02d}",
                "name": f"OPD {index:02d}",
                "employees": EMPLOYEES_PER_OPD,
                "rooms": [{"id": f"ruang-{s:02d}", "name": f"Ruang {s:02d}"} for s in range(SENSORS_PER_OPD)],
                "nodes": nodes,
            }
        )
    return {"regency": {"id": "bench", "name": "Bench", "timezone": "Asia/Jakarta"}, "opds": entries}


def generate_lines(catalogue: dict, start_ms: int, end_ms: int):
    """Yield line protocol (ms precision) for every device of ``catalogue`` in ``[start_ms, end_ms)``."""
    for opd_index, opd in enumerate(catalogue["opds"]):
        opd_id = opd["id"]
        for node in opd["nodes"]:
            yield f"node_status,opd={opd_id},node={node['id']} state=\"online\",uptime_s=3600i {end_ms - 60_000}"
            for device in node["devices"]:
                yield from _device_lines(opd_id, node["id"], device, opd_index, start_ms, end_ms)


def _device_lines(opd_id: str, node_id: str, device: dict, opd_index: int, start_ms: int, end_ms: int):
    tags = f"opd={opd_id},node={node_id},device={device['id']}"
    if device["kind"] == "attendance_terminal":
        yield from _punch_lines(tags, start_ms, end_ms)
        return

    register_kwh = 10_000.0 + opd_index * 100
    for seq, ts in enumerate(range(start_ms - start_ms % STEP_MS, end_ms, STEP_MS)):
        hour = datetime.fromtimestamp(ts / 1000, ZONE).hour
        if device["kind"] == "energy_meter":
            power_w = 4_000.0 if 7 <= hour < 17 else 600.0
            register_kwh += power_w * 0.25 / 1000
            yield (
                f"energy,{tags},circuit={device['circuit']} energy_kwh_total={register_kwh:.3f},"
                f"power_w={power_w},voltage_v=229.5,seq={seq}i {ts}"
            )
        else:
            co2_ppm = 450.0 + (seq * 37 + opd_index * 11) % 800
            temperature_c = 23.0 + (seq % 50) / 10
            humidity_pct = 55.0 + seq % 20
            yield (
                f"room,{tags},room={device['room']} co2_ppm={co2_ppm},temperature_c={temperature_c},"
                f"humidity_pct={humidity_pct},occupancy={'true' if 7 <= hour < 17 else 'false'},seq={seq}i {ts}"
            )


def _punch_lines(tags: str, start_ms: int, end_ms: int):
    day = datetime.fromtimestamp(start_ms / 1000, ZONE).date()
    last_day = datetime.fromtimestamp(end_ms / 1000, ZONE).date()
    while day <= last_day:
        if day.weekday() < 5:
            for employee in range(EMPLOYEES_PER_OPD):
                for punch, hour, minute in (("in", 7, employee % 40), ("out", 16, employee % 50)):
                    ts = int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE).timestamp() * 1000)
                    if start_ms <= ts < end_ms:
                        yield f"attendance,{tags},punch={punch},verify=fingerprint employee_id=\"E{employee:03d}\" {ts}"
        day += timedelta(days=1)


def write_all(influx: InfluxServer, lines) -> int:
    """Write ``lines`` in batches of 10,000 points; return the number of points written."""
    written = 0
    batch: list[str] = []
    with httpx.Client(base_url=influx.url, timeout=120.0) as client:
        for line in lines:
            batch.append(line)
            if len(batch) == BATCH_POINTS:
                _write_batch(client, batch)
                written += len(batch)
                batch = []
        if batch:
            _write_batch(client, batch)
            written += len(batch)
    return written


def _write_batch(client: httpx.Client, batch: list[str]) -> None:
    response = client.post("/write", params={"db": DATABASE, "precision": "ms"}, content="\n".join(batch).encode())
    if response.status_code != 204:
        raise RuntimeError(f"InfluxDB write failed with HTTP {response.status_code}: {response.text[:300]}")


def folder_bytes(folder: Path) -> int:
    """Return the total size of the files under ``folder``."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description="Measure the latency of GET /api/v1/overview.")
    parser.add_argument("--opds", type=int, default=40, help="number of OPDs (default 40)")
    parser.add_argument("--days", type=int, default=30, help="days of data up to now (default 30)")
    parser.add_argument("--requests", type=int, default=30, help="timed requests (default 30)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="overview-bench-") as temp:
        folder = Path(temp)
        influx = InfluxServer(folder / "influxdb")
        influx.start()
        api = None
        try:
            influx.create_database(DATABASE)
            catalogue = build_catalogue(args.opds)
            catalogue_path = folder / "catalogue.yaml"
            catalogue_path.write_text(yaml.safe_dump(catalogue, sort_keys=False), encoding="utf-8")

            end_ms = int(time.time() * 1000)
            start_ms = end_ms - args.days * 86_400_000
            began = time.monotonic()
            points = write_all(influx, generate_lines(catalogue, start_ms, end_ms))
            write_s = time.monotonic() - began
            print(f"wrote {points:,} points in {write_s:.1f} s ({points / write_s:,.0f} points/s)")

            api_port = free_port()
            database_url = f"sqlite:///{folder / 'registry.sqlite3'}"
            password = secrets.token_urlsafe(24)
            _create_reader(database_url, password)
            env = dict(
                os.environ,
                SMARTOFFICE_DATABASE_URL=database_url,
                SMARTOFFICE_JWT_SECRET=secrets.token_hex(32),
                SMARTOFFICE_PSEUDONYM_KEY=secrets.token_hex(32),
                SMARTOFFICE_INFLUX_URL=influx.url,
                SMARTOFFICE_INFLUX_DB=DATABASE,
                SMARTOFFICE_API_PORT=str(api_port),
                SMARTOFFICE_CATALOGUE_FILE=str(catalogue_path),
                SMARTOFFICE_DEAD_LETTER_PATH=str(folder / "dead-letters.sqlite3"),
                # No broker runs: the live view's subscriber retries on a port nothing listens on.
                SMARTOFFICE_MQTT_PORT=str(free_port()),
                SMARTOFFICE_LOG_LEVEL="WARNING",
            )
            api = ManagedProcess("api", [sys.executable, "-m", "api"], folder / "api.log", env=env, cwd=REPO_ROOT)
            api.start()
            url = f"http://127.0.0.1:{api_port}/api/v1/overview"
            api.wait_ready(lambda: _responds(url), timeout_s=60)

            latencies_ms = []
            body_bytes = 0
            token = httpx.post(
                f"http://127.0.0.1:{api_port}/api/v1/auth/token",
                data={"username": BENCH_USER, "password": password},
                timeout=30.0,
            ).json()["access_token"]
            with httpx.Client(timeout=60.0, headers={"Authorization": f"Bearer {token}"}) as client:
                client.get(url).raise_for_status()  # warm-up
                for _ in range(args.requests):
                    began = time.perf_counter()
                    response = client.get(url)
                    latencies_ms.append((time.perf_counter() - began) * 1000)
                    response.raise_for_status()
                    body_bytes = len(response.content)

            quantiles = statistics.quantiles(latencies_ms, n=100, method="inclusive")
            print(f"data: {args.opds} OPDs x 50 devices, {args.days} days, {points:,} points, "
                  f"InfluxDB folder {folder_bytes(folder / 'influxdb') / 1e6:.1f} MB")
            print(f"overview: {args.requests} requests, p50 {quantiles[49]:.0f} ms, p95 {quantiles[94]:.0f} ms, "
                  f"max {max(latencies_ms):.0f} ms, response {body_bytes / 1000:.1f} kB")
        finally:
            if api is not None:
                api.stop()
            influx.stop()
    return 0


def _create_reader(database_url: str, password: str) -> None:
    """Add the leadership user the benchmark logs in as: read-only, every OPD."""
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        create_user(session_factory(engine), BENCH_USER, Role.LEADERSHIP, [], "", password, "cli:bench")
    finally:
        engine.dispose()


def _responds(url: str) -> bool:
    """Return True once the API serves requests; the overview itself needs a login."""
    try:
        return httpx.get(url.replace("/api/v1/overview", "/openapi.json"), timeout=30.0).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    sys.exit(main())
