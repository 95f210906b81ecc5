"""Dashboard in headless Debian Chromium, against real Mosquitto, InfluxDB, ingest and API processes.

The module publishes readings, punches and a node status of the catalogue OPD ``dinkes``
over MQTT, then opens the dashboard that the ``pipeline`` API serves. Each page's numbers are
compared with the API's JSON for the same request, formatted in Python the way the dashboard
formats them (``browser_helpers``). Every request the browser makes to a host other than
127.0.0.1 is aborted and recorded, and the tests assert that there was none. A screenshot of
every page goes to ``test-artifacts/screenshots/``.

The alert, edge-node and login tests need routes that an API may not serve yet. They check
for the route first and skip, naming it, when the API returns 404 for it.
"""

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from api.dashboard import STATIC_DIR
from browser_helpers import (
    SCREENSHOT_DIR,
    OffsiteGuard,
    format_clock,
    format_date,
    format_number,
    format_percent,
    format_rupiah,
    launch_chromium,
    normalize,
)
import conftest
from conftest import wait_until

ZONE = ZoneInfo("Asia/Jakarta")
OPD = "dinkes"
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
TIMEOUT_MS = 10_000
"""Maximum wait for one element, ms; the pages load in well under a second on loopback."""

expect.set_options(timeout=TIMEOUT_MS)

LABELS = {language: json.loads((STATIC_DIR / "i18n" / f"{language}.json").read_text(encoding="utf-8")) for language in ("id", "en")}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _messages(now: datetime) -> list[tuple[str, str]]:
    """Build the module's messages of ``dinkes``: 30 hours of meter registers, room readings, punches, a status."""
    now_ms = _ms(now)
    midnight_ms = _ms(now.replace(hour=0, minute=0, second=0, microsecond=0))
    messages = []

    def add(node: str, stream: str, payload: dict) -> None:
        messages.append((f"smartoffice/v1/{OPD}/{node}/{stream}", json.dumps(payload)))

    # Meters: a register reading every hour for 30 hours, 2.5 and 1.25 kWh per hour.
    for hours_back in range(30, 0, -1):
        ts = now_ms - hours_back * HOUR_MS + MINUTE_MS
        step = 30 - hours_back
        add("gw-01", "energy", {"device": "meter-01", "ts": ts, "circuit": "panel-utama", "energy_kwh_total": 1000.0 + 2.5 * step, "power_w": 2500.0})
        add("gw-02", "energy", {"device": "meter-02", "ts": ts, "circuit": "panel-lantai-2", "energy_kwh_total": 500.0 + 1.25 * step, "power_w": 1250.0})

    # Rooms: 6 hours of trend for two rooms; the newest reading of ruang-kepala breaks the CO2 limit.
    for hours_back in range(6, 0, -1):
        ts = now_ms - hours_back * HOUR_MS
        add("gw-01", "room", {"device": "sensor-ruang-rapat", "ts": ts, "room": "ruang-rapat", "temperature_c": 24.0 + hours_back / 10, "humidity_pct": 60.0, "co2_ppm": 700.0})
        add("gw-01", "room", {"device": "sensor-ruang-kepala", "ts": ts, "room": "ruang-kepala", "temperature_c": 26.0, "humidity_pct": 55.0, "co2_ppm": 900.0})
    add("gw-01", "room", {"device": "sensor-ruang-rapat", "ts": now_ms - MINUTE_MS, "room": "ruang-rapat", "temperature_c": 25.4, "humidity_pct": 68.2, "co2_ppm": 812.0})
    add("gw-01", "room", {"device": "sensor-ruang-kepala", "ts": now_ms - MINUTE_MS, "room": "ruang-kepala", "temperature_c": 28.6, "humidity_pct": 55.0, "co2_ppm": 1250.0})

    # Punches: three employees today, after local midnight whatever the hour of the test.
    punch_ms = max(midnight_ms + MINUTE_MS, now_ms - 30 * MINUTE_MS)
    for index, employee in enumerate(("198503142010011007", "199001012015022001", "197712312005011003")):
        add("gw-01", "attendance", {"device": "absen-01", "ts": punch_ms + index * 1000, "employee_id": employee, "punch": "in", "verify": "fingerprint"})

    add("gw-01", "status", {"state": "online", "ts": now_ms - 30_000, "sw_version": "1.4.2", "uptime_s": 93_784, "queue_depth": 0, "dropped_total": 0})
    return messages


