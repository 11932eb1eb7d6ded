"""Every page through Streamlit's AppTest: renders without exceptions, on the demo and on errors."""

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

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
