"""Tests of the test harness itself: exposition -> OpenMetrics conversion, backfilled real Prometheus, fake API."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.conftest import FIXTURES
from tests.exposition import OpenMetricsWriter, exposition_to_openmetrics, parse_exposition
from tests.fakeprom import FakePrometheus
from harness.promserver import (
    BackfillError,
    PrometheusNotInstalledError,
    PrometheusStartError,
    PromServer,
    backfill,
    require_binaries,
    start_prometheus,
)

END = 1_700_000_000.0  # end of the replayed scrapes; default 20 samples, 30 s apart (a 600 s replay)
REAL = sorted((FIXTURES / "prometheus").glob("*.prom"))

DEMO = r"""# HELP demo_requests_total Requests served.
# TYPE demo_requests_total counter
demo_requests_total{code="200"} 900
demo_requests_total{code="500"} 100
# HELP demo_legacy_ops Counter without _total, as kubelet 1.13 exposed them.
# TYPE demo_legacy_ops counter
demo_legacy_ops 300
# TYPE demo_latency_seconds histogram
demo_latency_seconds_bucket{le="0.1"} 50
demo_latency_seconds_bucket{le="0.5"} 90
demo_latency_seconds_bucket{le="+Inf"} 100
demo_latency_seconds_sum 20
demo_latency_seconds_count 100
# TYPE demo_temperature gauge
demo_temperature 21.5
# TYPE demo_rpc_seconds summary
demo_rpc_seconds{quantile="0.5"} 0.2
demo_rpc_seconds_sum 12
demo_rpc_seconds_count 60
# A comment that is neither HELP nor TYPE.
demo_untyped{path="C:\\dir",quote="say \"hi\"",nl="a\nb",} 1.67195e+06 1600000000000
demo_inf +Inf
demo_nan NaN
"""


def _series_count(text: str) -> int:
    return sum(len(family.samples) for family in parse_exposition(text))


def _value(result: list[dict], **labels: str) -> float:
    matching = [r for r in result if all(r["metric"].get(k) == v for k, v in labels.items())]
    assert len(matching) == 1, (labels, result)
    return float(matching[0]["value"][1])


# --- exposition -> OpenMetrics, no server ------------------------------------------------------------


def test_counter_family_drops_total_and_values_grow_linearly() -> None:
    om = exposition_to_openmetrics(DEMO, {"job": "demo"}, END, samples=4, step=30)
    lines = om.splitlines()
    assert "# TYPE demo_requests counter" in lines
    assert "# HELP demo_requests Requests served." in lines
    values = [line.split()[1:] for line in lines if line.startswith('demo_requests_total{code="500"')]
    assert values == [
        ["25.0", "1699999910.000"],
        ["50.0", "1699999940.000"],
        ["75.0", "1699999970.000"],
        ["100.0", "1700000000.000"],
    ]
    temperatures = {line.split()[1] for line in lines if line.startswith("demo_temperature{")}
    assert temperatures == {"21.5"}
    assert lines[-1] == "# EOF" and "" not in lines


def test_types_quirks_and_special_values_map_to_valid_openmetrics() -> None:
    lines = exposition_to_openmetrics(DEMO, {"job": "demo"}, END, samples=2).splitlines()
    assert "# TYPE demo_legacy_ops unknown" in lines  # a counter without _total cannot be an OM counter
    assert "# TYPE demo_untyped unknown" in lines
    assert "# TYPE demo_rpc_seconds summary" in lines
    quantiles = {line.split()[1] for line in lines if line.startswith('demo_rpc_seconds{quantile="0.5"')}
    assert quantiles == {"0.2"}  # summary quantiles stay constant, _sum/_count grow
    assert 'demo_rpc_seconds_count{job="demo"} 30.0 1699999970.000' in lines
    untyped = next(line for line in lines if line.startswith("demo_untyped"))
    assert untyped.startswith('demo_untyped{path="C:\\\\dir",quote="say \\"hi\\"",nl="a\\nb",job="demo"} 1671950.0 ')
    assert any(line.startswith('demo_inf{job="demo"} +Inf ') for line in lines)
    assert any(line.startswith('demo_nan{job="demo"} NaN ') for line in lines)


def test_samples_not_matching_their_type_line_form_their_own_family() -> None:
    text = (FIXTURES / "prometheus" / "coredns.prom").read_text()
    lines = exposition_to_openmetrics(text, {"job": "coredns"}, END).splitlines()
    assert "# TYPE coredns_dns_responses counter" in lines
    assert not any("coredns_dns_response_rcode_count_total" in line for line in lines)


def test_targets_merge_into_one_family_block_and_label_clashes_are_handled() -> None:
    writer = OpenMetricsWriter()
    for name in ("kubelet.prom", "kubelet-legacy.prom"):
        text = (FIXTURES / "prometheus" / name).read_text()
        writer.add_exposition(text, {"job": "kubelet", "node": name}, END)
    lines = writer.render().splitlines()
    type_lines = [line for line in lines if line.startswith("# TYPE ")]
    assert len(type_lines) == len({line.split()[2] for line in type_lines})
    assert "# TYPE rest_client_requests counter" in type_lines  # merged from both targets
    # legacy `kubelet_docker_operations` (unknown) and modern `kubelet_docker_operations_total`
    # (counter family `kubelet_docker_operations`) cannot share a name: the counter yields
    assert "# TYPE kubelet_docker_operations unknown" in type_lines
    assert "# TYPE kubelet_docker_operations_total unknown" in type_lines
    # the exposed `node` label gives way to the target label, as with honor_labels: false
    assert any(
        line.startswith('kubelet_node_name{exported_node="ip-172-29-240-188.ec2.internal",job="kubelet",node=')
        for line in lines
    )
    with pytest.raises(ValueError, match="duplicate series"):
        writer.add_exposition(
            (FIXTURES / "prometheus" / "kubelet.prom").read_text(), {"job": "kubelet", "node": "kubelet.prom"}, END
        )


def test_add_series_refuses_points_promtool_would_silently_drop() -> None:
    writer = OpenMetricsWriter()
    with pytest.raises(ValueError, match="timestamps must increase"):
        writer.add_series("up", {"job": "x"}, [(END, 1), (END - 30, 1)])
    writer.add_series(
        "demo_resets_total", {"job": "x"}, [(END - 60, 5), (END - 30, 1), (END, 2)], metric_type="counter"
    )
    assert "# TYPE demo_resets counter" in writer.render().splitlines()


def test_unparseable_exposition_names_the_line() -> None:
    with pytest.raises(ValueError, match="line 2"):
        parse_exposition('ok 1\nbad{a="1" 2\n')


# --- real Prometheus ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_prom(prom_factory: Callable[..., PromServer]) -> PromServer:
    writer = OpenMetricsWriter()
    writer.add_exposition(DEMO, {"job": "demo", "instance": "10.0.0.1:9100"}, END)
    # a second target whose data ends now: backfilled blocks next to "now" are served too
    writer.add_exposition(DEMO, {"job": "now", "instance": "10.0.0.2:9100"}, round(time.time()))
    return prom_factory(writer.render(), "demo")


def test_promql_rates_and_quantiles_on_backfilled_data(demo_prom: PromServer) -> None:
    assert demo_prom.samples == 2 * 20 * _series_count(DEMO)
    rate = demo_prom.query('rate(demo_requests_total{job="demo"}[5m])', END)
    assert _value(rate, code="500") == pytest.approx(100 / 600)
    assert _value(rate, code="200") / _value(rate, code="500") == pytest.approx(9)
    increase = demo_prom.query('increase(demo_requests_total{job="demo",code="500"}[10m])', END)
    assert _value(increase) == pytest.approx(100)
    legacy = demo_prom.query('rate(demo_legacy_ops{job="demo"}[5m])', END - 120)
    assert _value(legacy) == pytest.approx(300 / 600)
    p70 = demo_prom.query('histogram_quantile(0.7, rate(demo_latency_seconds_bucket{job="demo"}[5m]))', END)
    assert _value(p70) == pytest.approx(0.1 + 0.4 * (70 - 50) / (90 - 50))
    assert _value(demo_prom.query('demo_temperature{job="demo"}', END - 400)) == 21.5
    assert _value(demo_prom.query('demo_rpc_seconds{job="demo",quantile="0.5"}', END - 400)) == 0.2
    assert math.isinf(_value(demo_prom.query('demo_inf{job="demo"}', END)))
    untyped = demo_prom.query('demo_untyped{job="demo"}', END)
    assert untyped[0]["metric"] == {
        "__name__": "demo_untyped",
        "path": "C:\\dir",
        "quote": 'say "hi"',
        "nl": "a\nb",
        "job": "demo",
        "instance": "10.0.0.1:9100",
    }
    assert _value(untyped) == 1.67195e06


def test_series_end_after_the_lookback_delta_and_data_near_now_is_served(demo_prom: PromServer) -> None:
    assert demo_prom.query('demo_temperature{job="demo"}', END + 299)
    assert demo_prom.query('demo_temperature{job="demo"}', END + 301) == []
    recent = demo_prom.query('rate(demo_requests_total{job="now",code="500"}[5m])', round(time.time()) - 60)
    assert _value(recent) == pytest.approx(100 / 600)


@pytest.mark.parametrize("fixture", REAL, ids=[path.name for path in REAL])
def test_each_real_exposition_is_backfilled_completely(fixture: Path, tmp_path: Path) -> None:
    assert fixture.read_text().startswith("# ")  # provenance comments are kept verbatim
    om = tmp_path / "input.om"
    om.write_text(exposition_to_openmetrics(fixture.read_text(), {"job": fixture.stem}, END))
    assert backfill(om, tmp_path / "data") == 20 * _series_count(fixture.read_text())  # nothing dropped


@pytest.fixture(scope="module")
def real_prom(prom_factory: Callable[..., PromServer]) -> PromServer:
    writer = OpenMetricsWriter()
    for index, path in enumerate(REAL):
        labels = {"job": path.stem, "instance": f"10.0.1.{index}:10250", "node": f"node-{index}"}
        writer.add_exposition(path.read_text(), labels, END)
    return prom_factory(writer.render(), "real")


def test_real_expositions_are_queryable_together(real_prom: PromServer) -> None:
    counts = real_prom.query('count by (job) ({__name__=~".+"})', END)
    assert {r["metric"]["job"]: int(r["value"][1]) for r in counts} == {
        p.stem: _series_count(p.read_text()) for p in REAL
    }

    ops = real_prom.query('rate(kubelet_runtime_operations_total{job="kubelet"}[5m])', END)
    ratio = _value(ops, operation_type="exec_sync") / _value(ops, operation_type="status")
    assert ratio == pytest.approx(341720 / 340928)
    p50 = real_prom.query(
        'histogram_quantile(0.5, rate(coredns_dns_request_duration_seconds_bucket{job="coredns"}[5m]))', END
    )
    assert _value(p50) == pytest.approx(0.00025 * (15018 / 2) / 14098)
    refused = real_prom.query('rate(coredns_dns_responses_total{rcode="REFUSED"}[5m])', END)
    assert _value(refused) == pytest.approx(21 / 600)
    errors = real_prom.query('sum(rate(skydns_skydns_dns_error_count_total{job="kube-dns"}[5m]))', END)
    assert _value(errors) == pytest.approx((2.43135e06 + 343475 + 1 + 1) / 600)
    legacy = real_prom.query('kubelet_docker_operations{operation_type="version"}', END)
    modern = real_prom.query('kubelet_docker_operations_total{operation_type="version"}', END)
    assert (_value(legacy), _value(modern)) == (472, 511006)
    node = real_prom.query('kubelet_node_name{job="kubelet"}', END)
    assert node[0]["metric"]["exported_node"] == "ip-172-29-240-188.ec2.internal"


def test_fake_error_body_matches_real_prometheus(real_prom: PromServer, fake_prom: FakePrometheus) -> None:
    real = requests.get(f"{real_prom.url}/api/v1/query", params={"query": "rate(", "time": END}, timeout=10)
    fake_prom.set_mode("error")
    fake = requests.get(f"{fake_prom.url}/api/v1/query", params={"query": "rate(", "time": END}, timeout=10)
    assert (fake.status_code, fake.headers["Content-Type"]) == (real.status_code, real.headers["Content-Type"])
    assert fake.json() == real.json()


def test_backfill_failure_raises_with_promtool_output(tmp_path: Path) -> None:
    bad = tmp_path / "bad.om"
    bad.write_text("up 1 1700000000\n")  # no "# EOF"
    with pytest.raises(BackfillError, match="does not end with # EOF"):
        start_prometheus(bad, tmp_path / "work")


def test_start_failure_raises_with_prometheus_log(tmp_path: Path) -> None:
    om = tmp_path / "ok.om"
    om.write_text(exposition_to_openmetrics("up 1\n", {"job": "x"}, END))
    with pytest.raises(PrometheusStartError, match="retention"):
        start_prometheus(om, tmp_path / "work", extra_args=["--storage.tsdb.retention.time=forever"])


def test_missing_programs_fail_instead_of_skipping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(PrometheusNotInstalledError, match="prometheus and promtool not found on PATH"):
        require_binaries()


# --- fake Prometheus ---------------------------------------------------------------------------------

SAMPLE_RESULT = [{"metric": {"job": "kubelet"}, "value": [END, "1"]}]


def test_fake_ok_records_params_and_headers(fake_prom: FakePrometheus) -> None:
    fake_prom.set_mode("ok", result=SAMPLE_RESULT)
    headers = {"Authorization": "Bearer s3cret", "X-Scope-OrgID": "tenant-a"}
    got = requests.get(f"{fake_prom.url}/api/v1/query", params={"query": "up", "time": "5"}, headers=headers, timeout=5)
    assert got.json() == {"status": "success", "data": {"resultType": "vector", "result": SAMPLE_RESULT}}
    posted = requests.post(f"{fake_prom.url}/api/v1/query_range", data={"query": "up", "step": "30"}, timeout=5)
    assert posted.json()["data"]["resultType"] == "matrix"
    first, second = fake_prom.requests
    assert (first.method, first.path, first.params) == ("GET", "/api/v1/query", {"query": "up", "time": "5"})
    assert first.headers["authorization"] == "Bearer s3cret"
    assert first.headers["x-scope-orgid"] == "tenant-a"
    assert (second.method, second.params) == ("POST", {"query": "up", "step": "30"})


@pytest.mark.parametrize(
    ("options", "status", "error_type"),
    [
        ({}, 400, "bad_data"),
        ({"status": 422}, 422, "execution"),
        ({"status": 503}, 503, "timeout"),
        ({"error_type": "canceled"}, 503, "canceled"),
    ],
)
def test_fake_error_modes(fake_prom: FakePrometheus, options: dict, status: int, error_type: str) -> None:
    fake_prom.set_mode("error", **options)
    got = requests.get(f"{fake_prom.url}/api/v1/query", params={"query": "up"}, timeout=5)
    assert got.status_code == status
    body = got.json()
    assert (body["status"], body["errorType"]) == ("error", error_type) and body["error"]
    assert len(fake_prom.requests) == 1


def test_fake_slow_mode_times_the_client_out_and_still_stops(fake_prom: FakePrometheus) -> None:
    fake_prom.set_mode("slow", delay=30, result=SAMPLE_RESULT)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(f"{fake_prom.url}/api/v1/query", params={"query": "up"}, timeout=0.2)
    assert len(fake_prom.requests) == 1
    fake_prom.stop()  # returns although a handler is still sleeping (pytest-timeout guards a hang)


def test_fake_malformed_empty_warnings_html_and_unknown_path(fake_prom: FakePrometheus) -> None:
    query = f"{fake_prom.url}/api/v1/query"
    fake_prom.set_mode("malformed")
    malformed = requests.get(query, params={"query": "up"}, timeout=5)
    assert malformed.status_code == 200
    with pytest.raises(ValueError):
        malformed.json()
    fake_prom.set_mode("empty")
    assert requests.get(query, timeout=5).json()["data"] == {"resultType": "vector", "result": []}
    fake_prom.set_mode("warnings", result=SAMPLE_RESULT, warnings=["partial response"])
    warned = requests.get(query, timeout=5).json()
    assert (warned["status"], warned["warnings"], warned["data"]["result"]) == (
        "success",
        ["partial response"],
        SAMPLE_RESULT,
    )
    fake_prom.set_mode("html")
    html = requests.get(query, timeout=5)
    assert (html.status_code, html.headers["Content-Type"]) == (502, "text/html")
    assert "<h1>502 Bad Gateway</h1>" in html.text
    missing = requests.get(f"{fake_prom.url}/api/v1/labels", timeout=5)
    assert (missing.status_code, missing.text) == (404, "404 page not found\n")
