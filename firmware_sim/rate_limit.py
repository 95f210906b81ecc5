"""Token bucket that paces the publishing loop to a number of messages per second."""

import time
from collections.abc import Callable

_BURST_S = 0.02
"""Tokens saved up while idle, in seconds of the rate: a short burst after a pause."""

_MIN_SLEEP_S = 0.001
"""Shortest sleep; shorter ones cost more in system calls than they gain in smoothness."""


class TokenBucket:
    """Allow at most ``rate_per_s`` acquisitions per second on average.

    ``acquire`` sleeps until a token is available. The bucket stores at most 20 ms worth of
    tokens (at least one), so a stall is not followed by a long burst.
    """

    def __init__(
        self,
        rate_per_s: float,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_per_s <= 0:
            raise ValueError(f"rate {rate_per_s} msg/s is invalid: use a positive number")

        self.rate_per_s = rate_per_s
        self.capacity = max(1.0, rate_per_s * _BURST_S)
        self._monotonic = monotonic
        self._sleep = sleep
        self._tokens = 1.0
        self._updated = monotonic()

    def acquire(self) -> None:
        """Take one token, sleeping until one is available."""
        while True:
            now = self._monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate_per_s)
            self._updated = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return

            self._sleep(max((1.0 - self._tokens) / self.rate_per_s, _MIN_SLEEP_S))
