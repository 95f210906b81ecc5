"""One child process with its log file, readiness check and orderly stop."""

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)


class ProcessError(RuntimeError):
    """Raised when a child process is missing, exits early or never becomes ready."""


class ManagedProcess:
    """A child process whose output goes to ``log_path``.

    The process is started in its own process group, so that stopping it also stops anything
    it started, and nothing else.
    """

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self._popen: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        """PID of the running process, or None."""
        return self._popen.pid if self._popen else None

    def running(self) -> bool:
        """Return True while the process has not exited."""
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> None:
        """Start the process; its standard output and error are appended to the log file."""
        if self.running():
            return

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        environment = dict(os.environ if self.env is None else self.env)
        with open(self.log_path, "ab") as log_file:
            try:
                self._popen = subprocess.Popen(
                    self.command,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=environment,
                    cwd=self.cwd,
                    start_new_session=True,
                )
            except FileNotFoundError:
                raise ProcessError(
                    f"{self.name}: command {self.command[0]!r} not found; run scripts/setup.sh to install it"
                ) from None
        logger.info("started %s (pid %d), log %s", self.name, self._popen.pid, self.log_path)

    def wait_ready(self, is_ready: Callable[[], bool], timeout_s: float = 30.0) -> None:
        """Poll ``is_ready`` until it returns True.

        Raises:
            ProcessError: the process exited, or ``timeout_s`` passed; the message ends with
                the last lines of the log.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running():
                raise ProcessError(f"{self.name} exited with code {self._popen.returncode}:\n{self.log_tail()}")
            if is_ready():
                return
            time.sleep(0.05)
        raise ProcessError(f"{self.name} was not ready after {timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Send SIGTERM to the process group, then SIGKILL after ``timeout_s``."""
        if not self.running():
            return

        self._signal_group(signal.SIGTERM)
        try:
            self._popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop within %.0f s, killing it", self.name, timeout_s)
            self._signal_group(signal.SIGKILL)
            self._popen.wait()
        code = self._popen.returncode
        if code == -signal.SIGTERM:
            logger.info("stopped %s (ended by SIGTERM)", self.name)
        else:
            logger.info("stopped %s (exit code %s)", self.name, code)

    def kill(self) -> None:
        """Send SIGKILL to the process group at once, as a crash or power loss would."""
        if not self.running():
            return

        self._signal_group(signal.SIGKILL)
        self._popen.wait()
        logger.info("killed %s", self.name)

    def log_tail(self, lines: int = 30) -> str:
        """Return the last ``lines`` lines of the log file."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _signal_group(self, signum: int) -> None:
        try:
            os.killpg(self._popen.pid, signum)
        except ProcessLookupError:
            pass
