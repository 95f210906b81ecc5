"""Each example of docs/protocol.md, sent with its own ``mosquitto_pub`` command, shows up in the API.

The documented command targets the local platform's port; the test runs it against the
test broker by changing only ``-p``, the port. Stored streams must come back through the API,
and ``config`` and ``config/reported`` must pass the broker without being stored.
"""

import json
import subprocess
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from conftest import pseudonym_of, wait_until
from contract import parse_topic
from test_protocol_docs import read_examples

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def clear_retained(pipeline):
    """Clear the retained messages the examples leave on the shared test broker."""
    yield
    for example in read_examples():
        if "-r" in example.command:
            topic = example.command[example.command.index("-t") + 1]
            subprocess.run(
                ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(pipeline.mosquitto.port), "-r", "-n", "-t", topic],
                check=True,
                timeout=10,
            )


def run_documented_command(pipeline, command: tuple[str, ...]) -> None:
    arguments = list(command)
    arguments[arguments.index("-p") + 1] = str(pipeline.mosquitto.port)
    subprocess.run(arguments, check=True, timeout=10)


@pytest.mark.parametrize("example", read_examples(), ids=[example.stream for example in read_examples()])
def test_documented_example_reaches_the_api(pipeline, example):
    topic = example.command[example.command.index("-t") + 1]
    opd = parse_topic(topic).opd
    run_documented_command(pipeline, example.command)
    payload = json.loads(example.payload)

    if example.stream in ("config", "config/reported"):
        # Not time series: the command server handles these streams, the ingest does not store them.
        assert pipeline.ingest.running()
        return

    if example.stream == "attendance":

        def punches():
            answer = pipeline.get(f"/api/v1/opds/{opd}/attendance", date=_local_date(payload["ts"])).json()
            return [event["employee_id"] for event in answer["events"]]

        assert wait_until(lambda: pseudonym_of(opd, payload["employee_id"]) in punches())
        return

    def latest():
        answer = pipeline.get(f"/api/v1/opds/{opd}/latest", stream=example.stream).json()
        return answer.get("readings", [])

    assert wait_until(lambda: latest())
    reading = latest()[0]
    if example.stream == "status":
        assert reading["values"]["state"] == payload["state"]
    else:
        numeric = {key: value for key, value in payload.items() if key.endswith(("_c", "_pct", "_ppm", "_w", "_v", "_a", "_total", "_hz"))}
        for key, value in numeric.items():
            assert reading["values"][key] == value


def _local_date(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=ZoneInfo("Asia/Jakarta")).date().isoformat()
