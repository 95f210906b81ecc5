"""A batch: the lines to write, where they came from, and the packet ids to acknowledge."""

import time
from dataclasses import dataclass, field

from .dead_letters import DeadLetter


@dataclass(slots=True)
class Batch:
    """Messages received on one broker connection, stored and acknowledged together.

    ``sources[i]`` is the ``(topic, payload, received_ms)`` of ``lines[i]``, so a point that
    InfluxDB refuses can be kept as a dead letter with its original message.
    """

    connection: int
    opened: float = field(default_factory=time.monotonic)
    lines: list[str] = field(default_factory=list)
    sources: list[tuple[str, bytes, int]] = field(default_factory=list)
    packet_ids: list[int] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def is_empty(self) -> bool:
        """True when the batch has nothing to write, store or acknowledge."""
        return not (self.packet_ids or self.lines or self.dead_letters)
