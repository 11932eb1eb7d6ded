"""The signal catalog: every PromQL signal the health judge uses, as data.

In the spirit of kubernetes-mixin's ``_config``: job selectors, label names, windows, thresholds and
the source of each threshold live here, and every query is generated from them. A signal is a
record (name, component, kind, unit, query shape, thresholds); adding one touches this file only.

Queries aggregate in PromQL ``by (<cluster label>, node)``, so the number of queries per evaluation
is fixed by the catalog, never by the number of nodes. Node identity is resolved inside each query:
the series' own ``node`` label when it has one (prometheus-operator adds it for kubelet), else the
``node`` of the pod from ``kube_pod_info`` (pod-backed targets: kube-proxy, CoreDNS), else the host
part of ``instance``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from string import Template
from typing import Literal

import numpy as np

from dashboard.verdicts import Verdict

COMPONENTS = ("kubelet", "kube-proxy", "dns")
Component = Literal["kubelet", "kube-proxy", "dns"]
SignalKind = Literal["up", "work", "resource"]
Shape = Literal["max", "min", "sum", "ratio", "quantile"]
Domain = Literal["ratio", "non-negative", "bool"]

# What a value of each unit can be; anything else (NaN, ±Inf, out of range) is not evidence.
DOMAINS: dict[str, Domain] = {
    "bool": "bool",
    "ratio": "ratio",
    "seconds": "non-negative",
    "events": "non-negative",
    "cores": "non-negative",
    "bytes": "non-negative",
    "bytes/s": "non-negative",
}


@dataclass(frozen=True)
class Thresholds:
    """Degraded at the first value, unhealthy at the second; ``op`` compares measured to threshold."""

    degraded: float
    unhealthy: float | None
    source: str
    op: Literal[">=", ">"] = ">="

    def level(self, value: float) -> Verdict:
        """The level a measured value reaches: ``healthy``, ``degraded`` or ``unhealthy``."""

        def reaches(threshold: float | None) -> bool:
            if threshold is None:
                return False
            return value >= threshold if self.op == ">=" else value > threshold

        if reaches(self.unhealthy):
            return Verdict.UNHEALTHY
        if reaches(self.degraded):
            return Verdict.DEGRADED
        return Verdict.HEALTHY


@dataclass(frozen=True)
class UpRule:
    """How a target's ``up`` (kind ``up``) is judged: below ``healthy_at`` (0, the scrape failed) is
    unhealthy. ``up`` alone never shows health: a component needs a work signal with data besides it.
    Missing, it is "no data" like any signal; sent outside {0, 1}, it leaves the component unknown,
    since whether the target is up at all is then not known."""

    healthy_at: float
    source: str

    def level(self, value: float) -> Verdict:
        """``healthy`` or ``unhealthy``."""
        return Verdict.HEALTHY if value >= self.healthy_at else Verdict.UNHEALTHY


UP_RULE = UpRule(healthy_at=1, source="a down target is unhealthy")


@dataclass(frozen=True)
class Signal:
    """One measured quantity of one component.

    ``exprs`` are PromQL vector expressions with ``$sel`` (the component's selector, cluster matcher
    included) and ``$window`` placeholders; several are alternatives for renamed metrics, combined
    with ``or`` inside the expression. For ``ratio`` the first expression is the numerator and the
    second the denominator; ``quantile`` expressions select ``_bucket`` rates. ``legacy`` are vector
    expressions for pre-histogram metrics (``*_microseconds`` summaries, already in seconds), used
    for a node only when the main expression has no data for it. ``container`` are vector
    expressions over the kubelet's cAdvisor series of the component's own container or cgroup
    (there ``$sel`` selects those), likewise used only where the main expression has no data.
    """

    name: str
    component: Component | Literal["node"]
    kind: SignalKind
    unit: str
    shape: Shape
    exprs: tuple[str, ...]
    description: str
    thresholds: Thresholds | None = None
    quantile: float = 0.99
    legacy: tuple[str, ...] = ()
    rollup: bool = False
    container: tuple[str, ...] = ()
    events: tuple[str, str] = ()  # a count's event, singular and plural: shown as whole events

    @property
    def windowed(self) -> bool:
        """Whether the value is a rate or an increase over the catalog's window."""
        return any("$window" in expr for expr in self.exprs)

    @property
    def domain(self) -> Domain:
        """The values this signal can take, by its unit: ``[0, 1]``, ``>= 0`` or ``{0, 1}``."""
        return DOMAINS[self.unit]

    def valid(self, values: float | np.ndarray) -> bool | np.ndarray:
        """Whether each value lies in the signal's domain: finite, and in range for its unit.

        A float gives a bool; an array (numpy, or a pandas Series by position) gives a bool array of
        its shape. The one rule for every judge: an invalid value is no data, never evidence.
        """
        if isinstance(values, (int, float)):  # the instant judge's case, without numpy's per-call cost
            value = float(values)
            if not math.isfinite(value):
                return False
            if self.domain == "bool":
                return value in (0.0, 1.0)
            return value >= 0 and (self.domain != "ratio" or value <= 1)
        array = np.asarray(values, dtype=float)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(array)
            if self.domain == "bool":
                ok &= (array == 0) | (array == 1)
            else:
                ok &= array >= 0
                if self.domain == "ratio":
                    ok &= array <= 1
        return bool(ok) if ok.ndim == 0 else ok


