"""The scenario's fleet: every scrape target, with the series the real exporters expose.

Series follow kube-prometheus-stack's conventions (kubelet with its own ``node`` label; kube-proxy
and CoreDNS found through ``kube_pod_info``; node-exporter with ``instance=<node>``), about 145 per
node, with the real exporters' bucket layouts. Incidents cut each target's time into phases.

Node names repeat across clusters (``node-00`` ... in each). Noise is deterministic: every per-node
parameter is drawn from a generator seeded with the cluster, node and component names, so a node
looks the same whatever the size of the scenario.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Mapping, Sequence

from dashboard.sources.demo.promql import _unchecked_profile, check_profiles, quantile_profile
from dashboard.sources.demo.scenario import Incident, Scenario, _utc_seconds
from dashboard.sources.demo.series import DAY_SECONDS, _Phase, _Target, _TargetBuilder

INF = math.inf


def _exponential_buckets(start: float, factor: float, count: int) -> tuple[float, ...]:
    """client_golang's ExponentialBuckets (repeated multiplication, so the floats are the same)."""
    bounds = []
    for _ in range(count):
        bounds.append(start)
        start *= factor
    return tuple(bounds)


# Bucket layouts of the real exporters (see the fixtures in shared/fixtures/real/prometheus), +Inf last.
PLEG_RELIST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, INF)
RUNTIME_OPERATION_BUCKETS = _exponential_buckets(0.005, 2.5, 14) + (INF,)
SYNC_PROXY_RULES_BUCKETS = _exponential_buckets(0.001, 2, 15) + (INF,)
# kube-proxy's network-programming histogram has 82 bounds (0, 0.25, 0.5, 1..59, 60..115 by 5, 120..300
# by 30). The demo keeps 20 of them, as a ``metricRelabelings`` rule dropping ``le`` values would, to
# keep the series per node modest; every kept bucket counts what the real one would.
NETWORK_PROGRAMMING_BUCKETS = (
    0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 25.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, INF,
)
COREDNS_REQUEST_BUCKETS = _exponential_buckets(0.00025, 2, 16) + (INF,)


_POD_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_NODE_CPUS = 2
_CPU_BUSY_MODES = {"user": 0.62, "system": 0.24, "nice": 0.01, "irq": 0.02, "softirq": 0.11}
_CPU_IOWAIT, _CPU_STEAL = 0.01, 0.002
_QUICK_OPERATIONS = {"container_status": 0.4, "list_podsandbox": 0.2}  # (ops/s) with a latency histogram
_OTHER_OPERATIONS = {"list_containers": 0.2, "image_status": 0.05, "status": 0.2, "version": 0.1}
_EXEC_SYNC_RATE, _EXEC_SYNC_FAILING = 1.5, 0.005  # failing exec probes: user pods' problem, excluded
_CONTAINER_STATUS_NOT_FOUND = 0.001  # status of a container deleted meanwhile: a routine error share
_DNS_RCODE_SHARES = {"NXDOMAIN": 0.19, "SERVFAIL": 0.001}
_DNS_DROPPED_REFUSED = 0.009  # REFUSED for queries matching no server block (zone="dropped")


def _pod_suffix(seed: str, length: int) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(_POD_HASH_ALPHABET[b % len(_POD_HASH_ALPHABET)] for b in digest[:length])


def _steady(level: float, swing_share: float) -> Callable[[Mapping[str, float]], tuple[float, float]]:
    """The same (level, swing) in every phase: ``swing_share`` is the daily swing relative to the level."""
    return lambda effects: (level, level * swing_share)


def _per_minute(incident_kind: str) -> Callable[[Mapping[str, float]], tuple[float, float]]:
    """A count of failures that grows only during an incident of ``incident_kind`` (per minute)."""
    return lambda effects: (effects.get(incident_kind, 0.0) / 60, 0.0)


def _phases_of(incidents: Sequence[Incident], origin: float, last: float) -> tuple[_Phase, ...]:
    """Cut ``[origin, +inf)`` wherever an incident starts or ends; ongoing incidents never end."""
    spans = []
    for incident in incidents:
        end = _utc_seconds(incident.end)
        spans.append((incident.kind, incident.value, _utc_seconds(incident.start), math.inf if end >= last else end))
    starts = {s for _, _, s, _ in spans if s > origin}
    ends = {e for _, _, _, e in spans if origin < e < math.inf}
    cuts = sorted({origin} | starts | ends)
    phases: list[_Phase] = []
    for start, end in zip(cuts, cuts[1:] + [math.inf]):
        effects = {kind: value for kind, value, s, e in spans if s <= start < e}
        if phases and phases[-1].effects == effects:
            phases[-1] = _Phase(phases[-1].start, end, effects)
        else:
            phases.append(_Phase(start, end, effects))
    return tuple(phases)