@dataclass
class Stack:
    """The pipeline with this module's data, and the bearer token when the API requires a login."""

    pipeline: object
    token: str | None
    user: dict | None

    @property
    def url(self) -> str:
        return self.pipeline.api_url

    def get(self, path: str, language: str = "id", **params) -> httpx.Response:
        """GET ``path`` with the token, asking for messages in ``language``."""
        headers = {"Accept-Language": language}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return httpx.get(self.url + path, params=params, headers=headers, timeout=10.0)

    def json(self, path: str, **params) -> dict:
        """GET ``path`` and return its JSON, failing the test on any status but 200."""
        response = self.get(path, **params)
        assert response.status_code == 200, f"GET {path} {params}: {response.status_code} {response.text[:300]}"
        return response.json()


def _admin_credentials(pipeline) -> tuple[str | None, str | None]:
    """Return the user name and password of the pipeline's admin user, (None, None) when conftest defines none."""
    username = getattr(pipeline, "admin_username", None) or getattr(conftest, "PIPELINE_ADMIN", None)
    password = getattr(pipeline, "admin_password", None) or getattr(conftest, "PIPELINE_ADMIN_PASSWORD", None)
    return username, password


def _login(pipeline) -> tuple[str | None, dict | None]:
    """Return a token and user when the API requires a login, else (None, None)."""
    if httpx.get(pipeline.api_url + "/api/v1/overview", timeout=10.0).status_code != 401:
        return None, None

    username, password = _admin_credentials(pipeline)
    if not username or not password:
        pytest.fail("the API requires a login, but tests/conftest.py defines no admin user (PIPELINE_ADMIN) to log in with")
    response = httpx.post(pipeline.api_url + "/api/v1/auth/token", data={"username": username, "password": password}, timeout=10.0)
    assert response.status_code == 200, f"login as {username!r} failed: {response.status_code} {response.text[:300]}"
    body = response.json()
    return body["access_token"], body["user"]


@pytest.fixture(scope="module")
def stack(pipeline) -> Stack:
    """The pipeline once this module's messages are stored and the API's live view is subscribed."""
    subscribed = wait_until(lambda: "live view subscribed to" in pipeline.api.log_tail(2000), timeout_s=20)
    assert subscribed, pipeline.api.log_tail(30)

    now = datetime.now(ZONE)
    messages = _messages(now)
    pipeline.publish(messages)
    token, user = _login(pipeline)
    stack = Stack(pipeline, token, user)

    def stored() -> bool:
        rooms = stack.json(f"/api/v1/opds/{OPD}/latest", stream="room")["readings"]
        punches = stack.json(f"/api/v1/opds/{OPD}/attendance")["events"]
        meters = stack.json(f"/api/v1/opds/{OPD}/latest", stream="energy")["readings"]
        newest_meter_ts = max((reading["ts"] for reading in meters), default=0)
        return len(rooms) == 2 and len(punches) == 3 and newest_meter_ts >= _ms(now) - HOUR_MS
    assert wait_until(stored, timeout_s=20), "the published messages never all reached the API"
    return stack


@dataclass
class Browser:
    """A Chromium context with an off-site guard, and the page errors of every page it opened."""

    context: object
    guard: OffsiteGuard
    stack: Stack
    page_errors: list[str] = field(default_factory=list)

    def open(self, route: str = "#/", language: str = "id", logged_in: bool = True):
        """Open the dashboard at ``route`` in a new tab, in ``language``, with the module's session."""
        page = self.context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda error: self.page_errors.append(f"{page.url}: {error}"))

        # Storage belongs to the origin, so it is set on a small page of the API before the dashboard loads.
        page.goto(self.stack.url + "/dashboard/static/icons/favicon.svg")
        session = {"token": self.stack.token, "user": self.stack.user, "expiresAt": None} if self.stack.token and logged_in else None
        page.evaluate(
            """([language, session]) => {
                localStorage.setItem("smartoffice.language", language);
                if (session) { sessionStorage.setItem("smartoffice.session", JSON.stringify(session)); }
            }""",
            [language, session],
        )
        page.goto(f"{self.stack.url}/dashboard/{route}")
        return page

    def screenshot(self, page, name: str) -> None:
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT_DIR / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def browser(stack, tmp_path_factory):
    """Debian's Chromium with a fresh profile, for the module."""
    with sync_playwright() as playwright:
        context = launch_chromium(playwright, tmp_path_factory.mktemp("chromium-profile"))
        guard = OffsiteGuard()
        guard.attach(context)
        yield Browser(context, guard, stack)
        context.close()


