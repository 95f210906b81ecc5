"""ZKTeco ADMS adapter: a simulated terminal pushes over real HTTP to the adapter's server on 127.0.0.1.

Field cases: ``cases/zk_duplicates.http`` is one ATTLOG batch posted twice by a terminal that
timed out (CRLF endings, an extended-field line, a re-scan 2 s after a punch), plus the same
punches read through pyzk. ``cases/zk_punch255.jsonl`` contains pyzk records of a firmware that
reports punch state 255 for every punch, where pyzk's ``status`` is the verify method.
"""

import json
import re
import socket
from datetime import datetime
from types import SimpleNamespace

import httpx
import pytest

from conftest import CASES_DIR
from contract.payloads import Punch, VerifyMethod
from edge.adapters.attlog import (
    AttlogError,
    parse_attlog_line,
    punch_from_code,
    record_from_pyzk,
    split_attlog_lines,
    verify_from_code,
)
from edge.adapters.zkteco_adms import AdmsAdapter
from edge_adapter_harness import running_adapter
from firmware_sim.adms_terminal import AdmsTerminal, SimulatedPunch

SERIAL = "CQZ7231000123"


def parse_http_case(path) -> tuple[list[dict], list[SimpleNamespace]]:
    """Read the raw requests of an ``.http`` case file and the pyzk records in its comments."""
    text = path.read_bytes().decode()
    requests = []
    for section in re.split(r"^### request \d+\n", text, flags=re.MULTILINE)[1:]:
        raw = section.split("\n###")[0]
        head, _, body = raw.partition("\r\n\r\n")
        request_line, *header_lines = head.split("\r\n")
        method, target, _ = request_line.split(" ")
        # The case's Host header names the field site, but the request goes to the local test server.
        headers = dict(line.split(": ", 1) for line in header_lines if not line.startswith("Host:"))
        body = "".join(line + "\n" for line in body.split("\n") if line and not line.startswith("#"))
        requests.append({"method": method, "target": target, "headers": headers, "body": body.encode()})

    pyzk = []
    pattern = r"Attendance\(user_id='(\w+)', timestamp=datetime\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\), status=(\d+), punch=(\d+)\)"
    for match in re.finditer(pattern, text):
        user_id, *parts, status, punch = match.groups()
        pyzk.append(SimpleNamespace(user_id=user_id, timestamp=datetime(*map(int, parts)), status=int(status), punch=int(punch)))
    return requests, pyzk


def adapter_settings(tmp_path, timezone: str = "Europe/Madrid", **overrides) -> dict:
    settings = {
        "type": "zkteco_adms",
        "id": "attendance",
        "host": "127.0.0.1",
        "port": 0,
        "timezone": timezone,
        "dedup_db_path": str(tmp_path / "punches.sqlite3"),
        "terminals": [{"serial_number": SERIAL, "device": "terminal-lobby"}],
    }
    return {**settings, **overrides}


def base_url(running) -> str:
    return f"http://127.0.0.1:{running.adapter.bound_port}"


def utc_ms(text: str) -> int:
    return round(datetime.fromisoformat(text).timestamp() * 1000)


@pytest.mark.parametrize(
    ("code", "punch"),
    [(0, Punch.IN), (1, Punch.OUT), (2, Punch.BREAK_OUT), (3, Punch.BREAK_IN), (4, Punch.OVERTIME_IN),
     (5, Punch.OVERTIME_OUT), (255, Punch.UNKNOWN), (7, Punch.UNKNOWN), (None, Punch.UNKNOWN)],
)  # fmt: skip
def test_punch_from_code(code, punch):
    assert punch_from_code(code) is punch


@pytest.mark.parametrize(
    ("code", "method"),
    [(1, VerifyMethod.FINGERPRINT), (4, VerifyMethod.RFID), (15, VerifyMethod.FACE), (3, VerifyMethod.PASSWORD),
     (0, VerifyMethod.OTHER), (25, VerifyMethod.OTHER), (None, VerifyMethod.OTHER)],
)  # fmt: skip
def test_verify_from_code(code, method):
    assert verify_from_code(code) is method


