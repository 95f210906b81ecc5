"""Self-metrics of the ingest service, rendered in the Prometheus text format.

Counters are plain integers in dictionaries, incremented on the hot path without locks (the
service runs on one event loop) and rendered only when ``/metrics`` is scraped.

Names and meaning:

* ``smartoffice_ingest_messages_received_total{stream}``: MQTT messages taken from the broker.
* ``smartoffice_ingest_messages_rejected_total{reason}``: messages that failed validation.
* ``smartoffice_ingest_fields_dropped_total{reason}``: invalid fields dropped from valid messages.
* ``smartoffice_ingest_messages_skipped_total{reason}``: valid messages deliberately not stored.
* ``smartoffice_ingest_points_written_total``: points InfluxDB stored.
* ``smartoffice_ingest_points_rejected_total``: points InfluxDB refused.
* ``smartoffice_ingest_write_requests_total`` / ``..._write_retries_total``: ``/write`` calls
  and batch retries after InfluxDB was unavailable.
* ``smartoffice_ingest_receive_pauses_total``: times reading paused for backpressure.
* ``smartoffice_ingest_batches_discarded_total``: unwritten batches dropped because their broker
  connection ended; the broker sends their messages again.
* ``smartoffice_ingest_dead_letters_total{reason}``: entries added to the dead-letter store.
* ``smartoffice_ingest_dead_letters_evicted_total``: oldest entries deleted to keep its bound.
* ``smartoffice_ingest_clock_restamped_total``: readings stored at the receive time because
  their ``ts`` was too far ahead.
* ``smartoffice_ingest_write_duration_seconds``: histogram of the time to store one batch.
* ``smartoffice_ingest_batches_queued``: batches waiting for the writer.
* ``smartoffice_ingest_unacknowledged_messages``: messages read but not yet stored; the rest of
  the backlog waits in the broker's session queue, which is the on-disk spool.
* ``smartoffice_ingest_broker_connected``: 1 while connected to the broker.
"""

import asyncio
import logging
from collections import defaultdict

logger = logging.getLogger(__name__)

PREFIX = "smartoffice_ingest_"
WRITE_DURATION_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class IngestMetrics:
    """Counters and gauges of one ingest process."""

    def __init__(self) -> None:
        self.messages_received: dict[str, int] = defaultdict(int)
        self.messages_rejected: dict[str, int] = defaultdict(int)
        self.fields_dropped: dict[str, int] = defaultdict(int)
        self.messages_skipped: dict[str, int] = defaultdict(int)
        self.points_written = 0
        self.points_rejected = 0
        self.write_requests = 0
        self.write_retries = 0
        self.write_duration_buckets = [0] * len(WRITE_DURATION_BUCKETS_S)
        self.write_duration_sum_s = 0.0
        self.write_duration_count = 0
        self.batches_queued = 0
        self.broker_connected = 0
        self.receive_pauses = 0
        self.batches_discarded = 0
        self.unacknowledged = 0
        self.dead_letters: dict[str, int] = defaultdict(int)
        self.dead_letters_evicted = 0
        self.clock_restamped = 0

    def observe_write_duration(self, seconds: float) -> None:
        """Add one batch's write time to the histogram."""
        self.write_duration_sum_s += seconds
        self.write_duration_count += 1
        for index, bound in enumerate(WRITE_DURATION_BUCKETS_S):
            if seconds <= bound:
                self.write_duration_buckets[index] += 1

    def render(self) -> str:
        """Return every metric in the Prometheus text exposition format 0.0.4."""
        lines: list[str] = []
        _labelled(lines, "messages_received_total", "counter", "stream", self.messages_received)
        _labelled(lines, "messages_rejected_total", "counter", "reason", self.messages_rejected)
        _labelled(lines, "fields_dropped_total", "counter", "reason", self.fields_dropped)
        _labelled(lines, "messages_skipped_total", "counter", "reason", self.messages_skipped)
        _single(lines, "points_written_total", "counter", self.points_written)
        _single(lines, "points_rejected_total", "counter", self.points_rejected)
        _single(lines, "write_requests_total", "counter", self.write_requests)
        _single(lines, "write_retries_total", "counter", self.write_retries)
        _single(lines, "receive_pauses_total", "counter", self.receive_pauses)
        _single(lines, "batches_discarded_total", "counter", self.batches_discarded)
        _labelled(lines, "dead_letters_total", "counter", "reason", self.dead_letters)
        _single(lines, "dead_letters_evicted_total", "counter", self.dead_letters_evicted)
        _single(lines, "clock_restamped_total", "counter", self.clock_restamped)

        name = PREFIX + "write_duration_seconds"
        lines.append(f"# TYPE {name} histogram")
        for bound, count in zip(WRITE_DURATION_BUCKETS_S, self.write_duration_buckets):
            lines.append(f'{name}_bucket{{le="{bound}"}} {count}')
        lines.append(f'{name}_bucket{{le="+Inf"}} {self.write_duration_count}')
        lines.append(f"{name}_sum {self.write_duration_sum_s:.6f}")
        lines.append(f"{name}_count {self.write_duration_count}")

        _single(lines, "batches_queued", "gauge", self.batches_queued)
        _single(lines, "unacknowledged_messages", "gauge", self.unacknowledged)
        _single(lines, "broker_connected", "gauge", self.broker_connected)
        return "\n".join(lines) + "\n"


def _single(lines: list[str], name: str, kind: str, value: int | float) -> None:
    lines.append(f"# TYPE {PREFIX}{name} {kind}")
    lines.append(f"{PREFIX}{name} {value}")


def _labelled(lines: list[str], name: str, kind: str, label: str, values: dict[str, int]) -> None:
    lines.append(f"# TYPE {PREFIX}{name} {kind}")
    for key in sorted(values):
        lines.append(f'{PREFIX}{name}{{{label}="{key}"}} {values[key]}')


async def serve_metrics(metrics: IngestMetrics, host: str, port: int) -> asyncio.Server:
    """Serve ``GET /metrics`` on ``host:port`` with a minimal HTTP/1.0 responder."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), timeout=5.0)
            while (await asyncio.wait_for(reader.readline(), timeout=5.0)) not in (b"\r\n", b"\n", b""):
                pass
            if request_line.split(b" ")[1:2] == [b"/metrics"]:
                body = metrics.render().encode()
                status = b"200 OK"
            else:
                body = b"not found: the only path is /metrics\n"
                status = b"404 Not Found"
            writer.write(
                b"HTTP/1.0 " + status + b"\r\nContent-Type: text/plain; version=0.0.4\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError) as exc:
            logger.debug("metrics request failed: %s", exc)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port)
    logger.info("metrics on http://%s:%d/metrics", host, port)
    return server
