"""Configuration layers: CLI flags > environment > TOML file > defaults; secrets never leak."""

import subprocess
import sys
from pathlib import Path

import pytest

from dashboard.config import ConfigError, DemoSettings, load_settings

NO_SECRETS = Path("/nonexistent/secrets.toml")


def write(tmp_path, text, name="dashboard.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_run_the_demo():
    settings = load_settings({}, env={}, secrets_path=NO_SECRETS)
    assert settings.uses_demo
    assert settings.catalog.preset == "kube-prometheus-stack"
    assert settings.catalog.window == "5m"


def test_precedence_flag_over_env_over_file(tmp_path):
    config = write(tmp_path, '[prometheus]\nurl = "http://file:9090"\n[health]\ncluster = "from-file"\nwindow = "10m"\n')
    env = {"DASHBOARD_CONFIG": str(config), "PROMETHEUS_URL": "http://env:9090", "DASHBOARD_CLUSTER": "from-env"}
    settings = load_settings({"prometheus_url": None, "cluster": "from-flag"}, env=env, secrets_path=NO_SECRETS)
    assert settings.prometheus.url == "http://env:9090"
    assert settings.cluster == "from-flag"
    assert settings.catalog.window == "10m"
    settings = load_settings({"config": str(config)}, env={}, secrets_path=NO_SECRETS)
    assert settings.prometheus.url == "http://file:9090" and settings.cluster == "from-file"


def test_secrets_from_env_or_secrets_file_and_never_in_repr(tmp_path):
    secrets = write(tmp_path, '[prometheus]\nbearer_token = "s3cr3t-from-file"\n', "secrets.toml")
    env = {"PROMETHEUS_URL": "https://user:pw@prom.example/", "PROMETHEUS_HEADERS": "X-Scope-OrgID=tenant-a"}
    settings = load_settings({}, env=env, secrets_path=secrets)
    assert settings.prometheus.bearer_token == "s3cr3t-from-file"
    assert settings.prometheus.headers == {"X-Scope-OrgID": "tenant-a"}
    assert "s3cr3t" not in repr(settings)
    settings = load_settings({}, env={**env, "PROMETHEUS_TOKEN": "tok-env"}, secrets_path=secrets)
    assert settings.prometheus.bearer_token == "tok-env"


def test_a_token_in_the_config_file_is_refused_without_echoing_it(tmp_path):
    config = write(tmp_path, '[prometheus]\nurl = "http://p:9090"\nbearer_token = "do-not-print"\n')
    with pytest.raises(ConfigError) as error:
        load_settings({"config": str(config)}, env={}, secrets_path=NO_SECRETS)
    assert "do-not-print" not in str(error.value)
    assert "PROMETHEUS_TOKEN" in str(error.value)


def test_thresholds_components_and_selectors_from_file(tmp_path):
    config = write(
        tmp_path,
        '[health]\ncomponents = ["kubelet", "dns"]\n'
        '[health.selectors]\nkubelet = \'job="k"\'\n'
        "[health.thresholds.kubelet.runtime_error_ratio]\ndegraded = 0.02\nunhealthy = 0.1\n",
    )
    catalog = load_settings({"config": str(config)}, env={}, secrets_path=NO_SECRETS).catalog
    assert catalog.components == ("kubelet", "dns")
    assert not [s for s in catalog.signals if s.component == "kube-proxy"]
    assert catalog.selectors.kubelet == 'job="k"'
    thresholds = catalog.signal("kubelet", "runtime_error_ratio").thresholds
    assert (thresholds.degraded, thresholds.unhealthy, thresholds.source) == (0.02, 0.1, "configured")


@pytest.mark.parametrize(
    "text, message",
    [
        ('[health]\nwindow = "five minutes"\n', "PromQL duration"),
        ('[health]\npreset = "nope"\n', "unknown preset"),
        ('[health]\ncomponents = ["kubelet", "etcd"]\n', "unknown"),
        ("[health.thresholds.kubelet.nope]\ndegraded = 1\nunhealthy = 2\n", "unknown signal"),
        ('[prometheus]\nurl = "ftp://x"\n', "http://"),
        ("[prometheus\n", "not valid TOML"),
    ],
)
def test_bad_configuration_is_a_clear_error(tmp_path, text, message):
    config = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message):
        load_settings({"config": str(config)}, env={}, secrets_path=NO_SECRETS)


