"""An InfluxDB 1.x server (``influxd``) on loopback, serving the v1 HTTP API."""

import shutil
from pathlib import Path

import httpx

from .ports import free_port
from .process import ManagedProcess, ProcessError

CONFIG_TEMPLATE = Path(__file__).resolve().parent / "influxdb.conf"


class InfluxServer:
    """``influxd`` with its data in ``data_dir`` and HTTP on ``127.0.0.1:http_port``."""

    host = "127.0.0.1"

    def __init__(self, data_dir: Path, http_port: int | None = None, rpc_port: int | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.http_port = http_port or free_port()
        self.rpc_port = rpc_port or free_port()
        self.config_path = self.data_dir / "influxdb.conf"
        self.process = ManagedProcess(
            "influxd",
            [self._executable(), "-config", str(self.config_path)],
            self.data_dir / "influxd.log",
        )

    @property
    def url(self) -> str:
        """Base URL of the HTTP API."""
        return f"http://{self.host}:{self.http_port}"

    def start(self, timeout_s: float = 60.0) -> None:
        """Write the configuration, start ``influxd`` and wait until ``/ping`` responds."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = (
            CONFIG_TEMPLATE.read_text(encoding="utf-8")
            .replace("${HTTP_PORT}", str(self.http_port))
            .replace("${RPC_PORT}", str(self.rpc_port))
            .replace("${DATA_DIR}", str(self.data_dir))
        )
        self.config_path.write_text(config, encoding="utf-8")

        self.process.start()
        self.process.wait_ready(self.ping, timeout_s)

    def stop(self) -> None:
        """Stop ``influxd`` with SIGTERM."""
        self.process.stop(timeout_s=20.0)

    def ping(self) -> bool:
        """Return True when ``/ping`` responds with 204."""
        try:
            return httpx.get(f"{self.url}/ping", timeout=1.0).status_code == 204
        except httpx.HTTPError:
            return False

    def create_database(self, name: str) -> None:
        """Create database ``name`` (a no-op when it exists)."""
        response = httpx.post(f"{self.url}/query", data={"q": f'CREATE DATABASE "{name}"'}, timeout=10.0)
        response.raise_for_status()

    def query(self, database: str, influxql: str) -> dict:
        """Run an InfluxQL query and return the decoded JSON response."""
        response = httpx.get(
            f"{self.url}/query", params={"db": database, "q": influxql, "epoch": "ms"}, timeout=30.0
        )
        response.raise_for_status()
        return response.json()

    @staticmethod
    def _executable() -> str:
        found = shutil.which("influxd")
        if not found:
            raise ProcessError("influxd is not installed: run scripts/setup.sh (apt package 'influxdb')")
        return found
