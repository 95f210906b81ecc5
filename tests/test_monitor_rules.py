"""Comfort alert state machine, liveness rules and the alert rules file. Pure logic."""

import pytest

from api.config import DEFAULT_ALERT_RULES
from api.monitor.comfort import Change, ComfortEvaluator, Subject
from api.monitor.liveness import LivenessTracker
from api.monitor.rules import AlertRules, Severity, load_alert_rules
from contract.catalogue import CatalogueError

MINUTE_MS = 60_000
T0 = 1_796_000_000_000

RULES = AlertRules.model_validate(
    {
        "comfort": {
            "co2_ppm": {"high": {"warning": 1000, "critical": 1500}, "hysteresis": 50},
            "temperature_c": {"high": {"warning": 27, "critical": 30}, "low": {"warning": 24, "critical": 20}, "hysteresis": 0.5},
        },
        "min_duration_s": 120,
        "office_hours_only": True,
    }
)
CO2 = Subject("dinkes", "gw-01", "sensor-1", "ruang-rapat", "co2_ppm")
TEMPERATURE = Subject("dinkes", "gw-01", "sensor-1", "ruang-rapat", "temperature_c")


def feed(evaluator, subject, values, start_ms=T0, step_ms=MINUTE_MS, in_hours=True):
    changes = []
    for index, value in enumerate(values):
        changes += evaluator.observe(subject, value, start_ms + index * step_ms, in_hours)
    return changes


def test_default_rules_file_loads():
    rules = load_alert_rules(DEFAULT_ALERT_RULES)
    assert rules.comfort["co2_ppm"].high.warning == 1000
    assert rules.comfort["temperature_c"].low.warning == 24
    assert rules.comfort["temperature_c"].high.warning == 27
    assert rules.comfort["humidity_pct"].high.warning == 70


