"""Local platform: ``python -m devstack`` (or ``smartoffice-local``).

Starts Mosquitto, InfluxDB, the ingest service, the API and the office simulators as child
processes on loopback, with all data and logs under one folder, prints the API address and
stops everything on Ctrl-C. A child that exits on its own stops the platform, with the end of
its log on the screen.

The broker runs with the dynamic security plugin and rejects anonymous clients. The ingest
service and the API log in with identities of their own, and every catalogue node is
provisioned with its own password, which the simulator reads from the node credentials file
(see ``devstack.broker_identities``).

The nodes of ``SMARTOFFICE_EDGE_NODES`` run as real edge agents that read simulated devices in
their own protocols, each office with its own broker (see ``devstack.edge_offices``). The
simulator leaves those nodes out, so no node is published twice.
"""

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Literal

import httpx
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.security.bootstrap import ensure_first_admin, ensure_secret_file
from contract.catalogue import CatalogueError, load_catalogue
from registry.broker_bootstrap import BootstrapError, ServiceCredentials, ServiceIdentities
from registry.dynsec import DynsecClient, DynsecError
from registry.provisioning import ProvisioningError

from .broker_identities import BrokerFiles, prepare_service_identities, provision_catalogue_nodes
from .edge_offices import EdgeOffice, EdgeOfficeError, parse_edge_nodes
from .influxdb import InfluxServer
from .mosquitto import MosquittoServer
from .ports import port_accepts
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
    catalogue_file: Path = Field(
        REPO_ROOT / "config" / "regency.yaml", description="Catalogue whose nodes get broker credentials"
    )
    edge_nodes: str = Field(
        "setda/gw-01,dinkes/gw-01",
        description="Comma-separated '<opd>/<node>' catalogue nodes that run as real edge agents with simulated "
        "protocol devices, instead of being simulated directly. Empty: none",
    )
    edge_punch_schedule: Literal["office", "continuous"] = Field(
        "office",
        description="When the edge offices' simulated terminals punch: 'office' in the morning and afternoon of "
        "weekdays, 'continuous' once per interval at any hour (for tests)",
    )

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL of the local registry."""
        return f"sqlite:///{self.local_dir / 'registry.sqlite3'}"


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
        SMARTOFFICE_DATABASE_URL=settings.database_url,
        PYTHONUNBUFFERED="1",
    )
    env.update(_api_secret_env(settings, env))
    return env


def _api_secret_env(settings: LocalSettings, env: dict[str, str]) -> dict[str, str]:
    """Return the secret-file settings of the ingest service and the API, creating the files on the first run.

    A variable the caller set already, as a value or as a file, is left as it is.
    """
    secret_files = {"SMARTOFFICE_JWT_SECRET": "jwt-secret", "SMARTOFFICE_PSEUDONYM_KEY": "pseudonym-key"}
    added = {}
    for variable, file_name in secret_files.items():
        if variable in env or f"{variable}_FILE" in env:
            continue
        added[f"{variable}_FILE"] = str(ensure_secret_file(settings.local_dir / file_name))
    return added


def _create_first_admin(settings: LocalSettings) -> None:
    """Create the API's first admin on the first run and print the password once; it stays in admin-password."""
    password_file = settings.local_dir / "admin-password"
    password = ensure_first_admin(settings.database_url, password_file)
    if password is not None:
        print(
            f"\nFirst API login: user 'admin', password {password}\n"
            f"(shown once; it is also in {password_file}, readable by you only)\n",
            flush=True,
        )


def _with_login(env: dict[str, str], credentials: ServiceCredentials) -> dict[str, str]:
    return dict(env, SMARTOFFICE_MQTT_USERNAME=credentials.username, SMARTOFFICE_MQTT_PASSWORD=credentials.password)


def _service_envs(
    settings: LocalSettings,
    base: dict[str, str],
    identities: ServiceIdentities,
    files: BrokerFiles,
    edge_nodes: list[str],
) -> dict[str, dict[str, str]]:
    """Return the environment of each service, each with its own broker login.

    The API also gets the admin login, for its node provisioning routes. The simulator gets
    no shared login, so a node missing from the credentials file is rejected by the broker.
    It leaves out the ``edge_nodes`` (``<opd>/<node>``), whose edge agents use their client ids.
    """
    shared_login = ("SMARTOFFICE_MQTT_USERNAME", "SMARTOFFICE_MQTT_PASSWORD")
    simulator = {key: value for key, value in base.items() if key not in shared_login}
    simulator["SMARTOFFICE_SIM_CREDENTIALS_FILE"] = str(files.nodes_file)
    excluded = [entry for entry in (base.get("SMARTOFFICE_SIM_EXCLUDE_NODES", ""), *edge_nodes) if entry]
    simulator["SMARTOFFICE_SIM_EXCLUDE_NODES"] = ",".join(excluded)
    return {
        "ingest": _with_login(base, identities.ingest),
        "api": dict(
            _with_login(base, identities.api),
            SMARTOFFICE_BROKER_ADMIN_USERNAME=identities.admin.username,
            SMARTOFFICE_BROKER_ADMIN_PASSWORD=identities.admin.password,
        ),
        "simulator": simulator,
    }


def _provision_nodes(
    settings: LocalSettings, mosquitto: MosquittoServer, identities: ServiceIdentities, files: BrokerFiles
) -> None:
    catalogue = load_catalogue(settings.catalogue_file)
    admin = identities.admin
    with DynsecClient(mosquitto.host, mosquitto.port, admin.username, admin.password) as dynsec:
        count = provision_catalogue_nodes(settings.database_url, catalogue, dynsec, files.nodes_file)
    logger.info("provisioned %d nodes on the broker, node credentials in %s", count, files.nodes_file)


