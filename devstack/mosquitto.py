"""A Mosquitto 2 broker on loopback, configured from ``broker/mosquitto.local.conf``.

By default the broker accepts anonymous clients, as most tests expect. With a dynamic
security file it loads Mosquitto's dynamic security plugin and rejects anonymous clients, and
with a ``TlsListener`` it also serves MQTT over TLS on a second loopback port.
"""

import glob
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .ports import free_port, port_accepts
from .process import ManagedProcess, ProcessError

BROKER_DIR = Path(__file__).resolve().parent.parent / "broker"
LOCAL_CONFIG_TEMPLATE = BROKER_DIR / "mosquitto.local.conf"

DYNSEC_PLUGIN_PATHS = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/*/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
)
"""Paths of the plugin on Debian and Ubuntu, in the eclipse-mosquitto image and after a source build."""


@dataclass(frozen=True, slots=True)
class TlsListener:
    """A TLS listener on ``127.0.0.1:port`` with the PEM files of the server certificate chain and its key."""

    port: int
    certfile: Path
    keyfile: Path


def find_dynsec_plugin() -> Path:
    """Return the path of ``mosquitto_dynamic_security.so``.

    Raises:
        ProcessError: the plugin is not installed.
    """
    for pattern in DYNSEC_PLUGIN_PATHS:
        for match in sorted(glob.glob(pattern)):
            return Path(match)
    raise ProcessError(
        "mosquitto_dynamic_security.so not found in " + ", ".join(DYNSEC_PLUGIN_PATHS)
        + ": install Mosquitto 2.0 or newer (apt package 'mosquitto')"
    )


def access_config(dynsec_file: Path | None, plugin: Path | None = None) -> str:
    """Return the configuration lines of access control.

    Without ``dynsec_file`` anonymous clients may do anything. With it every client must log
    in with a user name of the plugin file, and the plugin's ACLs decide what it may do.
    """
    if dynsec_file is None:
        return "allow_anonymous true\n"
    plugin = plugin or find_dynsec_plugin()
    return f"allow_anonymous false\nplugin {plugin}\nplugin_opt_config_file {dynsec_file}\n"


def tls_config(tls: TlsListener) -> str:
    """Return the configuration lines of a TLS listener on loopback, shaped like production's.

    The listener has no ``cafile``, so the broker requests no client certificate. Mosquitto
    2.0.11 accepts a TLS listener with only ``certfile`` and ``keyfile``.
    """
    return f"listener {tls.port} 127.0.0.1\ncertfile {tls.certfile}\nkeyfile {tls.keyfile}\ntls_version tlsv1.2\n"


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
    """Mosquitto with persistence in ``data_dir``, listening on ``127.0.0.1:port``.

    ``dynsec_file`` turns on the dynamic security plugin with that file (see ``access_config``),
    and ``tls`` adds a TLS listener.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        extra_config: str = "",
        dynsec_file: Path | None = None,
        tls: TlsListener | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.extra_config = extra_config
        self.dynsec_file = Path(dynsec_file).resolve() if dynsec_file is not None else None
        self.tls = tls
        self.config_path = self.data_dir / "mosquitto.conf"
        self.process = ManagedProcess(
            "mosquitto",
            [self._executable(), "-c", str(self.config_path)],
            self.data_dir / "mosquitto.stdout.log",
        )

    def start(self, timeout_s: float = 15.0) -> None:
        """Write the configuration, start the broker and wait until it accepts connections."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.dynsec_file is not None:
            # The plugin rewrites its file with the process umask on every change, so the
            # folder's mode 0700 keeps other users from reading the password hashes.
            self.dynsec_file.parent.chmod(0o700)
        template = LOCAL_CONFIG_TEMPLATE.read_text(encoding="utf-8")
        config = render_config(template, self.port, self.data_dir) + "\n" + access_config(self.dynsec_file)
        if self.tls is not None:
            config += tls_config(self.tls)
        config += "\n" + self.extra_config + "\n"
        self.config_path.write_text(config, encoding="utf-8")

        self.process.start()
        self.process.wait_ready(self._listening, timeout_s)

    def _listening(self) -> bool:
        if self.tls is not None and not port_accepts(self.host, self.tls.port):
            return False
        return port_accepts(self.host, self.port)

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
