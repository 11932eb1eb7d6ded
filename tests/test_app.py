"""Every page through Streamlit's AppTest: renders without exceptions, on the demo and on errors."""

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.config import load_settings
from dashboard.health import evaluate
from dashboard.sources import health_source, source_identity
from dashboard.timeline import evaluate_range

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


def a_past_moment() -> datetime:
    """A whole 5 minutes an hour ago: inside the demo's data, on the 6 h range's step grid."""
    moment = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(hours=1)
    return moment.replace(minute=moment.minute - moment.minute % 5)


def test_cluster_health_counters_equal_the_engine_s_timeline_at_the_as_of_moment():
    at = a_past_moment()
    app = run_page("health.py", at=at.strftime("%Y-%m-%dT%H:%M:%SZ"), range="6h")
    assert not app.exception
    assert [t.value for t in app.title] == ["Cluster health"]
    assert any("DEMO" in info.value for info in app.info)
    timeline = evaluate_range(health_source(None), load_settings().catalog, start=at - timedelta(hours=6), end=at,
                              step=timedelta(minutes=5))
    last = timeline[(timeline["time"] == timeline["time"].max()) & (timeline["scope"] == "node")]
    expected = last["verdict"].value_counts()
    metrics = {m.label: int(m.value) for m in app.metric}
    assert metrics == {v.capitalize(): int(expected.get(v, 0)) for v in ("unhealthy", "unknown", "degraded", "healthy")}
    assert [s.value for s in app.subheader][:2] == ["Verdicts over time", "Incidents"]
    assert app.toggle(key="as_of_now").value is False


def test_cluster_health_view_is_a_link_both_ways():
    app = run_page("health.py", cluster="prod", range="24h", node="node-05")
    assert not app.exception
    assert app.selectbox(key="cluster").value == "prod" and app.selectbox(key="node").value == "node-05"
    assert app.segmented_control(key="range_preset").value == "24h"
    assert "Verdicts over time on node-05" in [s.value for s in app.subheader]
    app.segmented_control(key="range_preset").set_value("1h").run()
    assert app.query_params["range"] == "1h" and app.query_params["node"] == "node-05"
    app.selectbox(key="node").set_value("All nodes").run()
    assert "node" not in app.query_params


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
    app = run_page("oncall.py")
    assert not app.exception
    evaluated_at = next(c.value for c in app.caption if "evaluated at" in c.value).rsplit("evaluated at ", 1)[1]
    evaluation = evaluate(health_source(None), load_settings().catalog, at=datetime.fromisoformat(evaluated_at))
    per_node = evaluation.verdicts[evaluation.verdicts["scope"] == "node"]
    expected = per_node["verdict"].value_counts()
    metrics = {m.label: int(m.value) for m in app.metric}
    assert metrics == {v.capitalize(): int(expected.get(v, 0)) for v in ("unhealthy", "unknown", "degraded", "healthy")}
    assert sum(metrics.values()) == len(per_node) < len(evaluation.verdicts)
    assert any(c.value.startswith("Cluster DNS, all servers together: prod ") for c in app.caption)


def test_on_call_is_the_default_page_and_shows_the_worst_problems_first():
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception
    assert [t.value for t in app.title] == ["On call"]
    labels = [expander.label for expander in app.expander]
    assert labels and labels[0].startswith("✖ unhealthy")
    order = ["✖", "?", "▲"]
    assert [order.index(label[0]) for label in labels] == sorted(order.index(label[0]) for label in labels)


def test_on_call_cluster_comes_from_the_link_and_goes_back_to_it():
    app = run_page("oncall.py", cluster="staging")
    assert not app.exception
    assert app.selectbox(key="cluster").value == "staging"
    assert all(" · staging · " in expander.label for expander in app.expander)
    app.selectbox(key="cluster").set_value("prod").run()
    assert app.query_params["cluster"] == "prod"
    app.selectbox(key="cluster").set_value("All clusters").run()
    assert "cluster" not in app.query_params


def test_on_call_with_an_unknown_cluster_in_the_link_says_so_and_shows_all():
    app = run_page("oncall.py", cluster="nosuch")
    assert not app.exception
    assert any("'nosuch' is not known" in warning.value for warning in app.warning)
    assert app.selectbox(key="cluster").value == "All clusters"


