"""Headless Debian Chromium for the dashboard tests, and the dashboard's number and date formats in Python.

The browser is Debian's ``/usr/bin/chromium`` driven by Playwright (``playwright install``
would download a browser build, which this project cannot do). Each launch gets a fresh
profile folder. ``OffsiteGuard`` aborts and records every request that does not go to
127.0.0.1, so a test can prove the dashboard loads nothing from a CDN.

The format functions restate the dashboard's Intl formats independently, so a test
compares the text on the page with the API's JSON: ``1.699,53`` and ``13 Maret 2019`` in
Indonesian, ``1,699.53`` and ``13 March 2019`` in English.
"""

import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM_PATH = "/usr/bin/chromium"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""Switches that keep Chromium's own background requests (updates, sync, QUIC probes) off.
Playwright adds ``--headless`` itself for ``headless=True``."""

REPO_ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT_DIR = REPO_ROOT / "test-artifacts" / "screenshots"
"""Folder of the screenshots of every dashboard page, for CI to keep; git ignores it."""

MONTHS = {
    "id": ["Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober", "November", "Desember"],
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"],
}


def launch_chromium(playwright, profile_dir: Path):
    """Start Debian's Chromium headless with a fresh profile in ``profile_dir``; return its browser context.

    Raises:
        RuntimeError: when /usr/bin/chromium is missing, naming the package to install.
    """
    if shutil.which(CHROMIUM_PATH) is None:
        raise RuntimeError(
            f"{CHROMIUM_PATH} not found: install Debian's Chromium with "
            "'apt-get install -y --no-install-recommends chromium' (scripts/setup.sh does)"
        )
    return playwright.chromium.launch_persistent_context(
        str(profile_dir),
        executable_path=CHROMIUM_PATH,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 900},
        locale="id-ID",
        accept_downloads=True,
    )


@dataclass
class OffsiteGuard:
    """Aborts every request of a browser context to a host other than 127.0.0.1, and records them all."""

    requested: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def attach(self, context) -> None:
        """Route the context's off-site requests to an abort, and record every request URL."""
        context.route(lambda url: not _is_loopback(url), self._abort)
        context.on("request", lambda request: self.requested.append(request.url))

    def _abort(self, route) -> None:
        self.blocked.append(route.request.url)
        route.abort()

    def offsite(self) -> list[str]:
        """Return every requested URL whose host is not 127.0.0.1, blocked or not."""
        return sorted({url for url in [*self.requested, *self.blocked] if not _is_loopback(url)})


def _is_loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.hostname == "127.0.0.1"


def normalize(text: str | None) -> str:
    """Return ``text`` with no-break and narrow no-break spaces as plain spaces, runs of spaces collapsed."""
    return re.sub(r"\s+", " ", (text or "").replace("\u00a0", " ").replace("\u202f", " ")).strip()


def format_number(value: float, language: str, max_decimals: int = 2, min_decimals: int = 0) -> str:
    """Format like Intl.NumberFormat: round half away from zero on the shortest decimal form of ``value``.

    (1699.5311, "id") gives "1.699,53", (1699.5, "en") gives "1,699.5". Debian's Chromium 156
    gives the same for 2.675, 1.005, 0.125, -2.675 and 1699.535 with 2 decimals (2,68, 1,01,
    0,13, -2,68, 1.699,54), where Python's own rounding of the binary value gives 2,67 and 1,00.
    """
    step = Decimal(1).scaleb(-max_decimals)
    rounded = Decimal(repr(float(value))).quantize(step, rounding=ROUND_HALF_UP)
    text = f"{abs(rounded):,.{max_decimals}f}"
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0").ljust(min_decimals, "0")
    if language == "id":
        whole = whole.replace(",", ".")
    decimal_mark = "," if language == "id" else "."
    sign = "-" if rounded < 0 else ""
    return f"{sign}{whole}{decimal_mark}{fraction}" if fraction else f"{sign}{whole}"


def format_percent(ratio: float, language: str, max_decimals: int = 1) -> str:
    """Format a ratio as a percentage: (0.0375, "id") gives "3,8%"."""
    return format_number(float(Decimal(repr(ratio)) * 100), language, max_decimals) + "%"


def format_rupiah(value: float, language: str, decimals: int = 0) -> str:
    """Format Rupiah with ``decimals`` decimals: (1699.53, "id", 2) gives "Rp 1.699,53"."""
    return "Rp " + format_number(value, language, decimals, decimals)


def format_date(moment: datetime, language: str) -> str:
    """Format a date: 2019-03-13 gives "13 Maret 2019" in Indonesian."""
    return f"{moment.day} {MONTHS[language][moment.month - 1]} {moment.year}"


def format_clock(moment: datetime, language: str) -> str:
    """Format the wall-clock time: "08.10" in Indonesian, "08:10" in English."""
    separator = "." if language == "id" else ":"
    return f"{moment.hour:02d}{separator}{moment.minute:02d}"
