"""Authorization matrix: every route of the app, called by every role, in and out of its OPD scope.

``MATRIX`` is the specification: the roles each route admits and whether it shows per-employee
attendance. ``test_matrix_covers_every_route`` builds the app and fails for any route that
is missing from the table, so a new router cannot ship without a decision here. The other
tests call the ``pipeline`` API as each caller and check the status and error code:

- no token: 401 ``not_authenticated`` (public routes respond without one),
- a role the route does not admit: 403 ``role_forbidden``,
- a facility manager or integration token on an OPD outside its scope: 403 ``opd_forbidden``,
- leadership or integration on per-employee attendance: 403 ``personal_data_forbidden``,
- otherwise anything but 401 and 403 (a missing alert is 404, a body the test leaves empty 422).
"""

import uuid
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from api.app import create_app
from api.config import ApiSettings
from conftest import create_test_user, login

pytestmark = pytest.mark.integration

IN_SCOPE = "dinkes"
OUT_OF_SCOPE = "setda"
NODE = "gw-01"
MISSING_ID = "999999"
PASSWORD = "matrix-password-of-users"

ALL = frozenset({"admin", "facility_manager", "leadership", "integration"})
OPERATORS = frozenset({"admin", "facility_manager"})
ADMIN = frozenset({"admin"})
SCOPED_ROLES = frozenset({"facility_manager", "integration"})
PERSONAL_DATA_ROLES = frozenset({"admin", "facility_manager"})

CALLER_ROLES = {
    "anonymous": None,
    "admin": "admin",
    "facility_manager": "facility_manager",
    "leadership": "leadership",
    "integration": "integration",
}


@dataclass(frozen=True)
class Rule:
    """Who may call a route, and a request that reaches its role checks."""

    roles: frozenset[str] | None
    """Roles admitted; None for a public route."""
    personal: bool = False
    """True when the route returns per-employee attendance rows."""
    params: dict = field(default_factory=dict)
    json: dict | None = None
    form: dict | None = None
    stream: bool = False


PUBLIC = Rule(None)
LOGIN_USER = "matrix-login"

