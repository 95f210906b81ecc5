"""Running the configured adapters: start, stop, restart after a failure, and apply a new set.

Each enabled adapter runs in a task of its own. An adapter whose ``run()`` raises or returns is
logged and started again as a new instance, after a pause that doubles from 1 s up to 60 s
and resets once an instance ran for a minute. A new adapter list is applied by id: adapters
whose settings are unchanged keep running, and changed, removed or disabled ones are stopped
before the new ones start.

Exceptions::

    RuntimeError
    └── AdapterStartError    an adapter could not be created, and nothing was changed
"""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from .adapters import adapter_class
from .adapters.base import Adapter, AdapterSettings, AdapterStats, Emit

logger = logging.getLogger(__name__)

RESTART_MIN_S = 1.0
RESTART_MAX_S = 60.0
_HEALTHY_RUN_S = 60.0
"""An instance that ran this long resets the restart pause to ``RESTART_MIN_S``, s."""
STOP_TIMEOUT_S = 10.0
"""Time an adapter gets to finish after cancellation before it is reported as stuck, s."""


class AdapterStartError(RuntimeError):
    """Raised when an adapter instance cannot be created from its settings."""


@dataclass
class _Running:
    settings: AdapterSettings
    task: asyncio.Task


class AdapterSupervisor:
    """The running adapters of the node, by adapter id."""

    def __init__(self, emit_for: Callable[[str], Emit]) -> None:
        self._emit_for = emit_for
        self._running: dict[str, _Running] = {}
        self.stats: dict[str, AdapterStats] = {}
        """Counters of each configured adapter, kept while its id and type stay the same."""

    @property
    def running_settings(self) -> dict[str, AdapterSettings]:
        """Settings of each running adapter, by id."""
        return {adapter_id: running.settings for adapter_id, running in self._running.items()}

    async def apply(self, adapters: tuple[AdapterSettings, ...]) -> None:
        """Run exactly the enabled adapters of ``adapters``.

        Every new instance is created before any running adapter is stopped, so an adapter
        that cannot be created leaves the running set unchanged.

        Raises:
            AdapterStartError: an adapter's constructor failed. The message names its id.
        """
        desired = {settings.id: settings for settings in adapters if settings.enabled}
        changed = [
            adapter_id
            for adapter_id, running in self._running.items()
            if desired.get(adapter_id) != running.settings
        ]
        to_start = [adapter_id for adapter_id in desired if adapter_id not in self._running or adapter_id in changed]

        stats = {
            adapter_id: self._stats_for(settings) for adapter_id, settings in desired.items()
        }
        created = {adapter_id: self._create(desired[adapter_id], stats[adapter_id]) for adapter_id in to_start}

        for adapter_id in changed:
            await self._stop(adapter_id)
        self.stats = stats
        for adapter_id, adapter in created.items():
            settings = desired[adapter_id]
            task = asyncio.create_task(self._run_forever(adapter), name=f"adapter-{adapter_id}")
            self._running[adapter_id] = _Running(settings, task)

        kept = len(desired) - len(to_start)
        logger.info(
            "adapters applied: %d running (%d kept, %d started, %d stopped)",
            len(self._running),
            kept,
            len(to_start),
            len(changed),
        )

    async def stop_all(self) -> None:
        """Stop every running adapter."""
        for adapter_id in list(self._running):
            await self._stop(adapter_id)

    def _stats_for(self, settings: AdapterSettings) -> AdapterStats:
        """Keep the counters of an adapter whose id and type stay, so device times survive a change."""
        running = self._running.get(settings.id)
        current = self.stats.get(settings.id)
        if current is not None and running is not None and running.settings.type == settings.type:
            return current
        return AdapterStats()

    def _create(self, settings: AdapterSettings, stats: AdapterStats) -> Adapter:
        try:
            return adapter_class(settings.type)(settings, self._emit_for(settings.id), stats)
        except Exception as exc:
            raise AdapterStartError(
                f"adapter {settings.id!r} (type {settings.type!r}) cannot be created: {type(exc).__name__}: {exc}"
            ) from exc

    async def _stop(self, adapter_id: str) -> None:
        running = self._running.pop(adapter_id)
        running.task.cancel()
        done, _ = await asyncio.wait({running.task}, timeout=STOP_TIMEOUT_S)
        if not done:
            logger.error(
                "adapter %s (type %s) did not stop within %.0f s of cancellation; it is left running",
                adapter_id,
                running.settings.type,
                STOP_TIMEOUT_S,
            )
            return
        logger.info("adapter %s (type %s) stopped", adapter_id, running.settings.type)

    async def _run_forever(self, adapter: Adapter) -> None:
        """Run ``adapter``, and a new instance of it after each failure, until cancelled."""
        settings = adapter.settings
        pause_s = RESTART_MIN_S
        while True:
            started = time.monotonic()
            logger.info("adapter %s (type %s) started", settings.id, settings.type)
            try:
                await adapter.run()
                problem = "returned from run()"
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # run() raises only for a programming error, and a restart keeps the other devices served.
                logger.exception("adapter %s (type %s) failed", settings.id, settings.type)
                problem = f"failed with {type(exc).__name__}"

            if time.monotonic() - started >= _HEALTHY_RUN_S:
                pause_s = RESTART_MIN_S
            logger.error("adapter %s (type %s) %s; restarting in %.0f s", settings.id, settings.type, problem, pause_s)
            await asyncio.sleep(pause_s)
            pause_s = min(pause_s * 2, RESTART_MAX_S)
            adapter = await self._recreate(adapter, pause_s)

    async def _recreate(self, adapter: Adapter, pause_s: float) -> Adapter:
        """Create a fresh instance with the same settings, retrying while the constructor fails."""
        while True:
            try:
                return self._create(adapter.settings, adapter.stats)
            except AdapterStartError as exc:
                logger.error("%s; retrying in %.0f s", exc, pause_s)
            await asyncio.sleep(pause_s)
            pause_s = min(pause_s * 2, RESTART_MAX_S)