# Status and list calls of the container runtime: quick by nature. Excluded on purpose: pull_image,
# exec, exec_sync, stop_*, create_* and run_podsandbox, whose durations include image pulls, user
# commands and termination grace periods.
QUICK_RUNTIME_OPERATIONS = (
    "container_status",
    "list_containers",
    "list_podsandbox",
    "podsandbox_status",
    "image_status",
    "list_images",
    "status",
    "version",
)


VIRTUAL_INTERFACES = "lo|veth.*|cali.*|cilium.*|lxc.*|flannel.*|cni.*|docker.*"
COREDNS_RESPONSES = ("coredns_dns_responses_total", "coredns_dns_response_rcode_count_total")  # >= 1.7, < 1.7


def renamed(function: str, names: tuple[str, ...], matchers: str = "") -> str:
    """``function`` over a metric known under several names, newest first.

    Joined with ``or`` rather than a ``__name__`` regex: a target exposing both names (kubelet 1.14
    and 1.15 kept the deprecated ones) would otherwise give two series with the same labels once
    the function drops the name, and Prometheus refuses such a vector.
    """
    extra = f", {matchers}" if matchers else ""
    return "(" + " or ".join(f"{function}({name}{{$sel{extra}}}[$window])" for name in names) + ")"


def _apiserver_error_ratio(component: Component) -> Signal:
    """The client-go request error ratio every component talking to the API server exposes."""
    return Signal(
        "apiserver_error_ratio", component, "work", "ratio", "ratio",
        (
            'rate(rest_client_requests_total{$sel, code=~"5..|<error>"}[$window])',
            "rate(rest_client_requests_total{$sel}[$window])",
        ),
        f"Share of {component}'s API-server requests that failed (5xx or transport error, no status).",
        Thresholds(0.01, 0.05, "project default: 1 % degraded, 5 % unhealthy"),
    )


