"""Checks of the production deployment: docker-compose.yml, the Dockerfile and broker/mosquitto.conf.

No Docker engine is needed. The files are parsed and compared with the repository, with the
console scripts in pyproject.toml and with the settings classes of the services. Folders in a
temporary directory stand in for the named volumes and the secret files, and the
``broker-init`` service's command runs on them for real. The tests marked ``integration``
start the production Mosquitto configuration with the real ``mosquitto`` binary, rewritten
to listen on free loopback ports, on the files that ``broker-init`` wrote.
"""

import importlib
import importlib.util
import json
import os
import posixpath
import re
import secrets
import shlex
import shutil
import stat
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import ValidationError

from devstack.mosquitto import find_dynsec_plugin
from devstack.ports import free_port, port_accepts
from registry.broker_acl import ADMIN_USERNAME, API_USERNAME, INGEST_USERNAME
from registry.broker_bootstrap import load_service_identities

from broker_helpers import TlsFiles, connect_probe, make_test_pki

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
PYPROJECT = REPO_ROOT / "pyproject.toml"
BROKER_CONFIG = REPO_ROOT / "broker" / "mosquitto.conf"
LOCAL_BROKER_CONFIG = REPO_ROOT / "broker" / "mosquitto.local.conf"
CATALOGUE = "config/regency.yaml"

# Services built from the Dockerfile, and the module and class of their settings.
APP_SERVICES = ("ingest", "api", "simulator")
SETTINGS_CLASSES = {
    "ingest": ("ingest.config", "IngestSettings"),
    "api": ("api.config", "ApiSettings"),
    "simulator": ("firmware_sim.config", "SimSettings"),
}
# What the simulator reads while firmware_sim.config does not exist yet.
SIMULATOR_VARIABLES = frozenset({"SMARTOFFICE_MQTT_HOST", "SMARTOFFICE_MQTT_PORT", "SMARTOFFICE_CATALOGUE_FILE"})

# Services that run all the time and come back after a crash or a reboot of the host.
LONG_RUNNING_SERVICES = ("mosquitto", "influxdb", "ingest", "api")
# The one-shot service that writes the broker's identities and the services' password files.
BROKER_INIT = "broker-init"
# Services that need broker-init's files, so they start after it has exited with 0.
BROKER_INIT_DEPENDENTS = ("mosquitto", "ingest", "api")
# The only ports published on the host, as (service, container port): the API, and MQTT over
# TLS for the edge nodes. Plain MQTT on 1883 carries passwords in clear text, so it stays
# inside the compose network.
PUBLISHED_PORTS = {("api", 8000), ("mosquitto", 8883)}
# Broker login of each app service: (username variable, password file variable, identity in
# the bootstrap credentials file, expected user name).
SERVICE_LOGINS = {
    ("ingest", "mqtt"): ("SMARTOFFICE_MQTT_USERNAME", "SMARTOFFICE_MQTT_PASSWORD_FILE", "ingest", INGEST_USERNAME),
    ("api", "mqtt"): ("SMARTOFFICE_MQTT_USERNAME", "SMARTOFFICE_MQTT_PASSWORD_FILE", "api", API_USERNAME),
    ("api", "broker admin"): (
        "SMARTOFFICE_BROKER_ADMIN_USERNAME",
        "SMARTOFFICE_BROKER_ADMIN_PASSWORD_FILE",
        "admin",
        ADMIN_USERNAME,
    ),
}
SERVICE_LOGIN_IDS = [f"{service}-{login}" for service, login in sorted(SERVICE_LOGINS)]
# Values that the operator's .env gives to the variables docker-compose.yml interpolates.
DOTENV = {"SMARTOFFICE_NODE_BROKER_HOST": "mqtt.example.go.id"}
# Variable names that carry a secret. The compose file may set only their *_FILE form.
SECRET_VARIABLE = re.compile(r"PASSWORD|SECRET|TOKEN|PSEUDONYM_KEY", re.IGNORECASE)
# Where Compose mounts a secret of the top-level ``secrets`` inside a container.
SECRETS_MOUNT = "/run/secrets"
# Text that each health check must contain, so that it probes the right thing.
HEALTHCHECK_PROBES = {
    "api": "/health",
    "influxdb": "/ping",
    "mosquitto": "mosquitto_sub",
}

# Directives that broker/mosquitto.conf may use. Each is documented in mosquitto.conf(5) of
# Mosquitto 2.0.11, and test_broker_config_accepts_tcp_connection loads them with the real
# binary, which exits on an unknown directive. Add a directive here only after that test passes.
MOSQUITTO_2_DIRECTIVES = frozenset(
    {
        "allow_anonymous",
        "autosave_interval",
        "certfile",
        "connection_messages",
        "keyfile",
        "listener",
        "log_dest",
        "log_timestamp_format",
        "log_type",
        "max_inflight_messages",
        "max_packet_size",
        "max_queued_bytes",
        "max_queued_messages",
        "per_listener_settings",
        "persistence",
        "persistence_location",
        "persistent_client_expiration",
        "plugin",
        "plugin_opt_config_file",
        "queue_qos0_messages",
        "tls_version",
    }
)
# Limits that production and broker/mosquitto.local.conf must share, so that the tests
# exercise the broker that production runs.
SHARED_BROKER_LIMITS = (
    "max_inflight_messages",
    "max_queued_messages",
    "max_queued_bytes",
    "queue_qos0_messages",
    "max_packet_size",
    "persistent_client_expiration",
)
# Where the eclipse-mosquitto:2 image's default command reads its configuration.
MOSQUITTO_IMAGE_CONFIG = "/mosquitto/config/mosquitto.conf"
# The data folder of the influxdb:1.x image.
INFLUXDB_IMAGE_DATA = "/var/lib/influxdb"


# --- docker-compose.yml -----------------------------------------------------------------


@cache
def load_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def compose_service(name: str) -> dict:
    return load_compose()["services"][name]


def service_environment(name: str) -> dict[str, str]:
    """Return the service's ``environment``, written as a mapping or as ``KEY=value`` items."""
    environment = compose_service(name).get("environment") or {}
    if isinstance(environment, list):
        pairs = (item.partition("=") for item in environment)
        return {key: value for key, _, value in pairs}
    return {key: "" if value is None else str(value) for key, value in environment.items()}


def service_command(name: str) -> list[str]:
    command = compose_service(name).get("command") or []
    return shlex.split(command) if isinstance(command, str) else list(command)


@dataclass(frozen=True)
class Mount:
    """One entry of a service's ``volumes``: a bind mount of a host path, or a named volume."""

    source: str
    target: str
    is_bind: bool


def service_mounts(name: str) -> list[Mount]:
    mounts = []
    for entry in compose_service(name).get("volumes") or []:
        if isinstance(entry, dict):
            mounts.append(Mount(entry.get("source", ""), entry["target"], entry["type"] == "bind"))
            continue
        source, _, rest = entry.partition(":")
        target = rest.split(":")[0]
        mounts.append(Mount(source, target, source.startswith((".", "/", "~"))))
    return mounts


