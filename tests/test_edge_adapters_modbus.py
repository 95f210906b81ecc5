"""SDM630/SDM120 adapter against simulated meters over real Modbus TCP on 127.0.0.1.

The field case ``cases/sdm630_registers.jsonl`` contains raw input registers of an SDM630 with
the values they must decode to, a NaN register, and the values that swapped words and an
address off by one produce. The last two must never reach a reading.
"""

import json

import pytest

from conftest import CASES_DIR
from devstack.ports import free_port
from edge.adapters.modbus_sdm import SdmAdapter
from edge.adapters.sdm_registers import (
    MAX_REGISTERS_PER_REQUEST,
    REGISTERS_BY_MODEL,
    SDM630_REGISTERS,
    DecodeError,
    decode_register,
    plan_blocks,
)
from edge_adapter_harness import running_adapter
from firmware_sim.sdm_meter import MeterValues, SdmModbusServer, SimulatedSdmMeter

REGISTER_CASES = [json.loads(line) for line in (CASES_DIR / "sdm630_registers.jsonl").read_text().splitlines()]
DECODED_CASES = [case for case in REGISTER_CASES if "regs" in case and isinstance(case.get("expect"), float)]
FIELD_OF_CASE = {
    "voltage_l1": "voltage_v",
    "current_l1": "current_a",
    "power_total": "power_w",
    "power_factor_total": "power_factor",
    "import_kwh": "energy_kwh_total",
    "export_kwh": "energy_export_kwh_total",
}


def register(field: str):
    return next(r for r in SDM630_REGISTERS if r.field == field)


def words(case: dict) -> tuple[int, int]:
    return int(case["regs"][0], 16), int(case["regs"][1], 16)


def settings(port: int, meters: list[dict], **overrides) -> dict:
    base = {
        "type": "modbus_sdm",
        "id": "meters",
        "poll_interval_s": 0.2,
        "timeout_s": 0.3,
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.5,
        "meters": [{"host": "127.0.0.1", "port": port, **meter} for meter in meters],
    }
    return {**base, **overrides}


@pytest.fixture
async def sdm630_case_server():
    """An SDM630 at unit 1 serving the raw registers of the field case."""
    meter = SimulatedSdmMeter(unit_id=1, model="sdm630", rising=False)
    for case in DECODED_CASES:
        meter.set_registers(int(case["addr"], 16), words(case))
    server = SdmModbusServer([meter], free_port())
    await server.start()
    yield server, meter
    await server.stop()


@pytest.mark.parametrize("case", DECODED_CASES, ids=[case["name"] for case in DECODED_CASES])
def test_decode_register_field_case(case):
    value = decode_register(register(FIELD_OF_CASE[case["name"]]), *words(case))

    assert value == case["expect"]


def test_decode_register_rejects_nan():
    nan_case = next(case for case in REGISTER_CASES if "regs" in case and isinstance(case["expect"], str))

    with pytest.raises(DecodeError) as error:
        decode_register(register("power_factor"), *words(nan_case))

    assert error.value.reason == "nan_field"


def test_decode_register_rejects_swapped_words():
    voltage = next(case for case in DECODED_CASES if case["name"] == "voltage_l1")
    high, low = words(voltage)

    with pytest.raises(DecodeError) as error:
        decode_register(register("voltage_v"), low, high)

    assert error.value.reason == "implausible_value"
    assert "word order" in str(error.value)


def test_decode_register_rejects_address_off_by_one():
    shifted = next(case for case in REGISTER_CASES if "off-by-one" in case.get("wrong", ""))

    with pytest.raises(DecodeError) as error:
        decode_register(register("energy_kwh_total"), *words(shifted))

    assert error.value.reason == "implausible_value"


@pytest.mark.parametrize("model", sorted(REGISTERS_BY_MODEL))
def test_plan_blocks_reads_each_register(model):
    registers = REGISTERS_BY_MODEL[model]

    blocks = plan_blocks(registers)

    planned = [r for block in blocks for r in block.registers]
    assert sorted(planned, key=lambda r: r.address) == sorted(registers, key=lambda r: r.address)
    for block in blocks:
        assert block.count <= MAX_REGISTERS_PER_REQUEST
        for r in block.registers:
            assert block.address <= r.address
            assert r.address + 2 <= block.address + block.count
    assert len(blocks) <= 3


async def test_sdm630_field_case_over_modbus_tcp(sdm630_case_server):
    server, _ = sdm630_case_server
    meters = [{"device": "meter-main", "circuit": "panel-a", "model": "sdm630", "unit_id": 1}]

    async with running_adapter(SdmAdapter, settings(server.port, meters)) as running:
        await running.until(lambda: running.readings)

    payload = running.payloads("energy")[0]
    assert payload["device"] == "meter-main"
    assert payload["circuit"] == "panel-a"
    assert payload["voltage_v"] == 230.1
    assert payload["current_a"] == 4.35
    assert payload["power_w"] == 1001.0
    assert payload["power_factor"] == 0.98
    assert payload["energy_kwh_total"] == 12345.678
    assert payload["energy_export_kwh_total"] == 0.0
    assert payload["frequency_hz"] == 50.0
    assert running.contract_problems == []
    assert running.stats.fields_dropped == 0