class _UsualProfiles:
    """The targets' usual latency profiles, checked together once the fleet is built (checking each
    on its own cost a numpy call per profile, a third of building a large fleet)."""

    def __init__(self) -> None:
        self._made: dict[tuple[float, ...], tuple[list[tuple[float, ...]], list[float]]] = {}

    def __call__(self, bounds: tuple[float, ...], target: float) -> tuple[float, ...]:
        profile = _unchecked_profile(bounds, target)
        profiles, targets = self._made.setdefault(bounds, ([], []))
        profiles.append(profile)
        targets.append(target)
        return profile

    def check(self) -> None:
        for bounds, (profiles, targets) in self._made.items():
            check_profiles(bounds, profiles, targets)


class _FleetModel:
    """Every target of a scenario, in a fixed order (cluster, node, component)."""

    def __init__(self, scenario: Scenario):
        self.targets: list[_Target] = []
        usual = _UsualProfiles()
        origin, last = float(scenario.first_sample), float(scenario.last_sample)
        for ci, cluster in enumerate(scenario.clusters):
            dns_hosts = scenario.dns_hosts(cluster)
            dns_pods = self._dns_pods(cluster, ci, dns_hosts)
            cluster_wave = random.Random(f"wave/{cluster}").uniform(0, 2 * math.pi)
            node_targets = []
            pods_on_nodes: list[tuple[str, str, str, str]] = []  # namespace, pod, node, created_by
            for ni, node in enumerate(scenario.node_names):
                node_ip = f"10.{ci}.{ni // 250}.{ni % 250 + 4}"
                wave = cluster_wave + random.Random(f"wave/{cluster}/{node}").uniform(-0.3, 0.3)

                def phases(component: str, node: str = node) -> tuple[_Phase, ...]:
                    where = (cluster, node, component)
                    return _phases_of([i for i in scenario.incidents if (i.cluster, i.node, i.component) == where], origin, last)

                proxy_pod = f"kube-proxy-{_pod_suffix(f'{cluster}/{node}/kube-proxy', 5)}"
                exporter_pod = f"prometheus-node-exporter-{_pod_suffix(f'{cluster}/{node}/node-exporter', 5)}"
                node_targets.append(_kubelet(cluster, node, node_ip, phases("kubelet"), wave, usual))
                node_targets.append(_kube_proxy(cluster, node, node_ip, proxy_pod, phases("kube-proxy"), wave, usual))
                node_targets.append(_node_exporter(cluster, node, exporter_pod, phases("node"), wave))
                pods_on_nodes.append(("kube-system", proxy_pod, node, "DaemonSet"))
                pods_on_nodes.append(("monitoring", exporter_pod, node, "DaemonSet"))
                if node in dns_pods:
                    pod, pod_ip = dns_pods[node]
                    node_targets.append(_coredns(cluster, node, pod, pod_ip, phases("dns"), wave, usual))
                    pods_on_nodes.append(("kube-system", pod, node, "ReplicaSet"))
            self.targets.append(
                _kube_state_metrics(cluster, ci, scenario.node_names, pods_on_nodes, _phases_of([], origin, last))
            )
            self.targets.extend(node_targets)
        usual.check()

    @staticmethod
    def _dns_pods(cluster: str, ci: int, hosts: Sequence[str]) -> dict[str, tuple[str, str]]:
        template_hash = _pod_suffix(f"{cluster}/coredns", 10)
        return {
            node: (f"coredns-{template_hash}-{_pod_suffix(f'{cluster}/{node}/coredns', 5)}", f"10.{100 + ci}.{k}.2")
            for k, node in enumerate(hosts)
        }


def _down_spans(phases: tuple[_Phase, ...]) -> tuple[tuple[float, float], ...]:
    return tuple((p.start, p.end) for p in phases if "down" in p.effects)


def _up(builder: _TargetBuilder) -> None:
    builder.gauges("up", [({}, lambda effects: (0.0 if "down" in effects else 1.0, 0.0))])