def _api_ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _edge_offices(args: argparse.Namespace, settings: LocalSettings, mosquitto: MosquittoServer) -> list[EdgeOffice]:
    """Return the offices of ``SMARTOFFICE_EDGE_NODES``, none with ``--no-sim``.

    Raises:
        CatalogueError: the catalogue cannot be loaded.
        EdgeOfficeError: the setting names a node that is not in the catalogue.
    """
    if args.no_sim:
        return []
    catalogue = load_catalogue(settings.catalogue_file)
    return [
        EdgeOffice(
            opd,
            node,
            settings.local_dir,
            mosquitto,
            catalogue.regency.timezone,
            args.interval_s,
            seed=index,
            punch_schedule=settings.edge_punch_schedule,
        )
        for index, (opd, node) in enumerate(parse_edge_nodes(settings.edge_nodes, catalogue), start=1)
    ]


def run(args: argparse.Namespace, settings: LocalSettings) -> int:
    """Start every process, wait for Ctrl-C or a failure, stop every process."""
    logs = settings.local_dir / "logs"
    files = BrokerFiles.under(settings.local_dir)
    try:
        identities = prepare_service_identities(files)
    except (BootstrapError, OSError) as exc:
        logger.error("preparing the broker identities failed: %s. Delete %s to start afresh", exc, files.services_file)
        return 1
    mosquitto = MosquittoServer(settings.local_dir / "mosquitto", settings.mqtt_port, dynsec_file=files.dynsec_file)
    influx = InfluxServer(settings.local_dir / "influxdb", settings.influx_port, settings.influx_rpc_port)
    try:
        offices = _edge_offices(args, settings, mosquitto)
    except (CatalogueError, EdgeOfficeError) as exc:
        logger.error("cannot start the platform: %s", exc)
        return 1
    envs = _service_envs(
        settings, _service_env(settings, influx, mosquitto), identities, files, [office.key for office in offices]
    )
    python = sys.executable

    services = [
        ManagedProcess("ingest", [python, "-m", "ingest"], logs / "ingest.log", env=envs["ingest"], cwd=REPO_ROOT),
        ManagedProcess("api", [python, "-m", "api"], logs / "api.log", env=envs["api"], cwd=REPO_ROOT),
    ]
    if not args.no_sim:
        simulator_args = ["--interval-s", str(args.interval_s), "--backfill-hours", str(args.backfill_hours)]
        services.append(
            ManagedProcess(
                "simulator",
                [python, "-m", "firmware_sim", *simulator_args],
                logs / "simulator.log",
                env=envs["simulator"],
                cwd=REPO_ROOT,
            )
        )

    started: list = []
    watched: list[ManagedProcess] = list(services)
    stop_requested = False

    def request_stop(signum, frame) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    exit_code = 0
    try:
        # A server started on a taken port fails in its log, while the readiness checks would
        # talk to whatever already listens there (often a platform still running).
        ports = [
            ("SMARTOFFICE_MQTT_PORT", settings.mqtt_port),
            ("SMARTOFFICE_INFLUX_PORT", settings.influx_port),
            ("SMARTOFFICE_INFLUX_RPC_PORT", settings.influx_rpc_port),
            ("SMARTOFFICE_API_PORT", settings.api_port),
            ("SMARTOFFICE_METRICS_PORT", settings.metrics_port),
        ]
        for setting, port in ports:
            if port and port_accepts("127.0.0.1", port):
                raise ProcessError(
                    f"port {port} on 127.0.0.1 is already in use, perhaps by a platform that is still "
                    f"running: stop it, or choose another port with {setting}"
                )
        for server in (mosquitto, influx):
            server.start()
            started.append(server)
        influx.create_database(settings.influx_db)
        logger.info("mosquitto on 127.0.0.1:%d, InfluxDB on %s", mosquitto.port, influx.url)
        _provision_nodes(settings, mosquitto, identities, files)
        _create_first_admin(settings)

        for service in services:
            service.start()
            started.append(service)
            if service.name == "api":
                service.wait_ready(lambda: _api_ready(settings.api_port), timeout_s=30)
        for office in offices:
            office.prepare(files.nodes_file)
            for child in office.processes:
                child.start()
                started.append(child)
            watched.extend([office.broker.process, office.agent, office.devices])

        print(
            f"\nKantor Pintar is running.\n"
            f"  API:        http://127.0.0.1:{settings.api_port}  (documentation: /docs)\n"
            f"  MQTT:       127.0.0.1:{mosquitto.port}  (logins: {files.services_file.parent})\n"
            f"  InfluxDB:   {influx.url}  database {settings.influx_db!r}\n"
            f"  Metrics:    http://127.0.0.1:{settings.metrics_port}/metrics\n"
            f"  Data, logs: {settings.local_dir}\n"
            + _edge_banner(offices, logs)
            + "Press Ctrl-C to stop.\n",
            flush=True,
        )

        while not stop_requested:
            failed = next((s for s in watched if not s.running()), None)
            if failed is not None:
                logger.error("%s exited; stopping the platform. End of %s:\n%s", failed.name, failed.log_path, failed.log_tail())
                exit_code = 1
                break
            time.sleep(0.5)
    except (ProcessError, DynsecError, ProvisioningError, CatalogueError, BootstrapError, EdgeOfficeError, OSError) as exc:
        logger.error("cannot start the platform: %s", exc)
        exit_code = 1
    finally:
        logger.info("stopping")
        for process in reversed(started):
            process.stop()
        logger.info("stopped")
    return exit_code


def _edge_banner(offices: list[EdgeOffice], logs: Path) -> str:
    if not offices:
        return ""
    nodes = ", ".join(office.key for office in offices)
    return f"  Edge nodes: {nodes}  (logs: {logs}/edge-*.log and devices-*.log)\n"


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