@pytest.fixture
def dashboard(browser):
    """The module's browser; after the test, no page error and no off-site request may have happened."""
    errors_before = len(browser.page_errors)
    yield browser
    assert browser.page_errors[errors_before:] == []
    assert browser.guard.offsite() == []


def _text(locator) -> str:
    return normalize(locator.text_content())


def _label(language: str, key: str) -> str:
    return LABELS[language][key]


def test_label_files_have_same_keys():
    """Both label files define the same keys, none of them empty."""
    assert set(LABELS["id"]) == set(LABELS["en"])
    assert [key for key, text in LABELS["id"].items() if not text.strip()] == []
    assert [key for key, text in LABELS["en"].items() if not text.strip()] == []


@pytest.mark.integration
def test_root_redirects_to_dashboard(stack):
    """/ redirects to /dashboard/, which is served with a same-origin-only content policy."""
    response = httpx.get(stack.url + "/", follow_redirects=False, timeout=10.0)
    assert response.status_code == 307
    assert response.headers["location"] == "/dashboard/"

    page = httpx.get(stack.url + "/dashboard/", timeout=10.0)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<html lang="id">' in page.text

    script = httpx.get(stack.url + "/dashboard/static/js/main.js", timeout=10.0)
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]


@pytest.mark.integration
def test_meta_gives_zone_and_regency(stack):
    """/api/v1/meta names the regency and the zone with its abbreviation."""
    meta = stack.json("/api/v1/meta")
    assert meta["regency"]["name"] == "Kabupaten Lingga"
    assert meta["timezone"] == "Asia/Jakarta"
    assert meta["timezone_abbreviation"] == "WIB"
    assert meta["utc_offset"] == "+07:00"
    assert meta["default_language"] == "id"
    assert {"field": "co2_ppm", "side": ">", "limit": 1000.0} in meta["comfort"]
    assert {"field": "temperature_c", "side": "<", "limit": 24.0} in meta["comfort"]
    assert httpx.get(stack.url + "/api/v1/meta", timeout=10.0).status_code == 200
    assert meta["features"]["alerts"] is not _route_missing(stack, "GET", "/api/v1/alerts")
    assert meta["features"]["nodes"] is not _route_missing(stack, "GET", "/api/v1/nodes")
    assert meta["features"]["auth"] is not _route_missing(stack, "POST", "/api/v1/auth/token")


@pytest.mark.integration
def test_overview_matches_api(dashboard, stack):
    """Every figure of the OPD's overview card equals /api/v1/overview, in Indonesian format."""
    page = dashboard.open("#/")
    card = page.locator(f'article[data-opd="{OPD}"]')
    expect(card.locator('[data-field="energy-today"]')).not_to_be_empty()
    entry = next(item for item in stack.json("/api/v1/overview")["opds"] if item["opd"] == OPD)

    assert _text(card.locator('[data-field="devices-online"]')) == format_number(entry["devices"]["online"], "id", 0)
    assert _text(card.locator('[data-field="devices-offline"]')) == format_number(entry["devices"]["offline"], "id", 0)
    assert entry["attendance"]["punched"] == 3
    assert _text(card.locator('[data-field="attendance-rate"]')) == format_percent(entry["attendance"]["rate"], "id")
    assert _text(card.locator('[data-field="attendance-count"]')) == f"3 dari {entry['attendance']['employees']} pegawai"
    assert _text(card.locator('[data-field="energy-today"]')) == format_number(entry["energy"]["today_kwh"], "id") + " kWh"
    if entry["open_alerts"] is not None:
        assert _text(card.locator('[data-field="open-alerts"]')) == format_number(entry["open_alerts"], "id", 0)
    assert entry["worst_room"]["room"] == "ruang-kepala"
    # The card names the room as the catalogue does, and falls back to its id.
    shown_name = entry["worst_room"]["name"] or "ruang-kepala"
    assert _text(card.locator('[data-field="worst-room"]')).startswith(f"{shown_name}: CO₂ 1.250 ppm (batas > 1.000)")
    assert page.locator("html").get_attribute("lang") == "id"
    dashboard.screenshot(page, "overview")

    page.set_viewport_size({"width": 768, "height": 1024})
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the overview is {overflow} px wider than a 768 px tablet screen"
    dashboard.screenshot(page, "overview-tablet")
    page.close()