def _kubelet(
    cluster: str, node: str, node_ip: str, phases: tuple[_Phase, ...], wave: float, usual: _UsualProfiles
) -> _Target:
    rng = random.Random(f"{cluster}/{node}/kubelet")
    uptime = rng.uniform(2, 30) * DAY_SECONDS
    load = rng.uniform(0.6, 1.4)
    builder = _TargetBuilder(phases, uptime)
    _up(builder)
    swing = 0.3
    quick = {op: rate * load for op, rate in _QUICK_OPERATIONS.items()}
    others = {op: rate * load for op, rate in _OTHER_OPERATIONS.items()}
    counted = {**quick, **others}
    failing_share = sum(counted.values()) / sum(quick.values())  # errors on the quick ops only

    def error_rate(op: str) -> Callable[[Mapping[str, float]], tuple[float, float]]:
        usual = _CONTAINER_STATUS_NOT_FOUND if op == "container_status" else 0.0

        def rate(effects: Mapping[str, float]) -> tuple[float, float]:
            share = effects["runtime_errors"] * failing_share if "runtime_errors" in effects else usual
            if share > 1:
                raise ValueError("runtime error ratio too high for the demo's operation mix")
            return quick[op] * share, quick[op] * share * swing

        return rate

    builder.counters(
        "kubelet_runtime_operations",
        [({"operation_type": op}, _steady(rate, swing)) for op, rate in counted.items()]
        + [({"operation_type": "exec_sync"}, _steady(_EXEC_SYNC_RATE * load, swing))],
    )
    exec_sync_failures = _EXEC_SYNC_RATE * load * _EXEC_SYNC_FAILING
    builder.counters(
        "kubelet_runtime_operations_errors",
        [({"operation_type": op}, error_rate(op)) for op in quick]
        + [({"operation_type": "exec_sync"}, _steady(exec_sync_failures, swing))],
        # Errors since the kubelet started: a 0.1 % share of every quick operation type's calls.
        base=[uptime * rate * _CONTAINER_STATUS_NOT_FOUND for rate in quick.values()] + [uptime * exec_sync_failures],
    )
    runtime_profiles = {
        op: usual(RUNTIME_OPERATION_BUCKETS, rng.uniform(0.02, 0.07)) for op in quick
    }
    builder.histograms(
        "kubelet_runtime_operations_duration_seconds",
        RUNTIME_OPERATION_BUCKETS,
        [({"operation_type": op}, rate, lambda effects, p=runtime_profiles[op]: p) for op, rate in quick.items()],
        swing_share=swing,
    )
    usual_pleg = usual(PLEG_RELIST_BUCKETS, rng.uniform(0.03, 0.09))

    def pleg(effects: Mapping[str, float]) -> tuple[float, ...]:
        if "slow_pleg" in effects:
            return quantile_profile(PLEG_RELIST_BUCKETS, effects["slow_pleg"], body=usual_pleg)
        return usual_pleg

    builder.histograms("kubelet_pleg_relist_duration_seconds", PLEG_RELIST_BUCKETS, [({}, 1.0, pleg)])
    api_host = f"{cluster}-api.example.internal:443"
    builder.counters(
        "rest_client_requests",
        [
            ({"code": "200", "host": api_host, "method": "GET"}, _steady(0.5 * load, swing)),
            ({"code": "200", "host": api_host, "method": "PATCH"}, _steady(0.1 * load, swing)),
            ({"code": "201", "host": api_host, "method": "POST"}, _steady(0.05 * load, swing)),
            ({"code": "<error>", "host": api_host, "method": "PUT"}, _steady(0.0002 * load, swing)),
        ],
    )
    builder.counters("process_cpu_seconds", [({}, _steady(rng.uniform(0.03, 0.08) * load, 0.2))])
    builder.gauges("process_resident_memory_bytes", [({}, _steady(rng.uniform(80, 160) * 2**20, 0.02))])
    return _Target(
        "kubelet", cluster, node,
        {"cluster": cluster, "job": "kubelet", "metrics_path": "/metrics", "node": node, "instance": f"{node_ip}:10250"},
        phases, wave, _down_spans(phases), builder.families,
    )


