"""Secrets never reach the logs of the API and ingest processes, even at DEBUG level.

The module runs an ingest and an API process with known secrets and drives every path that
handles one: logins that succeed and fail, access and API tokens in headers and in the live
view's query string, an expired token, the employee import and attendance punches. Then it
stops both processes, so their logs are complete, and searches the logs for each secret.
"""

import json
import time
import uuid

import httpx
import jwt
import pytest
from paho.mqtt import publish

from conftest import (
    TEST_JWT_SECRET,
    TEST_PSEUDONYM_KEY,
    create_test_user,
    login,
    start_api,
    start_ingest,
    wait_until,
)

pytestmark = pytest.mark.integration

ADMIN = "logs-admin"
PASSWORD = "Correct-Horse-Battery-Staple-42"
WRONG_PASSWORD = "Wrong-Guess-Never-Logged-17"
NIP = "197001011995031001"


@pytest.fixture(scope="module")
def logs(tmp_path_factory, mosquitto, influx) -> dict[str, object]:
    """Run both processes through every secret-handling path; return their logs and the secrets used."""
    folder = tmp_path_factory.mktemp("secrets")
    database = "secrets_" + uuid.uuid4().hex[:8]
    influx.create_database(database)
    registry_url = f"sqlite:///{folder / 'registry.sqlite3'}"
    create_test_user(registry_url, ADMIN, PASSWORD, "admin")
    opd = "s" + uuid.uuid4().hex[:10]

    ingest = start_ingest(folder, mosquitto, influx, database, "ingest-" + uuid.uuid4().hex[:8], max_age_days="36500", log_level="DEBUG")
    api, url = start_api(folder, mosquitto, influx, database, name="secrets", database_url=registry_url, log_level="DEBUG")
    secrets = {"password": PASSWORD, "wrong password": WRONG_PASSWORD, "jwt secret": TEST_JWT_SECRET, "pseudonym key": TEST_PSEUDONYM_KEY}
    try:
        httpx.post(url + "/api/v1/auth/token", data={"username": ADMIN, "password": WRONG_PASSWORD}, timeout=10)
        token = login(url, ADMIN, PASSWORD)
        headers = {"Authorization": f"Bearer {token}"}
        secrets["access token"] = token

        created = httpx.post(url + "/api/v1/tokens", json={"name": "logs", "opds": ["dinkes"]}, headers=headers, timeout=10)
        api_token = created.json()["token"]
        secrets["api token"] = api_token
        httpx.get(url + "/api/v1/opds/dinkes", headers={"Authorization": f"Bearer {api_token}"}, timeout=10)
        httpx.get(url + "/api/v1/opds/setda", headers={"Authorization": f"Bearer {api_token}"}, timeout=10)

        expired = jwt.encode(
            {"iss": "smartoffice-api", "sub": ADMIN, "iat": 1, "exp": 2}, TEST_JWT_SECRET.encode(), algorithm="HS256"
        )
        secrets["expired token"] = expired
        httpx.get(url + "/api/v1/opds", headers={"Authorization": f"Bearer {expired}"}, timeout=10)
        httpx.get(url + "/api/v1/opds", headers={"Authorization": f"Bearer {token}x"}, timeout=10)

        message = json.dumps({"device": "absen-01", "ts": int(time.time() * 1000), "employee_id": NIP, "punch": "in"})
        assert wait_until(lambda: "live view subscribed to" in api.log_tail(2000), timeout_s=20)
        with httpx.stream("GET", url + "/api/v1/live", params={"access_token": token, "opd": opd}, timeout=httpx.Timeout(10, read=5)) as stream:
            lines = stream.iter_lines()
            next(lines)
            publish.single(f"smartoffice/v1/{opd}/gw-01/attendance", message, qos=1, hostname=mosquitto.host, port=mosquitto.port)
            next(line for line in lines if line.startswith("data: "))
        assert wait_until(lambda: influx.query(database, f"SELECT * FROM attendance WHERE opd = '{opd}'")["results"][0].get("series"))
        httpx.put(url + f"/api/v1/opds/{opd}/employees", json={"employees": [{"nip": NIP, "name": "Budi"}]}, headers=headers, timeout=10)
    finally:
        api.stop()
        ingest.stop()
    return {"api": api.log_path.read_text(), "ingest": ingest.log_path.read_text(), "secrets": secrets}


SECRET_NAMES = ["password", "wrong password", "jwt secret", "pseudonym key", "access token", "api token", "expired token"]


@pytest.mark.parametrize("process", ["api", "ingest"])
@pytest.mark.parametrize("secret", SECRET_NAMES)
def test_secret_not_in_log(logs, process, secret):
    assert logs["secrets"][secret] not in logs[process]


def test_api_token_hash_prefix_not_in_log(logs):
    # The token without its prefix: a log line that cut the prefix off would still leak it.
    assert logs["secrets"]["api token"].removeprefix("soi_")[:20] not in logs["api"]


def test_raw_employee_id_not_in_logs(logs):
    assert NIP not in logs["api"]
    assert NIP not in logs["ingest"]


def test_logs_show_what_happened(logs):
    # The search above must not pass because the processes logged nothing.
    assert f"login failed for user '{ADMIN}'" in logs["api"]
    assert f"user '{ADMIN}' logged in" in logs["api"]
    assert "audit: user:logs-admin token.create" in logs["api"]
    assert "attendance employee ids are stored as keyed pseudonyms" in logs["ingest"]