def compose_paths() -> list[tuple[str, str, str]]:
    """List the repository paths that docker-compose.yml names, as (service, role, path)."""
    paths = []
    for name, service in load_compose()["services"].items():
        build = service.get("build")
        if isinstance(build, str):
            build = {"context": build}
        if build:
            context = build.get("context", ".")
            paths.append((name, "build context", context))
            paths.append((name, "dockerfile", posixpath.join(context, build.get("dockerfile", "Dockerfile"))))
        for mount in service_mounts(name):
            if mount.is_bind:
                paths.append((name, "bind mount", mount.source))
    return paths


def healthy_dependencies() -> list[tuple[str, str]]:
    """List (service, dependency) pairs where the service waits for the dependency's health check."""
    pairs = []
    for name, service in load_compose()["services"].items():
        depends_on = service.get("depends_on") or {}
        if isinstance(depends_on, dict):
            for dependency, options in depends_on.items():
                if (options or {}).get("condition") == "service_healthy":
                    pairs.append((name, dependency))
    return pairs


def published_ports() -> set[tuple[str, int]]:
    """Return (service, container port) of every port that a service publishes on the host."""
    ports = set()
    for name, service in load_compose()["services"].items():
        for entry in service.get("ports") or []:
            if isinstance(entry, dict):
                ports.add((name, int(entry["target"])))
                continue
            container_port = str(entry).rsplit(":", 1)[-1].split("/")[0]
            ports.add((name, int(container_port)))
    return ports


def healthcheck_command(name: str) -> list[str]:
    test = (compose_service(name).get("healthcheck") or {}).get("test") or []
    return shlex.split(test) if isinstance(test, str) else list(test)


def environment_pairs() -> list[tuple[str, str]]:
    return [(name, variable) for name in APP_SERVICES for variable in service_environment(name)]


def interpolate(value: str) -> str:
    """Replace ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?message}`` as Compose does, with ``DOTENV``'s values.

    Raises:
        KeyError: a variable is not in ``DOTENV`` and has no default.
    """

    def substitute(match: re.Match) -> str:
        name, operator, argument = match.groups()
        if name in DOTENV:
            return DOTENV[name]
        if operator == ":-":
            return argument
        raise KeyError(f"{name} is not in DOTENV and has no default; add the value an operator would set in .env")

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-?])([^}]*))?\}", substitute, value)


def service_secrets(name: str) -> dict[str, str]:
    """Return the service's secrets as {file name under /run/secrets: top-level secret}."""
    found = {}
    for entry in compose_service(name).get("secrets") or []:
        if isinstance(entry, dict):
            found[entry.get("target") or entry["source"]] = entry["source"]
        else:
            found[entry] = entry
    return found


def command_options(name: str) -> dict[str, list[str]]:
    """Return the ``--option=value`` and ``--option value`` items of a service's command, by option."""
    options: dict[str, list[str]] = {}
    words = service_command(name)
    for index, word in enumerate(words):
        if not word.startswith("--"):
            continue
        option, separator, value = word.partition("=")
        if not separator:
            value = words[index + 1] if index + 1 < len(words) else ""
        options.setdefault(option, []).append(value)
    return options


def broker_init_destinations(option: str) -> dict[str, str]:
    """Return the ``IDENTITY=PATH`` values of a broker-init option as {container path: identity}."""
    values = command_options(BROKER_INIT).get(option, [])
    return {path: identity for identity, _, path in (value.partition("=") for value in values)}


def volume_path(service: str, container_path: str) -> tuple[str, str] | None:
    """Return (named volume, path inside it) of a container path of ``service``, or None when no volume contains it."""
    for mount in sorted(service_mounts(service), key=lambda mount: len(mount.target), reverse=True):
        target = mount.target.rstrip("/")
        if not mount.is_bind and (container_path == target or container_path.startswith(target + "/")):
            return mount.source, container_path[len(target) :].lstrip("/")
    return None


# --- settings classes and pyproject.toml --------------------------------------------------


def settings_class(service: str):
    """Return the settings class of an app service, or None when its module does not exist.

    An import error inside an existing module propagates, so that a broken module fails the
    test instead of being mistaken for a missing one.
    """
    module_name, class_name = SETTINGS_CLASSES[service]
    try:
        spec = importlib.util.find_spec(module_name)
    except ModuleNotFoundError:
        spec = None
    if spec is None:
        return None
    return getattr(importlib.import_module(module_name), class_name)


def settings_variables(settings) -> set[str]:
    prefix = settings.model_config.get("env_prefix", "")
    return {(prefix + field).upper() for field in settings.model_fields}


@cache
def load_pyproject() -> dict:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


def console_scripts() -> dict[str, str]:
    return load_pyproject()["project"]["scripts"]


def paths_the_image_needs() -> list[str]:
    """List repository paths that `pip install .` and the service commands read in the image."""
    paths = {"pyproject.toml", CATALOGUE}
    readme = load_pyproject()["project"].get("readme")
    if isinstance(readme, str) and (REPO_ROOT / readme).exists():
        paths.add(readme)

    find = load_pyproject()["tool"]["setuptools"]["packages"]["find"]
    for pattern in find.get("include", []):
        package = pattern.rstrip("*").rstrip(".")
        if (REPO_ROOT / package).is_dir():
            paths.add(package)
    for target in console_scripts().values():
        paths.add(target.split(":")[0].split(".")[0])
    return sorted(paths)


# --- Dockerfile and .dockerignore ---------------------------------------------------------


