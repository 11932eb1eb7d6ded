"""The Prometheus source against a misbehaving server: a clear error or doubt, never a crash or "healthy"."""

import subprocess
import sys
from datetime import datetime, timezone

import pytest

from dashboard.catalog import PRESETS, build_queries
from dashboard.health import evaluate
from dashboard.sources.base import SourceError
from dashboard.sources.prometheus import PrometheusSettings, PrometheusSource, redacted_url
from harness.appserver import free_port

CATALOG = PRESETS["kube-prometheus-stack"]
AT = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
QUERY_COUNT = len(build_queries(CATALOG))


def source(url, **settings):
    return PrometheusSource(PrometheusSettings(url=url, timeout_seconds=settings.pop("timeout", 2), **settings))


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "dashboard", "health", *args],
        capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"},
    )


def assert_one_line_error(completed, *fragments):
    assert completed.returncode == 3, completed.stderr
    assert "Traceback" not in completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_unreachable_is_a_source_error_and_cli_exit_3():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SourceError, match="cannot reach"):
        evaluate(source(url), CATALOG, at=AT)
    assert_one_line_error(run_cli("--prometheus-url", url), "cannot reach Prometheus at")


def test_slow_server_times_out_within_the_configured_bound(fake_prom):
    fake_prom.set_mode("slow", delay=30)
    with pytest.raises(SourceError, match="did not answer within 1 s"):
        evaluate(source(fake_prom.url, timeout=1), CATALOG, at=AT)


@pytest.mark.parametrize(
    "status, error_type, fragment",
    [(503, "timeout", "HTTP 503: timeout"), (500, "internal", "HTTP 500: internal")],
)
def test_server_errors_fail_the_evaluation_without_blind_retries(fake_prom, status, error_type, fragment):
    fake_prom.set_mode("error", status=status, error_type=error_type, error="query timed out in expression evaluation")
    with pytest.raises(SourceError, match=fragment):
        evaluate(source(fake_prom.url), CATALOG, at=AT)
    sent = [request.params["query"] for request in fake_prom.requests]
    assert len(sent) == len(set(sent)), "a failed query was sent twice"
    assert_one_line_error(run_cli("--prometheus-url", fake_prom.url), fragment)


def test_every_query_rejected_is_a_clear_error(fake_prom):
    fake_prom.set_mode("error", status=400, error_type="bad_data", error="parse error: unexpected character")
    with pytest.raises(SourceError, match="every query was rejected.*HTTP 400: bad_data parse error"):
        evaluate(source(fake_prom.url), CATALOG, at=AT)


@pytest.mark.parametrize("mode, fragment", [("malformed", "malformed answer"), ("html", "HTTP 502")])
def test_garbage_answers_are_clear_errors(fake_prom, mode, fragment):
    fake_prom.set_mode(mode)
    with pytest.raises(SourceError, match=fragment):
        evaluate(source(fake_prom.url), CATALOG, at=AT)
    assert_one_line_error(run_cli("--prometheus-url", fake_prom.url), fragment)


def test_empty_results_judge_nothing_and_fail_on_says_so(fake_prom):
    fake_prom.set_mode("empty")
    assert evaluate(source(fake_prom.url), CATALOG, at=AT).verdicts.empty
    completed = run_cli("--prometheus-url", fake_prom.url, "--fail-on", "unhealthy")
    assert completed.returncode == 1
    assert "cannot confirm health" in completed.stderr


def test_warnings_make_good_values_doubtful_never_healthy(fake_prom):
    sample = {"metric": {"cluster": "c", "node": "n1"}, "value": [AT.timestamp(), "0"]}
    fake_prom.set_mode("warnings", result=[sample], warnings=["partial response: store gateway unavailable"])
    verdicts = evaluate(source(fake_prom.url), CATALOG, at=AT).verdicts
    assert not verdicts.empty
    assert "healthy" not in set(verdicts["verdict"])
    kubelet = verdicts[verdicts["component"] == "kubelet"].iloc[0]
    assert "runtime_error_ratio" in kubelet["no_data"]
    assert any("partial data" in reason["text"] for reason in kubelet["reasons"])


def test_partial_data_a_rejected_query_is_no_data_for_its_signal_only(prom_factory):
    # A real Prometheus, and a selector override that makes one signal's query invalid.
    from dataclasses import replace

    from dashboard.catalog import Selectors

    end = AT.timestamp()
    lines = ["# TYPE up gauge"]
    lines += [f'up{{job="kubelet",metrics_path="/metrics",node="n1",cluster="c"}} 1 {end - 60 * k:.0f}' for k in range(5, -1, -1)]
    server = prom_factory("\n".join(lines) + "\n# EOF\n", name="partial")
    broken = replace(CATALOG, selectors=replace(Selectors(), dns='job=~"("'))
    observations = source(server.url).observe(broken, at=AT)
    assert {w.component for w in observations.warnings} == {"dns", "inventory"}
    assert all("HTTP 400: bad_data" in w.message for w in observations.warnings)
    assert set(observations.frame["signal"]) >= {"up"}


def test_credentials_and_headers_are_sent_but_never_shown(fake_prom):
    fake_prom.set_mode("error", status=503, error_type="timeout", error="slow")
    with_token = PrometheusSettings(url=fake_prom.url, bearer_token="tok-secret", headers={"X-Scope-OrgID": "tenant-a"})
    with_password = PrometheusSettings(url=fake_prom.url.replace("http://", "http://viewer:hunter2@"))
    for settings in (with_token, with_password):
        with pytest.raises(SourceError) as error:
            evaluate(PrometheusSource(settings), CATALOG, at=AT)
        for secret in ("hunter2", "tok-secret", "viewer"):
            assert secret not in str(error.value)
            assert secret not in repr(settings)
    headers = fake_prom.requests[0].headers
    assert headers["authorization"] == "Bearer tok-secret"
    assert headers["x-scope-orgid"] == "tenant-a"
    assert fake_prom.requests[-1].headers["authorization"].startswith("Basic ")


def test_query_count_does_not_depend_on_nodes(fake_prom):
    for nodes in (1, 50):
        before = len(fake_prom.requests)
        result = [{"metric": {"cluster": "c", "node": f"n{i}"}, "value": [AT.timestamp(), "0"]} for i in range(nodes)]
        fake_prom.set_mode("ok", result=result)
        evaluate(source(fake_prom.url), CATALOG, at=AT)
        assert len(fake_prom.requests) - before == QUERY_COUNT


def test_cluster_label_value_is_escaped(fake_prom):
    fake_prom.set_mode("empty")
    evaluate(source(fake_prom.url), CATALOG, at=AT, cluster='a"b\\c')
    query = fake_prom.requests[0].params["query"]
    assert 'cluster="a\\"b\\\\c"' in query


def test_redacted_url_drops_user_info_and_query():
    assert redacted_url("https://u:p@prom.example:9443/prefix/?token=x") == "https://prom.example:9443/prefix"