@pytest.mark.integration
def test_opd_page_matches_api(dashboard, stack):
    """Room values, energy totals with cost, the recap and the devices equal the API's responses."""
    page = dashboard.open(f"#/opd/{OPD}")
    room = page.locator('tr[data-room="ruang-rapat"]')
    expect(room.locator('[data-field="temperature_c"]')).not_to_be_empty()
    expect(page.locator('[data-field="hourly-kwh"]')).to_be_visible()
    expect(page.locator('[data-field="daily-kwh"]')).to_be_visible()

    latest = stack.json(f"/api/v1/opds/{OPD}/latest", stream="room")["readings"]
    values = next(reading["values"] for reading in latest if reading["device"] == "sensor-ruang-rapat")
    assert _text(room.locator('[data-field="temperature_c"]')) == format_number(values["temperature_c"], "id", 1)
    assert _text(room.locator('[data-field="humidity_pct"]')) == format_number(values["humidity_pct"], "id", 1)
    assert _text(room.locator('[data-field="co2_ppm"]')) == format_number(values["co2_ppm"], "id", 0)
    kepala = page.locator('tr[data-room="ruang-kepala"] td[data-column="co2_ppm"]')
    assert "uncomfortable" in (kepala.get_attribute("class") or "")

    today = datetime.now(ZONE).date()
    hourly = stack.json(f"/api/v1/opds/{OPD}/energy/report", window="1h", start=today.isoformat())
    daily = stack.json(f"/api/v1/opds/{OPD}/energy/report", window="1d", start=(today - timedelta(days=13)).isoformat())
    assert daily["total_kwh"] > 0
    assert _text(page.locator('[data-field="hourly-kwh"]')) == format_number(hourly["total_kwh"], "id") + " kWh"
    assert _text(page.locator('[data-field="hourly-cost"]')) == format_rupiah(hourly["total_cost_idr"], "id")
    assert _text(page.locator('[data-field="daily-kwh"]')) == format_number(daily["total_kwh"], "id") + " kWh"
    assert _text(page.locator('[data-field="daily-cost"]')) == format_rupiah(daily["total_cost_idr"], "id")
    assert page.locator('[data-block="daily"] svg.chart rect.chart__bar').count() == len(daily["totals"])
    tariff = daily["tariffs"][0]
    assert f"{tariff['tariff_class']}: {format_rupiah(tariff['idr_per_kwh'], 'id', 2)}/kWh" in _text(page.locator('[data-block="daily"]'))

    recap = stack.json(f"/api/v1/opds/{OPD}/attendance/recap")
    assert _text(page.locator('[data-field="recap-employees"]')) == format_number(recap["employee_count"], "id", 0)
    for status, count in recap["totals"].items():
        assert _text(page.locator(f'[data-field="recap-total-{status}"]')) == format_number(count, "id", 0), status
    assert page.locator("tr[data-employee]").count() == len(recap["employees"])

    device = page.locator('tr[data-node="gw-01"][data-device="sensor-ruang-rapat"]')
    reading_time = datetime.fromisoformat(next(r["time"] for r in latest if r["device"] == "sensor-ruang-rapat"))
    seen = format_clock(reading_time, "id") + " WIB"
    if reading_time.date() != today:
        seen = f"{format_date(reading_time, 'id')} {seen}"
    assert _text(device.locator('[data-field="last-seen"]')) == seen
    assert _text(device.locator('[data-field="state"]')) == _label("id", "state.online")
    assert _text(page.locator('tr[data-node="gw-01"]:not([data-device]) [data-field="sw-version"]')) == "1.4.2"
    dashboard.screenshot(page, "opd")
    page.close()