async def test_sdm120_reading_over_modbus_tcp():
    values = MeterValues(voltage_v=228.4, current_a=1.25, power_w=265.5, power_factor=0.93, frequency_hz=50.02, import_kwh=842.25)
    server = SdmModbusServer([SimulatedSdmMeter(unit_id=7, model="sdm120", values=values, rising=False)], free_port())
    await server.start()
    try:
        meters = [{"device": "meter-server-room", "model": "sdm120", "unit_id": 7}]
        async with running_adapter(SdmAdapter, settings(server.port, meters)) as running:
            await running.until(lambda: running.readings)
    finally:
        await server.stop()

    payload = running.payloads("energy")[0]
    assert payload["voltage_v"] == 228.4
    assert payload["current_a"] == 1.25
    assert payload["power_w"] == 265.5
    assert payload["power_factor"] == 0.93
    assert payload["frequency_hz"] == 50.02
    assert payload["energy_kwh_total"] == 842.25
    assert "circuit" not in payload
    assert running.contract_problems == []


async def test_sdm_nan_register_drops_only_that_field(sdm630_case_server):
    server, meter = sdm630_case_server
    meter.inject_nan("power_factor_total")
    meters = [{"device": "meter-main", "model": "sdm630"}]

    async with running_adapter(SdmAdapter, settings(server.port, meters)) as running:
        await running.until(lambda: running.readings)

    payload = running.payloads()[0]
    assert "power_factor" not in payload
    assert payload["voltage_v"] == 230.1
    assert payload["energy_kwh_total"] == 12345.678
    assert running.stats.errors["nan_field"] >= 1
    assert running.stats.fields_dropped >= 1
    assert running.contract_problems == []


async def test_sdm_misread_words_never_emitted(sdm630_case_server):
    server, meter = sdm630_case_server
    meter.set_registers(0x0000, (0x199A, 0x4366))  # voltage with its words swapped
    meter.set_registers(0x0048, (0xE6B6, 0x0000))  # import read one register late
    meters = [{"device": "meter-main", "model": "sdm630"}]

    async with running_adapter(SdmAdapter, settings(server.port, meters)) as running:
        await running.until(lambda: running.readings)

    payload = running.payloads()[0]
    assert "voltage_v" not in payload
    assert "energy_kwh_total" not in payload
    assert payload["current_a"] == 4.35
    assert payload["power_w"] == 1001.0
    assert running.stats.errors["implausible_value"] >= 2


async def test_sdm_unknown_unit_counts_modbus_exception(sdm630_case_server):
    server, _ = sdm630_case_server
    meters = [{"device": "meter-main", "model": "sdm630", "unit_id": 1}, {"device": "meter-typo", "model": "sdm630", "unit_id": 9}]

    async with running_adapter(SdmAdapter, settings(server.port, meters)) as running:
        await running.until(lambda: running.stats.errors["modbus_exception"] >= 2 and running.readings)

    devices = {payload["device"] for payload in running.payloads()}
    assert devices == {"meter-main"}
    assert running.stats.errors["modbus_exception"] >= 2


async def test_sdm_read_timeout_skips_meter_not_neighbour():
    stalled = SimulatedSdmMeter(unit_id=1, model="sdm630", stall_s=0.6)
    healthy = SimulatedSdmMeter(unit_id=2, model="sdm120")
    server = SdmModbusServer([stalled, healthy], free_port())
    await server.start()
    try:
        meters = [{"device": "meter-stalled", "model": "sdm630", "unit_id": 1}, {"device": "meter-ok", "model": "sdm120", "unit_id": 2}]
        async with running_adapter(SdmAdapter, settings(server.port, meters)) as running:
            await running.until(lambda: len(running.payloads()) >= 3, timeout_s=15)
            timeouts_while_stalled = running.stats.errors["read_timeout"]

            stalled.stall_s = 0.0
            await running.until(lambda: any(p["device"] == "meter-stalled" for p in running.payloads()), timeout_s=10)
    finally:
        await server.stop()

    assert timeouts_while_stalled >= 3
    assert {p["device"] for p in running.payloads()[:3]} == {"meter-ok"}
    assert any(p["device"] == "meter-stalled" for p in running.payloads())


async def test_sdm_server_stop_then_reconnect():
    port = free_port()
    server = SdmModbusServer([SimulatedSdmMeter(unit_id=1, model="sdm120")], port)
    await server.start()
    meters = [{"device": "meter-main", "model": "sdm120"}]

    async with running_adapter(SdmAdapter, settings(port, meters)) as running:
        await running.until(lambda: running.readings)
        await server.stop()
        await running.until(lambda: running.stats.errors["connect_failed"] >= 2)
        count_while_down = len(running.readings)

        server = SdmModbusServer([SimulatedSdmMeter(unit_id=1, model="sdm120")], port)
        await server.start()
        try:
            await running.until(lambda: len(running.readings) > count_while_down + 1, timeout_s=10)
        finally:
            await server.stop()

    assert running.stats.errors["connect_failed"] >= 2
    assert len(running.readings) > count_while_down + 1
