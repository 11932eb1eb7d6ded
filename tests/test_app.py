"""Every page through Streamlit's AppTest: renders without exceptions, on the demo and on errors."""

from datetime import datetime
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.config import load_settings
from dashboard.health import evaluate
from dashboard.sources import health_source, source_identity

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")


@pytest.fixture(autouse=True)
def fresh_caches(monkeypatch):
    for name in ("PROMETHEUS_URL", "DASHBOARD_CONFIG", "DASHBOARD_CLUSTER", "PROMETHEUS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def test_health_page_on_demo():
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception
    assert any("Embedded demo" in info.value for info in app.info)
    metrics = {m.label: int(m.value) for m in app.metric}
    assert metrics["Unhealthy"] > 0 and metrics["Healthy"] > 0
    table = app.dataframe[0].value
    assert {"cluster", "node", "component", "verdict", "why"} <= set(table.columns)
    assert set(table["verdict"]) <= {"healthy", "degraded", "unhealthy", "unknown"}


def test_health_page_problems_only_filter():
    app = AppTest.from_file(APP, default_timeout=60).run()
    app.checkbox[0].check().run()
    assert not app.exception
    assert "healthy" not in set(app.dataframe[0].value["verdict"])


def test_unreachable_prometheus_shows_an_error(monkeypatch):
    monkeypatch.setenv("PROMETHEUS_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("PROMETHEUS_TIMEOUT", "2")
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception
    assert any("Could not read the source" in error.value for error in app.error)


def test_bad_configuration_shows_an_error(monkeypatch, tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[health]\nwindow = "soon"\n')
    monkeypatch.setenv("DASHBOARD_CONFIG", str(config))
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception
    assert any("Configuration error" in error.value for error in app.error)


def test_counters_count_node_components_and_show_the_dns_rollup_apart():
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception
    evaluated_at = next(c.value for c in app.caption if "evaluated at" in c.value).rsplit("evaluated at ", 1)[1]
    evaluation = evaluate(health_source(None), load_settings().catalog, at=datetime.fromisoformat(evaluated_at))
    per_node = evaluation.verdicts[evaluation.verdicts["scope"] == "node"]
    expected = per_node["verdict"].value_counts()
    metrics = {m.label: int(m.value) for m in app.metric}
    assert metrics == {v.capitalize(): int(expected.get(v, 0)) for v in ("unhealthy", "unknown", "degraded", "healthy")}
    assert sum(metrics.values()) == len(per_node) < len(evaluation.verdicts)
    assert any(c.value.startswith("Cluster DNS, all servers together: prod ") for c in app.caption)


def test_two_prometheus_urls_never_share_a_cache_key():
    first = load_settings({}, env={"PROMETHEUS_URL": "http://one:9090"}).prometheus
    second = load_settings({}, env={"PROMETHEUS_URL": "http://two:9090"}).prometheus
    tenant = load_settings({}, env={"PROMETHEUS_URL": "http://one:9090", "PROMETHEUS_HEADERS": "X-Scope-OrgID=b"}).prometheus
    assert repr(first) == repr(second)  # what the page used to key on
    keys = {source_identity(first), source_identity(second), source_identity(tenant)}
    assert len(keys) == 3
    token = load_settings({}, env={"PROMETHEUS_URL": "http://one:9090", "PROMETHEUS_TOKEN": "tok-do-not-keep"}).prometheus
    assert "tok-do-not-keep" not in source_identity(token)