def _signals(kube_proxy_sync_period_seconds: float) -> tuple[Signal, ...]:
    quick_ops = "|".join(QUICK_RUNTIME_OPERATIONS)
    stale_after = 2 * kube_proxy_sync_period_seconds
    return (
        # kubelet
        Signal(
            "up", "kubelet", "up", "bool", "min", ("up{$sel}",),
            "Prometheus could scrape the kubelet (0 when any of its targets is down).",
        ),
        Signal(
            "runtime_error_ratio", "kubelet", "work", "ratio", "ratio",
            (
                renamed("rate", ("kubelet_runtime_operations_errors_total", "kubelet_runtime_operations_errors"),
                        'operation_type!="exec_sync"'),
                renamed("rate", ("kubelet_runtime_operations_total", "kubelet_runtime_operations"),
                        'operation_type!="exec_sync"'),
            ),
            "Share of container-runtime operations that failed (exec_sync excluded: failing exec "
            "probes of user pods are not kubelet faults).",
            Thresholds(0.01, 0.05, "project default: 1 % degraded, 5 % unhealthy"),
        ),
        Signal(
            "pleg_relist_p99", "kubelet", "work", "seconds", "quantile",
            ("rate(kubelet_pleg_relist_duration_seconds_bucket{$sel}[$window])",),
            "99th percentile of the pod lifecycle event generator's relist duration.",
            Thresholds(3, 10, "kubernetes-mixin KubeletPlegDurationHigh (p99 >= 10 s)"),
            legacy=('kubelet_pleg_relist_latency_microseconds{$sel, quantile="0.99"} / 1e6',),
        ),
        Signal(
            "runtime_operation_p99", "kubelet", "work", "seconds", "quantile",
            (
                'rate(kubelet_runtime_operations_duration_seconds_bucket{$sel, operation_type=~"%s"}[$window])'
                % quick_ops,
            ),
            "99th percentile of the quick container-runtime calls (status and list calls only).",
            Thresholds(1, 5, "project default: status/list calls answer well under a second"),
            legacy=(
                'kubelet_runtime_operations_latency_microseconds{$sel, quantile="0.99", operation_type=~"%s"} / 1e6'
                % quick_ops,
            ),
        ),
        _apiserver_error_ratio("kubelet"),
        # kube-proxy
        Signal(
            "up", "kube-proxy", "up", "bool", "min", ("up{$sel}",),
            "Prometheus could scrape kube-proxy.",
        ),
        Signal(
            "sync_proxy_rules_p99", "kube-proxy", "work", "seconds", "quantile",
            ("rate(kubeproxy_sync_proxy_rules_duration_seconds_bucket{$sel}[$window])",),
            "99th percentile of the time to sync the proxy rules (iptables/ipvs/nftables).",
            Thresholds(5, 10, "project default after kubernetes-mixin's kube-proxy dashboard"),
        ),
        Signal(
            "network_programming_p99", "kube-proxy", "work", "seconds", "quantile",
            ("rate(kubeproxy_network_programming_duration_seconds_bucket{$sel}[$window])",),
            "99th percentile of the time from a Service/Endpoints change to programmed rules.",
            Thresholds(30, 60, "project default: Kubernetes network-programming-latency SLO (p99 <= 30 s)"),
        ),
        Signal(
            "iptables_restore_failures", "kube-proxy", "work", "events", "sum",
            ("increase(kubeproxy_sync_proxy_rules_iptables_restore_failures_total{$sel}[$window])",),
            "iptables-restore failures in the window.",
            Thresholds(0, None, "project default: any failure in the window is degraded", op=">"),
            events=("iptables-restore failure", "iptables-restore failures"),
        ),
        Signal(
            "stale_rules_seconds", "kube-proxy", "work", "seconds", "max",
            (
                "(time() - kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds{$sel})"
                " * (kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds{$sel}"
                " > bool kubeproxy_sync_proxy_rules_last_timestamp_seconds{$sel})",
            ),
            "Age of a queued rule change not yet applied (0 when none is pending).",
            Thresholds(
                stale_after, stale_after,
                f"kube-proxy /healthz: a queued change not applied within twice the sync period "
                f"({kube_proxy_sync_period_seconds:g} s)",
            ),
        ),
        _apiserver_error_ratio("kube-proxy"),
        # cluster DNS: CoreDNS (>= 1.7 and < 1.7 names), kube-dns (SkyDNS), NodeLocal DNSCache (CoreDNS names)
        Signal(
            "up", "dns", "up", "bool", "min", ("up{$sel}",),
            "Prometheus could scrape the DNS server.", rollup=True,
        ),
        Signal(
            "servfail_ratio", "dns", "work", "ratio", "ratio",
            (
                "(" + renamed("rate", COREDNS_RESPONSES, 'rcode="SERVFAIL"')
                + " or " + renamed("rate", COREDNS_RESPONSES, 'rcode="REFUSED", zone!="dropped"')
                + ' or rate(skydns_skydns_dns_error_count_total{$sel, cause="servfail"}[$window]))',
                "(" + renamed("rate", COREDNS_RESPONSES)
                + " or rate(skydns_skydns_dns_request_count_total{$sel}[$window]))",
            ),
            'Share of DNS answers that are SERVFAIL, or REFUSED outside zone="dropped".',
            Thresholds(0.01, 0.03, "coredns-mixin CoreDNSErrorsHigh (3 % critical, 1 % warning)"),
            rollup=True,
        ),
        Signal(
            "request_p99", "dns", "work", "seconds", "quantile",
            (
                "(rate(coredns_dns_request_duration_seconds_bucket{$sel}[$window])"
                " or rate(skydns_skydns_dns_request_duration_seconds_bucket{$sel}[$window]))",
            ),
            "99th percentile of DNS request duration.",
            Thresholds(1, 4, "coredns-mixin CoreDNSLatencyHigh (p99 > 4 s)"),
            rollup=True,
        ),
        Signal(
            "panics", "dns", "work", "events", "sum",
            (renamed("increase", ("coredns_panics_total", "coredns_panic_count_total")),),
            "CoreDNS panics in the window.",
            Thresholds(0, 0, "coredns-mixin CoreDNSPanicking: any panic is unhealthy", op=">"),
            rollup=True, events=("panic", "panics"),
        ),
        # resource context per component: its process, else its container as cAdvisor sees it
        *(
            sig
            for component in COMPONENTS
            for sig in (
                Signal(
                    "process_cpu_cores", component, "resource", "cores", "sum",
                    ("rate(process_cpu_seconds_total{$sel}[$window])",),
                    f"CPU used by the {component} process (else by its container).",
                    container=("rate(container_cpu_usage_seconds_total{$sel}[$window])",),
                ),
                Signal(
                    "process_rss_bytes", component, "resource", "bytes", "max",
                    ("process_resident_memory_bytes{$sel}",),
                    f"Resident memory of the {component} process (else its container's working set).",
                    container=("container_memory_working_set_bytes{$sel}",),
                ),
            )
        ),
        # resource context per node (node-exporter)
        Signal(
            "cpu_busy_ratio", "node", "resource", "ratio", "ratio",
            (
                'rate(node_cpu_seconds_total{$sel, mode!~"idle|iowait|steal"}[$window])',
                "rate(node_cpu_seconds_total{$sel}[$window])",
            ),
            "Share of the node's CPU time spent busy.",
        ),
        Signal(
            "memory_used_ratio", "node", "resource", "ratio", "ratio",
            (
                "(node_memory_MemTotal_bytes{$sel} - node_memory_MemAvailable_bytes{$sel})",
                "node_memory_MemTotal_bytes{$sel}",
            ),
            "Share of the node's memory in use (MemTotal - MemAvailable).",
        ),
        Signal(
            "filesystem_used_ratio", "node", "resource", "ratio", "ratio",
            (
                '(node_filesystem_size_bytes{$sel, fstype!~"tmpfs|overlay|squashfs", mountpoint="/"}'
                ' - node_filesystem_avail_bytes{$sel, fstype!~"tmpfs|overlay|squashfs", mountpoint="/"})',
                'node_filesystem_size_bytes{$sel, fstype!~"tmpfs|overlay|squashfs", mountpoint="/"}',
            ),
            "Share of the root filesystem in use.",
        ),
        Signal(
            "network_bytes_per_second", "node", "resource", "bytes/s", "sum",
            (
                # rate() drops the metric name: label each direction so the two do not collide.
                f'(label_replace(rate(node_network_receive_bytes_total{{$sel, device!~"{VIRTUAL_INTERFACES}"}}[$window]),'
                ' "direction", "receive", "", "")'
                f' or label_replace(rate(node_network_transmit_bytes_total{{$sel, device!~"{VIRTUAL_INTERFACES}"}}[$window]),'
                ' "direction", "transmit", "", ""))',
            ),
            "Bytes received and sent per second on the node's physical interfaces.",
        ),
    )