def test_rules_file_unknown_measurement(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("comfort:\n  noise_db:\n    high: {warning: 70}\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match="noise_db"):
        load_alert_rules(path)


def test_rules_critical_below_warning_rejected(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("comfort:\n  co2_ppm:\n    high: {warning: 1000, critical: 900}\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match="high.critical 900"):
        load_alert_rules(path)


def test_comfort_opens_after_min_duration():
    evaluator = ComfortEvaluator(RULES)
    # Out of range at 0, 1 and 2 minutes: the alert opens with the third reading, started at 0.
    changes = feed(evaluator, CO2, [1100, 1120, 1130])
    assert [change.change for change in changes] == [Change.OPENED]
    assert changes[0].ts_ms == T0
    assert changes[0].kind == "co2_high"
    assert changes[0].severity is Severity.WARNING
    assert changes[0].threshold == 1000


def test_comfort_single_spike_opens_nothing():
    evaluator = ComfortEvaluator(RULES)
    assert feed(evaluator, CO2, [1200, 800, 1200, 800]) == []


def test_comfort_limit_itself_is_inside():
    evaluator = ComfortEvaluator(RULES)
    assert feed(evaluator, CO2, [1000, 1000, 1000]) == []
    assert [change.change for change in feed(evaluator, CO2, [1001, 1001, 1001], start_ms=T0 + 5 * MINUTE_MS)] == [Change.OPENED]


def test_comfort_escalates_and_keeps_open_inside_hysteresis():
    evaluator = ComfortEvaluator(RULES)
    changes = feed(evaluator, CO2, [1100, 1100, 1100, 1600, 980, 940])
    kinds = [(change.change, change.severity) for change in changes]
    assert kinds == [
        (Change.OPENED, Severity.WARNING),
        (Change.UPDATED, Severity.CRITICAL),
        # 980 is below 1,000 but not by the 50 ppm hysteresis: still open, back to warning.
        (Change.UPDATED, Severity.WARNING),
        (Change.CLOSED, Severity.WARNING),
    ]
    assert changes[1].severity_changed
    assert changes[3].ts_ms == T0 + 5 * MINUTE_MS


def test_comfort_low_temperature():
    evaluator = ComfortEvaluator(RULES)
    changes = feed(evaluator, TEMPERATURE, [23.0, 19.5, 19.0, 24.2, 24.6])
    # 19.0 is below the critical 20.
    # Out of range from 0 min; opens at 2 min with that reading's severity (19.0 <= 20 is critical).
    assert [(change.change, change.kind, change.severity) for change in changes] == [
        (Change.OPENED, "temperature_low", Severity.CRITICAL),
        (Change.UPDATED, "temperature_low", Severity.WARNING),
        (Change.CLOSED, "temperature_low", Severity.WARNING),
    ]
    assert changes[0].ts_ms == T0
    # 24.2 is inside 24-27 but within the 0.5 °C hysteresis: it still counts as out of range.
    assert changes[2].ts_ms == T0 + 4 * MINUTE_MS


def test_comfort_outside_office_hours_closes():
    evaluator = ComfortEvaluator(RULES)
    opened = feed(evaluator, CO2, [1100, 1100, 1100])
    closed = evaluator.observe(CO2, 1300, T0 + 10 * MINUTE_MS, in_office_hours=False)
    assert [change.change for change in opened] == [Change.OPENED]
    assert [change.change for change in closed] == [Change.CLOSED]
    assert feed(evaluator, CO2, [1300, 1300, 1300], start_ms=T0 + 11 * MINUTE_MS, in_hours=False) == []


def test_comfort_ignores_older_reading():
    evaluator = ComfortEvaluator(RULES)
    feed(evaluator, CO2, [1100, 1100, 1100])
    assert evaluator.observe(CO2, 500, T0 - MINUTE_MS, True) == []
    assert evaluator.open_subjects() == [CO2]


def test_comfort_per_opd_override():
    document = RULES.model_dump()
    document["opds"] = {"diskominfo": {"comfort": {"temperature_c": {"high": {"warning": 22}, "low": {"warning": 16}}}}}
    rules = AlertRules.model_validate(document)
    evaluator = ComfortEvaluator(rules)
    server_room = Subject("diskominfo", "gw-01", "sensor-srv", "ruang-server", "temperature_c")
    assert [change.kind for change in feed(evaluator, server_room, [23.0, 23.0, 23.0])] == ["temperature_high"]
    assert [change.kind for change in feed(evaluator, TEMPERATURE, [23.0, 23.0, 23.0])] == ["temperature_low"]


def test_liveness_device_down_node_up():
    tracker = LivenessTracker(started_ms=T0, device_offline_s=600, node_offline_s=300)
    tracker.reading("dinkes", "gw-01", "meter-01", T0, T0)
    tracker.reading("dinkes", "gw-01", "sensor-1", T0, T0)
    # The node keeps sending heartbeats and sensor-1 keeps reporting; meter-01 went silent.
    for minute in range(1, 12):
        now = T0 + minute * MINUTE_MS
        tracker.status("dinkes", "gw-01", "online", now, now, retained=False)
        tracker.reading("dinkes", "gw-01", "sensor-1", now, now)

    offline = tracker.offline(T0 + 11 * MINUTE_MS)
    assert [(item.kind, item.device) for item in offline] == [("device_offline", "meter-01")]
    assert offline[0].since_ms == T0


def test_liveness_link_down_is_one_node_alert():
    tracker = LivenessTracker(started_ms=T0, device_offline_s=600, node_offline_s=300)
    tracker.reading("dinkes", "gw-01", "meter-01", T0, T0)
    tracker.reading("dinkes", "gw-01", "sensor-1", T0, T0)

    offline = tracker.offline(T0 + 20 * MINUTE_MS)
    assert [(item.kind, item.node, item.device) for item in offline] == [("node_offline", "gw-01", None)]


def test_liveness_last_will_is_immediate():
    tracker = LivenessTracker(started_ms=T0, device_offline_s=600, node_offline_s=300)
    tracker.reading("dinkes", "gw-01", "meter-01", T0, T0)
    tracker.status("dinkes", "gw-01", "offline", None, T0 + MINUTE_MS, retained=False)
    offline = tracker.offline(T0 + MINUTE_MS)
    assert [(item.kind, item.since_ms) for item in offline] == [("node_offline", T0 + MINUTE_MS)]

    # Readings flow again: the node is back even before its online status arrives.
    tracker.reading("dinkes", "gw-01", "meter-01", T0 + 2 * MINUTE_MS, T0 + 2 * MINUTE_MS)
    assert tracker.offline(T0 + 2 * MINUTE_MS) == []


def test_liveness_heartbeat_device_last_seen():
    tracker = LivenessTracker(started_ms=T0, device_offline_s=600, node_offline_s=300)
    tracker.expect("dinkes", "gw-01", "meter-01")
    now = T0 + 15 * MINUTE_MS
    # The node has a newer reading of meter-01 in its queue than the command server got.
    tracker.status("dinkes", "gw-01", "online", now, now, retained=False, device_last_seen={"meter-01": now - MINUTE_MS})
    assert tracker.offline(now) == []


def test_liveness_backlog_timestamps_count():
    tracker = LivenessTracker(started_ms=T0, device_offline_s=600, node_offline_s=300)
    now = T0 + 60 * MINUTE_MS
    # A backlog reading received now but measured 50 minutes ago does not make the device live.
    tracker.reading("dinkes", "gw-01", "meter-01", now - 50 * MINUTE_MS, now)
    offline = tracker.offline(now)
    assert [(item.kind, item.device) for item in offline] == [("device_offline", "meter-01")]


def test_liveness_never_seen_device_waits_for_timeout():
    tracker = LivenessTracker(started_ms=T0, device_offline_s=600, node_offline_s=300)
    tracker.expect("dinkes", "gw-01", "meter-01")
    tracker.status("dinkes", "gw-01", "online", T0, T0, retained=False)
    assert tracker.offline(T0 + 5 * MINUTE_MS) == []
    tracker.status("dinkes", "gw-01", "online", T0 + 11 * MINUTE_MS, T0 + 11 * MINUTE_MS, retained=False)
    assert [item.device for item in tracker.offline(T0 + 11 * MINUTE_MS)] == ["meter-01"]


def test_liveness_attendance_terminal_not_judged():
    tracker = LivenessTracker(started_ms=T0, device_offline_s=600, node_offline_s=300)
    tracker.reading("dinkes", "gw-01", "absen-01", T0, T0, sampled=False)
    # No punches all night, and the node's heartbeat even lists the terminal.
    now = T0 + 12 * 60 * MINUTE_MS
    tracker.status("dinkes", "gw-01", "online", now, now, retained=False, device_last_seen={"absen-01": T0})
    assert tracker.offline(now) == []


def test_liveness_backfill_at_start_waits_for_timeout():
    tracker = LivenessTracker(started_ms=T0, device_offline_s=600, node_offline_s=300)
    # A backfill right after start: readings measured an hour before the monitor started.
    tracker.reading("dinkes", "gw-01", "meter-01", T0 - 60 * MINUTE_MS, T0)
    tracker.status("dinkes", "gw-01", "online", T0 + 5 * MINUTE_MS, T0 + 5 * MINUTE_MS, retained=False)
    assert tracker.offline(T0 + 5 * MINUTE_MS) == []

    tracker.status("dinkes", "gw-01", "online", T0 + 11 * MINUTE_MS, T0 + 11 * MINUTE_MS, retained=False)
    offline = tracker.offline(T0 + 11 * MINUTE_MS)
    assert [(item.device, item.since_ms) for item in offline] == [("meter-01", T0 - 60 * MINUTE_MS)]
