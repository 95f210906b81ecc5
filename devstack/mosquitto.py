"""A Mosquitto 2 broker on loopback, configured from ``broker/mosquitto.local.conf``."""

import os
import shutil
from pathlib import Path

from .ports import free_port, port_accepts
from .process import ManagedProcess, ProcessError

BROKER_DIR = Path(__file__).resolve().parent.parent / "broker"
LOCAL_CONFIG_TEMPLATE = BROKER_DIR / "mosquitto.local.conf"


def render_config(template: str, port: int, data_dir: Path) -> str:
    """Fill the ``${MQTT_PORT}`` and ``${DATA_DIR}`` placeholders of a configuration template.

    Started as root, Mosquitto switches to the ``mosquitto`` user, which cannot write to a
    data folder under a private temporary or home folder; ``user root`` keeps the caller's user.
    """
    config = template.replace("${MQTT_PORT}", str(port)).replace("${DATA_DIR}", str(data_dir))
    if os.geteuid() == 0:
        config += "\nuser root\n"
    return config


class MosquittoServer:
    """Mosquitto with persistence in ``data_dir``, listening on ``127.0.0.1:port``."""

    host = "127.0.0.1"

    def __init__(self, data_dir: Path, port: int | None = None, extra_config: str = "") -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.extra_config = extra_config
        self.config_path = self.data_dir / "mosquitto.conf"
        self.process = ManagedProcess(
            "mosquitto",
            [self._executable(), "-c", str(self.config_path)],
            self.data_dir / "mosquitto.stdout.log",
        )

    def start(self, timeout_s: float = 15.0) -> None:
        """Write the configuration, start the broker and wait until it accepts connections."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        template = LOCAL_CONFIG_TEMPLATE.read_text(encoding="utf-8")
        config = render_config(template, self.port, self.data_dir) + "\n" + self.extra_config + "\n"
        self.config_path.write_text(config, encoding="utf-8")

        self.process.start()
        self.process.wait_ready(lambda: port_accepts(self.host, self.port), timeout_s)

    def stop(self) -> None:
        """Stop the broker with SIGTERM; Mosquitto saves its persistence file on the way out."""
        self.process.stop()

    def restart(self) -> None:
        """Stop and start again on the same port and data."""
        self.stop()
        self.start()

    def log_tail(self, lines: int = 30) -> str:
        """Return the end of the broker's own log."""
        log = self.data_dir / "mosquitto.log"
        if not log.exists():
            return self.process.log_tail(lines)
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    @staticmethod
    def _executable() -> str:
        found = shutil.which("mosquitto") or (Path("/usr/sbin/mosquitto").exists() and "/usr/sbin/mosquitto")
        if not found:
            raise ProcessError("mosquitto is not installed: run scripts/setup.sh (apt package 'mosquitto')")
        return found
