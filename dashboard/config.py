"""One settings object for the app and the CLI.

Precedence: CLI flags > environment variables > a TOML file (``--config`` or ``DASHBOARD_CONFIG``)
> built-in defaults. Secrets (bearer token, basic-auth password) come only from the environment or
``.streamlit/secrets.toml``, are kept out of every ``repr``, and are never printed.

Without a Prometheus URL from any layer, the app and the CLI run on the embedded demo.

TOML layout (every key optional)::

    [prometheus]
    url = "https://prometheus.example:9090"
    timeout_seconds = 10
    parallel_queries = 4                  # queries of one evaluation in flight at once
    ca_bundle = "/etc/ssl/certs/internal-ca.pem"
    insecure = false
    basic_auth_user = "viewer"
    headers = { "X-Scope-OrgID" = "tenant-a" }

    [health]
    preset = "kube-prometheus-stack"      # or "gke-managed-prometheus"
    cluster = "prod-eu"
    cluster_label = "cluster"
    window = "5m"
    components = ["kubelet", "dns"]       # e.g. no kube-proxy on Cilium
    kube_proxy_sync_period_seconds = 30

    [health.selectors]
    kubelet = 'job="kubelet", metrics_path="/metrics"'

    [health.thresholds.kubelet.runtime_error_ratio]
    degraded = 0.02
    unhealthy = 0.10

    [grafeas]
    url = "https://containeranalysis.googleapis.com"
    api = "v1"                            # or "v1beta1" (the open-source server)
    project = "acme-prod"                 # where the images' occurrences live
    extra_projects = ["acme-attestors"]   # where attestation occurrences may also live
    user_project = "acme-billing"         # X-Goog-User-Project
    token_command = ["gcloud", "auth", "print-access-token"]
    policy = "gate-policy.toml"           # relative to this file

Environment: PROMETHEUS_URL, PROMETHEUS_TOKEN, PROMETHEUS_USERNAME, PROMETHEUS_PASSWORD,
PROMETHEUS_HEADERS (``Name=value,…``), PROMETHEUS_CA_BUNDLE, PROMETHEUS_INSECURE, PROMETHEUS_TIMEOUT,
DASHBOARD_CONFIG, DASHBOARD_CLUSTER, DASHBOARD_PRESET, DASHBOARD_WINDOW, GRAFEAS_URL, GRAFEAS_TOKEN,
GRAFEAS_API, GRAFEAS_PROJECT, GRAFEAS_USER_PROJECT, GRAFEAS_CA_BUNDLE, GATE_POLICY.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from dashboard.catalog import COMPONENTS, PRESETS, Catalog, Selectors
from dashboard.sources.prometheus import PrometheusSettings

DEFAULT_SECRETS_PATH = Path(".streamlit/secrets.toml")
PROMQL_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
SECRET_KEYS = {"bearer_token", "token", "basic_auth_password", "password"}


class ConfigError(Exception):
    """Invalid configuration; the message names the offending key and is safe to print."""


@dataclass(frozen=True)
class GrafeasSettings:
    """How to reach Grafeas. The token (or the command printing one) stays out of ``repr``."""

    url: str
    api: str = "v1"
    project: str | None = None
    extra_projects: tuple[str, ...] = ()
    user_project: str | None = None
    ca_bundle: str | None = None
    insecure: bool = False
    timeout_seconds: float = 10.0
    token: str | None = field(default=None, repr=False)
    token_command: tuple[str, ...] = field(default=(), repr=False)

    @property
    def projects(self) -> list[str]:
        return [p for p in (self.project, *self.extra_projects) if p]


@dataclass(frozen=True)
class Settings:
    """Everything the app and the CLI need to evaluate health and releases."""

    catalog: Catalog
    prometheus: PrometheusSettings | None = None
    cluster: str | None = None
    config_path: Path | None = field(default=None)
    grafeas: GrafeasSettings | None = None
    policy_path: Path | None = None

    @property
    def uses_demo(self) -> bool:
        return self.prometheus is None

    @property
    def uses_demo_grafeas(self) -> bool:
        return self.grafeas is None


def load_settings(
    cli: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    secrets_path: Path = DEFAULT_SECRETS_PATH,
) -> Settings:
    """Merge the layers. ``cli`` holds only the flags the user actually gave (None = not given)."""
    cli = {key: value for key, value in (cli or {}).items() if value is not None}
    env = os.environ if env is None else env
    config_path = cli.get("config") or env.get("DASHBOARD_CONFIG")
    file_config = _read_toml(Path(config_path), "config file") if config_path else {}
    secrets = _read_toml(secrets_path, "secrets file") if secrets_path.is_file() else {}
    prom_file = _table(file_config, "prometheus")
    health_file = _table(file_config, "health")
    prom_secrets = _table(secrets, "prometheus")
    grafeas_file = _table(file_config, "grafeas")
    for section, table, variable in (("prometheus", prom_file, "PROMETHEUS_TOKEN / PROMETHEUS_PASSWORD"),
                                     ("grafeas", grafeas_file, "GRAFEAS_TOKEN")):
        leaked = SECRET_KEYS & set(table)
        if leaked:
            raise ConfigError(
                f"[{section}] {sorted(leaked)[0]} does not belong in the config file: set {variable} "
                "in the environment or put it in .streamlit/secrets.toml"
            )

    url = cli.get("prometheus_url") or env.get("PROMETHEUS_URL") or prom_file.get("url")
    prometheus = None
    if url:
        prometheus = _prometheus_settings(url, prom_file, prom_secrets, env)

    catalog = _catalog(health_file, env, cli)
    cluster = cli.get("cluster") or env.get("DASHBOARD_CLUSTER") or health_file.get("cluster")
    grafeas_url = cli.get("grafeas_url") or env.get("GRAFEAS_URL") or grafeas_file.get("url")
    grafeas = None
    if grafeas_url:
        grafeas = _grafeas_settings(grafeas_url, grafeas_file, _table(secrets, "grafeas"), env, cli)
    policy = cli.get("policy") or env.get("GATE_POLICY")
    if not policy and grafeas_file.get("policy"):
        policy = Path(config_path).parent / str(grafeas_file["policy"])
    return Settings(
        catalog=catalog,
        prometheus=prometheus,
        cluster=str(cluster) if cluster else None,
        config_path=Path(config_path) if config_path else None,
        grafeas=grafeas,
        policy_path=Path(policy) if policy else None,
    )


def _grafeas_settings(
    url: str, grafeas_file: dict, grafeas_secrets: dict, env: Mapping[str, str], cli: Mapping[str, Any]
) -> GrafeasSettings:
    if not re.match(r"^https?://[^/\s]+", url):
        raise ConfigError("Grafeas URL must start with http:// or https://")
    api = cli.get("grafeas_api") or env.get("GRAFEAS_API") or grafeas_file.get("api") or "v1"
    if api not in ("v1", "v1beta1"):
        raise ConfigError(f"Grafeas api {api!r}: choose v1 or v1beta1")
    command = _typed(grafeas_file, "token_command", list, [])
    if not all(isinstance(part, str) and part for part in command):
        raise ConfigError("[grafeas] token_command must be a list of non-empty strings")
    timeout = env.get("GRAFEAS_TIMEOUT") or grafeas_file.get("timeout_seconds", 10.0)
    try:
        timeout_seconds = float(timeout)
    except (TypeError, ValueError):
        raise ConfigError("Grafeas timeout must be a number of seconds") from None
    token = env.get("GRAFEAS_TOKEN") or grafeas_secrets.get("token")
    return GrafeasSettings(
        url=url,
        api=str(api),
        project=cli.get("project") or env.get("GRAFEAS_PROJECT") or grafeas_file.get("project"),
        extra_projects=tuple(str(p) for p in _typed(grafeas_file, "extra_projects", list, [])),
        user_project=env.get("GRAFEAS_USER_PROJECT") or grafeas_file.get("user_project"),
        ca_bundle=env.get("GRAFEAS_CA_BUNDLE") or grafeas_file.get("ca_bundle"),
        insecure=bool(grafeas_file.get("insecure", False)),
        timeout_seconds=timeout_seconds,
        token=str(token) if token else None,
        token_command=tuple(command),
    )


def _prometheus_settings(
    url: str, prom_file: dict, prom_secrets: dict, env: Mapping[str, str]
) -> PrometheusSettings:
    if not re.match(r"^https?://[^/\s]+", url):
        raise ConfigError("Prometheus URL must start with http:// or https://")
    headers = dict(_typed(prom_file, "headers", dict, {}))
    if env.get("PROMETHEUS_HEADERS"):
        headers.update(_parse_headers(env["PROMETHEUS_HEADERS"]))
    token = env.get("PROMETHEUS_TOKEN") or prom_secrets.get("bearer_token")
    user = env.get("PROMETHEUS_USERNAME") or prom_file.get("basic_auth_user") or prom_secrets.get("basic_auth_user")
    password = env.get("PROMETHEUS_PASSWORD") or prom_secrets.get("basic_auth_password")
    timeout = env.get("PROMETHEUS_TIMEOUT") or prom_file.get("timeout_seconds", 10.0)
    try:
        timeout_seconds = float(timeout)
    except (TypeError, ValueError):
        raise ConfigError("Prometheus timeout must be a number of seconds") from None
    if timeout_seconds <= 0:
        raise ConfigError("Prometheus timeout must be positive")
    insecure_env = env.get("PROMETHEUS_INSECURE")
    insecure = insecure_env.lower() in ("1", "true", "yes") if insecure_env else bool(prom_file.get("insecure", False))
    return PrometheusSettings(
        url=url,
        timeout_seconds=timeout_seconds,
        bearer_token=str(token) if token else None,
        basic_auth=(str(user), str(password or "")) if user else None,
        headers={str(k): str(v) for k, v in headers.items()},
        ca_bundle=env.get("PROMETHEUS_CA_BUNDLE") or prom_file.get("ca_bundle"),
        insecure=insecure,
        parallel_queries=_positive_int(prom_file.get("parallel_queries", 4), "[prometheus] parallel_queries"),
    )


def _catalog(health_file: dict, env: Mapping[str, str], cli: Mapping[str, Any]) -> Catalog:
    preset_name = cli.get("preset") or env.get("DASHBOARD_PRESET") or health_file.get("preset") or "kube-prometheus-stack"
    if preset_name not in PRESETS:
        raise ConfigError(f"unknown preset {preset_name!r}; choose one of {', '.join(PRESETS)}")
    catalog = PRESETS[preset_name]
    window = cli.get("window") or env.get("DASHBOARD_WINDOW") or health_file.get("window") or catalog.window
    if not PROMQL_DURATION.match(str(window)):
        raise ConfigError(f"window {window!r} is not a PromQL duration such as 5m or 1h30m")
    components = tuple(_typed(health_file, "components", list, list(catalog.components)))
    unknown = set(components) - set(COMPONENTS)
    if unknown:
        raise ConfigError(f"[health] components: unknown {sorted(unknown)}; choose from {list(COMPONENTS)}")
    selectors = catalog.selectors
    selector_overrides = _table(health_file, "selectors")
    known_selectors = {f.name.replace("_", "-"): f.name for f in fields(Selectors)}
    known_selectors.update({f.name: f.name for f in fields(Selectors)})
    for key, value in selector_overrides.items():
        if key not in known_selectors or not isinstance(value, str) or not value.strip():
            raise ConfigError(f"[health.selectors] {key}: expected one of {sorted(set(known_selectors.values()))} with a non-empty matcher")
        selectors = replace(selectors, **{known_selectors[key]: value})
    overrides = []
    for component, by_signal in _table(health_file, "thresholds").items():
        if not isinstance(by_signal, dict):
            raise ConfigError(f"[health.thresholds.{component}] must be a table of signals")
        for signal, limits in by_signal.items():
            try:
                catalog.signal(component, signal)
                overrides.append((component, signal, float(limits["degraded"]), float(limits["unhealthy"])))
            except KeyError:
                raise ConfigError(
                    f"[health.thresholds.{component}.{signal}]: unknown signal, or missing degraded/unhealthy"
                ) from None
            except (TypeError, ValueError):
                raise ConfigError(f"[health.thresholds.{component}.{signal}]: thresholds must be numbers") from None
    sync_period = health_file.get("kube_proxy_sync_period_seconds", catalog.kube_proxy_sync_period_seconds)
    return replace(
        catalog,
        window=str(window),
        components=components,
        selectors=selectors,
        cluster_label=str(health_file.get("cluster_label", catalog.cluster_label)),
        threshold_overrides=tuple(overrides),
        kube_proxy_sync_period_seconds=float(sync_period),
    )


def _positive_int(value: Any, key: str) -> int:
    if not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key} must be a positive whole number")
    return value


def _read_toml(path: Path, what: str) -> dict:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} not found") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{what} {path} is not valid TOML: {error}") from None


def _table(data: dict, key: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{key}] must be a table")
    return value


def _typed(data: dict, key: str, kind: type, default: Any) -> Any:
    value = data.get(key, default)
    if not isinstance(value, kind):
        raise ConfigError(f"{key} must be a {kind.__name__}")
    return value


def _parse_headers(text: str) -> dict[str, str]:
    """``Name=value,Other=value`` from PROMETHEUS_HEADERS."""
    headers = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError("PROMETHEUS_HEADERS must look like Name=value,Other=value")
        headers[name.strip()] = value.strip()
    return headers
