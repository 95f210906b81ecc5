"""Login, lock-out, access tokens and integration tokens, against a real API process.

The module starts its own API (``start_api``) on the session's broker and InfluxDB, with a
lock-out after 3 failures for 3 s, so the lock-out tests need not wait 15 minutes. Users are
added straight to its registry, as ``python -m api.security.users_cli`` does.
"""

import time
import uuid

import httpx
import jwt
import pytest
from sqlalchemy import update

from conftest import TEST_JWT_SECRET, create_test_user, login, start_api, wait_until
from registry.db import make_engine, session_factory, transaction
from registry.models import ApiToken, User

pytestmark = pytest.mark.integration

ADMIN = "auth-admin"
PASSWORD = "a-long-enough-password-1"
MAX_FAILURES = 3
LOCKOUT_S = 3


@pytest.fixture(scope="module")
def auth_api(tmp_path_factory, mosquitto, influx):
    """An API with a short lock-out; yields (process, url, registry url)."""
    folder = tmp_path_factory.mktemp("auth")
    database = "auth_" + uuid.uuid4().hex[:8]
    influx.create_database(database)
    registry_url = f"sqlite:///{folder / 'auth-registry.sqlite3'}"
    create_test_user(registry_url, ADMIN, PASSWORD, "admin")
    process, url = start_api(
        folder,
        mosquitto,
        influx,
        database,
        name="auth",
        database_url=registry_url,
        login_max_failures=str(MAX_FAILURES),
        login_lockout_s=str(LOCKOUT_S),
    )
    yield process, url, registry_url
    process.stop()


@pytest.fixture(scope="module")
def admin_headers(auth_api) -> dict[str, str]:
    _, url, _ = auth_api
    return {"Authorization": f"Bearer {login(url, ADMIN, PASSWORD)}"}


def new_user(auth_api, role: str = "admin", opds: list[str] | None = None) -> str:
    """Add a user with ``PASSWORD`` and return their name."""
    _, _, registry_url = auth_api
    username = f"user-{uuid.uuid4().hex[:8]}"
    create_test_user(registry_url, username, PASSWORD, role, opds)
    return username


def post_login(url: str, username: str, password: str, **headers) -> httpx.Response:
    return httpx.post(url + "/api/v1/auth/token", data={"username": username, "password": password}, headers=headers, timeout=10)


def change_rows(registry_url: str, statement) -> None:
    engine = make_engine(registry_url)
    try:
        with transaction(session_factory(engine)) as session:
            session.execute(statement)
    finally:
        engine.dispose()


