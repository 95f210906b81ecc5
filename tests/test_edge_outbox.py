"""The edge agent's durable queue and its send order, on real SQLite files.

The forwarder tests replace the MQTT client with a fake whose PUBACKs the test controls,
because they check the order logic only. The agent tests cover the real broker.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap

import aiomqtt
import pytest

from edge.forwarder import Forwarder, TokenBucket
from edge.outbox import Outbox, OutboxError, OutboxLimits

from edge_helpers import REPO_ROOT


def payload(device: str, seq: int, size: int = 0) -> bytes:
    text = f'{{"device":"{device}","ts":1796084921512,"room":"r","seq":{seq},"temperature_c":21.0}}'
    return (text + " " * max(0, size - len(text))).encode()


async def open_outbox(tmp_path, **limits) -> Outbox:
    outbox = Outbox(tmp_path / "outbox.sqlite3", OutboxLimits(**limits))
    await outbox.open()
    return outbox


async def fill(outbox: Outbox, device: str, seqs, size: int = 0) -> None:
    for seq in seqs:
        await outbox.append("room", device, payload(device, seq, size))


async def test_outbox_rows_survive_close_and_reopen(tmp_path):
    outbox = await open_outbox(tmp_path)
    await fill(outbox, "sensor-a", range(10))
    await outbox.close()

    reopened = await open_outbox(tmp_path)
    rows = await reopened.fetch_after(0, 100)
    await reopened.close()

    assert [row.payload for row in rows] == [payload("sensor-a", seq) for seq in range(10)]
    assert [row.stream for row in rows] == ["room"] * 10
    assert reopened.rows == 10


async def test_outbox_ids_rise_and_are_never_reused(tmp_path):
    outbox = await open_outbox(tmp_path)
    await fill(outbox, "sensor-a", range(3))
    newest = (await outbox.fetch_after(0, 10))[-1]
    await outbox.delete([newest.id])
    await fill(outbox, "sensor-a", [3])
    rows = await outbox.fetch_after(0, 10)
    await outbox.close()

    ids = [row.id for row in rows]
    assert ids == sorted(ids)
    assert ids[-1] > newest.id


async def test_outbox_drops_oldest_beyond_max_rows(tmp_path):
    outbox = await open_outbox(tmp_path, max_rows=5)
    await fill(outbox, "sensor-a", range(8))
    rows = await outbox.fetch_after(0, 100)
    await outbox.close()

    assert [row.payload for row in rows] == [payload("sensor-a", seq) for seq in range(3, 8)]
    assert outbox.dropped["max_rows"] == 3
    assert outbox.dropped_total == 3


async def test_outbox_drop_counter_persists(tmp_path):
    outbox = await open_outbox(tmp_path, max_rows=5)
    await fill(outbox, "sensor-a", range(8))
    await outbox.close()

    reopened = await open_outbox(tmp_path, max_rows=5)
    await fill(reopened, "sensor-a", range(8, 10))
    await reopened.close()

    assert reopened.dropped["max_rows"] == 5
    assert reopened.rows == 5


async def test_outbox_drops_oldest_beyond_max_bytes(tmp_path):
    outbox = await open_outbox(tmp_path, max_bytes=450)
    await fill(outbox, "sensor-a", range(6), size=100)
    rows = await outbox.fetch_after(0, 100)
    await outbox.close()

    assert [row.payload for row in rows] == [payload("sensor-a", seq, 100) for seq in range(2, 6)]
    assert outbox.bytes == 400
    assert outbox.dropped["max_bytes"] == 2


async def test_outbox_drops_rows_older_than_max_age(tmp_path):
    now = [1_796_084_921.0]
    outbox = Outbox(tmp_path / "outbox.sqlite3", OutboxLimits(max_age_s=3600), clock=lambda: now[0])
    await outbox.open()
    await fill(outbox, "sensor-a", range(3))
    now[0] += 1800
    await fill(outbox, "sensor-a", range(3, 5))
    now[0] += 2000

    dropped = await outbox.drop_expired()
    rows = await outbox.fetch_after(0, 100)
    await outbox.close()

    assert dropped == 3
    assert [row.payload for row in rows] == [payload("sensor-a", seq) for seq in (3, 4)]
    assert outbox.dropped["max_age"] == 3


async def test_outbox_counts_rows_by_device(tmp_path):
    outbox = await open_outbox(tmp_path)
    await fill(outbox, "sensor-a", range(3))
    await fill(outbox, "sensor-b", range(2))
    last = await outbox.last_id()
    await fill(outbox, "sensor-a", range(3, 5))

    counts = await outbox.rows_by_device(last)
    device_rows = await outbox.fetch_device("sensor-a", 0, last, 100)
    await outbox.close()

    assert counts == {"sensor-a": 3, "sensor-b": 2}
    assert [row.payload for row in device_rows] == [payload("sensor-a", seq) for seq in range(3)]


async def test_outbox_second_opener_is_rejected(tmp_path):
    outbox = await open_outbox(tmp_path)
    second = Outbox(tmp_path / "outbox.sqlite3")
    with pytest.raises(OutboxError, match="in use by another process"):
        await second.open()
    await outbox.close()


async def test_outbox_groups_concurrent_appends(tmp_path):
    outbox = await open_outbox(tmp_path)
    await asyncio.gather(*(outbox.append("room", "sensor-a", payload("sensor-a", seq)) for seq in range(200)))
    rows = await outbox.fetch_after(0, 1000)
    await outbox.close()

    assert [row.payload for row in rows] == [payload("sensor-a", seq) for seq in range(200)]


def test_outbox_append_survives_sigkill(tmp_path):
    """Every row whose append returned is there after the process was killed."""
    child = textwrap.dedent(
        f"""
        import asyncio, sys
        from pathlib import Path
        from edge.outbox import Outbox

        async def main():
            outbox = Outbox(Path({str(tmp_path / "outbox.sqlite3")!r}))
            await outbox.open()
            seq = 0
            while True:
                await outbox.append("room", "sensor-a", b'{{"seq":%d}}' % seq)
                seq += 1
                print(seq, flush=True)

        asyncio.run(main())
        """
    )
    process = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, cwd=REPO_ROOT, text=True)
    appended = 0
    for line in process.stdout:
        appended = int(line)
        if appended >= 50:
            break
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    async def count() -> int:
        outbox = await open_outbox(tmp_path)
        rows = await outbox.fetch_after(0, 100_000)
        await outbox.close()
        return len(rows)

    assert asyncio.run(count()) >= appended


class FakeClient:
    """Stands in for ``aiomqtt.Client``: records publishes and acknowledges them at once or when released."""

    def __init__(self) -> None:
        self.published: list[bytes] = []
        self.held: dict[bytes, asyncio.Event] = {}
        self.fail_on: set[bytes] = set()

    async def publish(self, topic, payload, qos=0, retain=False, timeout=None):
        self.published.append(payload)
        if payload in self.fail_on:
            raise aiomqtt.MqttError("connection lost")
        if payload in self.held:
            await self.held[payload].wait()


def devices_in_order(published: list[bytes]) -> list[str]:
    return [json.loads(item)["device"] for item in published]


async def run_until(forwarder: Forwarder, client, condition, timeout_s: float = 10.0):
    task = asyncio.create_task(forwarder.run(client))
    try:
        async with asyncio.timeout(timeout_s):
            while not condition():
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def forwarder_for(outbox: Outbox, rate: float = 10_000.0, window: int = 100) -> Forwarder:
    return Forwarder(outbox, lambda stream: f"t/{stream}", window, publish_timeout_s=5, backlog_rate_per_s=rate)


async def test_forwarder_sends_smallest_backlog_first_in_device_order(tmp_path):
    outbox = await open_outbox(tmp_path)
    for seq in range(6):
        await fill(outbox, "sensor-a", [seq])
        if seq < 4:
            await fill(outbox, "sensor-c", [seq])
        if seq < 2:
            await fill(outbox, "sensor-b", [seq])
    client = FakeClient()
    forwarder = forwarder_for(outbox)

    await run_until(forwarder, client, lambda: outbox.rows == 0)
    await outbox.close()

    assert devices_in_order(client.published) == ["sensor-b"] * 2 + ["sensor-c"] * 4 + ["sensor-a"] * 6
    assert client.published[:2] == [payload("sensor-b", 0), payload("sensor-b", 1)]


async def test_forwarder_live_rows_pass_a_slow_backlog(tmp_path):
    outbox = await open_outbox(tmp_path)
    await fill(outbox, "sensor-a", range(10))
    client = FakeClient()
    forwarder = forwarder_for(outbox, rate=5.0)

    task = asyncio.create_task(forwarder.run(client))
    await asyncio.sleep(0.3)
    await fill(outbox, "sensor-live", [0])
    await fill(outbox, "sensor-a", [10])
    async with asyncio.timeout(10):
        while outbox.rows:
            await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await outbox.close()

    order = client.published
    assert order.index(payload("sensor-live", 0)) < order.index(payload("sensor-a", 9))
    assert order.index(payload("sensor-a", 10)) > order.index(payload("sensor-a", 9))
    assert [item for item in order if b"sensor-a" in item] == [payload("sensor-a", seq) for seq in range(11)]


async def test_forwarder_deletes_acknowledged_rows_in_send_order(tmp_path):
    outbox = await open_outbox(tmp_path)
    await fill(outbox, "sensor-a", range(3))
    client = FakeClient()
    first = payload("sensor-a", 0)
    client.held[first] = asyncio.Event()
    forwarder = forwarder_for(outbox)

    task = asyncio.create_task(forwarder.run(client))
    async with asyncio.timeout(5):
        while len(client.published) < 3 or forwarder.acknowledged_total < 2:
            await asyncio.sleep(0.01)
    await forwarder.flush_deletes()
    rows_while_first_pending = outbox.rows

    client.held[first].set()
    async with asyncio.timeout(5):
        while outbox.rows:
            await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await outbox.close()

    assert rows_while_first_pending == 3
    assert outbox.rows == 0


async def test_forwarder_resends_unacknowledged_rows_after_failure(tmp_path):
    outbox = await open_outbox(tmp_path)
    await fill(outbox, "sensor-a", range(4))
    client = FakeClient()
    client.fail_on.add(payload("sensor-a", 2))
    forwarder = forwarder_for(outbox, window=1)

    with pytest.raises(aiomqtt.MqttError):
        await run_until(forwarder, client, lambda: False)
    rows_after_failure = [row.payload for row in await outbox.fetch_after(0, 10)]

    client.fail_on.clear()
    await run_until(forwarder, client, lambda: outbox.rows == 0)
    await outbox.close()

    assert rows_after_failure == [payload("sensor-a", seq) for seq in (2, 3)]
    assert client.published[2:] == [payload("sensor-a", seq) for seq in (2, 2, 3)]


def test_token_bucket_limits_rate():
    now = [0.0]
    bucket = TokenBucket(10.0, burst_s=0.5, clock=lambda: now[0])
    assert bucket.available() == 5
    bucket.take(5)
    assert bucket.available() == 0
    now[0] += 0.25
    assert bucket.available() == 2
    assert bucket.wait_s() == pytest.approx(0.0)
    bucket.take(2)
    assert bucket.wait_s() == pytest.approx(0.05)