def test_attlog_line_extended_fields_and_crlf():
    requests, _ = parse_http_case(CASES_DIR / "zk_duplicates.http")
    lines = split_attlog_lines(requests[0]["body"].decode().replace("\n", "\r\n"))

    records = [parse_attlog_line(line, SERIAL) for line in lines]

    assert [record.employee_id for record in records] == ["1001", "1001", "1002"]
    assert records[2].verify is VerifyMethod.FACE
    assert records[2].time_offset_s == 3600
    assert records[0].time_offset_s is None
    assert records[0].local_time == datetime(2025, 3, 10, 8, 2, 11)


@pytest.mark.parametrize(
    "line", ["", "1001", "10 01\t2025-03-10 08:02:11", "1001\t2025-03-10T08:02", "1001\t2025-03-10 08:02:11\tin\t1"]
)
def test_attlog_line_invalid_rejected(line):
    with pytest.raises(AttlogError):
        parse_attlog_line(line, SERIAL)


def test_pyzk_and_adms_give_same_record():
    requests, pyzk = parse_http_case(CASES_DIR / "zk_duplicates.http")
    adms_records = [parse_attlog_line(line, SERIAL) for line in split_attlog_lines(requests[0]["body"].decode())]

    pyzk_records = [record_from_pyzk(attendance, SERIAL) for attendance in pyzk]

    assert [r.dedup_key for r in pyzk_records] == [r.dedup_key for r in adms_records]
    assert [(r.punch, r.verify) for r in pyzk_records] == [(r.punch, r.verify) for r in adms_records]


def test_pyzk_punch_255_kept_as_unknown():
    lines = [json.loads(line) for line in (CASES_DIR / "zk_punch255.jsonl").read_text().splitlines()]
    device = lines[0]["device"]
    attendances = [
        SimpleNamespace(user_id=line["user_id"], timestamp=datetime.fromisoformat(line["timestamp"]),
                        status=line["status"], punch=line["punch"])
        for line in lines if "user_id" in line
    ]  # fmt: skip

    records = [record_from_pyzk(attendance, device) for attendance in attendances]

    assert len(records) == 4
    assert {record.punch for record in records} == {Punch.UNKNOWN}
    assert [record.verify for record in records] == [VerifyMethod.FINGERPRINT] * 3 + [VerifyMethod.FACE]


async def test_adms_duplicate_push_emitted_once(tmp_path):
    requests, pyzk = parse_http_case(CASES_DIR / "zk_duplicates.http")

    async with running_adapter(AdmsAdapter, adapter_settings(tmp_path)) as running:
        await running.adapter.listening.wait()
        responses = []
        async with httpx.AsyncClient(base_url=base_url(running)) as client:
            for request in requests:
                responses.append(await client.request(request["method"], request["target"], content=request["body"],
                                                      headers=request["headers"]))  # fmt: skip
        emitted_by_pyzk = await running.adapter.process_records([record_from_pyzk(a, SERIAL) for a in pyzk])
        stored_keys = running.adapter.store.count()

    assert [(r.status_code, r.text) for r in responses] == [(200, "OK"), (200, "OK")]
    assert running.payloads("attendance") == [
        {"device": "terminal-lobby", "ts": utc_ms("2025-03-10T07:02:11+00:00"), "employee_id": "1001", "punch": "in", "verify": "fingerprint"},
        {"device": "terminal-lobby", "ts": utc_ms("2025-03-10T07:02:13+00:00"), "employee_id": "1001", "punch": "in", "verify": "fingerprint"},
        {"device": "terminal-lobby", "ts": utc_ms("2025-03-10T07:03:47+00:00"), "employee_id": "1002", "punch": "in", "verify": "face"},
    ]  # fmt: skip
    assert emitted_by_pyzk == 0
    assert stored_keys == 3
    assert running.stats.errors["duplicate_record"] == 6
    assert running.stats.errors["time_offset_mismatch"] == 0
    assert running.contract_problems == []


