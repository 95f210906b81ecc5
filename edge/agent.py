"""The edge agent of one office: adapters, contract check, durable queue, uplink and heartbeat.

Data path: an adapter emits a reading, and its ``ReadingGate`` checks it against the
contract and appends it to the ``Outbox``, committed to SQLite before ``emit`` returns. The
``Forwarder`` publishes it at QoS 1 to ``smartoffice/v1/<opd>/<node>/<stream>`` and deletes
it after the broker's PUBACK. The ``Uplink`` keeps the broker connection, publishes the
retained status and passes ``config`` messages to ``RemoteConfig``. The ``Heartbeat``
publishes the status and logs the counters every ``heartbeat_s``.
"""

import asyncio
import logging
import time

from contract import build_topic

from .adapters.base import Emit
from .config import EdgeConfig
from .forwarder import Forwarder
from .heartbeat import Heartbeat, merge_last_seen, online_status
from .node_settings import NodeSettings
from .outbox import Outbox, OutboxError, OutboxLimits
from .readings import ReadingGate
from .remote_config import AppliedConfig, ApplyError, RemoteConfig, load_applied_config
from .supervisor import AdapterStartError, AdapterSupervisor
from .uplink import Uplink

logger = logging.getLogger(__name__)

EXPIRY_INTERVAL_S = 60.0
"""Interval of the check that drops queued readings older than ``queue.max_age_days``, s."""
SHUTDOWN_TIMEOUT_S = 15.0
"""Time the uplink gets at a stop to publish the offline status and disconnect, s."""


