"""A throw-away PostgreSQL server for tests: ``initdb`` in a temporary folder, loopback only.

PostgreSQL refuses to run as root, so when the tests run as root the server runs as the
``postgres`` system user that Debian's package creates. Its folder is then a fresh one under
the system temporary folder, handed to that user, because pytest's own temporary folders are
readable by root only.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from devstack import free_port

PG_BIN_CANDIDATES = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def postgres_bin() -> Path | None:
    """Return the folder of the newest installed PostgreSQL server binaries, or None."""
    for folder in PG_BIN_CANDIDATES:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


class PostgresServer:
    """One PostgreSQL cluster on ``127.0.0.1:port`` with trust authentication for the test user."""

    def __init__(self, folder: Path) -> None:
        self.root_owned = os.geteuid() == 0
        self.folder = Path(tempfile.mkdtemp(prefix="smartoffice-postgres-")) if self.root_owned else folder
        self.data_dir = self.folder / "data"
        self.port = free_port()
        self.bin = postgres_bin()
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``postgres`` database, with the psycopg 3 driver."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Create the cluster and start the server; raise when it does not accept connections in 30 s."""
        if self.bin is None:
            raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql; install the postgresql package")
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.root_owned:
            shutil.chown(self.folder, "postgres", "postgres")

        self._run([str(self.bin / "initdb"), "-D", str(self.data_dir), "-U", self.user, "--auth=trust", "-E", "UTF8"])
        options = f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.folder}"
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data_dir), "-o", options, "-l", str(self.folder / "server.log"), "-w", "start"])

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True
            )
            if ready.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"PostgreSQL on port {self.port} did not become ready; see {self.folder / 'server.log'}")

    def stop(self) -> None:
        """Stop the server started by ``start``."""
        if self.data_dir.exists():
            self._run([str(self.bin / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"], check=False)
        if self.root_owned:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, command: list[str], check: bool = True) -> None:
        if self.root_owned:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.folder)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed with exit code {result.returncode}: {result.stderr.strip()}")
