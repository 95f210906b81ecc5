"""The README's first command, end to end: ``python -m devstack`` with simulated offices.

It must show live readings for every OPD of the catalogue within 60 seconds, and stop every
child process on Ctrl-C (SIGINT).
"""

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from conftest import REPO_ROOT, wait_until
from contract.catalogue import load_catalogue
from devstack import free_port

pytestmark = pytest.mark.integration

CATALOGUE = load_catalogue(REPO_ROOT / "config" / "regency.yaml")


def _json(url: str):
    try:
        response = httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def test_local_platform_shows_every_opd_then_stops(tmp_path):
    api_port = free_port()
    env = dict(
        os.environ,
        SMARTOFFICE_LOCAL_DIR=str(tmp_path / "local"),
        SMARTOFFICE_API_PORT=str(api_port),
        SMARTOFFICE_MQTT_PORT=str(free_port()),
        SMARTOFFICE_INFLUX_PORT=str(free_port()),
        SMARTOFFICE_INFLUX_RPC_PORT=str(free_port()),
        SMARTOFFICE_METRICS_PORT=str(free_port()),
    )
    output = open(tmp_path / "devstack.out", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack", "--backfill-hours", "0.1", "--interval-s", "5"],
        cwd=REPO_ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    started = time.monotonic()
    try:
        api = f"http://127.0.0.1:{api_port}"

        def every_opd_seen():
            opds = _json(api + "/api/v1/opds")
            if not opds:
                return False
            seen = {opd["id"] for opd in opds if opd["last_seen_ts"]}
            return seen >= {opd.id for opd in CATALOGUE.opds}

        assert wait_until(every_opd_seen, timeout_s=60, interval_s=1), (tmp_path / "devstack.out").read_text()[-3000:]
        assert time.monotonic() - started < 60

        latest = _json(api + "/api/v1/opds/dinkes/latest?stream=room")
        assert latest["readings"], "no room readings for dinkes"
        assert f"API:        http://127.0.0.1:{api_port}" in (tmp_path / "devstack.out").read_text()
        # mosquitto, influxd, ingest, API and simulator, besides the runner itself.
        assert len(_processes_with_env(f"SMARTOFFICE_LOCAL_DIR={tmp_path / 'local'}")) == 6
    finally:
        os.kill(process.pid, signal.SIGINT)
        exit_code = process.wait(timeout=60)
        output.close()

    assert exit_code == 0
    assert _processes_with_env(f"SMARTOFFICE_LOCAL_DIR={tmp_path / 'local'}") == []


def _processes_with_env(entry: str) -> list[int]:
    """Return the PIDs whose environment contains ``entry``: the platform's children inherit it."""
    found = []
    needle = entry.encode() + b"\0"
    for folder in os.listdir("/proc"):
        if not folder.isdigit():
            continue
        try:
            with open(f"/proc/{folder}/environ", "rb") as environ:
                if needle in environ.read():
                    found.append(int(folder))
        except OSError:
            continue
    return found