def test_two_prometheus_urls_never_share_a_cache_key():
    first = load_settings({}, env={"PROMETHEUS_URL": "http://one:9090"}).prometheus
    second = load_settings({}, env={"PROMETHEUS_URL": "http://two:9090"}).prometheus
    tenant = load_settings({}, env={"PROMETHEUS_URL": "http://one:9090", "PROMETHEUS_HEADERS": "X-Scope-OrgID=b"}).prometheus
    assert repr(first) == repr(second)  # what the page used to key on
    keys = {source_identity(first), source_identity(second), source_identity(tenant)}
    assert len(keys) == 3
    token = load_settings({}, env={"PROMETHEUS_URL": "http://one:9090", "PROMETHEUS_TOKEN": "tok-do-not-keep"}).prometheus
    assert "tok-do-not-keep" not in source_identity(token)


def run_page(page: str, **query) -> AppTest:
    """Open ``page`` as a link with ``query`` would, in a new session."""
    app = AppTest.from_file(APP, default_timeout=60)
    for key, value in query.items():
        app.query_params[key] = value
    return app.switch_page(f"../pages/{page}").run()


def demo_release_table():
    from dashboard.provenance import release_table
    from dashboard.supply_chain import gate_policy, read_supply_chain
    from dashboard.ui.data import supply_chain_bucket

    settings = load_settings()
    chain = read_supply_chain(settings, now=datetime.fromisoformat(supply_chain_bucket()))
    return release_table(chain.occurrences, gate_policy(settings))


def test_releases_page_lists_every_release_with_its_gate_verdict():
    app = run_page("releases.py")
    assert not app.exception
    shown = app.dataframe[0].value
    table = demo_release_table()
    assert list(shown["resource"]) == list(table["resource_uri"])
    assert list(shown["gate"].str.endswith("denied")) == list(~table["allowed"])
    assert any("DEMO supply chain" in info.value for info in app.info)


def test_releases_page_filters_come_from_the_link_and_go_back_to_it():
    table = demo_release_table()
    service = table["service"].iloc[0]
    app = run_page("releases.py", gate="denied", service=service)
    assert not app.exception
    shown = app.dataframe[0].value
    expected = table[(table["service"] == service) & ~table["allowed"]]
    assert list(shown["resource"]) == list(expected["resource_uri"])
    assert app.query_params["gate"] == "denied" and app.query_params["service"] == service
    app.segmented_control(key="gate").set_value("allowed").run()
    assert app.query_params["gate"] == "allowed"
    assert set(app.dataframe[0].value["gate"]) == {"✔ allowed"}


def test_release_page_shows_the_gate_checks_the_cli_prints():
    import json
    import subprocess
    import sys

    from dashboard.ui.data import supply_chain_bucket

    for _ in range(3):  # the demo's supply chain is built per minute: compare within one minute
        minute = supply_chain_bucket()
        table = demo_release_table()
        denied = table[~table["allowed"]]["resource_uri"].iloc[0]
        app = run_page("release.py", resource=denied.removeprefix("https://"))
        completed = subprocess.run([sys.executable, "-m", "dashboard", "gate", "--resource", denied,
                                    "--format", "json"], capture_output=True, text=True, timeout=120)
        as_text = subprocess.run([sys.executable, "-m", "dashboard", "gate", "--resource", denied],
                                 capture_output=True, text=True, timeout=120)
        if supply_chain_bucket() == minute:
            break
        st.cache_data.clear()
    assert not app.exception
    checks = app.dataframe[0].value
    cli_checks = json.loads(completed.stdout)["checks"]
    assert list(checks["name"]) == [c["name"] for c in cli_checks]
    assert list(checks["passed"].str.contains("passed")) == [c["passed"] for c in cli_checks]
    assert list(checks["detail"]) == [c["detail"] for c in cli_checks]
    assert [s.value for s in app.subheader][:1] == ["Gate"]
    assert app.code[0].value == as_text.stdout.rstrip("\n")


def test_release_page_without_a_resource_points_to_the_releases_page():
    app = run_page("release.py")
    assert not app.exception
    assert any("pick one on the Releases page" in info.value for info in app.info)