def read_dockerfile_instructions() -> list[tuple[str, str]]:
    """Return (instruction, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions = []
    pending = ""
    for raw_line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


@dataclass(frozen=True)
class CopyInstruction:
    """A COPY or ADD of the Dockerfile, with its destination made absolute."""

    index: int
    flags: dict[str, str]
    sources: list[str]
    destination: str
    destination_is_folder: bool


def dockerfile_copies() -> list[CopyInstruction]:
    copies = []
    workdir = "/"
    for index, (keyword, arguments) in enumerate(read_dockerfile_instructions()):
        if keyword == "WORKDIR":
            workdir = posixpath.join(workdir, arguments)
        if keyword not in ("COPY", "ADD"):
            continue

        words = json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)
        flags = {}
        while words and words[0].startswith("--"):
            flag, _, value = words.pop(0)[2:].partition("=")
            flags[flag] = value
        *sources, destination = words
        copies.append(
            CopyInstruction(
                index,
                flags,
                [posixpath.normpath(source) for source in sources],
                posixpath.normpath(posixpath.join(workdir, destination)),
                destination.endswith("/") or len(sources) > 1,
            )
        )
    return copies


def dockerignore_patterns() -> list[str]:
    if not DOCKERIGNORE.exists():
        return []
    lines = (line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def is_dockerignored(path: str) -> bool:
    """Return True when .dockerignore keeps ``path`` out of the build context.

    The last matching pattern wins, a leading '!' re-includes, a pattern that matches a
    folder excludes everything in it, and a leading '**/' matches at any depth. Unlike
    Docker, '*' here also matches '/', so a pattern may exclude more than in Docker, never less.
    """
    parts = path.split("/")
    prefixes = ["/".join(parts[:length]) for length in range(1, len(parts) + 1)]
    excluded = False
    for pattern in dockerignore_patterns():
        negated = pattern.startswith("!")
        body = pattern.lstrip("!").strip("/")
        if body.startswith("**/"):
            body = body[3:]
            candidates = ["/".join(prefix.split("/")[start:]) for prefix in prefixes for start in range(len(parts))]
        else:
            candidates = prefixes
        if any(candidate and fnmatchcase(candidate, body) for candidate in candidates):
            excluded = not negated
    return excluded


def image_location(path: str) -> tuple[int, str] | None:
    """Return (instruction index, path in the image) of the last COPY that brings a repository path.

    None when no COPY from the build context covers the path or .dockerignore excludes it.
    """
    if is_dockerignored(path):
        return None

    found = None
    for copy in dockerfile_copies():
        if "from" in copy.flags:
            continue
        for source in copy.sources:
            if source == ".":
                found = (copy.index, posixpath.join(copy.destination, path))
            elif path.startswith(source + "/") and (REPO_ROOT / source).is_dir():
                found = (copy.index, posixpath.join(copy.destination, path[len(source) + 1 :]))
            elif fnmatchcase(path, source):
                if copy.destination_is_folder:
                    found = (copy.index, posixpath.join(copy.destination, posixpath.basename(path)))
                else:
                    found = (copy.index, copy.destination)
    return found


def dockerfile_env() -> dict[str, str]:
    """Return the variables that ENV sets, in the ``ENV KEY=value ...`` form."""
    variables = {}
    for keyword, arguments in read_dockerfile_instructions():
        if keyword == "ENV":
            for word in shlex.split(arguments):
                key, _, value = word.partition("=")
                variables[key] = value
    return variables


def pip_install_project_index() -> int | None:
    """Return the index of the RUN that installs the build context with `pip install .`."""
    for index, (keyword, arguments) in enumerate(read_dockerfile_instructions()):
        if keyword == "RUN" and re.search(r"pip install\b[^&;|]*\s\.(\s|$)", arguments):
            return index
    return None


# --- broker/mosquitto.conf ----------------------------------------------------------------


def read_mosquitto_directives(path: Path) -> list[tuple[str, str]]:
    """Return (directive, value) pairs in file order. Mosquitto reads '#' as a comment only at line start."""
    directives = []
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, _, value = stripped.partition(" ")
        directives.append((name, value.strip()))
    return directives


def directive_value(path: Path, name: str) -> str | None:
    values = [value for directive, value in read_mosquitto_directives(path) if directive == name]
    return values[-1] if values else None


def broker_listeners() -> list[str]:
    """Return the listener values of the production configuration in file order: plain MQTT first, then TLS."""
    return [value for name, value in read_mosquitto_directives(BROKER_CONFIG) if name == "listener"]


# Directives of broker/mosquitto.conf that name a file or folder inside the broker's container.
BROKER_PATH_DIRECTIVES = ("plugin_opt_config_file", "persistence_location", "certfile", "keyfile")


@dataclass
class LocalDeployment:
    """Host folders in place of docker-compose.yml's named volumes and secret files."""

    root: Path
    bind_overrides: dict[str, Path] = field(default_factory=dict)
    """Host folder to use for a bind mount's source, e.g. test certificates for ./broker/certs."""

    def volume(self, name: str) -> Path:
        path = self.root / "volumes" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def secret(self, name: str) -> Path:
        return self.root / "secrets" / name

    def host_path(self, service: str, container_path: str) -> Path | None:
        """Return the host path of ``container_path`` of ``service``, or None when no mount or secret contains it."""
        for mount in sorted(service_mounts(service), key=lambda mount: len(mount.target), reverse=True):
            target = mount.target.rstrip("/")
            if container_path != target and not container_path.startswith(target + "/"):
                continue
            rest = container_path[len(target) :].lstrip("/")
            if mount.is_bind:
                base = self.bind_overrides.get(mount.source) or (REPO_ROOT / mount.source).resolve()
            else:
                base = self.volume(mount.source)
            return base / rest if rest else base

        folder, _, file_name = container_path.rpartition("/")
        if folder == SECRETS_MOUNT and file_name in service_secrets(service):
            return self.secret(service_secrets(service)[file_name])
        return None

    def translate(self, service: str, argument: str) -> str:
        """Replace a container path in ``argument``, also after ``--option=`` or ``IDENTITY=``, by its host path."""
        head, separator, path = argument.rpartition("=")
        host = self.host_path(service, path) if path.startswith("/") else None
        return argument if host is None else f"{head}{separator}{host}"


def run_broker_init(deployment: LocalDeployment) -> subprocess.CompletedProcess:
    """Run the broker-init service's command on the deployment's folders, with this Python."""
    command = [deployment.translate(BROKER_INIT, argument) for argument in service_command(BROKER_INIT)]
    if command[0] == "python":
        command[0] = sys.executable
    if os.geteuid() != 0:
        # Only root may give a file to another user, and Compose runs broker-init as root.
        command = [argument for argument in command if not argument.startswith(("--owner=", "--dynsec-owner="))]
    return subprocess.run(command, cwd=deployment.root, capture_output=True, text=True, timeout=60)


def initialise_deployment(root: Path, bind_overrides: dict[str, Path] | None = None) -> LocalDeployment:
    """Create the secret files as an operator would, then run broker-init on empty volumes."""
    deployment = LocalDeployment(root, bind_overrides or {})
    for name in load_compose().get("secrets") or {}:
        path = deployment.secret(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32) + "\n", encoding="utf-8")

    result = run_broker_init(deployment)
    if result.returncode != 0:
        pytest.fail(f"broker-init exited with {result.returncode}:\n{result.stdout}{result.stderr}")
    return deployment


def compose_environment(service: str, deployment: LocalDeployment) -> dict[str, str]:
    """Return the service's environment as its container would see it, with container paths moved to the deployment."""
    environment = {}
    for variable, value in service_environment(service).items():
        value = interpolate(value)
        host = deployment.host_path(service, value) if value.startswith("/") else None
        environment[variable] = str(host) if host is not None else value
    return environment


def render_loopback_broker_config(port: int, tls_port: int, deployment: LocalDeployment) -> str:
    """Rewrite the production configuration for this machine.

    The plain listener moves to ``127.0.0.1:port``, the TLS listener to ``127.0.0.1:tls_port``,
    the plugin to its path here, and every other path to the deployment's folder that the
    mosquitto service mounts there.

    Raises:
        ValueError: the configuration has not one plain and one TLS listener, or a path that
            no mount of the mosquitto service holds.
    """
    listeners = broker_listeners()
    if len(listeners) != 2:
        raise ValueError(
            f"{BROKER_CONFIG}: expected two listeners, found {len(listeners)}. Update this rewrite for the new listeners"
        )

    ports = iter([port, tls_port])
    lines = []
    for line in BROKER_CONFIG.read_text(encoding="utf-8").splitlines():
        name, _, value = line.strip().partition(" ")
        value = value.strip()
        if name == "listener":
            line = f"listener {next(ports)} 127.0.0.1"
        elif name == "plugin":
            line = f"plugin {find_dynsec_plugin()}"
        elif name in BROKER_PATH_DIRECTIVES:
            host = deployment.host_path("mosquitto", value.rstrip("/"))
            if host is None:
                raise ValueError(f"{BROKER_CONFIG}: {name} {value} is in no volume or bind mount of the mosquitto service")
            line = f"{name} {host}{'/' if value.endswith('/') else ''}"
        lines.append(line)
    # Started as root, Mosquitto switches to the 'mosquitto' user, which cannot write to the
    # temporary folder.
    if os.geteuid() == 0:
        lines.append("user root")
    return "\n".join(lines) + "\n"