def test_missing_config_file_is_named():
    with pytest.raises(ConfigError, match="not found"):
        load_settings({"config": "/nonexistent/x.toml"}, env={}, secrets_path=NO_SECRETS)


@pytest.mark.parametrize(
    "text, message",
    [
        ("[healthh]\n", "unknown section [healthh] (did you mean 'health'?)"),
        ("[prometheus]\nbogus = 1\n", "[prometheus] unknown key 'bogus'"),
        ('[health]\nwindoww = "5m"\n', "did you mean 'window'?"),
        ("[health.thresholds.kubelet.runtime_eror_ratio]\ndegraded = 0.1\nunhealthy = 0.2\n",
         "did you mean 'runtime_error_ratio'?"),
        ("[health.thresholds.kubelet.runtime_error_ratio]\ndegarded = 0.1\nunhealthy = 0.2\n",
         "did you mean 'degraded'?"),
        ("[health.thresholds.kubelett.runtime_error_ratio]\ndegraded = 0.1\nunhealthy = 0.2\n",
         "did you mean 'kubelet'?"),
        ("[health.thresholds.kubelet.runtime_error_ratio]\ndegraded = 0.2\nunhealthy = 0.1\n",
         "degraded (0.2) is beyond unhealthy (0.1)"),
        ("[health.selectors]\nkubelett = 'job=\"k\"'\n", "did you mean 'kubelet'?"),
    ],
)
def test_unknown_names_and_thresholds_the_wrong_way_round_are_refused(tmp_path, text, message):
    with pytest.raises(ConfigError) as error:
        load_settings({"config": str(write(tmp_path, text))}, env={}, secrets_path=NO_SECRETS)
    assert message in str(error.value)


@pytest.mark.parametrize(
    "text, message",
    [
        ('[prometheus]\nurl = "https://p"\ninsecure = "false"\n', "[prometheus] insecure must be true or false, not a string"),
        ('[grafeas]\nurl = "https://g"\ninsecure = "false"\n', "[grafeas] insecure must be true or false, not a string"),
        ("[prometheus]\nurl = 5\n", "[prometheus] url must be a string, not a whole number"),
        ('[grafeas]\nurl = "https://g"\nproject = 5\n', "[grafeas] project must be a string"),
        ('[health]\nkube_proxy_sync_period_seconds = "30s"\n', "must be a number, not a string"),
        ("[health.thresholds.kubelet.runtime_error_ratio]\ndegraded = nan\nunhealthy = 0.1\n", "finite"),
        ("[health.thresholds.kubelet.runtime_error_ratio]\ndegraded = 0.1\nunhealthy = inf\n", "finite"),
        ('[health]\nwindow = "5m\\n"\n', "control characters"),
        ('[health]\ncluster_label = "k8s-cluster"\n', "not a Prometheus label name"),
        ('[health]\ncluster_label = "cluster, job"\n', "not a Prometheus label name"),
        ('[prometheus]\nurl = "https://p"\ntimeout_seconds = inf\n', "finite positive number"),
        ('[prometheus]\nurl = "https://p"\ntimeout_seconds = nan\n', "finite positive number"),
        ('[prometheus]\nurl = "https://p"\nparallel_queries = true\n', "whole number, not a boolean"),
        ('[prometheus]\nurl = "https://p:99999"\n', "not a valid URL"),
        ('[prometheus]\nurl = "https://p:port"\n', "not a valid URL"),
        ('[prometheus]\nurl = "https://[::1"\n', "not a valid URL"),
        ('[prometheus]\nurl = "https://p"\nca_bundle = "/nonexistent/ca.pem"\n', "/nonexistent/ca.pem not found"),
        ('[grafeas]\nurl = "https://g"\nextra_projects = "a,b"\n', "must be a list of strings"),
        ('[grafeas]\nurl = "https://g"\nmax_pages = 0\n', "at least 1"),
    ],
)
def test_values_of_the_wrong_type_or_range_are_refused_naming_key_and_type(tmp_path, text, message):
    with pytest.raises(ConfigError) as error:
        load_settings({"config": str(write(tmp_path, text))}, env={}, secrets_path=NO_SECRETS)
    assert message in str(error.value)


