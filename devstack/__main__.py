"""Local platform: ``python -m devstack`` (or ``smartoffice-local``).

Starts Mosquitto, InfluxDB, the ingest service, the API and the office simulators as child
processes on loopback, with all data and logs under one folder, prints the API address and
stops everything on Ctrl-C. A child that exits on its own stops the platform, with the end of
its log on the screen.
"""

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path

import httpx
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from .influxdb import InfluxServer
from .mosquitto import MosquittoServer
from .process import ManagedProcess, ProcessError

logger = logging.getLogger("devstack")

REPO_ROOT = Path(__file__).resolve().parent.parent


class LocalSettings(BaseSettings):
    """Ports and folders of the local platform."""

    model_config = SettingsConfigDict(env_prefix="SMARTOFFICE_", extra="ignore")

    local_dir: Path = Field(REPO_ROOT / ".local", description="Folder for data and logs of every process")
    mqtt_port: int = Field(18830, ge=1, le=65535, description="Mosquitto port on 127.0.0.1")
    influx_port: int = Field(18086, ge=1, le=65535, description="InfluxDB HTTP port on 127.0.0.1")
    influx_rpc_port: int = Field(18088, ge=1, le=65535, description="InfluxDB backup/restore port on 127.0.0.1")
    api_port: int = Field(8000, ge=1, le=65535, description="API port on 127.0.0.1")
    metrics_port: int = Field(9108, ge=0, le=65535, description="Ingest /metrics port on 127.0.0.1; 0 turns it off")
    influx_db: str = Field("smartoffice", description="InfluxDB database")


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="smartoffice-local", description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-sim", action="store_true", help="do not start the office simulators")
    parser.add_argument(
        "--backfill-hours", type=float, default=6.0, help="hours of history the simulators publish at start (default 6)"
    )
    parser.add_argument("--interval-s", type=float, default=10.0, help="seconds between readings per device (default 10)")
    return parser.parse_args(argv)


def _service_env(settings: LocalSettings, influx: InfluxServer, mosquitto: MosquittoServer) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SMARTOFFICE_MQTT_HOST=mosquitto.host,
        SMARTOFFICE_MQTT_PORT=str(mosquitto.port),
        SMARTOFFICE_INFLUX_URL=influx.url,
        SMARTOFFICE_INFLUX_DB=settings.influx_db,
        SMARTOFFICE_API_HOST="127.0.0.1",
        SMARTOFFICE_API_PORT=str(settings.api_port),
        SMARTOFFICE_METRICS_PORT=str(settings.metrics_port),
        SMARTOFFICE_DEAD_LETTER_PATH=str(settings.local_dir / "dead-letters.sqlite3"),
        SMARTOFFICE_DATABASE_URL=f"sqlite:///{settings.local_dir / 'registry.sqlite3'}",
        PYTHONUNBUFFERED="1",
    )
    return env


def _api_ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def run(args: argparse.Namespace, settings: LocalSettings) -> int:
    """Start every process, wait for Ctrl-C or a failure, stop every process."""
    logs = settings.local_dir / "logs"
    mosquitto = MosquittoServer(settings.local_dir / "mosquitto", settings.mqtt_port)
    influx = InfluxServer(settings.local_dir / "influxdb", settings.influx_port, settings.influx_rpc_port)
    env = _service_env(settings, influx, mosquitto)
    python = sys.executable

    services = [
        ManagedProcess("ingest", [python, "-m", "ingest"], logs / "ingest.log", env=env, cwd=REPO_ROOT),
        ManagedProcess("api", [python, "-m", "api"], logs / "api.log", env=env, cwd=REPO_ROOT),
    ]
    if not args.no_sim:
        simulator_args = ["--interval-s", str(args.interval_s), "--backfill-hours", str(args.backfill_hours)]
        services.append(
            ManagedProcess(
                "simulator", [python, "-m", "firmware_sim", *simulator_args], logs / "simulator.log", env=env, cwd=REPO_ROOT
            )
        )

    started: list = []
    stop_requested = False

    def request_stop(signum, frame) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    exit_code = 0
    try:
        for server in (mosquitto, influx):
            server.start()
            started.append(server)
        influx.create_database(settings.influx_db)
        logger.info("mosquitto on 127.0.0.1:%d, InfluxDB on %s", mosquitto.port, influx.url)

        for service in services:
            service.start()
            started.append(service)
            if service.name == "api":
                service.wait_ready(lambda: _api_ready(settings.api_port), timeout_s=30)

        print(
            f"\nKantor Pintar is running.\n"
            f"  API:        http://127.0.0.1:{settings.api_port}  (documentation: /docs)\n"
            f"  MQTT:       127.0.0.1:{mosquitto.port}\n"
            f"  InfluxDB:   {influx.url}  database {settings.influx_db!r}\n"
            f"  Metrics:    http://127.0.0.1:{settings.metrics_port}/metrics\n"
            f"  Data, logs: {settings.local_dir}\n"
            f"Press Ctrl-C to stop.\n",
            flush=True,
        )

        while not stop_requested:
            failed = next((s for s in services if not s.running()), None)
            if failed is not None:
                logger.error("%s exited; stopping the platform. End of %s:\n%s", failed.name, failed.log_path, failed.log_tail())
                exit_code = 1
                break
            time.sleep(0.5)
    except ProcessError as exc:
        logger.error("cannot start the platform: %s", exc)
        exit_code = 1
    finally:
        logger.info("stopping")
        for process in reversed(started):
            process.stop()
        logger.info("stopped")
    return exit_code


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = LocalSettings()
    except ValidationError as exc:
        print(f"invalid settings:\n{exc}", file=sys.stderr)
        return 2
    return run(args, settings)


if __name__ == "__main__":
    sys.exit(main())