def find_executable(name: str) -> str:
    found = shutil.which(name) or next(
        (str(path) for path in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if path.exists()), None
    )
    if found is None:
        pytest.fail(f"{name} is not installed: install the apt package 'mosquitto' (scripts/setup.sh)")
    return found


@dataclass
class LoopbackBroker:
    """A ``mosquitto`` started by a test from a rewritten production configuration."""

    process: subprocess.Popen
    port: int
    tls_port: int
    deployment: LocalDeployment
    pki: TlsFiles
    log_path: Path

    @property
    def data_dir(self) -> Path:
        """The folder here in place of the broker's persistence_location."""
        return self.deployment.host_path("mosquitto", directive_value(BROKER_CONFIG, "persistence_location").rstrip("/"))

    def wait_until_accepting(self, timeout_s: float = 10.0) -> bool:
        """Return True once a TCP connection succeeds, False if the broker exits or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if port_accepts("127.0.0.1", self.port) and port_accepts("127.0.0.1", self.tls_port):
                return True
            time.sleep(0.05)
        return False

    def stop(self, timeout_s: float = 10.0) -> int:
        """Stop the broker by its PID with SIGTERM, or SIGKILL after ``timeout_s``, and return its exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> LocalDeployment:
    """Volumes and secret files after one run of broker-init, for the tests that only read them."""
    return initialise_deployment(tmp_path_factory.mktemp("deployment"))


@pytest.fixture
def loopback_broker(tmp_path) -> LoopbackBroker:
    """Mosquitto running broker/mosquitto.conf on free loopback ports, on a fresh deployment, stopped after the test.

    broker-init writes the dynamic security file, and ./broker/certs is replaced by
    certificates for 127.0.0.1 generated with openssl.
    """
    pki = make_test_pki(tmp_path / "certs")
    deployment = initialise_deployment(tmp_path / "deployment", {"./broker/certs": pki.server_cert.parent})
    port, tls_port = free_port(), free_port()
    config_path = deployment.root / "mosquitto.conf"
    config_path.write_text(render_loopback_broker_config(port, tls_port, deployment), encoding="utf-8")

    log_path = tmp_path / "mosquitto.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [find_executable("mosquitto"), "-c", str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    broker = LoopbackBroker(process, port, tls_port, deployment, pki, log_path)
    yield broker
    broker.stop()


def run_broker_healthcheck(broker: LoopbackBroker, environment: dict[str, str]) -> subprocess.CompletedProcess:
    """Run the compose health check of the broker against ``broker`` with ``environment``."""
    command = [argument.replace("$$", "$") for argument in healthcheck_command("mosquitto")[1:]]
    command[0] = find_executable(command[0])
    command[command.index("-p") + 1] = str(broker.port)
    return subprocess.run(command, capture_output=True, text=True, timeout=30, env=environment)


# === Tests of docker-compose.yml ===========================================================