@pytest.mark.integration
def test_live_reading_updates_without_reload(dashboard, stack):
    """A room reading published over MQTT appears on the open OPD page without a reload."""
    page = dashboard.open(f"#/opd/{OPD}")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "open")
    cell = page.locator('tr[data-room="ruang-rapat"] [data-field="temperature_c"]')
    expect(cell).not_to_be_empty()
    page.evaluate("window.__loadedOnce = true")

    now_ms = _ms(datetime.now(ZONE))
    stack.pipeline.publish([(f"smartoffice/v1/{OPD}/gw-01/room", json.dumps({"device": "sensor-ruang-rapat", "ts": now_ms, "room": "ruang-rapat", "temperature_c": 31.7, "co2_ppm": 905.0}))])

    expect(cell).to_have_text("31,7")
    expect(page.locator('tr[data-room="ruang-rapat"] [data-field="co2_ppm"]')).to_have_text("905")
    assert page.evaluate("window.__loadedOnce") is True
    assert "uncomfortable" in (page.locator('tr[data-room="ruang-rapat"] td[data-column="temperature_c"]').get_attribute("class") or "")
    page.close()


@pytest.mark.integration
def test_language_switch_is_remembered(dashboard, stack):
    """English is chosen in the header, survives a reload, and Indonesian comes back the same way."""
    page = dashboard.open(f"#/opd/{OPD}")
    cell = page.locator('tr[data-room="ruang-rapat"] [data-field="temperature_c"]')
    expect(cell).not_to_be_empty()
    assert _text(page.locator('.site-nav a[data-route="overview"]')) == _label("id", "nav.overview")
    temperature = next(r["values"]["temperature_c"] for r in stack.json(f"/api/v1/opds/{OPD}/latest", stream="room")["readings"] if r["device"] == "sensor-ruang-rapat")

    page.select_option("#language-select", "en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator('.site-nav a[data-route="overview"]')).to_have_text(_label("en", "nav.overview"))
    expect(cell).to_have_text(format_number(temperature, "en", 1))
    expect(page.locator("#section-rooms")).to_have_text(_label("en", "rooms.title"))

    page.reload()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator('.site-nav a[data-route="overview"]')).to_have_text(_label("en", "nav.overview"))
    expect(page.locator('[data-field="hourly-kwh"]')).to_be_visible()
    today = datetime.now(ZONE)
    assert format_date(today, "en") in _text(page.locator('[data-block="hourly"] .energy-heading'))
    dashboard.screenshot(page, "opd-en")

    page.select_option("#language-select", "id")
    expect(page.locator("html")).to_have_attribute("lang", "id")
    page.reload()
    expect(page.locator("html")).to_have_attribute("lang", "id")
    expect(page.locator('.site-nav a[data-route="overview"]')).to_have_text(_label("id", "nav.overview"))
    expect(page.locator('[data-field="hourly-kwh"]')).to_be_visible()
    assert format_date(today, "id") in _text(page.locator('[data-block="hourly"] .energy-heading'))
    page.close()


@pytest.mark.integration
def test_api_error_is_shown(dashboard, stack):
    """An unknown OPD shows the API's own 404 message, in the dashboard's language."""
    answer = stack.get("/api/v1/opds/tidak-ada", language="id")
    assert answer.status_code == 404

    page = dashboard.open("#/opd/tidak-ada")
    error = page.locator(".error-box")
    expect(error).to_be_visible()
    assert error.get_attribute("role") == "alert"
    assert answer.json()["detail"] in _text(error)
    assert "opd_not_found" in _text(error)
    dashboard.screenshot(page, "error")
    page.close()