def _kube_proxy(
    cluster: str, node: str, node_ip: str, pod: str, phases: tuple[_Phase, ...], wave: float, usual: _UsualProfiles
) -> _Target:
    rng = random.Random(f"{cluster}/{node}/kube-proxy")
    builder = _TargetBuilder(phases, rng.uniform(2, 30) * DAY_SECONDS)
    _up(builder)
    usual_sync = usual(SYNC_PROXY_RULES_BUCKETS, rng.uniform(0.15, 0.9))

    def sync(effects: Mapping[str, float]) -> tuple[float, ...]:
        if "slow_sync" in effects:
            return quantile_profile(SYNC_PROXY_RULES_BUCKETS, effects["slow_sync"], body=usual_sync)
        return usual_sync

    builder.histograms("kubeproxy_sync_proxy_rules_duration_seconds", SYNC_PROXY_RULES_BUCKETS, [({}, 0.2, sync)])
    programming = usual(NETWORK_PROGRAMMING_BUCKETS, rng.uniform(1.2, 4.0))
    builder.histograms(
        "kubeproxy_network_programming_duration_seconds",
        NETWORK_PROGRAMMING_BUCKETS,
        [({}, 0.1, lambda effects: programming)],
    )
    builder.counters("kubeproxy_sync_proxy_rules_iptables_restore_failures", [({}, _per_minute("iptables_failures"))])
    synced_lag = rng.uniform(0.5, 25.0)
    builder.gauges(
        "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
        [({}, _steady(-synced_lag - rng.uniform(0.01, 0.5), 0.0))],
        clock=True,
    )
    builder.gauges("kubeproxy_sync_proxy_rules_last_timestamp_seconds", [({}, _steady(-synced_lag, 0.0))], clock=True)
    api_host = f"{cluster}-api.example.internal:443"
    builder.counters(
        "rest_client_requests",
        [
            ({"code": "200", "host": api_host, "method": "GET"}, _steady(0.05, 0.1)),
            ({"code": "201", "host": api_host, "method": "POST"}, _steady(0.01, 0.1)),
            ({"code": "<error>", "host": api_host, "method": "GET"}, _steady(0.0, 0.0)),
        ],
        base=[0.05 * builder.uptime, 0.01 * builder.uptime, 2.0],
    )
    builder.counters("process_cpu_seconds", [({}, _steady(rng.uniform(0.005, 0.03), 0.2))])
    builder.gauges("process_resident_memory_bytes", [({}, _steady(rng.uniform(25, 45) * 2**20, 0.02))])
    return _Target(
        "kube-proxy", cluster, node,
        {"cluster": cluster, "job": "kube-proxy", "namespace": "kube-system", "pod": pod, "instance": f"{node_ip}:10249"},
        phases, wave, _down_spans(phases), builder.families,
    )


def _coredns(
    cluster: str, node: str, pod: str, pod_ip: str, phases: tuple[_Phase, ...], wave: float, usual: _UsualProfiles
) -> _Target:
    rng = random.Random(f"{cluster}/{node}/coredns")
    builder = _TargetBuilder(phases, rng.uniform(2, 30) * DAY_SECONDS)
    _up(builder)
    queries = rng.uniform(50, 200)
    swing = 0.3

    def answers(rcode: str) -> Callable[[Mapping[str, float]], tuple[float, float]]:
        def rate(effects: Mapping[str, float]) -> tuple[float, float]:
            shares = dict(_DNS_RCODE_SHARES)
            if "servfail" in effects:
                shares["SERVFAIL"] = effects["servfail"]
            shares["NOERROR"] = 1 - sum(shares.values()) - _DNS_DROPPED_REFUSED
            if shares["NOERROR"] < 0:
                raise ValueError("SERVFAIL share too high for the demo's answer mix")
            return queries * shares[rcode], queries * shares[rcode] * swing

        return rate

    zone = {"server": "dns://:53", "zone": "."}
    builder.counters(
        "coredns_dns_responses",
        [({**zone, "rcode": rcode}, answers(rcode)) for rcode in ("NOERROR", "NXDOMAIN", "SERVFAIL")]
        + [({"server": "", "zone": "dropped", "rcode": "REFUSED"}, _steady(queries * _DNS_DROPPED_REFUSED, swing))],
    )
    latency = usual(COREDNS_REQUEST_BUCKETS, rng.uniform(0.003, 0.03))
    builder.histograms(
        "coredns_dns_request_duration_seconds", COREDNS_REQUEST_BUCKETS, [(zone, queries, lambda effects: latency)],
        swing_share=swing,
    )
    builder.counters("coredns_panics", [({}, _per_minute("panics"))])
    builder.counters("process_cpu_seconds", [({}, _steady(queries * rng.uniform(1e-4, 3e-4), swing))])
    builder.gauges("process_resident_memory_bytes", [({}, _steady(rng.uniform(20, 40) * 2**20, 0.02))])
    return _Target(
        "dns", cluster, node,
        {"cluster": cluster, "job": "coredns", "namespace": "kube-system", "pod": pod, "instance": f"{pod_ip}:9153"},
        phases, wave, _down_spans(phases), builder.families,
    )


