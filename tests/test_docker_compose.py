"""Checks of the production deployment: docker-compose.yml, the Dockerfile and broker/mosquitto.conf.

No Docker engine is needed. The files are parsed and compared with the repository, with the
console scripts in pyproject.toml and with the settings classes of the services. The tests
marked ``integration`` start the production Mosquitto configuration with the real
``mosquitto`` binary, rewritten to listen on a free loopback port.
"""

import importlib
import importlib.util
import json
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import time
import tomllib
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import ValidationError

from devstack.mosquitto import find_dynsec_plugin
from devstack.ports import free_port, port_accepts
from registry.broker_bootstrap import generate_service_identities, write_bootstrap

from broker_helpers import connect_probe, make_test_pki

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
# The only ports published on the host, as (service, container port).
PUBLISHED_PORTS = {("api", 8000), ("mosquitto", 1883)}
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


def render_loopback_broker_config(
    port: int, data_dir: Path, tls_port: int | None = None, certificates: Path | None = None
) -> str:
    """Rewrite the production configuration to listen on ``127.0.0.1:port`` and keep data in ``data_dir``.

    The TLS listener moves to ``127.0.0.1:tls_port`` with the ``server.crt`` and ``server.key``
    of ``certificates``, the dynamic security plugin to its path on this machine, and its
    file to ``data_dir``.

    Raises:
        ValueError: the configuration has not one plain and one TLS listener, or no
            persistence_location, so this rewrite no longer matches it.
    """
    listeners = broker_listeners()
    if len(listeners) != 2:
        raise ValueError(
            f"{BROKER_CONFIG}: expected two listeners, found {len(listeners)}. Update this rewrite for the new listeners"
        )
    if directive_value(BROKER_CONFIG, "persistence_location") is None:
        raise ValueError(f"{BROKER_CONFIG}: persistence_location is missing")

    ports = iter([port, tls_port or free_port()])
    replacements = {
        "persistence_location": f"{data_dir}/",
        "plugin": str(find_dynsec_plugin()),
        "plugin_opt_config_file": str(data_dir / "dynamic-security.json"),
        "certfile": str((certificates or data_dir) / "server.crt"),
        "keyfile": str((certificates or data_dir) / "server.key"),
    }
    lines = []
    for line in BROKER_CONFIG.read_text(encoding="utf-8").splitlines():
        name = line.strip().partition(" ")[0]
        if name == "listener":
            line = f"listener {next(ports)} 127.0.0.1"
        elif name in replacements:
            line = f"{name} {replacements[name]}"
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
    data_dir: Path
    log_path: Path

    def wait_until_accepting(self, timeout_s: float = 10.0) -> bool:
        """Return True once a TCP connection succeeds, False if the broker exits or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if port_accepts("127.0.0.1", self.port):
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


@pytest.fixture
def loopback_broker(tmp_path) -> LoopbackBroker:
    """Mosquitto running broker/mosquitto.conf on a free loopback port, stopped after the test."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    port = free_port()
    certificates = make_test_pki(tmp_path / "certs").server_cert.parent
    write_bootstrap(data_dir / "dynamic-security.json", tmp_path / "services.json", generate_service_identities())
    config_path = tmp_path / "mosquitto.conf"
    config_path.write_text(
        render_loopback_broker_config(port, data_dir, certificates=certificates), encoding="utf-8"
    )

    log_path = tmp_path / "mosquitto.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [find_executable("mosquitto"), "-c", str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    broker = LoopbackBroker(process, port, data_dir, log_path)
    yield broker
    broker.stop()


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
def test_service_environment_passes_validation(service, monkeypatch):
    """The settings class accepts the values that docker-compose.yml sets."""
    module_name, _ = SETTINGS_CLASSES[service]
    if settings_class(service) is None:
        pytest.importorskip(module_name, reason=f"{module_name} does not exist yet")
    settings = settings_class(service)

    # Container paths of bind mounts resolve to their host source, which exists here.
    container_paths = {
        mount.target: str((REPO_ROOT / mount.source).resolve()) for mount in service_mounts(service) if mount.is_bind
    }
    for variable in [name for name in os.environ if name.startswith("SMARTOFFICE_")]:
        monkeypatch.delenv(variable)
    for variable, value in service_environment(service).items():
        monkeypatch.setenv(variable, container_paths.get(value, value))

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


def test_published_ports_are_api_and_mqtt_only():
    """Only the API and MQTT are published on the host, so InfluxDB stays inside the compose network."""
    assert published_ports() == PUBLISHED_PORTS


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
@pytest.mark.xfail(
    strict=True,
    reason="the compose health check subscribes anonymously, which the broker rejects since the dynamic "
    "security plugin is on; it needs a broker identity of its own in docker-compose.yml",
)
def test_broker_healthcheck_command_succeeds(loopback_broker):
    """The compose health check of the broker, run against the loopback copy, exits with 0."""
    assert loopback_broker.wait_until_accepting(), f"mosquitto did not start:\n{loopback_broker.log()}"

    command = [argument.replace("$$", "$") for argument in healthcheck_command("mosquitto")[1:]]
    command[0] = find_executable(command[0])
    command[command.index("-p") + 1] = str(loopback_broker.port)
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"{shlex.join(command)} exited with {result.returncode}: {result.stderr}"


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