@pytest.mark.parametrize(
    "text",
    [
        '[prometheus]\nurl = "https://p"\nheaders = { Authorization = "Bearer do-not-print" }\n',
        '[prometheus]\nurl = "https://p"\nheaders = { proxy-authorization = "Basic do-not-print" }\n',
        '[prometheus]\nurl = "https://viewer:do-not-print@p"\n',
        '[grafeas]\nurl = "https://viewer:do-not-print@g"\n',
    ],
)
def test_credentials_in_the_config_file_are_refused_in_every_form(tmp_path, text):
    with pytest.raises(ConfigError) as error:
        load_settings({"config": str(write(tmp_path, text))}, env={}, secrets_path=NO_SECRETS)
    assert "do-not-print" not in str(error.value)
    assert "environment" in str(error.value)


@pytest.mark.parametrize(
    "env, message",
    [
        ({"PROMETHEUS_INSECURE": "maybe"}, "PROMETHEUS_INSECURE must be true or false"),
        ({"PROMETHEUS_TIMEOUT": "inf"}, "finite positive number"),
        ({"PROMETHEUS_TIMEOUT": "soon"}, "must be a number of seconds"),
        ({"PROMETHEUS_CA_BUNDLE": "/nonexistent/ca.pem"}, "not found"),
        ({"DASHBOARD_CLUSTER": "prod\udcff"}, "not valid UTF-8"),
        ({"DASHBOARD_WINDOW": "0s"}, "too short"),
    ],
)
def test_environment_values_are_checked_too(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings({}, env={"PROMETHEUS_URL": "http://p:9090", **env}, secrets_path=NO_SECRETS)


def test_insecure_false_keeps_tls_verification_on(tmp_path):
    config = write(tmp_path, '[prometheus]\nurl = "https://p"\ninsecure = false\n')
    assert load_settings({"config": str(config)}, env={}, secrets_path=NO_SECRETS).prometheus.insecure is False
    settings = load_settings({}, env={"PROMETHEUS_URL": "https://p", "PROMETHEUS_INSECURE": "false"},
                             secrets_path=NO_SECRETS)
    assert settings.prometheus.insecure is False


def test_a_cluster_flag_that_is_not_utf8_is_refused_locally():
    with pytest.raises(ConfigError, match="--cluster is not valid UTF-8"):
        load_settings({"cluster": "prod\udcff"}, env={}, secrets_path=NO_SECRETS)


def test_unknown_keys_in_the_secrets_file_are_refused(tmp_path):
    secrets = write(tmp_path, '[prometheus]\nbearer_tokn = "do-not-print"\n', "secrets.toml")
    with pytest.raises(ConfigError) as error:
        load_settings({}, env={}, secrets_path=secrets)
    assert "did you mean 'bearer_token'?" in str(error.value) and "do-not-print" not in str(error.value)


def test_cluster_aliases_from_the_config_file(tmp_path):
    config = write(tmp_path, '[clusters.aliases]\n"https://10.0.0.1:6443" = "onprem"\nprod-eu-1 = "prod"\n')
    settings = load_settings({"config": str(config)}, env={}, secrets_path=NO_SECRETS)
    assert settings.cluster_aliases == {"https://10.0.0.1:6443": "onprem", "prod-eu-1": "prod"}
    with pytest.raises(ConfigError, match=r"\[clusters\] aliases.prod-eu-1 must be a string"):
        load_settings({"config": str(write(tmp_path, "[clusters.aliases]\nprod-eu-1 = 3\n"))}, env={},
                      secrets_path=NO_SECRETS)


@pytest.mark.parametrize("selector, message", [
    ('job="kubelet"} or vector(1) or {job="x"', "expected a comma"),
    ('job="kubelet', "unterminated"),
    ("job=kubelet", "expected a quoted string"),
], ids=["brace-breaks-out", "unterminated", "unquoted"])
def test_selectors_must_parse_as_label_matcher_lists(tmp_path, selector, message):
    config = write(tmp_path, f"[health.selectors]\nkubelet = '{selector}'\n")
    with pytest.raises(ConfigError, match=r"\[health.selectors\] kubelet: .*" + message):
        load_settings({"config": str(config)}, env={}, secrets_path=NO_SECRETS)


def test_a_valid_selector_list_is_kept_as_written(tmp_path):
    config = write(tmp_path, "[health.selectors]\nkubelet = 'job=\"kubelet\", metrics_path=~\"/metrics\"'\n")
    settings = load_settings({"config": str(config)}, env={}, secrets_path=NO_SECRETS)
    assert settings.catalog.selectors.kubelet == 'job="kubelet", metrics_path=~"/metrics"'


def test_prometheus_bounds_from_file_and_environment(tmp_path):
    config = write(tmp_path, '[prometheus]\nurl = "http://prom:9090"\nevaluation_timeout_seconds = 30\n'
                             'max_body_bytes = 1048576\nmax_samples = 1000\n')
    settings = load_settings({"config": str(config)}, env={}, secrets_path=NO_SECRETS)
    prometheus = settings.prometheus
    assert (prometheus.evaluation_timeout_seconds, prometheus.max_body_bytes, prometheus.max_samples) == (30, 2**20, 1000)
    env = {"PROMETHEUS_EVALUATION_TIMEOUT": "5", "PROMETHEUS_MAX_BODY_BYTES": "2048", "PROMETHEUS_MAX_SAMPLES": "10"}
    prometheus = load_settings({"config": str(config)}, env=env, secrets_path=NO_SECRETS).prometheus
    assert (prometheus.evaluation_timeout_seconds, prometheus.max_body_bytes, prometheus.max_samples) == (5, 2048, 10)
    defaults = load_settings({"prometheus_url": "http://prom:9090"}, env={}, secrets_path=NO_SECRETS).prometheus
    assert (defaults.evaluation_timeout_seconds, defaults.max_body_bytes, defaults.max_samples) == (60, 16 * 2**20, 50_000)


@pytest.mark.parametrize("env, message", [
    ({"PROMETHEUS_MAX_SAMPLES": "lots"}, "PROMETHEUS_MAX_SAMPLES must be a whole number"),
    ({"PROMETHEUS_MAX_BODY_BYTES": "0"}, "PROMETHEUS_MAX_BODY_BYTES must be at least 1"),
    ({"PROMETHEUS_EVALUATION_TIMEOUT": "inf"}, "PROMETHEUS_EVALUATION_TIMEOUT must be a finite positive number"),
])
def test_prometheus_bounds_from_the_environment_are_checked(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings({}, env={"PROMETHEUS_URL": "http://prom:9090", **env}, secrets_path=NO_SECRETS)


def test_the_settings_module_imports_no_http_layer():
    code = ("import sys, dashboard.config; "
            "print([m for m in sys.modules if m.split('.')[0] in ('requests', 'urllib3') or m.startswith('dashboard.sources')])")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"


def test_the_prometheus_ui_link_defaults_to_graph_without_credentials(tmp_path):
    settings = load_settings({"prometheus_url": "https://user:pw@prom.example:9090/prefix/"}, env={},
                             secrets_path=NO_SECRETS)
    assert settings.prometheus.graph_url == "https://prom.example:9090/prefix/graph"
    config = write(tmp_path, '[prometheus]\nurl = "http://prom:9090"\nui_url = "https://grafana.example/explore"\n')
    settings = load_settings({"config": str(config)}, env={}, secrets_path=NO_SECRETS)
    assert settings.prometheus.graph_url == "https://grafana.example/explore"


def test_the_demo_size_comes_from_the_environment():
    assert load_settings({}, env={}, secrets_path=NO_SECRETS).demo == DemoSettings(nodes=12, days=7)
    settings = load_settings({}, env={"DEMO_NODES": "2000", "DEMO_DAYS": "1"}, secrets_path=NO_SECRETS)
    assert (settings.demo.nodes, settings.demo.days) == (2000, 1)
    assert load_settings({}, env={"DEMO_NODES": ""}, secrets_path=NO_SECRETS).demo.nodes == 12


@pytest.mark.parametrize("env, variable", [
    ({"DEMO_NODES": "abc"}, "DEMO_NODES"),
    ({"DEMO_NODES": "3"}, "DEMO_NODES"),  # the demo's incidents need 8 nodes per cluster
    ({"DEMO_NODES": "12.5"}, "DEMO_NODES"),
    ({"DEMO_NODES": "10001"}, "DEMO_NODES"),
    ({"DEMO_DAYS": "0"}, "DEMO_DAYS"),
    ({"DEMO_DAYS": "week"}, "DEMO_DAYS"),
])
def test_a_bad_demo_size_is_a_configuration_error_naming_the_variable(env, variable):
    with pytest.raises(ConfigError, match=rf"^{variable} must be a whole number .*not {env[variable]!r}$"):
        load_settings({}, env=env, secrets_path=NO_SECRETS)


def test_the_refresh_interval_comes_from_the_environment_and_is_checked():
    assert load_settings({}, env={}, secrets_path=NO_SECRETS).refresh_seconds == 60.0
    env = {"DASHBOARD_REFRESH_SECONDS": "15"}
    assert load_settings({}, env=env, secrets_path=NO_SECRETS).refresh_seconds == 15.0
    for bad in ("soon", "0", "-5", "inf", "nan"):
        with pytest.raises(ConfigError, match=r"^DASHBOARD_REFRESH_SECONDS must be a"):
            load_settings({}, env={"DASHBOARD_REFRESH_SECONDS": bad}, secrets_path=NO_SECRETS)


def test_the_demo_source_and_its_cache_key_follow_the_size():
    from datetime import datetime, timezone

    from dashboard.sources import health_source, source_identity

    now = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    source = health_source(None, now=now, demo=DemoSettings(nodes=20, days=2))
    assert source.scenario.nodes == 20 and source.scenario.history.days == 2
    assert source_identity(None, demo=DemoSettings()) == "demo:12x7d"
    assert len({source_identity(None, demo=DemoSettings(nodes=n, days=d)) for n, d in [(12, 7), (20, 7), (12, 2)]}) == 3


@pytest.mark.parametrize("value, code", [("20", 0), ("abc", 2), ("3", 2)])
def test_the_cli_judges_the_configured_demo_size(value, code):
    completed = subprocess.run([sys.executable, "-m", "dashboard", "health", "--format", "json"],
                               capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent,
                               env={"PATH": "/usr/bin:/bin", "DEMO_NODES": value})
    assert completed.returncode == code, completed.stderr
    if code:
        assert completed.stderr.strip().splitlines() == [
            f"error: DEMO_NODES must be a whole number of nodes per cluster from 8 to 10,000, not {value!r}"]
        return
    import json

    verdicts = json.loads(completed.stdout)["verdicts"]
    for cluster in ("prod", "staging"):
        nodes = {v["node"] for v in verdicts if v["cluster"] == cluster and v["scope"] == "node"
                 and v["component"] == "kubelet"}
        assert len(nodes) == 20
