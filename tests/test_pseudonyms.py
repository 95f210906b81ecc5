"""Employee pseudonyms: the HMAC, the ingest's point encoding, what InfluxDB stores, what each role gets, retention.

The integration tests publish punches over MQTT to the ``pipeline`` and read InfluxDB
directly, so they check the stored points, not the API's view of them.
"""

import csv
import hashlib
import hmac
import io
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from paho.mqtt import publish
from pydantic import SecretStr
from sqlalchemy import select

from api.security.retention import main as retention_main
from conftest import (
    REPO_ROOT,
    create_test_user,
    login,
    pseudonym_of,
    start_api,
    start_ingest,
    wait_until,
)
from contract import TopicParts, parse_payload, parse_topic
from ingest.points import PointEncoder
from ingest.pseudonyms import PSEUDONYM_LENGTH, Pseudonymizer, PseudonymKeyError, load_key, pseudonym
from registry.db import make_engine, session_factory
from registry.models import AuditEntry

WIB = timezone(timedelta(hours=7))
KEY = b"k" * 40
NIP = "198706152010011002"
NAME = "Siti Aminah"
PASSWORD = "pseudonym-test-password"


def ms(year, month, day, hour=0, minute=0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=WIB).timestamp() * 1000)


PUNCH_MS = ms(2026, 11, 2, 7, 25)


def attendance_line(opd: str, employee_id: str, encoder: PointEncoder) -> str:
    topic = f"smartoffice/v1/{opd}/gw-01/attendance"
    payload = json.dumps({"device": "absen-01", "ts": PUNCH_MS, "employee_id": employee_id, "punch": "in"}).encode()
    parts: TopicParts = parse_topic(topic)
    return encoder.encode(parts, parse_payload("attendance", payload).model, PUNCH_MS)


# Unit tests: the HMAC and its key.


def test_pseudonym_is_truncated_hmac_sha256():
    expected = hmac.new(KEY, f"dinkes:{NIP}".encode(), hashlib.sha256).hexdigest()[:16]
    assert pseudonym(KEY, "dinkes", NIP) == expected
    assert PSEUDONYM_LENGTH == 16


def test_pseudonym_differs_per_opd():
    assert pseudonym(KEY, "dinkes", NIP) != pseudonym(KEY, "setda", NIP)


def test_pseudonym_differs_per_key():
    assert pseudonym(KEY, "dinkes", NIP) != pseudonym(b"m" * 40, "dinkes", NIP)


def test_pseudonymizer_caches_same_value():
    pseudonymizer = Pseudonymizer(KEY, max_cached=2)
    values = [pseudonymizer.pseudonym("dinkes", employee) for employee in ("1", "2", "3", "1")]
    assert values[0] == values[3] == pseudonym(KEY, "dinkes", "1")


def test_pseudonymizer_repr_hides_key():
    assert "k" * 10 not in repr(Pseudonymizer(KEY))


KEY_PROBLEMS = {
    "too-short": (SecretStr("short"), None),
    "placeholder": (SecretStr("change-me"), None),
    "both-set": (SecretStr("k" * 40), "file"),
    "missing-file": (None, "missing"),
}


@pytest.mark.parametrize(("key", "key_file"), KEY_PROBLEMS.values(), ids=KEY_PROBLEMS.keys())
def test_load_key_rejects(tmp_path, key, key_file):
    path = {None: None, "file": tmp_path / "key", "missing": tmp_path / "absent"}[key_file]
    if key_file == "file":
        path.write_text("f" * 40)
    with pytest.raises(PseudonymKeyError, match="SMARTOFFICE_PSEUDONYM_KEY"):
        load_key(key, path)


def test_load_key_from_file(tmp_path):
    path = tmp_path / "key"
    path.write_text("f" * 64 + "\n")
    assert load_key(None, path) == b"f" * 64


def test_load_key_unset_is_none():
    assert load_key(None, None) is None


def test_point_encoder_writes_pseudonym():
    line = attendance_line("dinkes", NIP, PointEncoder(pseudonyms=Pseudonymizer(KEY)))
    assert f'employee_id="{pseudonym(KEY, "dinkes", NIP)}"' in line
    assert NIP not in line


def test_point_encoder_without_pseudonymizer_keeps_id():
    line = attendance_line("dinkes", NIP, PointEncoder())
    assert f'employee_id="{NIP}"' in line


def test_point_encoder_same_punch_same_point():
    encoder = PointEncoder(pseudonyms=Pseudonymizer(KEY))
    assert attendance_line("dinkes", NIP, encoder) == attendance_line("dinkes", NIP, encoder)


# Integration tests: the pipeline's ingest and API.