@pytest.mark.parametrize(
    ("service", "role", "path"), compose_paths(), ids=[f"{s}-{r}-{p}" for s, r, p in compose_paths()]
)
def test_compose_path_exists(service, role, path):
    """Every file and folder that docker-compose.yml names exists in the repository."""
    assert (REPO_ROOT / path).exists(), f"service {service}: {role} {path!r} not found in {REPO_ROOT}"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_service_builds_repository_dockerfile(service):
    build = compose_service(service).get("build")
    assert isinstance(build, dict), f"service {service}: build must name context and dockerfile, got {build!r}"

    dockerfile = (REPO_ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile")).resolve()
    assert dockerfile == DOCKERFILE, f"service {service}: builds {dockerfile}, expected {DOCKERFILE}"


def test_named_volume_is_declared():
    """Compose rejects a named volume that the top-level ``volumes`` does not declare."""
    declared = set(load_compose().get("volumes") or {})
    used = {
        (name, mount.source)
        for name in load_compose()["services"]
        for mount in service_mounts(name)
        if not mount.is_bind
    }
    undeclared = sorted((name, volume) for name, volume in used if volume not in declared)
    assert not undeclared, f"named volumes used but not declared under 'volumes': {undeclared}"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_service_command_is_console_script(service):
    command = service_command(service)
    assert command, f"service {service} has no command"
    assert command[0] in console_scripts(), (
        f"service {service}: command {command[0]!r} is not in [project.scripts] of pyproject.toml "
        f"({sorted(console_scripts())})"
    )


@pytest.mark.parametrize("service", APP_SERVICES)
def test_console_script_target_exists(service):
    """The module behind the service's console script exists, so the command can start."""
    script = service_command(service)[0]
    module_name = console_scripts()[script].split(":")[0]
    try:
        spec = importlib.util.find_spec(module_name)
    except ModuleNotFoundError:
        spec = None
    assert spec is not None, f"service {service}: {script} runs {module_name}, which is not found"


@pytest.mark.parametrize(("service", "variable"), environment_pairs(), ids=[f"{s}-{v}" for s, v in environment_pairs()])
def test_service_variable_is_settings_field(service, variable):
    """Every SMARTOFFICE_* variable of a service is read by that service's settings class."""
    if not variable.startswith("SMARTOFFICE_"):
        pytest.skip("not a SMARTOFFICE_* variable; test_service_sets_only_smartoffice_variables covers it")

    settings = settings_class(service)
    if settings is None:
        assert service == "simulator", f"service {service}: settings module {SETTINGS_CLASSES[service][0]} not found"
        assert variable in SIMULATOR_VARIABLES, (
            f"service simulator: {variable} is not one of the variables the simulator reads "
            f"({sorted(SIMULATOR_VARIABLES)})"
        )
        return
    assert variable in settings_variables(settings), (
        f"service {service}: {variable} is not a field of {settings.__name__} "
        f"({sorted(settings_variables(settings))})"
    )


@pytest.mark.parametrize("service", APP_SERVICES)
def test_service_sets_only_smartoffice_variables(service):
    """The services are configured through their settings classes and nothing else."""
    others = sorted(variable for variable in service_environment(service) if not variable.startswith("SMARTOFFICE_"))
    assert not others, f"service {service} sets variables outside SMARTOFFICE_*: {others}"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_service_environment_passes_validation(service, deployment, monkeypatch):
    """The settings class accepts the values that docker-compose.yml sets, with the files broker-init wrote."""
    module_name, _ = SETTINGS_CLASSES[service]
    if settings_class(service) is None:
        pytest.importorskip(module_name, reason=f"{module_name} does not exist yet")
    settings = settings_class(service)

    for variable in [name for name in os.environ if name.startswith("SMARTOFFICE_")]:
        monkeypatch.delenv(variable)
    for variable, value in compose_environment(service, deployment).items():
        monkeypatch.setenv(variable, value)

    try:
        settings()
        problem = None
    except ValidationError as error:
        problem = str(error)
    assert problem is None, f"service {service}: {settings.__name__} rejects the compose environment:\n{problem}"


def test_simulator_runs_in_sim_profile():
    profiles = compose_service("simulator").get("profiles") or []
    assert "sim" in profiles, f"service simulator: profiles are {profiles}, expected to contain 'sim'"


@pytest.mark.parametrize("service", LONG_RUNNING_SERVICES)
def test_platform_service_has_no_profile(service):
    """The platform starts with a plain `docker compose up`, without naming a profile."""
    profiles = compose_service(service).get("profiles")
    assert not profiles, f"service {service} is in profiles {profiles}, so `docker compose up` skips it"


def test_published_ports_are_api_and_mqtt_tls_only():
    """Only the API and MQTT over TLS are published, so plain MQTT and InfluxDB stay inside the compose network."""
    assert published_ports() == PUBLISHED_PORTS


def test_broker_tls_listener_is_published():
    tls_listener = broker_listeners()[1]
    assert ("mosquitto", int(tls_listener)) in published_ports(), f"the TLS listener {tls_listener} is not published"


def test_plain_mqtt_port_is_not_published():
    """Passwords cross port 1883 in clear text, so only the compose network may reach it."""
    plain_listener = broker_listeners()[0]
    assert ("mosquitto", int(plain_listener)) not in published_ports(), f"port {plain_listener} is published"


def test_node_broker_is_tls_listener():
    """Provisioned nodes get the address of the published TLS listener, with TLS on."""
    environment = service_environment("api")
    port = environment.get("SMARTOFFICE_NODE_BROKER_PORT")
    tls_listener = broker_listeners()[1]
    assert port == tls_listener, f"SMARTOFFICE_NODE_BROKER_PORT is {port!r}, the TLS listener is {tls_listener!r}"
    tls = environment.get("SMARTOFFICE_NODE_BROKER_TLS")
    assert tls == "true", f"SMARTOFFICE_NODE_BROKER_TLS is {tls!r}"


def test_node_broker_host_is_required():
    """The broker's public name comes from .env. Compose stops when it is unset, instead of giving nodes 'mosquitto'."""
    value = service_environment("api").get("SMARTOFFICE_NODE_BROKER_HOST", "")
    assert value.startswith("${SMARTOFFICE_NODE_BROKER_HOST:?"), f"SMARTOFFICE_NODE_BROKER_HOST is {value!r}"


@pytest.mark.parametrize("service", sorted(load_compose()["services"]))
def test_service_sets_no_secret_value(service):
    """Secrets reach the services as files, never as values written into the compose file or its environment."""
    variables = [
        variable
        for variable in service_environment(service)
        if SECRET_VARIABLE.search(variable) and not variable.endswith("_FILE")
    ]
    assert not variables, f"service {service} sets secret variables: {variables}; use their *_FILE form"


@pytest.mark.parametrize(
    ("service", "variable"),
    [
        (name, variable)
        for name in APP_SERVICES
        for variable in service_environment(name)
        if variable.endswith("_FILE") and SECRET_VARIABLE.search(variable)
    ],
)
def test_secret_file_is_mounted(service, variable):
    """Every password or key file lies in a volume or a secret that the service mounts."""
    path = service_environment(service)[variable]
    folder, _, file_name = path.rpartition("/")
    in_secret = folder == SECRETS_MOUNT and file_name in service_secrets(service)
    assert in_secret or volume_path(service, path) is not None, (
        f"service {service}: {variable}={path} is in no mounted volume and no secret of the service"
    )


@pytest.mark.parametrize("service", sorted(load_compose()["services"]))
def test_service_secret_is_declared(service):
    declared = set(load_compose().get("secrets") or {})
    undeclared = sorted(set(service_secrets(service).values()) - declared)
    assert not undeclared, f"service {service} uses secrets not declared under 'secrets': {undeclared}"


@pytest.mark.parametrize("name", sorted(load_compose().get("secrets") or {}))
def test_secret_source_is_file_outside_image(name):
    """The key files stay on the host: .dockerignore keeps them out of the image."""
    source = (load_compose()["secrets"][name] or {}).get("file")
    assert source, f"secret {name} has no 'file'; generate the key into a file on the host"
    path = posixpath.normpath(source)
    assert is_dockerignored(path), f"secret {name}: .dockerignore does not exclude {path}"


@pytest.mark.parametrize("name", sorted(load_compose().get("secrets") or {}))
def test_secret_source_is_ignored_by_git(name):
    path = posixpath.normpath(load_compose()["secrets"][name]["file"])
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("git or the repository's .git folder is missing")
    result = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO_ROOT, capture_output=True, timeout=30)
    assert result.returncode == 0, f"secret {name}: git does not ignore {path}, so a key could be committed"


# --- broker-init and the broker's files --------------------------------------------------


def test_broker_init_runs_once():
    """broker-init exits after its work, so a restart policy would run it in a loop."""
    restart = compose_service(BROKER_INIT).get("restart")
    assert restart == "no", f"service {BROKER_INIT}: restart is {restart!r}, expected 'no'"


def test_broker_init_runs_repository_script():
    command = service_command(BROKER_INIT)
    mounts = {mount.target: mount for mount in service_mounts(BROKER_INIT)}
    script = mounts.get(command[1] if len(command) > 1 else "")
    assert script is not None and script.is_bind, f"{BROKER_INIT}: {command[1:2]} is not a bind-mounted file"
    assert (REPO_ROOT / script.source).resolve() == REPO_ROOT / "broker" / "init_secrets.py"


@pytest.mark.parametrize("service", BROKER_INIT_DEPENDENTS)
def test_service_waits_for_broker_init(service):
    """The broker needs the dynamic security file, the services their password files."""
    depends_on = compose_service(service).get("depends_on") or {}
    condition = (depends_on.get(BROKER_INIT) or {}).get("condition") if isinstance(depends_on, dict) else None
    assert condition == "service_completed_successfully", (
        f"service {service}: depends on {BROKER_INIT} with {condition!r}, expected service_completed_successfully"
    )


def test_broker_init_writes_broker_dynsec_file():
    """broker-init writes the plugin file into the volume where the broker's plugin_opt_config_file points."""
    written = volume_path(BROKER_INIT, command_options(BROKER_INIT)["--dynsec-file"][0])
    read = volume_path("mosquitto", directive_value(BROKER_CONFIG, "plugin_opt_config_file"))
    assert written is not None, f"{BROKER_INIT} writes the dynamic security file outside its volumes"
    assert written == read, f"{BROKER_INIT} writes (volume, path) {written}, the broker reads {read}"


