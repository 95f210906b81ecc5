"""Input register maps of the Eastron SDM630 and SDM120 meters, and decoding of their float32 values.

Sources: the SDM630 opcodes of ``volkszaehler/mbmd`` (``meters/rs485/sdm.go``, taken from
Eastron's SDM630 register table) and public SDM120 register tables, which put voltage, current,
power, power factor, frequency and the energy totals at the addresses below. Every quantity is
an IEEE 754 float32 in two input registers (function code 04), high word first (byte order ABCD). The Modbus address
is the datasheet register number minus 30001: voltage L1 is register 30001, address 0, and
the imported energy is register 30073, address 72 (0x48).

Decoding rejects what a meter cannot report: NaN and infinities (an unset register reads
0x7FC0 0x0000), values outside the quantity's range, and non-zero values smaller than
``MIN_MAGNITUDE``. Swapped words or an address off by one register turn 230.1 V into
1.6e-23 or an energy total into -4.3e23, and these checks reject both.
"""

import math
import struct
from dataclasses import dataclass
from typing import Literal

SdmModel = Literal["sdm630", "sdm120"]

MAX_REGISTERS_PER_REQUEST = 40
"""Largest block read in one request.

NOTE: Modbus allows 125 registers per request. 40 is a cautious guess for RS485 gateways and
for the meters' own limit, which was not checked against an Eastron datasheet.
"""

MAX_GAP_REGISTERS = 8
"""Unused registers read between two wanted ones rather than sending another request."""

MIN_MAGNITUDE = 1e-6
"""Smallest non-zero magnitude a meter reports. A smaller value means the words were misread."""


@dataclass(frozen=True, slots=True)
class Register:
    """One float32 quantity: its contract field, address, unit and plausible range."""

    field: str
    address: int
    unit: str
    low: float
    high: float

    @property
    def register_number(self) -> int:
        """Number of the register in the Eastron datasheet (30001 + address)."""
        return 30_001 + self.address


SDM630_REGISTERS = (
    Register("voltage_v", 0x0000, "V", 0.0, 500.0),  # phase 1 line to neutral voltage, 30001
    Register("current_a", 0x0006, "A", 0.0, 10_000.0),  # phase 1 current, 30007
    Register("power_w", 0x0034, "W", -10_000_000.0, 10_000_000.0),  # total system power, 30053
    Register("power_factor", 0x003E, "", -1.0, 1.0),  # total system power factor, 30063
    Register("frequency_hz", 0x0046, "Hz", 45.0, 65.0),  # 30071
    Register("energy_kwh_total", 0x0048, "kWh", 0.0, 1e9),  # total import active energy, 30073
    Register("energy_export_kwh_total", 0x004A, "kWh", 0.0, 1e9),  # total export active energy, 30075
)
"""SDM630 (three phase): phase 1 voltage and current, system totals for power and factor.

The contract carries one voltage and one current per meter, so L2 and L3 are not read.
"""

SDM120_REGISTERS = (
    Register("voltage_v", 0x0000, "V", 0.0, 500.0),  # 30001
    Register("current_a", 0x0006, "A", 0.0, 100.0),  # 30007, and the meter is rated 45 A
    Register("power_w", 0x000C, "W", -25_000.0, 25_000.0),  # active power, 30013
    Register("power_factor", 0x001E, "", -1.0, 1.0),  # 30031
    Register("frequency_hz", 0x0046, "Hz", 45.0, 65.0),  # 30071
    Register("energy_kwh_total", 0x0048, "kWh", 0.0, 1e9),  # 30073
    Register("energy_export_kwh_total", 0x004A, "kWh", 0.0, 1e9),  # 30075
)
"""SDM120 (single phase)."""

REGISTERS_BY_MODEL: dict[str, tuple[Register, ...]] = {"sdm630": SDM630_REGISTERS, "sdm120": SDM120_REGISTERS}


@dataclass(frozen=True, slots=True)
class Block:
    """A contiguous range of input registers read with one request."""

    address: int
    count: int
    registers: tuple[Register, ...]


class DecodeError(ValueError):
    """Raised when two registers do not contain a plausible value. ``reason`` is the stats label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def plan_blocks(
    registers: tuple[Register, ...],
    max_count: int = MAX_REGISTERS_PER_REQUEST,
    max_gap: int = MAX_GAP_REGISTERS,
) -> list[Block]:
    """Group ``registers`` into as few requests as possible, within ``max_count`` and ``max_gap``."""
    blocks: list[Block] = []
    current: list[Register] = []
    for register in sorted(registers, key=lambda r: r.address):
        if current:
            start = current[0].address
            end = current[-1].address + 2
            gap = register.address - end
            if gap <= max_gap and register.address + 2 - start <= max_count:
                current.append(register)
                continue
            blocks.append(Block(start, end - start, tuple(current)))
        current = [register]

    if current:
        start = current[0].address
        blocks.append(Block(start, current[-1].address + 2 - start, tuple(current)))
    return blocks


def decode_float32(high_word: int, low_word: int) -> float:
    """Decode a big-endian float32 from two registers, high word first (ABCD)."""
    value = struct.unpack(">f", struct.pack(">HH", high_word, low_word))[0]
    return shortest_float32_decimal(value)


def shortest_float32_decimal(value: float) -> float:
    """Return the shortest decimal that reads back as the same float32: 230.10000610351562 gives 230.1.

    A float32 has about 7 significant digits. The digits after them are artefacts of the
    binary format, not of the meter, and would show up in every stored reading.
    """
    if not math.isfinite(value) or value == 0.0:
        return value

    target = struct.pack(">f", value)
    for digits in range(1, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.pack(">f", candidate) == target:
            return candidate
    return value


def decode_register(register: Register, high_word: int, low_word: int) -> float:
    """Decode and check one quantity.

    Raises:
        DecodeError: the value is NaN or infinite (``nan_field``) or implausible
            (``implausible_value``). The message names the register, the words and the value.
    """
    value = decode_float32(high_word, low_word)
    words = f"0x{high_word:04X} 0x{low_word:04X}"
    where = f"register {register.register_number} (address 0x{register.address:04X}) = {words}"

    if not math.isfinite(value):
        raise DecodeError("nan_field", f"{where} is {value}, not a number")

    if value != 0.0 and abs(value) < MIN_MAGNITUDE:
        raise DecodeError(
            "implausible_value",
            f"{where} decodes to {value:g} {register.unit}, too small for a meter reading: "
            "check the word order (ABCD) and that the address is the register number - 30001",
        )

    if not register.low <= value <= register.high:
        raise DecodeError(
            "implausible_value",
            f"{where} decodes to {value:g} {register.unit}, outside {register.low:g}..{register.high:g}: "
            "check the word order (ABCD), the address and the meter model",
        )
    return value