@dataclass(frozen=True)
class Selectors:
    """Label matchers (PromQL syntax, without braces) that select each component's series."""

    kubelet: str = 'job="kubelet", metrics_path="/metrics"'
    kube_proxy: str = 'job="kube-proxy"'
    dns: str = 'job=~"coredns|kube-dns|node-local-dns"'
    node: str = 'job="node-exporter"'
    kube_state_metrics: str = 'job="kube-state-metrics"'
    # The kubelet's cAdvisor endpoint, and what picks each component's own container (or, for the
    # kubelet, its systemd cgroup) there; image!="" drops the cgroups of pods and pause containers.
    cadvisor: str = 'job="kubelet", metrics_path="/metrics/cadvisor"'
    kubelet_container: str = 'id="/system.slice/kubelet.service"'
    kube_proxy_container: str = 'container="kube-proxy", image!=""'
    dns_container: str = 'container=~"coredns|kubedns|node-cache", image!=""'

    def for_component(self, component: str) -> str:
        return {
            "kubelet": self.kubelet,
            "kube-proxy": self.kube_proxy,
            "dns": self.dns,
            "node": self.node,
        }[component]

    def for_container(self, component: str) -> str:
        """The cAdvisor series of ``component``'s own container."""
        own = {
            "kubelet": self.kubelet_container,
            "kube-proxy": self.kube_proxy_container,
            "dns": self.dns_container,
        }[component]
        return f"{self.cadvisor}, {own}"


