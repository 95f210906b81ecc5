"""HTTPS of the API: ``SMARTOFFICE_SSL_CERTFILE`` and ``SMARTOFFICE_SSL_KEYFILE`` reach uvicorn.

The certificate is self-signed for 127.0.0.1 and made at test time with the ``openssl``
command, because the ``cryptography`` package is not a dependency of the project.
"""

import hashlib
import shutil
import socket
import ssl
import subprocess
import uuid

import httpx
import pytest
from pydantic import ValidationError

from api.config import ApiSettings
from conftest import start_api

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command"),
]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate and key for the IP address 127.0.0.1; returns (cert path, key path)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "api.crt", folder / "api.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def https_api(tmp_path_factory, mosquitto, influx, certificate):
    cert, key = certificate
    database = "tls_" + uuid.uuid4().hex[:8]
    influx.create_database(database)
    folder = tmp_path_factory.mktemp("tls-api")
    process, url = start_api(
        folder, mosquitto, influx, database, name="tls", scheme="https", ssl_certfile=str(cert), ssl_keyfile=str(key)
    )
    yield process, url
    process.stop()


def test_https_answers_with_configured_certificate(https_api, certificate):
    _, url = https_api
    cert, _ = certificate
    context = ssl.create_default_context(cafile=str(cert))
    response = httpx.get(url + "/openapi.json", verify=context, timeout=10)
    assert response.status_code == 200
    assert url.startswith("https://127.0.0.1:")


def test_https_serves_that_certificate(https_api, certificate):
    _, url = https_api
    cert, _ = certificate
    port = int(url.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=str(cert))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        served = tls.getpeercert(binary_form=True)
    expected = ssl.PEM_cert_to_DER_cert(cert.read_text())
    assert hashlib.sha256(served).hexdigest() == hashlib.sha256(expected).hexdigest()


def test_plain_http_refused_on_https_port(https_api):
    _, url = https_api
    with pytest.raises(httpx.HTTPError):
        httpx.get(url.replace("https://", "http://") + "/openapi.json", timeout=5)


def test_untrusted_certificate_rejected_by_client(https_api):
    _, url = https_api
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/openapi.json", timeout=5)


def test_https_logged_at_start(https_api, certificate):
    process, _ = https_api
    cert, _ = certificate
    assert f"with certificate {cert}" in process.log_tail(200)


def test_half_tls_setting_rejected(certificate):
    cert, _ = certificate
    with pytest.raises(ValidationError, match="SMARTOFFICE_SSL_KEYFILE"):
        ApiSettings(ssl_certfile=cert)