@pytest.mark.integration
def test_exports_download_csv(dashboard, stack):
    """The exports page downloads the month's attendance recap as the API's CSV file."""
    month = datetime.now(ZONE).strftime("%Y-%m")
    page = dashboard.open(f"#/exports?opd={OPD}")
    link = page.locator('[data-export="attendance-csv"]')
    expect(link).to_be_visible()
    dashboard.screenshot(page, "exports")

    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename == f"rekap-kehadiran-{OPD}-{month}.csv"
    content = open(download.path(), "rb").read()
    expected = stack.get(f"/api/v1/opds/{OPD}/exports/attendance", month=month, format="csv").content
    assert content.startswith(b"\xef\xbb\xbf")
    assert content.splitlines()[:1] == expected.splitlines()[:1]
    page.close()


@pytest.mark.integration
def test_controls_have_labels_and_keyboard_focus(dashboard):
    """Every form control has a label, and the skip link is the first Tab stop and moves focus to the content."""
    page = dashboard.open(f"#/opd/{OPD}")
    expect(page.locator('[data-field="hourly-kwh"]')).to_be_visible()
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll("input, select, textarea, button")]
            .filter((el) => !el.labels?.length && !el.getAttribute("aria-label") && !el.textContent.trim())
            .map((el) => el.outerHTML.slice(0, 80))"""
    )
    assert unlabelled == []

    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "skip-link"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.close()


@pytest.mark.integration
def test_login_screen_has_labelled_form(dashboard):
    """The login screen renders a labelled user name and password form."""
    page = dashboard.open("#/login", logged_in=False)
    expect(page.get_by_label(_label("id", "login.username"))).to_be_visible()
    expect(page.get_by_label(_label("id", "login.password"))).to_have_attribute("type", "password")
    dashboard.screenshot(page, "login")
    page.close()


@pytest.mark.integration
def test_docs_page_works_offline(dashboard, stack):
    """/docs renders Swagger UI from files the API serves, with no request off the machine."""
    page = dashboard.context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(stack.url + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Kantor Pintar API")
    expect(page.locator(".opblock").first).to_be_visible()
    dashboard.screenshot(page, "docs")
    page.close()


def _route_missing(stack: Stack, method: str, path: str, **params) -> bool:
    """Return True when the API has no route for ``path``: a 404 with the generic not_found code."""
    response = httpx.request(method, stack.url + path, params=params, headers={"Authorization": f"Bearer {stack.token}"} if stack.token else {}, timeout=10.0)
    return response.status_code == 404 and response.json().get("code") == "not_found"


@pytest.mark.integration
def test_alerts_screen_lists_api_alerts(dashboard, stack):
    """The alert list shows each alert of GET /api/v1/alerts?state=all, and acknowledging one updates the API."""
    if _route_missing(stack, "GET", "/api/v1/alerts"):
        pytest.skip("GET /api/v1/alerts is not served by this API yet")

    # The API's monitor opens alerts for this module's readings (CO2 above the limit, silent
    # devices) on its own schedule, so the list is compared once the page and the API agree.
    def api_alerts() -> list[dict]:
        return stack.json("/api/v1/alerts", state="all")["alerts"]

    wait_until(api_alerts, timeout_s=15)
    page = dashboard.open("#/alerts?state=all")
    expect(page.locator("table.alerts-table")).to_be_visible()

    def page_ids() -> list[int]:
        return sorted(int(value) for value in page.locator("tr[data-alert-id]").evaluate_all("rows => rows.map((row) => row.dataset.alertId)"))

    agreed = wait_until(lambda: page_ids() == sorted(alert["id"] for alert in api_alerts()), timeout_s=15)
    alerts = api_alerts()
    assert agreed, f"page shows alerts {page_ids()}, the API lists {sorted(alert['id'] for alert in alerts)}"
    for alert in alerts:
        row = page.locator(f'tr[data-alert-id="{alert["id"]}"]')
        assert row.get_attribute("data-state") == alert["state"]
    dashboard.screenshot(page, "alerts")

    pending = [alert for alert in alerts if alert["state"] == "open" and alert["acknowledged_by"] is None]
    if pending:
        alert = pending[0]
        page.locator(f'tr[data-alert-id="{alert["id"]}"] button[data-action="acknowledge"]').click()
        expect(page.locator(f'tr[data-alert-id="{alert["id"]}"] button[data-action="acknowledge"]')).to_have_count(0)
        assert stack.json(f"/api/v1/alerts/{alert['id']}")["acknowledged_by"] is not None
    page.close()


@pytest.mark.integration
def test_nodes_screen_shows_config_state(dashboard, stack):
    """The edge-node list matches GET /api/v1/nodes, and an admin's invalid and valid saves show the API's responses."""
    if _route_missing(stack, "GET", "/api/v1/nodes", opd=OPD):
        pytest.skip("GET /api/v1/nodes is not served by this API yet")

    nodes = stack.json("/api/v1/nodes", opd=OPD)["nodes"]
    page = dashboard.open(f"#/nodes/{OPD}")
    expect(page.locator("tr[data-node]")).to_have_count(len(nodes))
    for node in nodes:
        row = page.locator(f'tr[data-node="{node["node"]}"]')
        assert _text(row.locator('[data-field="config-state"]')) == _label("id", f"nodes.config_state.{node['config_state']}")

    page.locator('tr[data-node="gw-01"] button[data-action="open-config"]').click()
    expect(page.locator("#section-config")).to_have_text("Konfigurasi gw-01")
    dashboard.screenshot(page, "nodes")

    admin = stack.user is None or stack.user.get("role") == "admin"
    settings = page.locator("#config-settings")
    if not admin:
        expect(settings).to_have_count(0)
        page.close()
        return

    settings.fill('{"heartbeat_s": 0}')
    page.get_by_role("button", name=_label("id", "nodes.save")).click()
    error = page.locator("#node-config .error-box")
    expect(error).to_contain_text("invalid_node_config")
    settings.fill('{"heartbeat_s": 30}')
    page.get_by_role("button", name=_label("id", "nodes.save")).click()
    config = wait_until(lambda: (answer := stack.json(f"/api/v1/opds/{OPD}/nodes/gw-01/config"))["version"] and answer)
    assert config["settings"] == {"heartbeat_s": 30}
    expect(page.locator("#node-config [role=status]")).to_contain_text(f"Versi {config['version']} disimpan")
    page.close()


@pytest.mark.integration
def test_login_flow_stores_session(dashboard, stack):
    """A screen opened without a session leads to the login, which stores the session and returns; a wrong password shows the API's message."""
    probe = httpx.post(stack.url + "/api/v1/auth/token", data={}, timeout=10.0)
    if probe.status_code == 404 and probe.json().get("code") == "not_found":
        pytest.skip("POST /api/v1/auth/token is not served by this API yet")
    username, password = _admin_credentials(stack.pipeline)
    if not username or not password:
        pytest.skip("tests/conftest.py defines no admin user (PIPELINE_ADMIN) to log in with")

    page = dashboard.open("#/exports", logged_in=False)
    expect(page).to_have_url(re.compile(r"#/login\?next="))
    page.get_by_label(_label("id", "login.username")).fill(username)
    page.get_by_label(_label("id", "login.password")).fill(password + "-wrong")
    page.get_by_role("button", name=_label("id", "login.submit")).click()
    expect(page.locator(".error-box")).to_be_visible()

    page.get_by_label(_label("id", "login.password")).fill(password)
    page.get_by_role("button", name=_label("id", "login.submit")).click()
    expect(page).to_have_url(f"{stack.url}/dashboard/#/exports")
    expect(page.locator('[data-field="user"]')).to_contain_text(username)
    assert page.evaluate("JSON.parse(sessionStorage.getItem('smartoffice.session')).user.username") == username
    page.close()


def test_rejected_live_stream_leads_to_login(dashboard):
    """A live stream the API rejects (an expired token) sends the user to the login screen."""
    page = dashboard.open("#/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "open")

    # From now on the API rejects the token, as it does once the token has expired.
    expired = {"detail": "Token kedaluwarsa.", "code": "token_expired", "parameter": None}
    page.route("**/api/v1/live?*", lambda route: route.fulfill(status=401, json=expired))
    page.route("**/api/v1/auth/me", lambda route: route.fulfill(status=401, json=expired))
    page.evaluate("window.location.hash = '#/alerts'")

    expect(page).to_have_url(re.compile(r"#/login"))
    page.close()