@dataclass(frozen=True)
class Catalog:
    """Everything that shapes the queries and the verdicts, in one place."""

    preset: str
    selectors: Selectors = field(default_factory=Selectors)
    cluster_label: str = "cluster"
    node_label: str = "node"
    window: str = "5m"
    components: tuple[str, ...] = COMPONENTS
    dns_pod_regex: str = "coredns-.*|kube-dns-.*|node-local-dns-.*"
    dns_namespace: str = "kube-system"
    kube_proxy_sync_period_seconds: float = 30.0
    threshold_overrides: tuple[tuple[str, str, float, float], ...] = ()
    absent_signals: tuple[tuple[str, str], ...] = ()
    # Where each component must have a verdict, whether or not it has data: on every node the
    # inventory signal names, and on every node where a component expected there has series.
    expected_on: tuple[tuple[str, str], ...] = (
        ("kubelet", "known_nodes"), ("kube-proxy", "known_nodes"), ("dns", "dns_hosts"),
    )

    @property
    def signals(self) -> tuple[Signal, ...]:
        overrides = {(c, s): (d, u) for c, s, d, u in self.threshold_overrides}
        enabled = set(self.components) | {"node"}
        result = []
        for sig in _signals(self.kube_proxy_sync_period_seconds):
            if sig.component not in enabled:
                continue
            if (sig.component, sig.name) in overrides and sig.thresholds is not None:
                degraded, unhealthy = overrides[(sig.component, sig.name)]
                sig = replace(
                    sig,
                    thresholds=replace(
                        sig.thresholds, degraded=degraded, unhealthy=unhealthy, source="configured"
                    ),
                )
            result.append(sig)
        return tuple(result)

    def signal(self, component: str, name: str) -> Signal:
        for sig in self.signals:
            if sig.component == component and sig.name == name:
                return sig
        raise KeyError(f"{component}/{name}")

    def known_absent(self, component: str) -> tuple[str, ...]:
        """Signals the preset's collector never provides for a component (always "no data")."""
        return tuple(name for c, name in self.absent_signals if c == component)

    def rolls_up(self, component: str) -> bool:
        """Whether ``component`` also has one cluster-wide verdict: when any of its signals rolls up."""
        return any(sig.rollup for sig in self.signals if sig.component == component)