@pytest.fixture(scope="module")
def punched(pipeline):
    """An OPD of the module with one punch of ``NIP``, stored; returns the OPD id."""
    opd = "p" + uuid.uuid4().hex[:10]
    message = json.dumps({"device": "absen-01", "ts": PUNCH_MS, "employee_id": NIP, "punch": "in", "verify": "fingerprint"})
    pipeline.publish([(f"smartoffice/v1/{opd}/gw-01/attendance", message)])
    assert wait_until(lambda: pipeline.query(f"SELECT * FROM attendance WHERE opd = '{opd}'"))
    return opd


@pytest.fixture(scope="module")
def role_headers(pipeline, punched) -> dict[str, dict[str, str]]:
    """Headers of a facility manager of the module's OPD, a leadership user and an integration token."""
    suffix = uuid.uuid4().hex[:6]
    headers = {"admin": pipeline.headers}
    for role, opds in (("facility_manager", [punched]), ("leadership", None)):
        username = f"pseudo-{role}-{suffix}"
        create_test_user(pipeline.database_url, username, PASSWORD, role, opds)
        headers[role] = {"Authorization": f"Bearer {login(pipeline.api_url, username, PASSWORD)}"}
    token = pipeline.request("POST", "/api/v1/tokens", json={"name": "pseudo-integration", "opds": [punched]}).json()["token"]
    headers["integration"] = {"Authorization": f"Bearer {token}"}

    imported = pipeline.request("PUT", f"/api/v1/opds/{punched}/employees", json={"employees": [{"nip": NIP, "name": NAME}]})
    assert imported.status_code == 200, imported.text
    return headers


def get(pipeline, path: str, headers: dict[str, str], **params) -> httpx.Response:
    return httpx.get(pipeline.api_url + path, params=params, headers=headers, timeout=10)


def audit_entries(pipeline, action: str, actor_prefix: str = "") -> list[AuditEntry]:
    engine = make_engine(pipeline.database_url)
    try:
        with session_factory(engine)() as session:
            rows = session.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()
    finally:
        engine.dispose()
    return [row for row in rows if row.actor.startswith(actor_prefix)]


def test_influx_stores_pseudonym_only(pipeline, punched):
    series = pipeline.query(f"SELECT * FROM attendance WHERE opd = '{punched}'")
    row = dict(zip(series[0]["columns"], series[0]["values"][0]))
    assert row["employee_id"] == pseudonym_of(punched, NIP)
    assert NIP not in json.dumps(series)


def test_influx_has_raw_id_nowhere(pipeline, punched):
    for statement in ('SHOW TAG VALUES FROM "attendance" WITH KEY =~ /.*/', "SELECT * FROM attendance"):
        assert NIP not in json.dumps(pipeline.influx.query(pipeline.database, statement)), statement


def test_attendance_shows_nip_and_name_to_admin(pipeline, punched, role_headers):
    events = get(pipeline, f"/api/v1/opds/{punched}/attendance", role_headers["admin"], date="2026-11-02").json()["events"]
    assert [(event["employee_id"], event["nip"], event["name"]) for event in events] == [(pseudonym_of(punched, NIP), NIP, NAME)]


def test_attendance_shows_nip_to_facility_manager(pipeline, punched, role_headers):
    response = get(pipeline, f"/api/v1/opds/{punched}/attendance", role_headers["facility_manager"], date="2026-11-02")
    assert response.status_code == 200, response.text
    assert response.json()["events"][0]["nip"] == NIP


@pytest.mark.parametrize("role", ["leadership", "integration"])
def test_attendance_rows_forbidden_for_counts_only_roles(pipeline, punched, role_headers, role):
    response = get(pipeline, f"/api/v1/opds/{punched}/attendance", role_headers[role], date="2026-11-02")
    assert response.status_code == 403
    assert response.json()["code"] == "personal_data_forbidden"


@pytest.mark.parametrize("role", ["leadership", "integration"])
def test_recap_counts_only_for_counts_only_roles(pipeline, punched, role_headers, role):
    recap = get(pipeline, f"/api/v1/opds/{punched}/attendance/recap", role_headers[role], start="2026-11-02", end="2026-11-02").json()
    assert recap["employees"] == []
    assert recap["employees_shown"] is False
    assert recap["employee_count"] == 1
    assert recap["totals"]["missing_checkout"] == 1


def test_recap_shows_nip_to_admin(pipeline, punched, role_headers):
    recap = get(pipeline, f"/api/v1/opds/{punched}/attendance/recap", role_headers["admin"], start="2026-11-02", end="2026-11-02").json()
    assert recap["employees_shown"] is True
    assert [(item["employee_id"], item["nip"], item["name"]) for item in recap["employees"]] == [(pseudonym_of(punched, NIP), NIP, NAME)]


