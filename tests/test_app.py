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
    for name in ("PROMETHEUS_URL", "DASHBOARD_CONFIG", "DASHBOARD_CLUSTER", "PROMETHEUS_TOKEN", "GRAFEAS_URL",
                 "GRAFEAS_PROJECT", "GRAFEAS_TOKEN", "GATE_POLICY"):
        monkeypatch.delenv(name, raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def small_demo(monkeypatch):
    """A smaller demo for the page and a CLI run alike: the Releases page judges every deployment
    inside the history on two range reads, which takes minutes on the default demo on a busy machine."""
    monkeypatch.setenv("DEMO_NODES", "8")
    monkeypatch.setenv("DEMO_DAYS", "2")


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


def every_text(app: AppTest) -> str:
    """Everything the page wrote as text, main area and sidebar."""
    kinds = ("title", "caption", "markdown", "text", "code", "info", "warning", "error", "success", "subheader")
    return "\n".join(str(element.value) for kind in kinds for element in getattr(app, kind))


# Pages that show the source status panel (panels.source_status) in their sidebar.
STATUS_PAGES = {"oncall.py", "health.py", "releases.py", "release.py"}


@pytest.mark.parametrize("page", ["oncall.py", "health.py", "releases.py", "release.py"])
def test_unreachable_prometheus_shows_an_error_panel_and_the_other_half(monkeypatch, page):
    monkeypatch.setenv("PROMETHEUS_URL", "http://alice:pw-do-not-show@127.0.0.1:9")
    monkeypatch.setenv("PROMETHEUS_TOKEN", "tok-do-not-show")
    monkeypatch.setenv("PROMETHEUS_TIMEOUT", "2")
    query = {"resource": demo_release_table()["resource_uri"].iloc[0]} if page == "release.py" else {}
    app = run_page(page, **query)
    assert not app.exception
    assert any("Could not read the source" in error.value for error in app.error)
    if page in STATUS_PAGES:
        status = "\n".join(text.value for text in app.sidebar.text)
        assert "Node health: Prometheus at http://127.0.0.1:9\n✖ unreachable" in status
    assert "do-not-show" not in every_text(app)
    if page == "releases.py":  # the supply-chain half still shows, impact Inconclusive
        shown = app.dataframe[0].value
        assert list(shown["resource"]) == list(demo_release_table()["resource_uri"])
        assert set(shown["impact"]) <= {"? Inconclusive", "— not deployed"} and "? Inconclusive" in set(shown["impact"])
    if page == "release.py":
        assert [s.value for s in app.subheader][:1] == ["Gate"]


def test_unreachable_grafeas_leaves_health_and_the_gate_denies(monkeypatch):
    monkeypatch.setenv("GRAFEAS_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("GRAFEAS_PROJECT", "acme")
    monkeypatch.setenv("GRAFEAS_TIMEOUT", "2")
    monkeypatch.setenv("GATE_POLICY", str(Path(APP).parent / "demo" / "policy.toml"))
    on_call = run_page("oncall.py")
    assert not on_call.exception
    assert [m.label for m in on_call.metric] == ["Unhealthy", "Unknown", "Degraded", "Healthy"]
    assert any("Could not read the source for Supply chain" in error.value for error in on_call.error)
    assert any("Could not evaluate the gate: denied" in caption.value for caption in on_call.caption)
    status = "\n".join(text.value for text in on_call.sidebar.text)
    assert "Supply chain: Grafeas v1 at http://127.0.0.1:9 (projects acme)\n✖ unreachable" in status
    release = run_page("release.py", resource="https://gcr.io/acme/checkout@sha256:" + "a" * 64)
    assert not release.exception
    assert any("could not evaluate: denied" in markdown.value for markdown in release.markdown)


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


def run_page(page: str, timeout: float = 120, **query) -> AppTest:
    """Open ``page`` as a link with ``query`` would, in a new session."""
    app = AppTest.from_file(APP, default_timeout=timeout)
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


def test_releases_page_lists_every_release_with_its_gate_verdict(small_demo):
    app = run_page("releases.py")
    assert not app.exception
    shown = app.dataframe[0].value
    table = demo_release_table()
    assert list(shown["resource"]) == list(table["resource_uri"])
    assert list(shown["gate"].str.endswith("denied")) == list(~table["allowed"])
    assert any("DEMO supply chain" in info.value for info in app.info)


def test_releases_page_filters_come_from_the_link_and_go_back_to_it(small_demo):
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
        st.cache_resource.clear()
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


@pytest.mark.timeout(900)
def test_releases_page_impact_equals_the_cli_and_filters_narrow_the_rows(small_demo):
    import json
    import subprocess
    import sys

    from dashboard.ui.data import supply_chain_bucket

    minute = supply_chain_bucket()
    cli = subprocess.Popen([sys.executable, "-m", "dashboard", "releases", "--format", "json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    app = run_page("releases.py", timeout=600)
    stdout, _ = cli.communicate(timeout=600)
    assert not app.exception
    assert cli.returncode == 0
    shown = app.dataframe[0].value
    by_cli = {row["resource_uri"]: row["impact"] for row in json.loads(stdout)}
    assert list(shown["resource"]) == list(by_cli)
    on_page = {uri: label.split(" ", 1)[1] for uri, label in zip(shown["resource"], shown["impact"])}
    assert on_page == {uri: impact or "not deployed" for uri, impact in by_cli.items()}, f"from {minute}"
    assert {"Fail", "Pass", "not deployed"} <= set(on_page.values())
    assert all(where for where, impact in zip(shown["deployed where and when"], on_page.values())
               if impact != "not deployed")
    status = "\n".join(text.value for text in app.sidebar.text)
    assert "Node health: DEMO: embedded demo" in status and "Supply chain: DEMO: embedded demo supply chain" in status

    app.multiselect(key="impact").set_value(["Fail"]).run()
    failed = app.dataframe[0].value
    assert 0 < len(failed) < len(shown) and set(failed["impact"]) == {"✖ Fail"}
    assert app.query_params["impact"] == "Fail"
    app.multiselect(key="impact").set_value([]).run()
    app.segmented_control(key="time_by").set_value("deployed").run()
    app.segmented_control(key="range").set_value("24h").run()
    recent = app.dataframe[0].value
    assert 0 < len(recent) < len(shown)
    assert app.query_params["time_by"] == "deployed" and app.query_params["range"] == "24h"
    assert "— not deployed" not in set(recent["impact"])