PRESETS: dict[str, Catalog] = {
    "kube-prometheus-stack": Catalog(preset="kube-prometheus-stack"),
    # GKE Managed Service for Prometheus: kubelet targets carry instance="<node>:metrics" and its
    # curated kubelet package keeps no runtime error counter and no runtime latency histogram.
    "gke-managed-prometheus": Catalog(
        preset="gke-managed-prometheus",
        selectors=Selectors(
            kubelet='job="kubelet", instance=~".+:metrics"',
            kube_proxy='job="kube-proxy"',
            dns='job=~"coredns|kube-dns"',
            node='job="node-exporter"',
            kube_state_metrics='job="kube-state-metrics"',
            cadvisor='job="kubelet", instance=~".+:cadvisor"',
        ),
        absent_signals=(("kubelet", "runtime_error_ratio"), ("kubelet", "runtime_operation_p99")),
    ),
}


BEYOND_TOP_BUCKET = "beyond_top_bucket"
"""The label a quantile query puts on its marker series: the quantile fell in the +Inf bucket."""


def beyond_top_bucket(signal: str) -> str:
    """The observation signal that marks ``signal``'s quantile as beyond its histogram's top bucket."""
    return f"{signal}.{BEYOND_TOP_BUCKET}"


def escape_label_value(value: str) -> str:
    """Escape a string for use inside a double-quoted PromQL label value."""
    return (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    )


@dataclass(frozen=True)
class Query:
    """One PromQL query of an evaluation and what its result means."""

    component: str
    signal: str
    scope: Literal["node", "cluster"]
    promql: str


def build_queries(catalog: Catalog, cluster: str | None = None) -> list[Query]:
    """Every query of one evaluation: a fixed list, whatever the number of nodes."""
    builder = _QueryBuilder(catalog, cluster)
    queries = [
        Query("inventory", "known_nodes", "node", builder.known_nodes()),
        Query("inventory", "dns_hosts", "node", builder.dns_hosts()),
    ]
    for sig in catalog.signals:
        if sig.name in catalog.known_absent(sig.component):
            continue
        queries.append(Query(sig.component, sig.name, "node", builder.signal(sig, per_node=True)))
        if sig.rollup:
            queries.append(Query(sig.component, sig.name, "cluster", builder.signal(sig, per_node=False)))
    return queries


def series_promql(catalog: Catalog, sig: Signal, *, cluster: str | None = None, node: str | None = None) -> str:
    """The PromQL of one signal's chart series: cluster-wide (sums before ratios, one quantile over
    every node's buckets), or for one ``node`` (node identity is resolved inside the query, so the
    node is picked after it)."""
    builder = _QueryBuilder(catalog, cluster)
    if node is None:
        return builder.signal(sig, per_node=False)
    # "$" would expand in label_replace's replacement: "$$" is a literal one.
    wanted = escape_label_value(node.replace("$", "$$"))
    only = f'label_replace(vector(1), "{catalog.node_label}", "{wanted}", "", "")'
    return f"({builder.signal(sig, per_node=True)}) and on ({catalog.node_label}) {only}"