async def test_adms_duplicates_recognised_after_restart(tmp_path):
    punches = [SimulatedPunch("2001", datetime(2026, 1, 5, 7, 31, 2)), SimulatedPunch("2002", datetime(2026, 1, 5, 7, 35, 40))]

    async with running_adapter(AdmsAdapter, adapter_settings(tmp_path, "Asia/Jakarta")) as first_run:
        await first_run.adapter.listening.wait()
        async with AdmsTerminal(base_url(first_run), SERIAL) as terminal:
            first_reply = await terminal.push_attlog(punches)

    async with running_adapter(AdmsAdapter, adapter_settings(tmp_path, "Asia/Jakarta")) as second_run:
        await second_run.adapter.listening.wait()
        async with AdmsTerminal(base_url(second_run), SERIAL) as terminal:
            second_reply = await terminal.push_attlog(punches + [SimulatedPunch("2003", datetime(2026, 1, 5, 7, 40, 0))])

    assert first_reply.text == "OK"
    assert second_reply.text == "OK"
    assert [p["employee_id"] for p in first_run.payloads()] == ["2001", "2002"]
    assert [p["employee_id"] for p in second_run.payloads()] == ["2003"]
    assert second_run.payloads()[0]["ts"] == utc_ms("2026-01-05T00:40:00+00:00")
    assert second_run.stats.errors["duplicate_record"] == 2


async def test_adms_retry_after_timeout_emits_once(tmp_path):
    punches = [SimulatedPunch(str(3000 + i), datetime(2026, 1, 5, 8, 0, i)) for i in range(3)]

    # Each emit takes 0.4 s, so the first upload outlasts the terminal's 0.5 s timeout and is sent again.
    async with running_adapter(AdmsAdapter, adapter_settings(tmp_path), emit_delay_s=0.4) as running:
        await running.adapter.listening.wait()
        async with AdmsTerminal(base_url(running), SERIAL, timeout_s=0.5, max_attempts=8) as terminal:
            reply = await terminal.push_attlog(punches)
            uploads = terminal.uploads

    assert reply.text == "OK"
    assert uploads >= 2
    assert [p["employee_id"] for p in running.payloads()] == ["3000", "3001", "3002"]


async def test_adms_bad_and_repeated_lines_in_batch(tmp_path):
    good = SimulatedPunch("4001", datetime(2026, 1, 5, 7, 30, 0), status=0, verify=4)
    lines = [good, "garbage", good, "4002\t2026-13-05 07:30:00\t0\t1", SimulatedPunch("4003", datetime(2026, 1, 5, 17, 5, 0), status=255, verify=15)]

    async with running_adapter(AdmsAdapter, adapter_settings(tmp_path)) as running:
        await running.adapter.listening.wait()
        async with AdmsTerminal(base_url(running), SERIAL) as terminal:
            reply = await terminal.push_attlog(lines)

    assert reply.status_code == 200
    assert reply.text == "OK"
    assert [(p["employee_id"], p["punch"], p["verify"]) for p in running.payloads()] == [
        ("4001", "in", "rfid"),
        ("4003", "unknown", "face"),
    ]
    assert running.stats.errors["invalid_record"] == 2
    assert running.stats.errors["duplicate_record"] == 1


async def test_adms_handshake_poll_and_unknown_terminal(tmp_path):
    async with running_adapter(AdmsAdapter, adapter_settings(tmp_path, "Asia/Jakarta")) as running:
        await running.adapter.listening.wait()
        async with AdmsTerminal(base_url(running), SERIAL) as terminal:
            options = await terminal.handshake()
            commands = await terminal.poll_commands()
        async with httpx.AsyncClient(base_url=base_url(running)) as client:
            unknown = await client.get("/iclock/cdata", params={"SN": "UNKNOWN1", "options": "all"})
            missing = await client.get("/iclock/getrequest")
            other_table = await client.post("/iclock/cdata", params={"SN": SERIAL, "table": "OPERLOG"}, content=b"OPLOG 4\t0\t2026-01-05 07:00:00")
            aspx = await client.get("/iclock/getrequest.aspx", params={"SN": SERIAL})
            ping = await client.get("/iclock/ping", params={"SN": SERIAL})

    assert options["TimeZone"] == "7"
    assert options["Realtime"] == "1"
    assert options["Delay"] == "10"
    assert commands == "OK"
    assert unknown.status_code == 403
    assert missing.status_code == 400
    assert (other_table.status_code, other_table.text) == (200, "OK")
    assert (aspx.status_code, aspx.text) == (200, "OK")
    assert (ping.status_code, ping.text) == (200, "OK")
    assert running.stats.errors["unknown_terminal"] == 1
    assert running.readings == []


