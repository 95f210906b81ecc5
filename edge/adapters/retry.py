"""Exponential backoff between reconnection attempts of the adapters."""

import random


class Backoff:
    """Delays that double from ``min_s`` up to ``max_s``, with up to 10 % random jitter.

    The jitter spreads the reconnections of many adapters that lost the same broker or
    gateway at the same moment.
    """

    def __init__(self, min_s: float, max_s: float, jitter: float = 0.1) -> None:
        if min_s <= 0 or max_s < min_s:
            raise ValueError(f"backoff range {min_s}..{max_s} s is invalid: use 0 < min <= max")

        self.min_s = min_s
        self.max_s = max_s
        self.jitter = jitter
        self.attempt = 0

    def next_delay_s(self) -> float:
        """Return the delay before the next attempt and count the attempt."""
        base = min(self.max_s, self.min_s * 2**self.attempt)
        self.attempt += 1
        return base * (1.0 + random.uniform(0.0, self.jitter))

    def reset(self) -> None:
        """Start again from ``min_s`` after a successful connection."""
        self.attempt = 0