class _QueryBuilder:
    def __init__(self, catalog: Catalog, cluster: str | None):
        self.catalog = catalog
        self.cluster_matcher = (
            f'{catalog.cluster_label}="{escape_label_value(cluster)}"' if cluster is not None else ""
        )

    def _by(self, per_node: bool) -> str:
        c, n = self.catalog.cluster_label, self.catalog.node_label
        return f"{c}, {n}" if per_node else c

    def _sel(self, base: str, *extra: str) -> str:
        return ", ".join(part for part in (base, self.cluster_matcher, *extra) if part)

    def _expr(self, template: str, base: str, *extra: str) -> str:
        """``template`` with ``$sel`` = the ``base`` selector and the cluster and ``extra`` matchers."""
        return Template(template).substitute(sel=self._sel(base, *extra), window=self.catalog.window)

    def _pods_on_nodes(self, *extra: str) -> str:
        c, n = self.catalog.cluster_label, self.catalog.node_label
        matchers = self._sel(self.catalog.selectors.kube_state_metrics, f'{n}!=""', *extra)
        return f"max by ({c}, namespace, pod, {n}) (kube_pod_info{{{matchers}}})"

    def _per_node(self, template: str, base: str, *extra: str) -> str:
        """Attach a ``node`` label to every series of ``template``, by the identity rules."""
        c, n = self.catalog.cluster_label, self.catalog.node_label
        own = self._expr(template, base, f'{n}!=""', *extra)
        unlabelled = self._expr(template, base, f'{n}=""', *extra)
        pods = self._pods_on_nodes()
        return (
            f"({own})"
            f" or (({unlabelled}) * on ({c}, namespace, pod) group_left ({n}) {pods})"
            f" or label_replace((({unlabelled}) unless on ({c}, namespace, pod) {pods}),"
            f' "{n}", "$1", "instance", "([^:]+).*")'
        )

    def _vector(self, template: str, base: str, per_node: bool, *extra: str) -> str:
        return self._per_node(template, base, *extra) if per_node else self._expr(template, base, *extra)

    def known_nodes(self) -> str:
        """Every node the cluster knows: from kube-state-metrics, or by its kubelet target."""
        by = self._by(True)
        ksm = self._sel(self.catalog.selectors.kube_state_metrics)
        return (
            f"max by ({by}) (kube_node_info{{{ksm}}} * 0 + 1)"
            f" or max by ({by}) ({self._per_node('up{$sel}', self.catalog.selectors.kubelet)}) * 0 + 1"
        )

    def dns_hosts(self) -> str:
        """Nodes hosting a DNS server pod (kube-state-metrics) or a DNS target."""
        by = self._by(True)
        pods = self._pods_on_nodes(
            f'namespace="{escape_label_value(self.catalog.dns_namespace)}"',
            f'pod=~"{escape_label_value(self.catalog.dns_pod_regex)}"',
        )
        return (
            f"max by ({by}) ({pods} * 0 + 1)"
            f" or max by ({by}) ({self._per_node('up{$sel}', self.catalog.selectors.dns)}) * 0 + 1"
        )

    def signal(self, sig: Signal, *, per_node: bool) -> str:
        by = self._by(per_node)

        selectors = self.catalog.selectors

        def vector(template: str, *extra: str) -> str:
            return self._vector(template, selectors.for_component(sig.component), per_node, *extra)

        if sig.shape in ("max", "min", "sum"):
            expr = f"{sig.shape} by ({by}) ({vector(sig.exprs[0])})"
        elif sig.shape == "ratio":
            numerator = f"sum by ({by}) ({vector(sig.exprs[0])})"
            denominator = f"sum by ({by}) ({vector(sig.exprs[1])})"
            # A counter vec has no series until its first error: no numerator means zero errors.
            # "> -Inf" drops the NaN of 0/0 (nothing happened in the window): no series, not garbage.
            expr = f"({numerator} or {denominator} * 0) / {denominator} > -Inf"
        else:
            by_le = f"{by}, le"
            # NaN when the window saw no observation: dropped, as for ratios.
            quantile = f"histogram_quantile({sig.quantile}, sum by ({by_le}) ({vector(sig.exprs[0])})) > -Inf"
            # histogram_quantile answers the top finite bound when the rank falls in the +Inf
            # bucket, i.e. when even the top finite bucket (the largest finite cumulative count)
            # holds fewer than q of all observations. A marker series with one more label says so,
            # in the same answer: no extra query.
            finite_buckets, inf_bucket = vector(sig.exprs[0], 'le!="+Inf"'), vector(sig.exprs[0], 'le="+Inf"')
            top_finite = f"max by ({by}) (sum by ({by_le}) ({finite_buckets}))"
            total = f"sum by ({by}) ({inf_bucket})"
            marker = (
                f'label_replace(({top_finite} < {sig.quantile} * {total}) * 0 + 1,'
                f' "{BEYOND_TOP_BUCKET}", "true", "", "")'
            )
            expr = f"({quantile}) or {marker}"
        for legacy in sig.legacy:
            expr = f"({expr}) or max by ({by}) ({vector(legacy)})"
        for container in sig.container:
            series = self._vector(container, selectors.for_container(sig.component), per_node)
            expr = f"({expr}) or {sig.shape} by ({by}) ({series})"
        return expr
