"""Checks of the examples in docs/protocol.md and of the JSON Schema files in contract/schema/.

Each example payload in docs/protocol.md is a ```json block right after a line
``<!-- example: STREAM -->``, and a ``mosquitto_pub`` command above it publishes the same
payload to the local platform. The tests read those blocks, validate them with the contract
and with the JSON Schema files, and check that the schema files match the payload models.
No broker or database is needed.
"""

import json
import re
import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jsonschema
import pytest

from contract import MODEL_BY_STREAM, RETAINED_STREAMS, ContractError, TopicError, parse_payload, parse_topic
from contract.schema_export import SCHEMA_DIR, render_schemas, schema_file_name
from devstack.__main__ import LocalSettings

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTOCOL_DOC = REPO_ROOT / "docs" / "protocol.md"

MARKER_PATTERN = re.compile(r"^<!-- example: (?P<stream>\S+) -->$", re.MULTILINE)
EXAMPLE_PATTERN = re.compile(
    r"^<!-- example: (?P<stream>\S+) -->\n```json\n(?P<body>.*?)\n```$", re.MULTILINE | re.DOTALL
)
LOCAL_MQTT_PORT = LocalSettings.model_fields["mqtt_port"].default
STREAMS = list(MODEL_BY_STREAM)


@dataclass(frozen=True)
class DocExample:
    """One example of docs/protocol.md and the mosquitto_pub command written above it."""

    stream: str
    payload: bytes
    command: tuple[str, ...] | None


@cache
def read_examples() -> tuple[DocExample, ...]:
    """Return the examples of docs/protocol.md in document order.

    The command of an example is the last line starting with ``mosquitto_pub`` between the
    previous example and this one, split as a shell would split it.
    """
    text = PROTOCOL_DOC.read_text(encoding="utf-8")
    examples = []
    previous_end = 0
    for match in EXAMPLE_PATTERN.finditer(text):
        preceding = text[previous_end : match.start()]
        commands = [line for line in preceding.splitlines() if line.startswith("mosquitto_pub ")]
        command = tuple(shlex.split(commands[-1])) if commands else None
        examples.append(DocExample(match["stream"], match["body"].encode(), command))
        previous_end = match.end()
    return tuple(examples)


def example_of(stream: str) -> DocExample:
    """Return the first example of ``stream``, or fail the test when there is none."""
    for example in read_examples():
        if example.stream == stream:
            return example
    pytest.fail(f"{PROTOCOL_DOC.name} has no '<!-- example: {stream} -->' block")


def command_of(stream: str) -> tuple[str, ...]:
    """Return the mosquitto_pub command of ``stream``'s example, or fail the test."""
    command = example_of(stream).command
    if command is None:
        pytest.fail(f"no mosquitto_pub line above the example of {stream!r} in {PROTOCOL_DOC.name}")
    return command


def option_value(command: tuple[str, ...], flag: str) -> str | None:
    """Return the argument that follows ``flag`` in ``command``, or None when it is absent."""
    if flag not in command:
        return None
    index = command.index(flag)
    return command[index + 1] if index + 1 < len(command) else None


def parse_example(stream: str):
    """Validate ``stream``'s example with the contract, failing the test with the contract's message."""
    try:
        return parse_payload(stream, example_of(stream).payload)
    except ContractError as exc:
        problem = f"example of {stream!r} is rejected ({exc.reason}): {exc}"
    pytest.fail(problem)


# Markers and coverage.


def test_marker_precedes_json_fence():
    text = PROTOCOL_DOC.read_text(encoding="utf-8")
    markers = MARKER_PATTERN.findall(text)

    assert len(read_examples()) == len(markers), "an example marker is not directly followed by a ```json fence"


@pytest.mark.parametrize("stream", STREAMS)
def test_examples_cover_stream_once(stream):
    count = sum(1 for example in read_examples() if example.stream == stream)

    assert count == 1, f"{PROTOCOL_DOC.name} has {count} examples of {stream!r}, expected exactly 1"


def test_examples_name_known_streams():
    unknown = sorted({example.stream for example in read_examples()} - set(MODEL_BY_STREAM))

    assert unknown == [], f"examples of unknown streams: {unknown}; streams are {STREAMS}"


# Validation against the contract and the JSON Schema files.


@pytest.mark.parametrize("stream", STREAMS)
def test_example_validates_without_drops(stream):
    parsed = parse_example(stream)

    dropped = [issue.message for issue in parsed.issues]
    assert dropped == [], f"example of {stream!r} validates only after dropping fields"


@pytest.mark.parametrize("stream", STREAMS)
def test_example_matches_json_schema(stream):
    schema_path = SCHEMA_DIR / schema_file_name(stream)
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    payload = json.loads(example_of(stream).payload)

    errors = [error.message for error in jsonschema.Draft202012Validator(schema).iter_errors(payload)]
    assert errors == [], f"example of {stream!r} does not match {schema_path.name}"


# The mosquitto_pub command above each example.


@pytest.mark.parametrize("stream", STREAMS)
def test_command_topic_names_stream(stream):
    command = command_of(stream)
    topic = option_value(command, "-t")
    assert topic is not None, f"mosquitto_pub line of {stream!r} has no -t TOPIC"

    try:
        parts = parse_topic(topic)
    except TopicError as exc:
        pytest.fail(f"mosquitto_pub line of {stream!r}: {exc}")

    assert parts.stream.value == stream, f"mosquitto_pub line of {stream!r} publishes to {topic!r}"


@pytest.mark.parametrize("stream", STREAMS)
def test_command_sends_example_payload(stream):
    command = command_of(stream)
    message = option_value(command, "-m")
    assert message is not None, f"mosquitto_pub line of {stream!r} has no -m PAYLOAD"

    assert json.loads(message) == json.loads(example_of(stream).payload), (
        f"mosquitto_pub line of {stream!r} sends another payload than the example below it"
    )


@pytest.mark.parametrize("stream", STREAMS)
def test_command_retain_flag_matches_stream(stream):
    command = command_of(stream)

    assert ("-r" in command) == (stream in RETAINED_STREAMS), f"retain flag of {stream!r} disagrees with the contract"


@pytest.mark.parametrize("stream", STREAMS)
def test_command_uses_qos_1(stream):
    assert option_value(command_of(stream), "-q") == "1"


@pytest.mark.parametrize("stream", STREAMS)
def test_command_targets_local_broker(stream):
    command = command_of(stream)

    assert option_value(command, "-h") == "127.0.0.1"
    assert option_value(command, "-p") == str(LOCAL_MQTT_PORT)


# JSON Schema files.


@pytest.mark.parametrize("file_name", sorted(render_schemas()))
def test_schema_file_equals_rendered_model(file_name):
    path = SCHEMA_DIR / file_name
    assert path.exists(), f"{path} is missing: run python -m contract.schema_export"

    assert path.read_text(encoding="utf-8") == render_schemas()[file_name], (
        f"{path.name} differs from the model: run python -m contract.schema_export"
    )


def test_schema_dir_has_no_stale_files():
    stale = sorted({path.name for path in SCHEMA_DIR.glob("*.json")} - set(render_schemas()))

    assert stale == [], f"schema files without a stream in MODEL_BY_STREAM: {stale}"


def test_config_example_passes_edge_schema():
    """The documented settings are what the edge agent accepts, not made-up keys."""
    from edge.node_settings import parse_node_settings

    settings = json.loads(example_of("config").payload)["settings"]
    parsed = parse_node_settings(settings)
    assert [adapter.type for adapter in parsed.adapters] == ["modbus_sdm"]