@pytest.fixture(scope="module")
def recent_punch(pipeline, punched) -> None:
    """A punch of today, within the look-back of ``/latest``."""
    message = json.dumps({"device": "absen-03", "ts": int(time.time() * 1000) - 60_000, "employee_id": "4203", "punch": "in"})
    pipeline.publish([(f"smartoffice/v1/{punched}/gw-01/attendance", message)])
    assert wait_until(lambda: pipeline.query(f"SELECT * FROM attendance WHERE opd = '{punched}' AND device = 'absen-03'"))


@pytest.mark.parametrize("role", ["leadership", "integration"])
def test_latest_attendance_hides_id_for_counts_only_roles(pipeline, punched, role_headers, recent_punch, role):
    readings = get(pipeline, f"/api/v1/opds/{punched}/latest", role_headers[role], stream="attendance").json()["readings"]
    assert "absen-03" in [reading["device"] for reading in readings]
    assert [reading["values"] for reading in readings if "employee_id" in reading["values"]] == []


def test_latest_attendance_shows_pseudonym_to_admin(pipeline, punched, role_headers, recent_punch):
    readings = get(pipeline, f"/api/v1/opds/{punched}/latest", role_headers["admin"], stream="attendance").json()["readings"]
    by_device = {reading["device"]: reading["values"] for reading in readings}
    assert by_device["absen-03"]["employee_id"] == pseudonym_of(punched, "4203")


def test_export_has_nip_and_name_for_facility_manager(pipeline, punched, role_headers):
    response = get(
        pipeline, f"/api/v1/opds/{punched}/exports/attendance", role_headers["facility_manager"], month="2026-11", format="csv"
    )
    assert response.status_code == 200, response.text
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    header = next(row for row in rows if row and row[0] == "No")
    first = dict(zip(header, rows[rows.index(header) + 1]))
    assert (first["NIP"], first["Nama"]) == (NIP, NAME)


def test_personal_data_views_audited(pipeline, punched, role_headers):
    before = len(audit_entries(pipeline, "personal_data.view", "user:pseudo-facility_manager"))
    get(pipeline, f"/api/v1/opds/{punched}/attendance", role_headers["facility_manager"], date="2026-11-02")
    entries = audit_entries(pipeline, "personal_data.view", "user:pseudo-facility_manager")
    assert len(entries) == before + 1
    assert entries[-1].target == f"opd:{punched}/attendance"


def test_export_audited(pipeline, punched, role_headers):
    get(pipeline, f"/api/v1/opds/{punched}/exports/attendance", role_headers["admin"], month="2026-11", format="xlsx")
    entries = [entry for entry in audit_entries(pipeline, "personal_data.export") if entry.target.startswith(f"opd:{punched}/")]
    assert entries
    assert entries[-1].detail["month"] == "2026-11"


def test_employee_import_audited(pipeline, punched, role_headers):
    entries = [entry for entry in audit_entries(pipeline, "employees.replace") if entry.target == f"opd:{punched}/employees"]
    assert entries[-1].detail == {"count": 1}
    assert NIP not in json.dumps(entries[-1].detail)


def read_live_event(pipeline, headers: dict[str, str], opd: str, employee_id: str) -> dict:
    """Open the live view, publish one punch, and return its event."""
    message = json.dumps({"device": "absen-02", "ts": int(time.time() * 1000), "employee_id": employee_id, "punch": "in"})
    timeout = httpx.Timeout(10.0, read=5.0)
    with httpx.stream("GET", pipeline.api_url + "/api/v1/live", params={"opd": opd, "stream": "attendance"}, headers=headers, timeout=timeout) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        assert next(lines) == "retry: 5000"
        pipeline.publish([(f"smartoffice/v1/{opd}/gw-01/attendance", message)])
        for line in lines:
            if line.startswith("data: "):
                return json.loads(line.removeprefix("data: "))
    raise AssertionError("the stream ended without an event")


@pytest.fixture(scope="module")
def live_ready(pipeline):
    assert wait_until(lambda: "live view subscribed to" in pipeline.api.log_tail(2000), timeout_s=20)


def test_live_shows_pseudonym_to_facility_manager(pipeline, punched, role_headers, live_ready):
    event = read_live_event(pipeline, role_headers["facility_manager"], punched, "4201")
    assert event["employee_id"] == pseudonym_of(punched, "4201")


def test_live_hides_id_from_leadership(pipeline, punched, role_headers, live_ready):
    event = read_live_event(pipeline, role_headers["leadership"], punched, "4202")
    assert event["stream"] == "attendance"
    assert "employee_id" not in event


# Ingest start-up without a key.