@pytest.mark.parametrize(("service", "login"), sorted(SERVICE_LOGINS), ids=SERVICE_LOGIN_IDS)
def test_service_password_file_comes_from_broker_init(service, login):
    """The service's password file is the one broker-init writes for the identity the service logs in as."""
    username_variable, file_variable, identity, username = SERVICE_LOGINS[(service, login)]
    environment = service_environment(service)
    assert environment.get(username_variable) == username, f"service {service}: {username_variable} is not {username}"

    read = volume_path(service, environment.get(file_variable, ""))
    written = {
        volume_path(BROKER_INIT, path): written_identity
        for path, written_identity in broker_init_destinations("--password-file").items()
    }
    assert read in written, f"service {service}: {file_variable} is no file that {BROKER_INIT} writes"
    assert written[read] == identity, f"service {service}: {file_variable} holds the password of {written[read]}"


def test_dead_letters_cli_uses_api_login(deployment, monkeypatch):
    """``docker compose exec api smartoffice-dead-letters replay`` reads the ingest settings from the API's environment.

    The ingest identity may not publish, so the documented replay runs in the API's container
    and must log in as the API.
    """
    for variable in [name for name in os.environ if name.startswith("SMARTOFFICE_")]:
        monkeypatch.delenv(variable)
    environment = compose_environment("api", deployment)
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)

    settings = settings_class("ingest")()

    assert settings.mqtt_username == API_USERNAME
    password = Path(environment["SMARTOFFICE_MQTT_PASSWORD_FILE"]).read_text(encoding="utf-8").splitlines()[0]
    assert settings.mqtt_password.get_secret_value() == password
    assert str(settings.dead_letter_path) == environment["SMARTOFFICE_DEAD_LETTER_PATH"]


def test_broker_healthcheck_reads_login_file():
    """mosquitto_sub reads its options from $XDG_CONFIG_HOME/mosquitto_sub, which broker-init writes."""
    folder = service_environment("mosquitto").get("XDG_CONFIG_HOME", "")
    read = volume_path("mosquitto", posixpath.join(folder, "mosquitto_sub"))
    written = {
        volume_path(BROKER_INIT, path): identity
        for path, identity in broker_init_destinations("--client-options-file").items()
    }
    assert read in written, f"mosquitto: XDG_CONFIG_HOME={folder!r} holds no mosquitto_sub file of {BROKER_INIT}"


def test_broker_mounts_certificates_read_only():
    folders = {posixpath.dirname(directive_value(BROKER_CONFIG, name)) for name in ("certfile", "keyfile")}
    mounts = {mount.target.rstrip("/"): mount for mount in service_mounts("mosquitto")}
    entries = {entry.split(":")[1]: entry for entry in compose_service("mosquitto")["volumes"] if isinstance(entry, str)}
    for folder in folders:
        assert folder in mounts and mounts[folder].is_bind, f"mosquitto: nothing from the host is mounted at {folder}"
        assert entries[folder].endswith(":ro"), f"mosquitto: {entries[folder]} is writable"


@pytest.mark.parametrize("directive", BROKER_PATH_DIRECTIVES)
def test_broker_config_path_exists_in_deployment(directive, deployment):
    """Every file the broker reads lies in a mount of the mosquitto service and exists after broker-init.

    The certificate folder is the repository's broker/certs, where the operator installs
    server.crt and server.key, so only the folder is checked for those.
    """
    value = directive_value(BROKER_CONFIG, directive).rstrip("/")
    host = deployment.host_path("mosquitto", value)
    assert host is not None, f"mosquitto: {directive} {value} is in no volume or bind mount"
    expected = host.parent if directive in ("certfile", "keyfile") else host
    assert expected.exists(), f"mosquitto: {directive} {value} is {expected} here, which does not exist"


def test_broker_init_files_are_private(deployment):
    """Every file broker-init writes has mode 0600, because each contains a password or a password hash."""
    written = [command_options(BROKER_INIT)["--dynsec-file"][0], command_options(BROKER_INIT)["--credentials-file"][0]]
    written += list(broker_init_destinations("--password-file")) + list(broker_init_destinations("--client-options-file"))
    for path in written:
        mode = stat.S_IMODE(deployment.host_path(BROKER_INIT, path).stat().st_mode)
        assert mode == 0o600, f"{BROKER_INIT}: {path} has mode {mode:o}"


@pytest.mark.skipif(os.geteuid() != 0, reason="broker-init gives files to other users only as root")
def test_broker_init_sets_owners(deployment):
    """The broker (uid 1883) owns the dynamic security file, the services (uid 10001) their password files."""
    options = command_options(BROKER_INIT)
    broker_uid = int(options["--dynsec-owner"][0].split(":")[0])
    service_uid = int(options["--owner"][0].split(":")[0])
    dynsec = deployment.host_path(BROKER_INIT, options["--dynsec-file"][0])
    assert dynsec.stat().st_uid == broker_uid, f"{dynsec} belongs to uid {dynsec.stat().st_uid}"
    assert dynsec.parent.stat().st_uid == broker_uid, "the plugin cannot rewrite its file in a folder it does not own"
    for path in broker_init_destinations("--password-file"):
        owner = deployment.host_path(BROKER_INIT, path).stat().st_uid
        assert owner == service_uid, f"{path} belongs to uid {owner}, expected {service_uid}"


def test_broker_init_passwords_match_credentials(deployment):
    options = command_options(BROKER_INIT)
    identities = load_service_identities(deployment.host_path(BROKER_INIT, options["--credentials-file"][0]))
    for path, identity in broker_init_destinations("--password-file").items():
        text = deployment.host_path(BROKER_INIT, path).read_text(encoding="utf-8")
        assert text == getattr(identities, identity).password + "\n", f"{path} does not hold the password of {identity}"


def test_broker_init_keeps_existing_identities(tmp_path):
    """A second run, as at every `docker compose up`, keeps the plugin file and the passwords."""
    deployment = initialise_deployment(tmp_path)
    options = command_options(BROKER_INIT)
    dynsec = deployment.host_path(BROKER_INIT, options["--dynsec-file"][0])
    password_files = [deployment.host_path(BROKER_INIT, path) for path in broker_init_destinations("--password-file")]
    before = [dynsec.read_bytes()] + [path.read_bytes() for path in password_files]

    result = run_broker_init(deployment)

    assert result.returncode == 0, result.stderr
    assert [dynsec.read_bytes()] + [path.read_bytes() for path in password_files] == before


def test_broker_init_rejects_missing_credentials(tmp_path):
    """Without the credentials file the passwords are unknown, and a new bootstrap would delete every node."""
    deployment = initialise_deployment(tmp_path)
    options = command_options(BROKER_INIT)
    dynsec = deployment.host_path(BROKER_INIT, options["--dynsec-file"][0])
    credentials = deployment.host_path(BROKER_INIT, options["--credentials-file"][0])
    before = dynsec.read_bytes()
    credentials.unlink()

    result = run_broker_init(deployment)

    assert result.returncode == 2
    assert f"{credentials} with the service passwords is missing" in result.stderr
    assert dynsec.read_bytes() == before


def test_api_listens_on_published_port():
    port = service_environment("api").get("SMARTOFFICE_API_PORT")
    assert port == "8000", f"SMARTOFFICE_API_PORT is {port!r}, but the API publishes container port 8000"