MATRIX: dict[tuple[str, str], Rule] = {
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/health"): PUBLIC,
    ("GET", "/"): PUBLIC,
    ("GET", "/dashboard/"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/api/v1/meta"): PUBLIC,
    ("POST", "/api/v1/auth/token"): Rule(None, form={"username": LOGIN_USER, "password": PASSWORD}),
    ("GET", "/api/v1/auth/me"): Rule(ALL),
    ("GET", "/api/v1/opds"): Rule(ALL),
    ("GET", "/api/v1/opds/{opd}"): Rule(ALL),
    ("GET", "/api/v1/overview"): Rule(ALL),
    ("GET", "/api/v1/opds/{opd}/latest"): Rule(ALL),
    ("GET", "/api/v1/opds/{opd}/series"): Rule(ALL, params={"field": "co2_ppm"}),
    ("GET", "/api/v1/opds/{opd}/energy"): Rule(ALL),
    ("GET", "/api/v1/opds/{opd}/energy/report"): Rule(ALL),
    ("GET", "/api/v1/opds/{opd}/attendance"): Rule(ALL, personal=True),
    ("GET", "/api/v1/opds/{opd}/attendance/recap"): Rule(ALL),
    ("GET", "/api/v1/opds/{opd}/exports/attendance"): Rule(ALL, personal=True, params={"month": "2026-11"}),
    ("GET", "/api/v1/opds/{opd}/exports/energy"): Rule(ALL, params={"month": "2026-11"}),
    ("GET", "/api/v1/opds/{opd}/rooms"): Rule(ALL),
    ("GET", "/api/v1/opds/{opd}/completeness"): Rule(ALL),
    ("GET", "/api/v1/completeness"): Rule(ALL),
    ("GET", "/api/v1/live"): Rule(ALL, stream=True),
    ("GET", "/api/v1/alerts"): Rule(ALL),
    ("GET", "/api/v1/alerts/{alert_id}"): Rule(ALL),
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge"): Rule(OPERATORS),
    ("GET", "/api/v1/nodes"): Rule(ALL),
    ("GET", "/api/v1/opds/{opd}/nodes/{node}/config"): Rule(ALL),
    ("PUT", "/api/v1/opds/{opd}/nodes/{node}/config"): Rule(ADMIN, json={}),
    ("POST", "/api/v1/opds/{opd}/nodes/{node}/credentials"): Rule(ADMIN),
    ("DELETE", "/api/v1/opds/{opd}/nodes/{node}/credentials"): Rule(ADMIN),
    ("GET", "/api/v1/dead-letters"): Rule(ADMIN),
    ("POST", "/api/v1/dead-letters/replay"): Rule(ADMIN, json={}),
    ("DELETE", "/api/v1/dead-letters/{entry_id}"): Rule(ADMIN),
    ("POST", "/api/v1/tokens"): Rule(ADMIN, json={"name": "matrix", "opds": [IN_SCOPE]}),
    ("GET", "/api/v1/tokens"): Rule(ADMIN),
    ("DELETE", "/api/v1/tokens/{token_id}"): Rule(ADMIN),
    ("GET", "/api/v1/audit"): Rule(ADMIN),
    ("GET", "/api/v1/opds/{opd}/employees"): Rule(ADMIN),
    ("PUT", "/api/v1/opds/{opd}/employees"): Rule(ADMIN, json={"employees": []}),
}


def expected_outcome(path: str, rule: Rule, caller: str, opd: str | None) -> str:
    """Return ``allowed`` or the error code the caller must get."""
    role = CALLER_ROLES[caller]
    if rule.roles is None:
        return "allowed"
    if role is None:
        return "not_authenticated"
    if role not in rule.roles:
        return "role_forbidden"
    if opd == OUT_OF_SCOPE and role in SCOPED_ROLES:
        return "opd_forbidden"
    if rule.personal and role not in PERSONAL_DATA_ROLES:
        return "personal_data_forbidden"
    return "allowed"


def matrix_cases() -> list:
    cases = []
    for (method, path), rule in MATRIX.items():
        opds = [IN_SCOPE, OUT_OF_SCOPE] if "{opd}" in path else [None]
        for caller in CALLER_ROLES:
            for opd in opds:
                if opd == OUT_OF_SCOPE and CALLER_ROLES[caller] not in SCOPED_ROLES:
                    continue
                case_id = f"{method} {path} as {caller}" + ("" if opd is None else f" on {'in' if opd == IN_SCOPE else 'out'}-of-scope OPD")
                cases.append(pytest.param(method, path, rule, caller, opd, id=case_id))
    return cases


@pytest.fixture(scope="module")
def caller_headers(pipeline) -> dict[str, dict[str, str]]:
    """The ``Authorization`` header of each caller; users are added to the pipeline's registry."""
    headers = {"anonymous": {}, "admin": pipeline.headers}
    suffix = uuid.uuid4().hex[:6]
    for role, opds in (("facility_manager", [IN_SCOPE]), ("leadership", None)):
        username = f"matrix-{role}-{suffix}"
        create_test_user(pipeline.database_url, username, PASSWORD, role, opds)
        headers[role] = {"Authorization": f"Bearer {login(pipeline.api_url, username, PASSWORD)}"}
    create_test_user(pipeline.database_url, LOGIN_USER, PASSWORD, "leadership")

    created = pipeline.request("POST", "/api/v1/tokens", json={"name": "matrix-integration", "opds": [IN_SCOPE]})
    assert created.status_code == 201, created.text
    headers["integration"] = {"Authorization": f"Bearer {created.json()['token']}"}
    return headers


def call(pipeline, method: str, path: str, rule: Rule, headers: dict[str, str], opd: str | None) -> httpx.Response:
    """Send the route's sample request; a stream is closed once its status and headers arrived."""
    url = pipeline.api_url + path.format(opd=opd, node=NODE, alert_id=MISSING_ID, entry_id=MISSING_ID, token_id=MISSING_ID)
    request = dict(params=rule.params, headers=headers, json=rule.json, data=rule.form, timeout=15.0)
    if rule.stream:
        with httpx.stream(method, url, **request) as response:
            if response.status_code >= 400:
                response.read()
            return response
    return httpx.request(method, url, **request)


def test_matrix_covers_every_route(tmp_path):
    settings = ApiSettings(database_url=f"sqlite:///{tmp_path / 'registry.sqlite3'}", pseudonymize=False)
    app = create_app(settings)
    routes = set()
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, APIRoute) or route.path == app.openapi_url:
            for method in route.methods - {"HEAD"}:
                routes.add((method, route.path))

    missing = sorted(routes - set(MATRIX))
    stale = sorted(set(MATRIX) - routes)
    assert missing == [], "routes without a row in MATRIX; decide who may call them"
    assert stale == [], "rows of MATRIX for routes the app no longer has"