async def test_adms_form_encoded_body(tmp_path):
    line = SimulatedPunch("5001", datetime(2026, 1, 5, 7, 0, 0), status=1).attlog_line()

    async with running_adapter(AdmsAdapter, adapter_settings(tmp_path, "Asia/Jakarta")) as running:
        await running.adapter.listening.wait()
        async with httpx.AsyncClient(base_url=base_url(running)) as client:
            reply = await client.post(
                "/iclock/cdata", params={"SN": SERIAL, "table": "ATTLOG"}, data={"data": line + "\r\n"}
            )

    assert reply.text == "OK"
    assert running.payloads()[0]["punch"] == "out"
    assert running.payloads()[0]["ts"] == utc_ms("2026-01-05T00:00:00+00:00")


async def test_adms_stated_offset_mismatch_counted(tmp_path):
    punch = SimulatedPunch("6001", datetime(2026, 1, 5, 8, 0, 0), extended=True, time_offset_s=3600)

    async with running_adapter(AdmsAdapter, adapter_settings(tmp_path, "Asia/Jakarta")) as running:
        await running.adapter.listening.wait()
        async with AdmsTerminal(base_url(running), SERIAL) as terminal:
            await terminal.push_attlog([punch])

    assert running.payloads()[0]["ts"] == utc_ms("2026-01-05T01:00:00+00:00")
    assert running.stats.errors["time_offset_mismatch"] == 1


async def test_adms_pyzk_punch_255_emitted(tmp_path):
    lines = [json.loads(line) for line in (CASES_DIR / "zk_punch255.jsonl").read_text().splitlines()]
    serial = lines[0]["device"]
    attendances = [
        SimpleNamespace(user_id=line["user_id"], timestamp=datetime.fromisoformat(line["timestamp"]),
                        status=line["status"], punch=line["punch"])
        for line in lines if "user_id" in line
    ]  # fmt: skip
    settings = adapter_settings(tmp_path, terminals=[{"serial_number": serial, "device": "terminal-hall", "timezone": lines[0]["tz"]}])

    async with running_adapter(AdmsAdapter, settings) as running:
        emitted = await running.adapter.process_records([record_from_pyzk(a, serial) for a in attendances])

    assert emitted == 4
    assert [(p["employee_id"], p["ts"], p["punch"], p["verify"]) for p in running.payloads()] == [
        ("1007", utc_ms("2026-07-02T05:58:10+00:00"), "unknown", "fingerprint"),
        ("1007", utc_ms("2026-07-02T11:02:44+00:00"), "unknown", "fingerprint"),
        ("1007", utc_ms("2026-07-02T15:31:09+00:00"), "unknown", "fingerprint"),
        ("1012", utc_ms("2026-07-02T07:10:56+00:00"), "unknown", "face"),
    ]


async def test_adms_port_in_use_retried(tmp_path):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    settings = adapter_settings(tmp_path, port=port, rebind_min_s=0.1, rebind_max_s=0.2)

    async with running_adapter(AdmsAdapter, settings) as running:
        await running.until(lambda: running.stats.errors["listen_failed"] >= 2)
        blocker.close()
        await running.until(lambda: running.adapter.listening.is_set(), timeout_s=5)
        async with AdmsTerminal(f"http://127.0.0.1:{port}", SERIAL) as terminal:
            commands = await terminal.poll_commands()

    assert commands == "OK"
    assert running.adapter.bound_port == port
