"""Field collection and rate-limited problem logging shared by the adapters (pure logic, fake clock)."""

import logging

from edge.adapters.base import AdapterStats
from edge.adapters.readings import FieldCollector, FieldProblem, ProblemLog


def test_field_collector_keeps_finite_numbers():
    collector = FieldCollector()

    collector.add_number("power_w", 57, "Power")
    collector.add_number("voltage_v", float("nan"), "Voltage")
    collector.add_number("current_a", "0.26", "Current")
    collector.add_number("power_factor", True, "Factor")
    collector.add_number("frequency_hz", None, "Frequency")
    collector.add_bool("occupancy", 1, "occupancy")

    assert collector.fields == {"power_w": 57.0}
    assert isinstance(collector.fields["power_w"], float)
    assert [(p.reason, p.field) for p in collector.problems] == [
        ("nan_field", "voltage_v"),
        ("invalid_field", "current_a"),
        ("invalid_field", "power_factor"),
        ("invalid_field", "occupancy"),
    ]


def test_problem_log_counts_all_logs_once_per_interval(caplog):
    clock = [100.0]
    stats = AdapterStats()
    problems = ProblemLog(stats, logging.getLogger("test.problems"), "plugs", interval_s=60.0, monotonic=lambda: clock[0])
    caplog.set_level(logging.WARNING, logger="test.problems")

    for _ in range(5):
        problems.report("invalid_payload", "plug-a", "payload is not valid JSON")
    problems.report("invalid_payload", "plug-b", "payload is not valid JSON")
    clock[0] += 61.0
    problems.report_fields("plug-a", [FieldProblem("nan_field", "power_w", "Power=nan")])
    problems.report("invalid_payload", "plug-a", "payload is not valid JSON")

    messages = [record.getMessage() for record in caplog.records]
    assert stats.errors["invalid_payload"] == 7
    assert stats.errors["nan_field"] == 1
    assert stats.fields_dropped == 1
    assert len(messages) == 4
    assert messages[0] == "plugs: device plug-a: payload is not valid JSON [invalid_payload]"
    assert messages[3].endswith("(4 more since the last log line)")
