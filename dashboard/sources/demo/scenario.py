"""The demo's scenario: clusters of nodes sampled over a history, and the incidents on them.

``INCIDENT_KINDS`` says what each kind of incident does and which catalog signal shows it;
``demo_scenario`` is the product demo, mostly healthy clusters with one of each kind of trouble.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

# What each incident kind does, and the catalog signal that shows it. ``Incident.value`` is, per kind:
INCIDENT_KINDS: dict[tuple[str, str], str] = {
    ("node", "busy"): "cpu_busy_ratio",  # share of CPU busy; memory use goes to 90 %, work stays fast
    ("kubelet", "down"): "up",  # value ignored: scrapes fail (up 0, no other series; counters keep counting)
    ("kubelet", "runtime_errors"): "runtime_error_ratio",  # share of runtime operations failing
    ("kubelet", "slow_pleg"): "pleg_relist_p99",  # p99 relist duration, seconds
    ("kube-proxy", "down"): "up",
    ("kube-proxy", "slow_sync"): "sync_proxy_rules_p99",  # p99 rule sync duration, seconds
    ("kube-proxy", "iptables_failures"): "iptables_restore_failures",  # failed restores per minute
    ("dns", "down"): "up",
    ("dns", "servfail"): "servfail_ratio",  # share of answers that are SERVFAIL
    ("dns", "panics"): "panics",  # panics per minute
}


def _utc_seconds(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


@dataclass(frozen=True)
class Incident:
    """Something wrong with one component of one node, from ``start`` until ``end``.

    ``(component, kind)`` is a key of ``INCIDENT_KINDS``; ``value`` sets the incident's signal while
    it lasts (see there): a share, or a p99 in seconds, which reads as the histogram's highest
    finite bound when it lies above it. An incident that ends at or after the scenario's last
    sample is ongoing.
    """

    cluster: str
    node: str
    component: str
    kind: str
    start: datetime
    end: datetime
    value: float = 0.0

    @property
    def signal(self) -> str:
        """The catalog signal of ``component`` that shows this incident."""
        return INCIDENT_KINDS[(self.component, self.kind)]


@dataclass(frozen=True)
class Scenario:
    """A generated fleet: clusters of ``nodes`` nodes each, sampled every ``step`` over ``history``.

    Samples sit on the epoch-aligned grid of ``step`` inside ``[end - history, end]``. Each
    cluster runs ``dns_replicas`` CoreDNS pods, on distinct nodes (``dns_hosts``).
    """

    clusters: tuple[str, ...]
    nodes: int
    end: datetime
    history: timedelta
    step: timedelta
    incidents: tuple[Incident, ...] = ()
    dns_replicas: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "clusters", tuple(self.clusters))
        object.__setattr__(self, "incidents", tuple(self.incidents))
        if not self.clusters or len(set(self.clusters)) != len(self.clusters):
            raise ValueError("clusters must be distinct and at least one")
        if self.nodes < 1 or not 1 <= self.dns_replicas <= self.nodes:
            raise ValueError("need at least one node, and 1..nodes DNS replicas")
        step = self.step.total_seconds()
        if step < 1 or step != int(step):
            raise ValueError("step must be a whole number of seconds")
        if self.history < self.step:
            raise ValueError("history must cover at least one step")
        spans: dict[tuple[str, str, str, str], list[tuple[float, float]]] = {}
        for incident in self.incidents:
            if incident.cluster not in self.clusters or incident.node not in self.node_names:
                raise ValueError(f"incident on unknown node {incident.cluster}/{incident.node}")
            if (incident.component, incident.kind) not in INCIDENT_KINDS:
                raise ValueError(f"unknown incident {incident.component}/{incident.kind}")
            if incident.component == "dns" and incident.node not in self.dns_hosts(incident.cluster):
                raise ValueError(f"{incident.cluster}/{incident.node} hosts no DNS server")
            start, end = _utc_seconds(incident.start), _utc_seconds(incident.end)
            if end <= start:
                raise ValueError("an incident must end after it starts")
            key = (incident.cluster, incident.node, incident.component, incident.kind)
            if any(start < other_end and other_start < end for other_start, other_end in spans.get(key, [])):
                raise ValueError(f"overlapping {incident.kind} incidents on {incident.cluster}/{incident.node}")
            spans.setdefault(key, []).append((start, end))

    @property
    def step_seconds(self) -> int:
        return int(self.step.total_seconds())

    @property
    def first_sample(self) -> int:
        """Epoch seconds of the first grid point."""
        begin = _utc_seconds(self.end) - self.history.total_seconds()
        return math.ceil(begin / self.step_seconds) * self.step_seconds

    @property
    def last_sample(self) -> int:
        """Epoch seconds of the last grid point."""
        return math.floor(_utc_seconds(self.end) / self.step_seconds) * self.step_seconds

    @property
    def node_names(self) -> tuple[str, ...]:
        width = max(2, len(str(self.nodes - 1)))
        return tuple(f"node-{i:0{width}d}" for i in range(self.nodes))

    def dns_hosts(self, cluster: str) -> tuple[str, ...]:
        """Nodes running the cluster's CoreDNS pods (the same positions in every cluster)."""
        names = self.node_names
        indexes = sorted({(1 + k * self.nodes // self.dns_replicas) % self.nodes for k in range(self.dns_replicas)})
        return tuple(names[i] for i in indexes)


def demo_scenario(
    end: datetime,
    *,
    clusters: Sequence[str] = ("prod", "staging"),
    nodes: int = 12,
    history: timedelta = timedelta(days=7),
    step: timedelta = timedelta(seconds=60),
) -> Scenario:
    """The product demo: mostly healthy clusters with one of each kind of trouble.

    First cluster (``prod``): node-01 (a DNS host) answers 20 % SERVFAIL for the last 40 minutes;
    node-03 is busy (CPU ~95 %, memory 90 %) but its components answer fast and without errors,
    for the last 6 hours; node-05's kubelet fails 12 % of runtime operations for the last 90
    minutes; node-07's kube-proxy fails an iptables-restore every other minute for the last 30
    minutes (degraded). Second cluster (``staging``, or the first again when there is one): node-04's
    kube-proxy syncs rules with a p99 of ~7 s (degraded) for the last 2 hours; node-06's kubelet has
    been unreachable for the last 25 minutes; the CoreDNS on the last DNS host panics every 10
    minutes for the last 15 minutes; node-02's PLEG relists took over 10 s (p99, reads 10 s) from 50
    to 48 hours before ``end`` (resolved). Incidents outside ``history`` are left out.
    """
    if nodes < 8:
        raise ValueError("the demo scenario needs at least 8 nodes per cluster")
    clusters = tuple(clusters)
    first, second = clusters[0], clusters[1 % len(clusters)]
    width = max(2, len(str(nodes - 1)))

    def node(index: int) -> str:
        return f"node-{index:0{width}d}"

    def ago(**delta: float) -> datetime:
        return end - timedelta(**delta)

    layout = Scenario(clusters=clusters, nodes=nodes, end=end, history=history, step=step)
    incidents = [
        Incident(first, node(1), "dns", "servfail", ago(minutes=40), end, 0.20),
        Incident(first, node(3), "node", "busy", ago(hours=6), end, 0.95),
        Incident(first, node(5), "kubelet", "runtime_errors", ago(minutes=90), end, 0.12),
        Incident(first, node(7), "kube-proxy", "iptables_failures", ago(minutes=30), end, 0.5),
        Incident(second, node(4), "kube-proxy", "slow_sync", ago(hours=2), end, 7.0),
        Incident(second, node(6), "kubelet", "down", ago(minutes=25), end),
        Incident(second, layout.dns_hosts(second)[-1], "dns", "panics", ago(minutes=15), end, 0.1),
        Incident(second, node(2), "kubelet", "slow_pleg", ago(hours=50), ago(hours=48), 15.0),
    ]
    begin = end - history
    return replace(layout, incidents=tuple(i for i in incidents if i.end > begin))