def test_api_binds_all_interfaces():
    """Inside the container the API must bind 0.0.0.0, or the published port reaches nothing."""
    host = service_environment("api").get("SMARTOFFICE_API_HOST")
    assert host == "0.0.0.0", f"SMARTOFFICE_API_HOST is {host!r}, expected 0.0.0.0"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_mqtt_host_is_broker_service(service):
    host = service_environment(service).get("SMARTOFFICE_MQTT_HOST")
    assert host == "mosquitto", f"service {service}: SMARTOFFICE_MQTT_HOST is {host!r}, expected mosquitto"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_mqtt_port_matches_broker_listener(service):
    port = service_environment(service).get("SMARTOFFICE_MQTT_PORT")
    listener = broker_listeners()[0]
    assert port == listener, f"service {service}: SMARTOFFICE_MQTT_PORT is {port!r}, the broker listens on {listener!r}"


@pytest.mark.parametrize("service", ["ingest", "api"])
def test_influx_url_points_at_influxdb_service(service):
    url = urlsplit(service_environment(service).get("SMARTOFFICE_INFLUX_URL", ""))
    assert url.hostname == "influxdb", f"service {service}: SMARTOFFICE_INFLUX_URL host is {url.hostname!r}"
    assert url.port == 8086, f"service {service}: SMARTOFFICE_INFLUX_URL port is {url.port!r}, InfluxDB serves 8086"


@pytest.mark.parametrize("service", ["ingest", "api"])
def test_influx_db_matches_created_database(service):
    database = service_environment(service).get("SMARTOFFICE_INFLUX_DB")
    created = service_environment("influxdb").get("INFLUXDB_DB")
    assert database == created, (
        f"service {service}: SMARTOFFICE_INFLUX_DB is {database!r}, but InfluxDB creates {created!r}"
    )


def test_influxdb_image_serves_v1_api():
    """The services speak InfluxDB's v1 API (/write, /query), which 1.x images serve without setup."""
    image = compose_service("influxdb").get("image", "")
    assert re.fullmatch(r"influxdb:1(\.\d+)*(-alpine)?", image), f"influxdb image is {image!r}, expected influxdb:1.x"


def test_influxdb_data_is_named_volume():
    mounts = [mount for mount in service_mounts("influxdb") if mount.target == INFLUXDB_IMAGE_DATA]
    assert [mount.is_bind for mount in mounts] == [False], (
        f"influxdb: expected one named volume at {INFLUXDB_IMAGE_DATA}, found {mounts}"
    )


@pytest.mark.parametrize(
    ("service", "dependency"), healthy_dependencies(), ids=[f"{s}-{d}" for s, d in healthy_dependencies()]
)
def test_healthy_dependency_has_healthcheck(service, dependency):
    """Compose fails to start a service that waits for service_healthy of a dependency without a health check."""
    assert healthcheck_command(dependency), f"service {service} waits for {dependency}, which has no healthcheck"


@pytest.mark.parametrize("service", sorted(HEALTHCHECK_PROBES))
def test_healthcheck_probes_expected_endpoint(service):
    command = " ".join(healthcheck_command(service))
    assert HEALTHCHECK_PROBES[service] in command, f"service {service}: healthcheck {command!r} does not probe it"


@pytest.mark.parametrize("service", LONG_RUNNING_SERVICES)
def test_service_restarts_unless_stopped(service):
    restart = compose_service(service).get("restart")
    assert restart == "unless-stopped", f"service {service}: restart is {restart!r}"


def test_broker_service_mounts_production_config():
    mounts = {mount.target: mount for mount in service_mounts("mosquitto")}
    mount = mounts.get(MOSQUITTO_IMAGE_CONFIG)
    assert mount is not None, f"mosquitto: nothing is mounted at {MOSQUITTO_IMAGE_CONFIG}"
    assert (REPO_ROOT / mount.source).resolve() == BROKER_CONFIG, f"mosquitto: mounts {mount.source}"


def test_broker_data_volume_matches_persistence_location():
    location = (directive_value(BROKER_CONFIG, "persistence_location") or "").rstrip("/")
    mounts = [mount for mount in service_mounts("mosquitto") if mount.target.rstrip("/") == location]
    assert [mount.is_bind for mount in mounts] == [False], f"mosquitto: expected one named volume at {location!r}"


# === Tests of the Dockerfile ===============================================================


def test_dockerfile_base_is_python_311_slim():
    bases = [arguments.split()[0] for keyword, arguments in read_dockerfile_instructions() if keyword == "FROM"]
    assert bases[-1:] == ["python:3.11-slim"], f"final FROM is {bases[-1:]}, expected python:3.11-slim"


def test_dockerfile_user_is_not_root():
    users = [arguments.split(":")[0] for keyword, arguments in read_dockerfile_instructions() if keyword == "USER"]
    assert users, "the Dockerfile sets no USER, so the services run as root"
    assert users[-1] not in ("root", "0"), f"the final USER is {users[-1]!r}"


def test_dockerfile_installs_project_with_pip():
    assert pip_install_project_index() is not None, "no RUN with `pip install .` in the Dockerfile"


@pytest.mark.parametrize("path", paths_the_image_needs())
def test_image_contains_required_path(path):
    """The build context brings what `pip install .` and the commands read, before the install."""
    location = image_location(path)
    assert location is not None, f"{path} is not copied into the image (no COPY, or .dockerignore excludes it)"

    copy_index, _ = location
    install_index = pip_install_project_index()
    assert install_index is not None and copy_index < install_index, f"{path} is copied after `pip install .`"


@pytest.mark.parametrize(
    "source", sorted({source for copy in dockerfile_copies() if "from" not in copy.flags for source in copy.sources})
)
def test_dockerfile_copy_source_exists(source):
    matches = list(REPO_ROOT.glob(source)) if any(char in source for char in "*?[") else [REPO_ROOT / source]
    assert any(match.exists() for match in matches), f"COPY source {source!r} not found in {REPO_ROOT}"


def test_image_catalogue_variable_matches_copy():
    """The image's own SMARTOFFICE_CATALOGUE_FILE names the catalogue it contains."""
    location = image_location(CATALOGUE)
    assert location is not None, f"{CATALOGUE} is not in the image"
    assert dockerfile_env().get("SMARTOFFICE_CATALOGUE_FILE") == location[1]


@pytest.mark.parametrize(
    "service", [name for name in APP_SERVICES if "SMARTOFFICE_CATALOGUE_FILE" in service_environment(name)]
)
def test_service_catalogue_file_is_in_image(service):
    """The catalogue path works with the image's copy alone, with or without the bind mount."""
    location = image_location(CATALOGUE)
    assert location is not None, f"{CATALOGUE} is not in the image"
    path = service_environment(service)["SMARTOFFICE_CATALOGUE_FILE"]
    assert path == location[1], (
        f"service {service}: SMARTOFFICE_CATALOGUE_FILE is {path!r}, but the image has the catalogue at {location[1]!r}"
    )


def test_dockerfile_sets_no_secret_variables():
    names = [
        word.partition("=")[0]
        for keyword, arguments in read_dockerfile_instructions()
        if keyword in ("ENV", "ARG")
        for word in shlex.split(arguments)
    ]
    secrets = [name for name in names if re.search(r"PASSWORD|SECRET|TOKEN|API_KEY", name, re.IGNORECASE)]
    assert not secrets, f"the Dockerfile bakes secret variables into the image: {secrets}"