def test_ingest_without_key_refuses_to_start(mosquitto, influx):
    env = {key: value for key, value in os.environ.items() if not key.startswith("SMARTOFFICE_PSEUDONYM")}
    env.update(SMARTOFFICE_MQTT_HOST=mosquitto.host, SMARTOFFICE_MQTT_PORT=str(mosquitto.port), SMARTOFFICE_INFLUX_URL=influx.url)
    result = subprocess.run(
        [sys.executable, "-m", "ingest"], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "SMARTOFFICE_PSEUDONYM_KEY" in result.stderr


def test_ingest_pseudonymize_off_stores_raw_id(tmp_path, mosquitto, influx, influx_db, unique_id):
    ingest = start_ingest(
        tmp_path, mosquitto, influx, influx_db, "ingest-" + uuid.uuid4().hex[:8], max_age_days="36500", pseudonymize="false"
    )
    try:
        message = json.dumps({"device": "absen-01", "ts": PUNCH_MS, "employee_id": "7001", "punch": "in"})
        publish.single(f"smartoffice/v1/{unique_id}/gw-01/attendance", message, qos=1, hostname=mosquitto.host, port=mosquitto.port)
        assert wait_until(lambda: influx.query(influx_db, f"SELECT * FROM attendance WHERE opd = '{unique_id}'")["results"][0].get("series"))
        series = influx.query(influx_db, f"SELECT employee_id FROM attendance WHERE opd = '{unique_id}'")["results"][0]["series"]
        assert series[0]["values"][0][1] == "7001"
        assert "SMARTOFFICE_PSEUDONYMIZE=false" in ingest.log_tail(200)
    finally:
        ingest.stop()


# Retention of raw attendance punches.


def write_points(influx, database: str, lines: list[str]) -> None:
    response = httpx.post(f"{influx.url}/write", params={"db": database, "precision": "ms"}, content="\n".join(lines).encode())
    assert response.status_code == 204, response.text


def stored_times(influx, database: str) -> list[int]:
    series = influx.query(database, "SELECT employee_id FROM attendance")["results"][0].get("series", [])
    return [row[0] for row in series[0]["values"]] if series else []


def test_retention_command_deletes_old_punches(tmp_path, influx, influx_db, monkeypatch, capsys):
    now_ms = int(time.time() * 1000)
    old_ms, recent_ms = now_ms - 500 * 86_400_000, now_ms - 10 * 86_400_000
    write_points(
        influx,
        influx_db,
        [
            f'attendance,opd=dinkes,node=gw-01,device=absen-01 employee_id="{pseudonym_of("dinkes", "1")}" {old_ms}',
            f'attendance,opd=dinkes,node=gw-01,device=absen-01 employee_id="{pseudonym_of("dinkes", "2")}" {recent_ms}',
            f"room,opd=dinkes,node=gw-01,device=sensor-1 co2_ppm=800 {old_ms}",
        ],
    )
    registry_url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    monkeypatch.setenv("SMARTOFFICE_INFLUX_URL", influx.url)
    monkeypatch.setenv("SMARTOFFICE_INFLUX_DB", influx_db)
    monkeypatch.setenv("SMARTOFFICE_DATABASE_URL", registry_url)

    assert retention_main(["--days", "400"]) == 0

    assert capsys.readouterr().out.strip() == "deleted 1 attendance punches older than 400 days"
    times = influx.query(influx_db, "SELECT employee_id FROM attendance")["results"][0]["series"][0]["values"]
    assert [row[1] for row in times] == [pseudonym_of("dinkes", "2")]
    assert influx.query(influx_db, "SELECT count(co2_ppm) FROM room")["results"][0]["series"][0]["values"][0][1] == 1
    engine = make_engine(registry_url)
    with session_factory(engine)() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "attendance.retention")).one()
    engine.dispose()
    assert entry.detail["deleted"] == 1


def test_retention_rejects_short_period(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SMARTOFFICE_DATABASE_URL", f"sqlite:///{tmp_path / 'registry.sqlite3'}")
    assert retention_main(["--days", "30"]) == 2
    assert "62" in capsys.readouterr().err


def test_api_runs_retention_at_start(tmp_path, mosquitto, influx, influx_db):
    old_ms = int(time.time() * 1000) - 500 * 86_400_000
    write_points(influx, influx_db, [f'attendance,opd=dinkes,node=gw-01,device=absen-01 employee_id="x" {old_ms}'])
    api, _ = start_api(tmp_path, mosquitto, influx, influx_db, name="retention", attendance_retention_days="400")
    try:
        assert wait_until(lambda: stored_times(influx, influx_db) == [])
        assert wait_until(lambda: "attendance retention: 1 punches older than 400 days deleted" in api.log_tail(200))
    finally:
        api.stop()
