"""The Prometheus source bounded in time and size, and strict about what counts as an answer (issue 9)."""

import datetime as dt
import ipaddress
import json
import ssl
import time
from datetime import datetime, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dashboard.catalog import PRESETS
from dashboard.health import evaluate
from dashboard.sources.base import SourceError
from dashboard.sources.prometheus import PrometheusSettings, PrometheusSource
from tests.fakeprom import FakePrometheus
from tests.test_prometheus_source import assert_one_line_error, run_cli

CATALOG = PRESETS["kube-prometheus-stack"]
AT = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def source(url, **settings):
    return PrometheusSource(PrometheusSettings(url=url, **{"timeout_seconds": 2, **settings}))


def answer(result_type="vector", result=(), status="success"):
    return json.dumps({"status": status, "data": {"resultType": result_type, "result": list(result)}}).encode()


def test_a_trickling_server_ends_at_the_request_deadline(fake_prom):
    fake_prom.set_mode("trickle", delay=0.5)
    started = time.monotonic()
    with pytest.raises(SourceError, match="did not answer within 1 s"):
        source(fake_prom.url, timeout_seconds=1).query("up", AT)
    # Each byte arrives well within the timeout; only a total deadline stops the request.
    assert time.monotonic() - started < 10


def test_the_evaluation_deadline_names_itself(fake_prom):
    fake_prom.set_mode("slow", delay=30)
    with pytest.raises(SourceError, match=r"evaluation .* did not finish within 1 s \(evaluation_timeout_seconds\)"):
        evaluate(source(fake_prom.url, timeout_seconds=20, evaluation_timeout_seconds=1), CATALOG, at=AT)


def test_a_gzip_bomb_stops_at_the_body_cap(fake_prom):
    bomb = answer()[:-2] + b" " * 50_000_000 + b"]}}"
    fake_prom.set_mode("gzip", body=bomb)
    with pytest.raises(SourceError, match="over 1,000,000 bytes decoded"):
        source(fake_prom.url, max_body_bytes=1_000_000).query("up", AT)
    assert fake_prom.requests[0].headers["accept-encoding"] == "gzip"


def test_a_result_over_the_sample_cap_is_refused(fake_prom):
    samples = [{"metric": {"node": f"n{i}"}, "value": [AT.timestamp(), "1"]} for i in range(101)]
    fake_prom.set_mode("raw", body=answer(result=samples))
    with pytest.raises(SourceError, match="101 samples for one query, over 100"):
        source(fake_prom.url, max_samples=100).query("up", AT)
    assert len(source(fake_prom.url, max_samples=101).query("up", AT)[0]) == 101


def test_a_redirect_elsewhere_is_not_followed():
    with FakePrometheus() as elsewhere, FakePrometheus() as origin:
        origin.set_mode("redirect", location=f"{elsewhere.url}/api/v1/query?query=up")
        with pytest.raises(SourceError, match=f"redirected to {elsewhere.url}/api/v1/query, another scheme"):
            source(origin.url).query("up", AT)
        assert elsewhere.requests == []
        assert_one_line_error(run_cli("--prometheus-url", origin.url), "redirected to")


def test_a_redirect_on_the_same_server_is_followed_a_few_times(fake_prom):
    fake_prom.set_mode("redirect", location="/api/v1/query?query=up")
    with pytest.raises(SourceError, match="redirected more than 3 times"):
        source(fake_prom.url).query("up", AT)
    assert len(fake_prom.requests) == 4


@pytest.mark.parametrize(
    "body, fragment",
    [
        (answer(status="error"), "HTTP 200 with status 'error'"),
        (answer("scalar", [AT.timestamp(), "1"]), "'scalar' result where an instant vector"),
        (answer("string", [AT.timestamp(), "x"]), "'string' result"),
        (answer("matrix"), "'matrix' result"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (answer(result=[{"metric": [], "value": [1, "1"]}]), "a sample is not a label set"),
        (answer(result=[{"metric": {"node": 5}, "value": [1, "1"]}]), "a sample is not a label set"),
        (answer(result=[{"metric": {"node": "n"}, "value": "1"}]), "a sample is not a label set"),
        (answer(result=[{"metric": {"node": "n"}, "value": [1, "one"]}]), "a sample is not a label set"),
        (b'{"status": "success", "data": 5}', "None result"),
    ],
)
def test_an_answer_that_is_not_an_instant_vector_is_a_source_error(fake_prom, body, fragment):
    fake_prom.set_mode("raw", body=body)
    with pytest.raises(SourceError, match=fragment):
        evaluate(source(fake_prom.url), CATALOG, at=AT)
    assert_one_line_error(run_cli("--prometheus-url", fake_prom.url), fragment)


@pytest.fixture
def tls_prom(tmp_path):
    """A FakePrometheus over HTTPS with a fresh self-signed certificate for 127.0.0.1; yields it and the CA file."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    with FakePrometheus(tls=context) as fake:
        yield fake, str(cert_file)


def test_the_request_deadline_holds_over_tls(tls_prom):
    fake, ca_bundle = tls_prom
    sample = {"metric": {"node": "n1"}, "value": [AT.timestamp(), "1"]}
    fake.set_mode("ok", result=[sample])
    assert source(fake.url, ca_bundle=ca_bundle).query("up", AT)[0] == [sample]
    fake.set_mode("trickle", delay=0.5)
    with pytest.raises(SourceError, match="did not answer within 1 s"):
        source(fake.url, ca_bundle=ca_bundle, timeout_seconds=1).query("up", AT)
    with pytest.raises(SourceError, match="TLS verification failed"):
        source(fake.url).query("up", AT)


def test_secrets_echoed_by_the_server_are_redacted_whole_or_in_part(fake_prom):
    token, tenant = "tok-0123456789abcdef", "tenant-secret-42"
    settings = {"bearer_token": token, "headers": {"X-Scope-OrgID": tenant}}
    fake_prom.set_mode("error", status=500, error_type="internal", error=f"{'x' * 280} Bearer {token} {tenant}")
    with pytest.raises(SourceError) as error:
        source(fake_prom.url, **settings).query("up", AT)
    fake_prom.set_mode("warnings", result=[], warnings=[f"echo: {token[:10]}|{tenant[4:]}"])
    _, warnings = source(fake_prom.url, **settings).query("up", AT)
    for text in (str(error.value), *warnings):
        for secret in (token, tenant):
            assert not any(secret[i:i + 8] in text for i in range(len(secret) - 7)), text
    assert "[redacted]" in warnings[0]
