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
    timeout_seconds = 10
    ca_bundle = "/etc/ssl/certs/internal-ca.pem"
    insecure = false
    max_pages = 2000                      # bounds of one listing: pages, occurrences, seconds, bytes
    max_occurrences = 1000000
    listing_deadline_seconds = 300
    max_body_bytes = 67108864
    api = "v1"                            # or "v1beta1" (the open-source server)
    project = "acme-prod"                 # where the images' occurrences live
    extra_projects = ["acme-attestors"]   # where attestation occurrences may also live
    user_project = "acme-billing"         # X-Goog-User-Project
    token_command = ["gcloud", "auth", "print-access-token"]
    policy = "gate-policy.toml"           # relative to this file

    [clusters.aliases]                    # where a DEPLOYMENT's address names no cluster label
    "https://10.0.0.1:6443" = "onprem"
    "prod-eu-1" = "prod"                  # a parsed GKE/EKS cluster name → the cluster label

Every key is checked: an unknown section or key (with the key that was probably meant), a value of
the wrong type, a threshold that is not a finite number or a degraded threshold beyond the unhealthy
one is a :class:`ConfigError` naming the key. Credentials are refused in the file in every form
(``bearer_token``, ``headers = {Authorization = …}``, ``user:password@`` in a URL).

Environment: PROMETHEUS_URL, PROMETHEUS_TOKEN, PROMETHEUS_USERNAME, PROMETHEUS_PASSWORD,
PROMETHEUS_HEADERS (``Name=value,…``), PROMETHEUS_CA_BUNDLE, PROMETHEUS_INSECURE, PROMETHEUS_TIMEOUT,
PROMETHEUS_EVALUATION_TIMEOUT, PROMETHEUS_MAX_BODY_BYTES, PROMETHEUS_MAX_SAMPLES, PROMETHEUS_UI_URL,
DASHBOARD_CONFIG, DASHBOARD_CLUSTER, DASHBOARD_PRESET, DASHBOARD_WINDOW, GRAFEAS_URL, GRAFEAS_TOKEN,
GRAFEAS_API, GRAFEAS_PROJECT, GRAFEAS_USER_PROJECT, GRAFEAS_CA_BUNDLE, GRAFEAS_TIMEOUT, GATE_POLICY,
DASHBOARD_REFRESH_SECONDS (the app's refresh interval, default 60);
the embedded demo's size: DEMO_NODES (nodes per cluster, default 12, 8 to 10,000), DEMO_DAYS (days of
history, default 7, 1 to 365).
"""

from __future__ import annotations

import difflib
import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dashboard.catalog import COMPONENTS, PRESETS, Catalog, Selectors
from dashboard.durations import parse_duration
from dashboard.matchers import is_label_name, validate_matchers

DEFAULT_SECRETS_PATH = Path(".streamlit/secrets.toml")
MIN_WINDOW_SECONDS = 60
# Headers that carry credentials: allowed from the environment, refused in the config file.
CREDENTIAL_HEADERS = {"authorization", "proxy-authorization", "cookie", "x-api-key"}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")
# The embedded demo's size bounds: its incidents sit on node-01 … node-07, so at least 8 nodes.
DEMO_NODES_RANGE, DEMO_DAYS_RANGE = (8, 10_000), (1, 365)


class ConfigError(Exception):
    """Invalid configuration; the message names the offending key and is safe to print."""


@dataclass(frozen=True)
class PrometheusSettings:
    """How to reach the backend. Secrets are kept out of ``repr``."""

    url: str = field(repr=False)  # may carry user:password@
    timeout_seconds: float = 10.0  # per request: connect, headers and body
    bearer_token: str | None = field(default=None, repr=False)
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    ca_bundle: str | None = None
    insecure: bool = False
    # Queries of one evaluation run side by side; a few at a time keeps the backend comfortable.
    parallel_queries: int = 4
    # The whole evaluation (31 queries): 2,000 nodes take about 6 s on a local Prometheus.
    evaluation_timeout_seconds: float = 60.0
    # Per query. The largest answer at 200 nodes is 19 kB and 200 samples, linear in nodes; at
    # 2,000 nodes the 31 answers total 3.5 MB (bench.health_bench), so these leave 80x and 25x room.
    max_body_bytes: int = 16 * 1024 * 1024
    max_samples: int = 50_000
    # Where a chart's "open in Prometheus" link points; None: the Prometheus URL's /graph.
    ui_url: str | None = None

    @property
    def graph_url(self) -> str:
        """The Prometheus UI's graph page, without credentials (links are shown to people)."""
        if self.ui_url:
            return self.ui_url
        parts = urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}{parts.path.rstrip('/')}/graph"


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
    # Bounds on one listing, so a misbehaving server cannot page or grow forever.
    max_pages: int = 2_000
    max_occurrences: int = 1_000_000
    listing_deadline_seconds: float = 300.0
    max_body_bytes: int = 64 * 2**20
    token: str | None = field(default=None, repr=False)
    token_command: tuple[str, ...] = field(default=(), repr=False)

    @property
    def projects(self) -> list[str]:
        return [p for p in (self.project, *self.extra_projects) if p]


