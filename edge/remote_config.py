"""Remote configuration on the node side: the retained ``config`` topic and ``config/reported``.

The command server publishes a ``NodeConfig`` (version, issued_ts, settings) retained on the
node's ``config`` topic. For each message the node decides by version:

- **Higher than the version in force**: the settings are validated strictly
  (``edge.node_settings``). When they are valid, they are applied without a restart (only
  changed adapters are restarted), written to disk atomically so that a restart uses them, and
  reported as ``applied``. When they are invalid, or an adapter cannot be created, the working
  configuration keeps running, and the version is reported as ``rejected`` with the error
  text (at most 2,000 characters).
- **Equal to the version in force**: the broker sends the retained message again after every
  reconnect. Nothing is applied, but the ``applied`` report is published again, because the
  first report may have been lost with the connection. A redelivered version that was
  rejected is validated and reported again the same way.
- **Lower**: ignored, with a log line. Versions only rise.

An empty retained message (the command server cleared the topic) changes nothing.

The file ``applied-config.json`` contains the applied ``NodeConfig`` as received. It is written to
a temporary file, fsynced and renamed over the old one, then the folder is fsynced, so a power
loss leaves either the old or the new file.
"""

import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from contract import ConfigReport, ConfigResult, ContractError, NodeConfig, parse_payload

from .node_settings import NodeSettings, SettingsError, parse_node_settings

logger = logging.getLogger(__name__)

MAX_ERROR_CHARS = 2_000
"""Maximum length of the error text in a ``ConfigReport``, fixed by the contract."""

ApplySettings = Callable[[NodeSettings], Awaitable[None]]
"""Apply node settings to the running agent, or raise ``ApplyError`` to reject them."""


class ApplyError(RuntimeError):
    """Raised by an ``ApplySettings`` callable when valid settings cannot take effect."""


@dataclass(frozen=True, slots=True)
class AppliedConfig:
    """The remote configuration in force and its parsed settings."""

    config: NodeConfig
    settings: NodeSettings


def load_applied_config(path: Path, default_timezone: str | None = None) -> AppliedConfig | None:
    """Read the configuration applied before the last stop, or return None when there is none.

    A file that is unreadable or no longer valid (for example after an upgrade removed an
    adapter type) is logged and ignored, so the agent starts with its file's settings.
    """
    try:
        payload = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.error("applied configuration %s cannot be read (%s); using the settings of the agent's file", path, exc)
        return None

    try:
        config = parse_payload("config", payload).model
        settings = parse_node_settings(config.settings, default_timezone)
    except (ContractError, SettingsError) as exc:
        logger.error("applied configuration %s is invalid (%s); using the settings of the agent's file", path, exc)
        return None
    return AppliedConfig(config, settings)


def save_applied_config(path: Path, config: NodeConfig) -> None:
    """Write ``config`` to ``path`` atomically: temporary file, fsync, rename, fsync of the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    data = config.model_dump_json().encode()

    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)

    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


class RemoteConfig:
    """Handler of the node's ``config`` messages, which builds the ``config/reported`` reports."""

    def __init__(
        self,
        path: Path,
        apply: ApplySettings,
        applied: AppliedConfig | None,
        default_timezone: str | None = None,
    ) -> None:
        self.path = path
        self._apply = apply
        self._default_timezone = default_timezone
        self.version: int | None = applied.config.version if applied else None
        """Version of the remote configuration in force, or None while the agent's file settings run."""

    async def handle(self, payload: bytes) -> bytes | None:
        """Act on one ``config`` message and return the ``ConfigReport`` JSON to publish, or None."""
        if not payload:
            logger.info("the retained configuration was cleared; the configuration in force stays")
            return None

        try:
            config = parse_payload("config", payload).model
        except ContractError as exc:
            version = _raw_version(payload)
            logger.error("configuration message rejected (%s): %s", exc.reason, exc)
            if version is None:
                return None
            return _report(version, ConfigResult.REJECTED, f"invalid configuration message: {exc}")

        if self.version is not None and config.version < self.version:
            logger.warning(
                "configuration version %d ignored: version %d is in force and versions only rise",
                config.version,
                self.version,
            )
            return None
        if config.version == self.version:
            logger.info("configuration version %d is already in force; reporting it again", config.version)
            return _report(config.version, ConfigResult.APPLIED)

        return await self._apply_new(config)

    async def _apply_new(self, config: NodeConfig) -> bytes:
        try:
            settings = parse_node_settings(config.settings, self._default_timezone)
        except SettingsError as exc:
            return self._reject(config, f"invalid settings: {exc}")

        try:
            await self._apply(settings)
        except ApplyError as exc:
            return self._reject(config, str(exc))

        try:
            save_applied_config(self.path, config)
        except OSError as exc:
            # The settings run, but a restart would fall back to the older ones.
            logger.error("configuration version %d applied but not saved to %s: %s", config.version, self.path, exc)

        self.version = config.version
        logger.info(
            "configuration version %d applied (issued_ts %d): %d adapters",
            config.version,
            config.issued_ts,
            len(settings.adapters),
        )
        return _report(config.version, ConfigResult.APPLIED)

    def _reject(self, config: NodeConfig, error: str) -> bytes:
        logger.error(
            "configuration version %d rejected; version %s stays in force: %s",
            config.version,
            self.version if self.version is not None else "from the agent's file",
            error,
        )
        return _report(config.version, ConfigResult.REJECTED, error)


def _report(version: int, result: ConfigResult, error: str | None = None) -> bytes:
    if error is not None and len(error) > MAX_ERROR_CHARS:
        error = error[: MAX_ERROR_CHARS - 3] + "..."
    report = ConfigReport(version=version, ts=time.time_ns() // 1_000_000, result=result, error=error)
    return report.model_dump_json(exclude_none=True).encode()


def _raw_version(payload: bytes) -> int | None:
    """Return the ``version`` of an invalid config message when it has a usable one."""
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        return None
    version = data.get("version") if isinstance(data, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version >= 1:
        return version
    return None