@pytest.mark.parametrize(("method", "path", "rule", "caller", "opd"), matrix_cases())
def test_route_authorization(pipeline, caller_headers, method, path, rule, caller, opd):
    response = call(pipeline, method, path, rule, caller_headers[caller], opd)
    outcome = expected_outcome(path, rule, caller, opd)

    if outcome == "allowed":
        assert response.status_code not in (401, 403), response.text
        return
    assert response.status_code == (401 if outcome == "not_authenticated" else 403), response.text
    assert response.json()["code"] == outcome


def test_opd_list_limited_to_scope(pipeline, caller_headers):
    for caller in ("facility_manager", "integration"):
        opds = httpx.get(pipeline.api_url + "/api/v1/opds", headers=caller_headers[caller], timeout=10).json()
        assert [opd["id"] for opd in opds] == [IN_SCOPE], caller


def test_opd_list_complete_for_leadership(pipeline, caller_headers):
    opds = httpx.get(pipeline.api_url + "/api/v1/opds", headers=caller_headers["leadership"], timeout=10).json()
    assert {IN_SCOPE, OUT_OF_SCOPE} <= {opd["id"] for opd in opds}


def test_overview_limited_to_scope(pipeline, caller_headers):
    response = httpx.get(pipeline.api_url + "/api/v1/overview", headers=caller_headers["facility_manager"], timeout=10)
    assert response.status_code == 200, response.text
    assert [opd["opd"] for opd in response.json()["opds"]] == [IN_SCOPE]


def test_opd_query_filter_outside_scope_403(pipeline, caller_headers):
    response = httpx.get(
        pipeline.api_url + "/api/v1/alerts", params={"opd": OUT_OF_SCOPE}, headers=caller_headers["facility_manager"], timeout=10
    )
    assert response.status_code == 403
    assert response.json()["code"] == "opd_forbidden"


def test_live_outside_scope_403(pipeline, caller_headers):
    response = httpx.get(
        pipeline.api_url + "/api/v1/live", params={"opd": OUT_OF_SCOPE}, headers=caller_headers["integration"], timeout=10
    )
    assert response.status_code == 403
    assert response.json()["code"] == "opd_forbidden"


def test_forbidden_message_names_roles(pipeline, caller_headers):
    response = httpx.get(
        pipeline.api_url + "/api/v1/audit", headers={**caller_headers["leadership"], "Accept-Language": "en"}, timeout=10
    )
    assert response.json()["detail"] == "Access denied: this request needs the role admin, and your role is leadership."


def test_opd_forbidden_message_names_opd(pipeline, caller_headers):
    response = httpx.get(pipeline.api_url + f"/api/v1/opds/{OUT_OF_SCOPE}", headers=caller_headers["facility_manager"], timeout=10)
    assert response.json()["detail"] == (
        f"Akses ditolak: akun Anda tidak berhak atas OPD '{OUT_OF_SCOPE}'. OPD yang boleh diakses: {IN_SCOPE}."
    )