class EdgeAgent:
    """The agent of one office, which runs from ``run()`` until ``stop()``."""

    def __init__(self, config: EdgeConfig, file_settings: NodeSettings, password: str | None) -> None:
        self.config = config
        self.file_settings = file_settings
        self.settings = file_settings
        """Node settings in force."""

        limits = OutboxLimits(
            max_rows=config.queue.max_rows,
            max_bytes=config.queue.max_bytes,
            max_age_s=config.queue.max_age_days * 86_400,
        )
        self.outbox = Outbox(config.queue_path, limits, config.queue.synchronous)
        self.gates: dict[str, ReadingGate] = {}
        self.supervisor = AdapterSupervisor(self._emit_for)
        self.forwarder = Forwarder(
            self.outbox,
            lambda stream: build_topic(config.opd, config.node, stream),
            max_inflight=config.broker.max_inflight_messages,
            publish_timeout_s=config.broker.publish_timeout_s,
            backlog_rate_per_s=file_settings.backlog_rate_per_s,
        )
        self.remote_config: RemoteConfig | None = None
        self.uplink = Uplink(config, password, self.forwarder, self._handle_config, self.status_payload)
        self.heartbeat = Heartbeat(lambda: self.settings.heartbeat_s, self._beat)
        self._stopping = asyncio.Event()
        self._started = time.monotonic()

    def stop(self) -> None:
        """Ask ``run()`` to stop the adapters, say offline, disconnect and close the queue."""
        self._stopping.set()

    async def run(self) -> int:
        """Run until ``stop()`` and return the process exit code: 0 after a stop, 1 after a fault.

        A fault is a queue that cannot be opened or an internal task that ended by itself.
        """
        broker = self.config.broker
        logger.info(
            "edge agent starting: opd %s, node %s, broker %s:%d%s, queue %s, time zone %s",
            self.config.opd,
            self.config.node,
            broker.host,
            broker.port,
            " over TLS" if broker.tls else "",
            self.config.queue_path,
            self.config.timezone,
        )
        try:
            await self.outbox.open()
        except OutboxError as exc:
            logger.error("edge agent cannot start: %s", exc)
            return 1
        applied = load_applied_config(self.config.applied_config_path, self.config.timezone)
        self.remote_config = RemoteConfig(
            self.config.applied_config_path, self._apply_settings, applied, self.config.timezone
        )
        await self._start_adapters(applied)

        tasks = {
            asyncio.create_task(self.uplink.run(), name="uplink"),
            asyncio.create_task(self.heartbeat.run(), name="heartbeat"),
            asyncio.create_task(self._expire_loop(), name="queue-expiry"),
        }
        stop = asyncio.create_task(self._stopping.wait(), name="stop")
        done, _ = await asyncio.wait(tasks | {stop}, return_when=asyncio.FIRST_COMPLETED)

        exit_code = 0
        for task in done - {stop}:
            exit_code = 1
            error = task.exception() if not task.cancelled() else None
            logger.error("task %s ended unexpectedly (%r); stopping the agent", task.get_name(), error)

        await self._shut_down(tasks)
        return exit_code

    def status_payload(self) -> bytes:
        """Build the retained online status from the current counters."""
        return online_status(
            uptime_s=time.monotonic() - self._started,
            queue_depth=self.outbox.rows,
            dropped_total=self.outbox.dropped_total,
            config_version=self.remote_config.version if self.remote_config else None,
            device_last_seen=merge_last_seen(self.supervisor.stats.values()),
        )

    async def _start_adapters(self, applied: AppliedConfig | None) -> None:
        """Start the saved remote configuration, else the file's settings, else no adapter."""
        candidates = []
        if applied is not None:
            candidates.append((f"saved configuration version {applied.config.version}", applied))
        candidates.append(("settings of the agent's file", None))

        for label, candidate in candidates:
            settings = candidate.settings if candidate else self.file_settings
            try:
                await self._apply_settings(settings)
            except ApplyError as exc:
                logger.error("the %s cannot be started: %s", label, exc)
                continue
            self.remote_config.version = candidate.config.version if candidate else None
            logger.info("running the %s: %d adapters", label, len(settings.adapters))
            return

        self.remote_config.version = None
        logger.error("no adapter runs; the queue is still sent, and a remote configuration can fix the adapters")

    async def _apply_settings(self, settings: NodeSettings) -> None:
        """Make ``settings`` the node settings in force.

        Raises:
            ApplyError: an adapter cannot be created. The adapters in force keep running.
        """
        try:
            await self.supervisor.apply(settings.adapters)
        except AdapterStartError as exc:
            raise ApplyError(str(exc)) from exc

        self.settings = settings
        configured = {adapter.id for adapter in settings.adapters}
        self.gates = {adapter_id: gate for adapter_id, gate in self.gates.items() if adapter_id in configured}
        self.forwarder.set_backlog_rate(settings.backlog_rate_per_s)
        self.heartbeat.wake()

    async def _handle_config(self, payload: bytes) -> bytes | None:
        return await self.remote_config.handle(payload)

    def _emit_for(self, adapter_id: str) -> Emit:
        gate = self.gates.get(adapter_id)
        if gate is None:
            gate = ReadingGate(adapter_id, self.outbox.append)
            self.gates[adapter_id] = gate
        return gate.emit

    async def _beat(self) -> None:
        published = await self.uplink.publish_status()
        logger.info(
            "status: %s, queue %d readings (%d bytes), %d in flight, backlog of %d devices, %d dropped since "
            "install, config version %s; %s",
            "published" if published else "not connected",
            self.outbox.rows,
            self.outbox.bytes,
            self.forwarder.in_flight,
            self.forwarder.backlog_devices,
            self.outbox.dropped_total,
            self.remote_config.version if self.remote_config else None,
            self._adapter_counters() or "no adapters",
        )

    def _adapter_counters(self) -> str:
        parts = []
        for adapter_id, settings in sorted(self.supervisor.running_settings.items()):
            stats = self.supervisor.stats.get(adapter_id)
            gate = self.gates.get(adapter_id)
            if stats is None:
                continue
            text = (
                f"adapter {adapter_id} ({settings.type}): readings {stats.readings}, "
                f"adapter errors {dict(stats.errors)}, adapter fields dropped {stats.fields_dropped}"
            )
            if gate is not None:
                counters = gate.counters
                text += (
                    f", queued {counters.queued}, rejected {dict(counters.rejected)}, "
                    f"contract fields dropped {counters.fields_dropped}"
                )
            parts.append(text)
        return "; ".join(parts)

    async def _expire_loop(self) -> None:
        while True:
            await asyncio.sleep(EXPIRY_INTERVAL_S)
            await self.outbox.drop_expired()

    async def _shut_down(self, tasks: set[asyncio.Task]) -> None:
        logger.info("edge agent stopping")
        await self.supervisor.stop_all()

        self.uplink.stop()
        uplink_task = next(task for task in tasks if task.get_name() == "uplink")
        done, _ = await asyncio.wait({uplink_task}, timeout=SHUTDOWN_TIMEOUT_S)
        if not done:
            logger.warning("the uplink did not stop within %.0f s; the broker sends the last will", SHUTDOWN_TIMEOUT_S)

        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

        await self.forwarder.flush_deletes()
        await self.outbox.close()
        logger.info("edge agent stopped")
