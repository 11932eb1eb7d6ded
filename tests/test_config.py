"""Configuration layers: CLI flags > environment > TOML file > defaults; secrets never leak."""

from pathlib import Path

import pytest

from dashboard.config import ConfigError, load_settings

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