def audit_actions(url: str, headers: dict[str, str], **params) -> list[dict]:
    response = httpx.get(url + "/api/v1/audit", params=params, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["entries"]


def test_login_returns_bearer_token(auth_api):
    _, url, _ = auth_api
    username = new_user(auth_api, "facility_manager", ["dinkes"])
    response = post_login(url, username, PASSWORD)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["user"]["username"] == username
    assert body["user"]["role"] == "facility_manager"
    assert body["user"]["opds"] == ["dinkes"]


def test_me_returns_caller(auth_api):
    _, url, _ = auth_api
    username = new_user(auth_api, "leadership")
    token = login(url, username, PASSWORD)
    me = httpx.get(url + "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    assert me["username"] == username
    assert me["role"] == "leadership"
    assert me["opds"] is None
    assert me["personal_data"] is False


def test_login_wrong_password_401(auth_api):
    _, url, _ = auth_api
    username = new_user(auth_api)
    response = post_login(url, username, "not-the-password")
    assert response.status_code == 401
    assert response.json()["code"] == "login_failed"
    assert response.json()["detail"] == "Nama pengguna atau kata sandi salah."
    assert response.headers["www-authenticate"] == "Bearer"
    assert "access_token" not in response.text


def test_login_error_in_english_on_request(auth_api):
    _, url, _ = auth_api
    response = post_login(url, new_user(auth_api), "not-the-password", **{"Accept-Language": "en"})
    assert response.json()["detail"] == "Incorrect user name or password."


def test_login_unknown_user_same_as_wrong_password(auth_api):
    _, url, _ = auth_api
    unknown = post_login(url, "nobody-" + uuid.uuid4().hex[:6], "not-the-password")
    wrong = post_login(url, new_user(auth_api), "not-the-password")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


def test_login_failure_logged_without_password(auth_api):
    process, url, _ = auth_api
    username = new_user(auth_api)
    post_login(url, username, "Sup3r-Secret-Guess")
    assert wait_until(lambda: f"login failed for user {username!r}" in process.log_tail(400))
    assert "Sup3r-Secret-Guess" not in process.log_tail(2000)


def test_lockout_after_max_failures(auth_api, admin_headers):
    _, url, _ = auth_api
    username = new_user(auth_api)
    for _ in range(MAX_FAILURES):
        assert post_login(url, username, "not-the-password").status_code == 401

    locked = post_login(url, username, PASSWORD)
    assert locked.status_code == 429
    assert locked.json()["code"] == "login_locked"
    assert 1 <= int(locked.headers["retry-after"]) <= LOCKOUT_S
    assert any(entry["target"] == f"user:{username}" for entry in audit_actions(url, admin_headers, action="auth.lockout"))


def test_lockout_ends_after_lockout_time(auth_api):
    _, url, _ = auth_api
    username = new_user(auth_api)
    for _ in range(MAX_FAILURES):
        post_login(url, username, "not-the-password")
    assert post_login(url, username, PASSWORD).status_code == 429

    assert wait_until(lambda: post_login(url, username, PASSWORD).status_code == 200, timeout_s=LOCKOUT_S + 5, interval_s=0.5)


def test_lockout_survives_restart(tmp_path, mosquitto, influx):
    database = "auth_restart_" + uuid.uuid4().hex[:8]
    influx.create_database(database)
    registry_url = f"sqlite:///{tmp_path / 'restart-registry.sqlite3'}"
    create_test_user(registry_url, "restart-user", PASSWORD, "admin")
    settings = {"database_url": registry_url, "login_max_failures": str(MAX_FAILURES), "login_lockout_s": "600"}

    process, url = start_api(tmp_path, mosquitto, influx, database, name="before", **settings)
    try:
        for _ in range(MAX_FAILURES):
            post_login(url, "restart-user", "not-the-password")
    finally:
        process.stop()

    process, url = start_api(tmp_path, mosquitto, influx, database, name="after", **settings)
    try:
        response = post_login(url, "restart-user", PASSWORD)
    finally:
        process.stop()
    assert response.status_code == 429
    assert response.json()["code"] == "login_locked"


def test_address_throttled_after_many_failures(tmp_path, mosquitto, influx):
    database = "auth_throttle_" + uuid.uuid4().hex[:8]
    influx.create_database(database)
    registry_url = f"sqlite:///{tmp_path / 'throttle-registry.sqlite3'}"
    create_test_user(registry_url, "throttle-user", PASSWORD, "admin")
    process, url = start_api(
        tmp_path, mosquitto, influx, database, name="throttle", database_url=registry_url, login_address_max_failures="4"
    )
    try:
        # Four different user names, so no user name reaches its own lock-out.
        for number in range(4):
            assert post_login(url, f"guess-{number}", "not-the-password").status_code == 401
        throttled = post_login(url, "throttle-user", PASSWORD)
    finally:
        process.stop()
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "login_throttled"
    assert int(throttled.headers["retry-after"]) >= 1


def test_missing_token_401(auth_api):
    _, url, _ = auth_api
    response = httpx.get(url + "/api/v1/opds", timeout=10)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response.headers["www-authenticate"] == "Bearer"


def test_expired_token_401(auth_api):
    _, url, _ = auth_api
    issued = int(time.time()) - 7200
    claims = {"iss": "smartoffice-api", "sub": ADMIN, "role": "admin", "iat": issued, "exp": issued + 3600}
    token = jwt.encode(claims, TEST_JWT_SECRET.encode(), algorithm="HS256")
    response = httpx.get(url + "/api/v1/opds", headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"}, timeout=10)
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"
    assert response.json()["detail"].startswith("The access token expired at ")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


TAMPERED = {
    "claims-changed": lambda token: _swap_payload(token, {"sub": "someone-else"}),
    "other-key": lambda token: jwt.encode(
        {**jwt.decode(token, options={"verify_signature": False})}, "another-secret-of-32-characters-x", algorithm="HS256"
    ),
    "alg-none": lambda token: jwt.encode({**jwt.decode(token, options={"verify_signature": False})}, None, algorithm="none"),
    "garbage": lambda token: "not.a.token",
}


def _swap_payload(token: str, changes: dict) -> str:
    """Replace the payload of ``token`` and keep its signature, as an attacker without the key would."""
    header, _, signature = token.split(".")
    claims = {**jwt.decode(token, options={"verify_signature": False}), **changes}
    forged = jwt.encode(claims, "x" * 32, algorithm="HS256").split(".")[1]
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize("tamper", TAMPERED.values(), ids=TAMPERED.keys())
def test_tampered_token_401(auth_api, tamper):
    _, url, _ = auth_api
    token = tamper(login(url, ADMIN, PASSWORD))
    response = httpx.get(url + "/api/v1/opds", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_disabled_user_token_401(auth_api):
    _, url, registry_url = auth_api
    username = new_user(auth_api)
    token = login(url, username, PASSWORD)
    change_rows(registry_url, update(User).where(User.username == username).values(disabled=True))

    response = httpx.get(url + "/api/v1/opds", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_disabled_user_login_403(auth_api):
    _, url, registry_url = auth_api
    username = new_user(auth_api)
    change_rows(registry_url, update(User).where(User.username == username).values(disabled=True))
    response = post_login(url, username, PASSWORD)
    assert response.status_code == 403
    assert response.json()["code"] == "account_disabled"


def test_api_token_shown_once_and_scoped(auth_api, admin_headers):
    _, url, _ = auth_api
    created = httpx.post(url + "/api/v1/tokens", json={"name": "bkpsdm-sync", "opds": ["dinkes"]}, headers=admin_headers, timeout=10)
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert token.startswith("soi_")

    listed = httpx.get(url + "/api/v1/tokens", headers=admin_headers, timeout=10).json()
    assert any(item["id"] == created.json()["id"] for item in listed)
    assert token not in httpx.get(url + "/api/v1/tokens", headers=admin_headers, timeout=10).text

    bearer = {"Authorization": f"Bearer {token}"}
    me = httpx.get(url + "/api/v1/auth/me", headers=bearer, timeout=10).json()
    assert (me["kind"], me["role"], me["opds"]) == ("token", "integration", ["dinkes"])
    assert httpx.get(url + "/api/v1/opds/setda", headers=bearer, timeout=10).json()["code"] == "opd_forbidden"


def test_api_token_revoked_401(auth_api, admin_headers):
    _, url, _ = auth_api
    created = httpx.post(url + "/api/v1/tokens", json={"name": "short-lived", "opds": ["dinkes"]}, headers=admin_headers, timeout=10).json()
    bearer = {"Authorization": f"Bearer {created['token']}"}
    assert httpx.get(url + "/api/v1/auth/me", headers=bearer, timeout=10).status_code == 200

    revoked = httpx.delete(url + f"/api/v1/tokens/{created['id']}", headers=admin_headers, timeout=10)
    assert revoked.status_code == 204
    response = httpx.get(url + "/api/v1/auth/me", headers=bearer, timeout=10)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    actions = [entry["action"] for entry in audit_actions(url, admin_headers) if entry["target"] == f"token:{created['id']}"]
    assert actions == ["token.revoke", "token.create"]


def test_api_token_expired_401(auth_api, admin_headers):
    _, url, registry_url = auth_api
    created = httpx.post(url + "/api/v1/tokens", json={"name": "expiring", "opds": ["dinkes"]}, headers=admin_headers, timeout=10).json()
    change_rows(registry_url, update(ApiToken).where(ApiToken.id == created["id"]).values(expires_at_ms=int(time.time() * 1000) - 1000))

    response = httpx.get(url + "/api/v1/auth/me", headers={"Authorization": f"Bearer {created['token']}"}, timeout=10)
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"


def test_api_token_lifetime_limit_422(auth_api, admin_headers):
    _, url, _ = auth_api
    response = httpx.post(
        url + "/api/v1/tokens", json={"name": "forever", "opds": ["dinkes"], "expires_in_days": 3650}, headers=admin_headers, timeout=10
    )
    assert response.status_code == 422
    assert response.json()["code"] == "token_lifetime_too_long"


def test_api_token_stored_as_hash(auth_api, admin_headers):
    _, url, registry_url = auth_api
    created = httpx.post(url + "/api/v1/tokens", json={"name": "hashed", "opds": ["dinkes"]}, headers=admin_headers, timeout=10).json()
    engine = make_engine(registry_url)
    try:
        with session_factory(engine)() as session:
            stored = session.get(ApiToken, created["id"]).token_hash
    finally:
        engine.dispose()
    assert stored != created["token"]
    assert len(stored) == 64


def test_query_token_rejected_outside_live(auth_api):
    _, url, _ = auth_api
    token = login(url, ADMIN, PASSWORD)
    response = httpx.get(url + "/api/v1/opds", params={"access_token": token}, timeout=10)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_query_token_accepted_by_live(auth_api):
    _, url, _ = auth_api
    token = login(url, ADMIN, PASSWORD)
    with httpx.stream("GET", url + "/api/v1/live", params={"access_token": token}, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")


def test_login_written_to_audit_log(auth_api, admin_headers):
    _, url, _ = auth_api
    username = new_user(auth_api)
    login(url, username, PASSWORD)
    entries = audit_actions(url, admin_headers, action="auth.login", actor=f"user:{username}")
    assert len(entries) == 1
    assert entries[0]["detail"] == {"address": "127.0.0.1"}


def test_principal_scope_of_listing():
    from api.security.principals import Principal, Role

    manager = Principal(kind="user", name="siti", role=Role.FACILITY_MANAGER, opds=frozenset({"dinkes", "bappeda"}))
    leader = Principal(kind="user", name="bupati", role=Role.LEADERSHIP, opds=None)
    assert manager.scope(None) == ["bappeda", "dinkes"]
    assert manager.scope(["dinkes", "setda"]) == ["dinkes"]
    assert leader.scope(None) is None
    assert leader.scope(["setda"]) == ["setda"]