@pytest.mark.parametrize("path", [".env", ".git", ".venv", ".local", "ingest/__pycache__/config.cpython-311.pyc"])
def test_dockerignore_excludes_local_files(path):
    """Credentials, local data and environments never reach the build context."""
    assert is_dockerignored(path), f".dockerignore does not exclude {path}"


# === Tests of broker/mosquitto.conf ========================================================


@pytest.mark.parametrize("directive", sorted({name for name, _ in read_mosquitto_directives(BROKER_CONFIG)}))
def test_broker_directive_known_to_mosquitto_2(directive):
    assert directive in MOSQUITTO_2_DIRECTIVES, (
        f"{directive} is not in MOSQUITTO_2_DIRECTIVES; check it in mosquitto.conf(5) of 2.0 and add it"
    )


@pytest.mark.parametrize("directive", SHARED_BROKER_LIMITS)
def test_broker_limit_matches_local_config(directive):
    production = directive_value(BROKER_CONFIG, directive)
    local = directive_value(LOCAL_BROKER_CONFIG, directive)
    assert production is not None, f"{BROKER_CONFIG.name} does not set {directive}"
    assert production == local, f"{directive}: production {production!r}, {LOCAL_BROKER_CONFIG.name} {local!r}"


def test_broker_listener_binds_all_interfaces():
    """A listener with a port and no address binds every interface of the container: 1883 plain, 8883 TLS."""
    assert broker_listeners() == ["1883", "8883"]


def test_broker_persistence_enabled():
    assert directive_value(BROKER_CONFIG, "persistence") == "true"


def test_broker_persistence_location_is_image_data_folder():
    assert directive_value(BROKER_CONFIG, "persistence_location") == "/mosquitto/data/"


def test_broker_logs_to_stdout():
    """`docker compose logs` shows what the container writes to standard output."""
    destinations = [value for name, value in read_mosquitto_directives(BROKER_CONFIG) if name == "log_dest"]
    assert destinations == ["stdout"], f"log_dest is {destinations}"


@pytest.mark.integration
def test_broker_config_accepts_tcp_connection(loopback_broker):
    """Mosquitto loads every directive of the production file and accepts connections."""
    accepting = loopback_broker.wait_until_accepting()
    assert accepting, f"mosquitto did not accept connections on port {loopback_broker.port}:\n{loopback_broker.log()}"


@pytest.mark.integration
def test_broker_config_rejects_anonymous(loopback_broker):
    """The production file loads the dynamic security plugin, so a client without a login is rejected."""
    assert loopback_broker.wait_until_accepting(), f"mosquitto did not start:\n{loopback_broker.log()}"

    probe = connect_probe(loopback_broker.port)
    probe.close()

    assert str(probe.connack) == "Not authorized"


@pytest.mark.integration
def test_broker_healthcheck_command_succeeds(loopback_broker):
    """The compose health check, with the broker service's environment and broker-init's login file, exits with 0."""
    assert loopback_broker.wait_until_accepting(), f"mosquitto did not start:\n{loopback_broker.log()}"

    environment = dict(os.environ, **compose_environment("mosquitto", loopback_broker.deployment))
    result = run_broker_healthcheck(loopback_broker, environment)

    assert result.returncode == 0, f"the health check exited with {result.returncode}: {result.stderr}"


@pytest.mark.integration
def test_broker_healthcheck_fails_without_login(loopback_broker, tmp_path):
    """Without the login file the health check connects anonymously, which the broker rejects."""
    assert loopback_broker.wait_until_accepting(), f"mosquitto did not start:\n{loopback_broker.log()}"

    empty = tmp_path / "no-login"
    empty.mkdir()
    result = run_broker_healthcheck(loopback_broker, dict(os.environ, XDG_CONFIG_HOME=str(empty)))

    assert result.returncode != 0, "the health check succeeded without a login"
    assert "not authorised" in result.stderr, result.stderr


@pytest.mark.integration
@pytest.mark.parametrize(("service", "login"), sorted(SERVICE_LOGINS), ids=SERVICE_LOGIN_IDS)
def test_service_login_accepted_by_broker(loopback_broker, service, login):
    """The user name and password file that docker-compose.yml gives a service log in on the production config."""
    assert loopback_broker.wait_until_accepting(), f"mosquitto did not start:\n{loopback_broker.log()}"
    username_variable, file_variable, _, _ = SERVICE_LOGINS[(service, login)]
    environment = compose_environment(service, loopback_broker.deployment)
    password = Path(environment[file_variable]).read_text(encoding="utf-8").splitlines()[0]

    probe = connect_probe(loopback_broker.port, environment[username_variable], password)
    probe.close()

    assert not probe.connack.is_failure, f"service {service}: the broker rejected {login} login: {probe.connack}"


@pytest.mark.integration
def test_tls_listener_accepts_service_login(loopback_broker):
    """An edge node's path: MQTT over TLS on the second listener, verified against the CA, with a login."""
    assert loopback_broker.wait_until_accepting(), f"mosquitto did not start:\n{loopback_broker.log()}"
    environment = compose_environment("ingest", loopback_broker.deployment)
    password = Path(environment["SMARTOFFICE_MQTT_PASSWORD_FILE"]).read_text(encoding="utf-8").splitlines()[0]

    probe = connect_probe(
        loopback_broker.tls_port, environment["SMARTOFFICE_MQTT_USERNAME"], password, cafile=loopback_broker.pki.ca_cert
    )
    probe.close()

    assert not probe.connack.is_failure, f"the TLS listener rejected the ingest login: {probe.connack}"


@pytest.mark.integration
def test_tls_listener_rejects_anonymous(loopback_broker):
    assert loopback_broker.wait_until_accepting(), f"mosquitto did not start:\n{loopback_broker.log()}"

    probe = connect_probe(loopback_broker.tls_port, cafile=loopback_broker.pki.ca_cert)
    probe.close()

    assert str(probe.connack) == "Not authorized"


@pytest.mark.integration
def test_broker_config_saves_persistence_on_stop(loopback_broker):
    assert loopback_broker.wait_until_accepting(), f"mosquitto did not start:\n{loopback_broker.log()}"

    exit_code = loopback_broker.stop()
    assert exit_code == 0, f"mosquitto exited with {exit_code} after SIGTERM:\n{loopback_broker.log()}"
    assert (loopback_broker.data_dir / "mosquitto.db").exists(), f"no mosquitto.db in {loopback_broker.data_dir}"


@pytest.mark.integration
def test_mosquitto_rejects_unknown_directive(tmp_path):
    """Mosquitto exits on a directive it does not know, so the start-up test catches a wrong name."""
    config_path = tmp_path / "mosquitto.conf"
    config_path.write_text(f"listener {free_port()} 127.0.0.1\nno_such_directive 1\n", encoding="utf-8")

    # subprocess.run kills the broker by its PID if it starts and outlives the timeout.
    result = subprocess.run(
        [find_executable("mosquitto"), "-c", str(config_path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode != 0, "mosquitto accepted an unknown directive"
    assert "no_such_directive" in result.stdout + result.stderr, f"unexpected output: {result.stdout}{result.stderr}"