@dataclass(frozen=True)
class DemoSettings:
    """The embedded demo's size: ``nodes`` per cluster, ``days`` of history (DEMO_NODES, DEMO_DAYS)."""

    nodes: int = 12
    days: int = 7


@dataclass(frozen=True)
class Settings:
    """Everything the app and the CLI need to evaluate health and releases."""

    catalog: Catalog
    prometheus: PrometheusSettings | None = None
    cluster: str | None = None
    config_path: Path | None = field(default=None)
    grafeas: GrafeasSettings | None = None
    policy_path: Path | None = None
    # Deployment address or kubectl context (or a cluster name parsed from one) → cluster label.
    cluster_aliases: Mapping[str, str] = field(default_factory=dict)
    # The embedded demo's size (used when no Prometheus is configured).
    demo: DemoSettings = field(default_factory=DemoSettings)
    # How often the app's live parts refresh; a read older than this is stale (DASHBOARD_REFRESH_SECONDS).
    refresh_seconds: float = 60.0

    @property
    def uses_demo(self) -> bool:
        return self.prometheus is None

    @property
    def uses_demo_grafeas(self) -> bool:
        return self.grafeas is None


# ---- checks of single values: each takes the value and the key it came from, returns it cleaned


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a string, not {_type_name(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{key} is not valid UTF-8") from None
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise ConfigError(f"{key} contains control characters")
    return value


def _nonempty(value: Any, key: str) -> str:
    text = _text(value, key).strip()
    if not text:
        raise ConfigError(f"{key} must not be empty")
    return text


def _boolean(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, not {_type_name(value)}")
    return value


def _positive_number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key} must be a number, not {_type_name(value)}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{key} must be a finite positive number, not {value}")
    return float(value)


def _positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key} must be a whole number, not {_type_name(value)}")
    if value < 1:
        raise ConfigError(f"{key} must be at least 1")
    return value


def _string_list(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{key} must be a list of strings, not {_type_name(value)}")
    return tuple(_nonempty(item, f"{key}[{index}]") for index, item in enumerate(value))


def _url(value: Any, key: str) -> str:
    url = _nonempty(value, key)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number in range
    except ValueError as error:
        raise ConfigError(f"{key}: not a valid URL ({error})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in url:
        raise ConfigError(f"{key} must be an http:// or https:// URL with a host")
    return url


def _file_url(value: Any, key: str) -> str:
    url = _url(value, key)
    if urlsplit(url).username is not None:
        raise ConfigError(
            f"{key}: credentials do not belong in the config file's URL; set them in the environment "
            "or in .streamlit/secrets.toml"
        )
    return url


def _existing_file(value: Any, key: str) -> str:
    path = _nonempty(value, key)
    if not Path(path).is_file():
        raise ConfigError(f"{key} {path} not found (or not a file)")
    return path


def _window(value: Any, key: str) -> str:
    window = _text(value, key)
    try:
        seconds = parse_duration(window)
    except ValueError as error:
        raise ConfigError(f"{key}: {error}") from None
    if seconds < MIN_WINDOW_SECONDS:
        raise ConfigError(f"{key} {window!r} is too short: a rate window needs at least 1m")
    return window


def _label_name(value: Any, key: str) -> str:
    name = _text(value, key)
    if not is_label_name(name):
        raise ConfigError(f"{key} {name!r} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)")
    return name


def _file_headers(value: Any, key: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a table of strings, not {_type_name(value)}")
    headers = {_nonempty(name, key): _text(item, f"{key}.{name}") for name, item in value.items()}
    for name in headers:
        if name.lower() in CREDENTIAL_HEADERS:
            raise ConfigError(
                f"{key}.{name} carries credentials and does not belong in the config file: set "
                "PROMETHEUS_TOKEN or PROMETHEUS_HEADERS in the environment, or use .streamlit/secrets.toml"
            )
    return headers


def _aliases(value: Any, key: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a table of address or context = cluster label, not {_type_name(value)}")
    return {_nonempty(name, key): _nonempty(label, f"{key}.{name}") for name, label in value.items()}


def _api(value: Any, key: str) -> str:
    api = _nonempty(value, key)
    if api not in ("v1", "v1beta1"):
        raise ConfigError(f"{key} {api!r}: choose v1 or v1beta1")
    return api


_Check = Callable[[Any, str], Any]
# What each section of the config file may hold; "selectors" and "thresholds" are checked with the
# catalog they change.
FILE_SCHEMA: dict[str, dict[str, _Check | None]] = {
    "prometheus": {
        "url": _file_url,
        "timeout_seconds": _positive_number,
        "parallel_queries": _positive_int,
        "evaluation_timeout_seconds": _positive_number,
        "ui_url": _file_url,
        "max_body_bytes": _positive_int,
        "max_samples": _positive_int,
        "ca_bundle": _existing_file,
        "insecure": _boolean,
        "basic_auth_user": _nonempty,
        "headers": _file_headers,
    },
    "health": {
        "preset": _nonempty,
        "cluster": _nonempty,
        "cluster_label": _label_name,
        "window": _window,
        "components": _string_list,
        "kube_proxy_sync_period_seconds": _positive_number,
        "selectors": None,
        "thresholds": None,
    },
    "grafeas": {
        "url": _file_url,
        "api": _api,
        "project": _nonempty,
        "extra_projects": _string_list,
        "user_project": _nonempty,
        "ca_bundle": _existing_file,
        "insecure": _boolean,
        "timeout_seconds": _positive_number,
        "max_pages": _positive_int,
        "max_occurrences": _positive_int,
        "listing_deadline_seconds": _positive_number,
        "max_body_bytes": _positive_int,
        "token_command": _string_list,
        "policy": _nonempty,
    },
    "clusters": {"aliases": _aliases},
}
SECRETS_SCHEMA: dict[str, dict[str, _Check | None]] = {
    "prometheus": {"bearer_token": _nonempty, "basic_auth_user": _nonempty, "basic_auth_password": _text},
    "grafeas": {"token": _nonempty},
}
# Keys people put in the config file that belong with the secrets: refused with where to put them.
SECRET_KEYS = {"prometheus": ("bearer_token", "token", "basic_auth_password", "password"),
               "grafeas": ("token", "bearer_token", "password")}
SECRET_PLACES = {"prometheus": "PROMETHEUS_TOKEN / PROMETHEUS_PASSWORD", "grafeas": "GRAFEAS_TOKEN"}


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
    for section, keys in SECRET_KEYS.items():
        table = file_config.get(section)
        leaked = [key for key in keys if isinstance(table, dict) and key in table]
        if leaked:
            raise ConfigError(
                f"[{section}] {leaked[0]} does not belong in the config file: set {SECRET_PLACES[section]} "
                "in the environment or put it in .streamlit/secrets.toml"
            )
    file_config = _checked(file_config, FILE_SCHEMA, "config file")
    secrets = _read_toml(secrets_path, "secrets file") if secrets_path.is_file() else {}
    secrets = _checked(secrets, SECRETS_SCHEMA, "secrets file")
    prom_file, health_file, grafeas_file = (file_config[name] for name in ("prometheus", "health", "grafeas"))

    url = _layer(cli, "prometheus_url", env, "PROMETHEUS_URL", _url) or prom_file.get("url")
    prometheus = _prometheus_settings(url, prom_file, secrets["prometheus"], env) if url else None

    catalog = _catalog(health_file, env, cli)
    cluster = _layer(cli, "cluster", env, "DASHBOARD_CLUSTER", _nonempty) or health_file.get("cluster")
    grafeas_url = _layer(cli, "grafeas_url", env, "GRAFEAS_URL", _url) or grafeas_file.get("url")
    grafeas = None
    if grafeas_url:
        grafeas = _grafeas_settings(grafeas_url, grafeas_file, secrets["grafeas"], env, cli)
    policy = _layer(cli, "policy", env, "GATE_POLICY", _nonempty)
    if not policy and grafeas_file.get("policy"):
        policy = Path(config_path).parent / grafeas_file["policy"]
    return Settings(
        catalog=catalog,
        prometheus=prometheus,
        cluster=cluster,
        config_path=Path(config_path) if config_path else None,
        grafeas=grafeas,
        policy_path=Path(policy) if policy else None,
        cluster_aliases=file_config["clusters"].get("aliases", {}),
        demo=demo_settings(env),
        refresh_seconds=_env_number(env, "DASHBOARD_REFRESH_SECONDS") or 60.0,
    )


def demo_settings(env: Mapping[str, str] | None = None) -> DemoSettings:
    """The embedded demo's size from DEMO_NODES and DEMO_DAYS (``os.environ`` by default), checked."""
    env = os.environ if env is None else env
    size = {}
    for name, variable, (low, high), what in (("nodes", "DEMO_NODES", DEMO_NODES_RANGE, "nodes per cluster"),
                                              ("days", "DEMO_DAYS", DEMO_DAYS_RANGE, "days of history")):
        if not env.get(variable):
            continue
        try:
            value = int(env[variable])
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise ConfigError(f"{variable} must be a whole number of {what} from {low} to {high:,}, "
                              f"not {env[variable]!r}")
        size[name] = value
    return DemoSettings(**size)


def _layer(cli: Mapping[str, Any], flag: str, env: Mapping[str, str], variable: str, check: _Check) -> Any:
    """The flag if given, else the environment variable, checked; else None."""
    if flag in cli:
        return check(cli[flag], "--" + flag.replace("_", "-"))
    return _from_env(env, variable, check)


def _from_env(env: Mapping[str, str], variable: str, check: _Check) -> Any:
    """The environment variable if set and not empty, checked; else None."""
    return check(env[variable], variable) if env.get(variable) else None


def _env_number(env: Mapping[str, str], variable: str) -> float | None:
    if not env.get(variable):
        return None
    try:
        value = float(env[variable])
    except ValueError:
        raise ConfigError(f"{variable} must be a number of seconds, not {env[variable]!r}") from None
    return _positive_number(value, variable)


def _env_int(env: Mapping[str, str], variable: str) -> int | None:
    if not env.get(variable):
        return None
    try:
        value = int(env[variable])
    except ValueError:
        raise ConfigError(f"{variable} must be a whole number, not {env[variable]!r}") from None
    return _positive_int(value, variable)


def _env_boolean(env: Mapping[str, str], variable: str) -> bool | None:
    if variable not in env:
        return None
    text = env[variable].strip().lower()
    if text not in _TRUE + _FALSE:
        raise ConfigError(f"{variable} must be true or false (1/0, yes/no), not {env[variable]!r}")
    return text in _TRUE


def _grafeas_settings(
    url: str, grafeas_file: dict, grafeas_secrets: dict, env: Mapping[str, str], cli: Mapping[str, Any]
) -> GrafeasSettings:
    api = _layer(cli, "grafeas_api", env, "GRAFEAS_API", _api) or grafeas_file.get("api", "v1")
    ca_bundle = _from_env(env, "GRAFEAS_CA_BUNDLE", _existing_file) or grafeas_file.get("ca_bundle")
    timeout = _env_number(env, "GRAFEAS_TIMEOUT") or grafeas_file.get("timeout_seconds", 10.0)
    token = env.get("GRAFEAS_TOKEN") or grafeas_secrets.get("token")
    bounds = {
        name: grafeas_file[name]
        for name in ("max_pages", "max_occurrences", "listing_deadline_seconds", "max_body_bytes")
        if name in grafeas_file
    }
    return GrafeasSettings(
        url=url,
        api=api,
        project=_layer(cli, "project", env, "GRAFEAS_PROJECT", _nonempty) or grafeas_file.get("project"),
        extra_projects=grafeas_file.get("extra_projects", ()),
        user_project=_from_env(env, "GRAFEAS_USER_PROJECT", _nonempty) or grafeas_file.get("user_project"),
        ca_bundle=ca_bundle,
        insecure=grafeas_file.get("insecure", False),
        timeout_seconds=timeout,
        token=_text(token, "GRAFEAS_TOKEN") if token else None,
        token_command=grafeas_file.get("token_command", ()),
        **bounds,
    )


def _prometheus_settings(
    url: str, prom_file: dict, prom_secrets: dict, env: Mapping[str, str]
) -> PrometheusSettings:
    headers = dict(prom_file.get("headers", {}))
    if env.get("PROMETHEUS_HEADERS"):
        headers.update(_parse_headers(env["PROMETHEUS_HEADERS"]))
    token = env.get("PROMETHEUS_TOKEN") or prom_secrets.get("bearer_token")
    user = env.get("PROMETHEUS_USERNAME") or prom_file.get("basic_auth_user") or prom_secrets.get("basic_auth_user")
    password = env.get("PROMETHEUS_PASSWORD") or prom_secrets.get("basic_auth_password")
    insecure = _env_boolean(env, "PROMETHEUS_INSECURE")
    return PrometheusSettings(
        url=url,
        timeout_seconds=_env_number(env, "PROMETHEUS_TIMEOUT") or prom_file.get("timeout_seconds", 10.0),
        bearer_token=_text(token, "PROMETHEUS_TOKEN") if token else None,
        basic_auth=(user, password or "") if user else None,
        headers=headers,
        ca_bundle=_from_env(env, "PROMETHEUS_CA_BUNDLE", _existing_file) or prom_file.get("ca_bundle"),
        insecure=prom_file.get("insecure", False) if insecure is None else insecure,
        parallel_queries=prom_file.get("parallel_queries", 4),
        ui_url=_from_env(env, "PROMETHEUS_UI_URL", _file_url) or prom_file.get("ui_url"),
        **_prometheus_bounds(prom_file, env),
    )


def _prometheus_bounds(prom_file: dict, env: Mapping[str, str]) -> dict[str, Any]:
    """The evaluation deadline and answer caps: environment over file; unset keeps the defaults."""
    bounds: dict[str, Any] = {}
    timeout = _env_number(env, "PROMETHEUS_EVALUATION_TIMEOUT") or prom_file.get("evaluation_timeout_seconds")
    if timeout is not None:
        bounds["evaluation_timeout_seconds"] = timeout
    for key, variable in (("max_body_bytes", "PROMETHEUS_MAX_BODY_BYTES"), ("max_samples", "PROMETHEUS_MAX_SAMPLES")):
        value = _env_int(env, variable) or prom_file.get(key)
        if value is not None:
            bounds[key] = value
    return bounds


def _catalog(health_file: dict, env: Mapping[str, str], cli: Mapping[str, Any]) -> Catalog:
    preset_name = (
        _layer(cli, "preset", env, "DASHBOARD_PRESET", _nonempty) or health_file.get("preset") or "kube-prometheus-stack"
    )
    if preset_name not in PRESETS:
        raise ConfigError(f"unknown preset {preset_name!r}; choose one of {', '.join(PRESETS)}")
    catalog = PRESETS[preset_name]
    window = _layer(cli, "window", env, "DASHBOARD_WINDOW", _window) or health_file.get("window") or catalog.window
    components = health_file.get("components", catalog.components)
    for component in components:
        if component not in COMPONENTS:
            raise ConfigError(f"[health] components: unknown {component!r}{_did_you_mean(component, COMPONENTS)}")
    catalog = replace(
        catalog,
        window=window,
        components=tuple(components),
        selectors=_selectors(catalog.selectors, _subtable(health_file, "selectors", "[health.selectors]")),
        cluster_label=health_file.get("cluster_label", catalog.cluster_label),
        kube_proxy_sync_period_seconds=health_file.get(
            "kube_proxy_sync_period_seconds", catalog.kube_proxy_sync_period_seconds
        ),
    )
    overrides = _threshold_overrides(catalog, _subtable(health_file, "thresholds", "[health.thresholds]"))
    return replace(catalog, threshold_overrides=overrides)


def _selectors(selectors: Selectors, overrides: dict) -> Selectors:
    names = [f.name for f in fields(Selectors)]
    for key, value in overrides.items():
        name = key.replace("-", "_")
        if name not in names:
            raise ConfigError(f"[health.selectors] {key}: unknown selector{_did_you_mean(name, names)}")
        where = f"[health.selectors] {key}"
        try:
            matchers = validate_matchers(_nonempty(value, where))
        except ValueError as error:
            raise ConfigError(f"{where}: {error}") from None
        selectors = replace(selectors, **{name: matchers})
    return selectors


def _threshold_overrides(catalog: Catalog, tables: dict) -> tuple[tuple[str, str, float, float], ...]:
    overrides = []
    for component, by_signal in tables.items():
        known = sorted({sig.name for sig in catalog.signals if sig.component == component and sig.thresholds})
        if not known:
            raise ConfigError(
                f"[health.thresholds.{component}]: unknown component{_did_you_mean(component, COMPONENTS)}"
            )
        by_signal = _subtable({component: by_signal}, component, f"[health.thresholds.{component}]")
        for signal, limits in by_signal.items():
            key = f"[health.thresholds.{component}.{signal}]"
            if signal not in known:
                raise ConfigError(f"{key}: unknown signal{_did_you_mean(signal, known)}")
            limits = _subtable({signal: limits}, signal, key)
            for name in limits:
                if name not in ("degraded", "unhealthy"):
                    raise ConfigError(f"{key} {name}: unknown key{_did_you_mean(name, ['degraded', 'unhealthy'])}")
            if set(limits) != {"degraded", "unhealthy"}:
                raise ConfigError(f"{key}: give both degraded and unhealthy")
            degraded, unhealthy = (_threshold(limits[name], f"{key} {name}") for name in ("degraded", "unhealthy"))
            if degraded > unhealthy:
                raise ConfigError(
                    f"{key}: degraded ({degraded:g}) is beyond unhealthy ({unhealthy:g}); "
                    "degraded must be reached first"
                )
            overrides.append((component, signal, degraded, unhealthy))
    return tuple(overrides)


def _threshold(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key} must be a number, not {_type_name(value)}")
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{key} must be a finite number of at least 0, not {value}")
    return float(value)


def _checked(document: dict, schema: dict[str, dict[str, _Check | None]], what: str) -> dict[str, dict]:
    """Every section of ``schema`` (empty when absent), each key checked; unknown names refused."""
    for section in document:
        if section not in schema:
            raise ConfigError(f"{what}: unknown section [{section}]{_did_you_mean(section, schema)}")
    checked: dict[str, dict] = {}
    for section, keys in schema.items():
        table = _subtable(document, section, f"[{section}]")
        checked[section] = {}
        for key, value in table.items():
            if key not in keys:
                raise ConfigError(f"{what}: [{section}] unknown key {key!r}{_did_you_mean(key, keys)}")
            check = keys[key]
            checked[section][key] = value if check is None else check(value, f"[{section}] {key}")
    return checked


def _subtable(data: dict, key: str, name: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a table, not {_type_name(value)}")
    return value


def _did_you_mean(name: str, choices) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _type_name(value: Any) -> str:
    return {bool: "a boolean", str: "a string", int: "a whole number", float: "a number", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def _read_toml(path: Path, what: str) -> dict:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} not found") from None
    except (IsADirectoryError, PermissionError) as error:
        raise ConfigError(f"{what} {path} cannot be read ({error.strerror})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{what} {path} is not valid TOML: {error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text") from None


def _parse_headers(text: str) -> dict[str, str]:
    """``Name=value,Other=value`` from PROMETHEUS_HEADERS."""
    headers = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError("PROMETHEUS_HEADERS must look like Name=value,Other=value")
        headers[name.strip()] = value.strip()
    return headers