def _node_exporter(cluster: str, node: str, pod: str, phases: tuple[_Phase, ...], wave: float) -> _Target:
    rng = random.Random(f"{cluster}/{node}/node")
    builder = _TargetBuilder(phases, rng.uniform(2, 60) * DAY_SECONDS)
    _up(builder)
    usual_busy = rng.uniform(0.15, 0.5)

    def busy(effects: Mapping[str, float]) -> tuple[float, float]:
        if "busy" in effects:
            return effects["busy"], 0.02
        return usual_busy, usual_busy * 0.3

    def mode_rate(mode: str) -> Callable[[Mapping[str, float]], tuple[float, float]]:
        def rate(effects: Mapping[str, float]) -> tuple[float, float]:
            level, swing = busy(effects)
            if mode in _CPU_BUSY_MODES:
                return level * _CPU_BUSY_MODES[mode], swing * _CPU_BUSY_MODES[mode]
            if mode == "iowait":
                return _CPU_IOWAIT, 0.0
            if mode == "steal":
                return _CPU_STEAL, 0.0
            return 1 - level - _CPU_IOWAIT - _CPU_STEAL, -swing

        return rate

    modes = (*_CPU_BUSY_MODES, "iowait", "steal", "idle")
    builder.counters(
        "node_cpu_seconds",
        [({"cpu": str(cpu), "mode": mode}, mode_rate(mode)) for cpu in range(_NODE_CPUS) for mode in modes],
    )
    memory = float(rng.choice((16, 32, 64)) * 2**30)
    usual_memory = rng.uniform(0.35, 0.7)

    def available(effects: Mapping[str, float]) -> tuple[float, float]:
        used, swing = (0.9, 0.01) if "busy" in effects else (usual_memory, 0.05)
        return memory * (1 - used), -memory * swing

    builder.gauges("node_memory_MemTotal_bytes", [({}, _steady(memory, 0.0))])
    builder.gauges("node_memory_MemAvailable_bytes", [({}, available)])
    root = {"device": "/dev/nvme0n1p1", "fstype": "ext4", "mountpoint": "/"}
    disk = 100.0 * 2**30
    builder.gauges("node_filesystem_size_bytes", [(root, _steady(disk, 0.0))])
    builder.gauges("node_filesystem_avail_bytes", [(root, _steady(disk * (1 - rng.uniform(0.2, 0.6)), 0.0))])
    received = rng.uniform(2e6, 2e7)
    for family, share in (("node_network_receive_bytes", 1.0), ("node_network_transmit_bytes", 0.5)):
        builder.counters(
            family,
            [({"device": "eth0"}, _steady(received * share, 0.4)), ({"device": "lo"}, _steady(1e5, 0.0))],
        )
    return _Target(
        "node", cluster, node,
        {"cluster": cluster, "job": "node-exporter", "namespace": "monitoring", "pod": pod, "instance": node},
        phases, wave, (), builder.families,
    )


def _kube_state_metrics(
    cluster: str, ci: int, nodes: Sequence[str], pods: Sequence[tuple[str, str, str, str]], phases: tuple[_Phase, ...]
) -> _Target:
    builder = _TargetBuilder(phases, 0.0)
    _up(builder)
    one = _steady(1.0, 0.0)
    builder.gauges(
        "kube_node_info",
        [({"node": node, "kubelet_version": "v1.29.4", "container_runtime_version": "containerd://1.7.13"}, one)
         for node in nodes],
    )
    builder.gauges(
        "kube_pod_info",
        [({"namespace": namespace, "pod": pod, "node": node, "created_by_kind": kind}, one)
         for namespace, pod, node, kind in pods],
    )
    return _Target(
        "kube-state-metrics", cluster, None,
        {"cluster": cluster, "job": "kube-state-metrics", "instance": f"10.{100 + ci}.250.10:8080"},
        phases, 0.0, (), builder.families,
    )
