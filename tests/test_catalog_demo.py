"""The catalog is the one place a signal lives: the demo answers every signal of every preset from it.

The demo reads each signal's selectors, expressions and shape from the catalog. A signal it cannot
answer (a metric its fleet does not expose, PromQL it does not evaluate) fails here, by name, rather
than reading as "no data" on the demo.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

import dashboard.catalog
from dashboard.catalog import PRESETS, Catalog, Selectors, Signal, Thresholds
from dashboard.sources.demo import DemoSource, demo_scenario
from dashboard.sources.demo.expressions import Unsupported

END = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
AT = END - timedelta(minutes=10)


@pytest.fixture(scope="module")
def demo() -> DemoSource:
    return DemoSource(demo_scenario(END))


def unanswered(demo: DemoSource, catalog: Catalog) -> list[str]:
    """``component/signal (scope)`` of every signal the catalog queries that the demo gives no value.

    The demo's series follow kube-prometheus-stack's layout, so every preset is read with its
    selectors: what is checked is each preset's signals, not whether its selectors match the demo.
    """
    catalog = replace(catalog, selectors=Selectors())
    frame = demo.observe(catalog, at=AT).frame
    answered = set(zip(frame["component"], frame["signal"], frame["scope"]))
    wanted = [
        (sig.component, sig.name, scope)
        for sig in catalog.signals
        if sig.name not in catalog.known_absent(sig.component)
        for scope in (("node", "cluster") if sig.rollup else ("node",))
    ]
    return [f"{component}/{name} ({scope})" for component, name, scope in wanted
            if (component, name, scope) not in answered]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_the_demo_answers_every_signal_of_every_preset(demo: DemoSource, preset: str) -> None:
    assert unanswered(demo, PRESETS[preset]) == []


def with_signals(monkeypatch: pytest.MonkeyPatch, *extra: Signal) -> Catalog:
    """The kube-prometheus-stack catalog with ``extra`` signals added to the catalog's own."""
    signals = dashboard.catalog._signals
    monkeypatch.setattr(dashboard.catalog, "_signals", lambda period: (*signals(period), *extra))
    return PRESETS["kube-prometheus-stack"]


THRESHOLDS = Thresholds(1, 2, "test")


def test_a_signal_on_a_metric_the_demo_does_not_expose_is_named(demo: DemoSource, monkeypatch) -> None:
    catalog = with_signals(
        monkeypatch,
        Signal("evictions", "kubelet", "work", "events", "sum",
               ("increase(kubelet_evictions_total{$sel}[$window])",), "Evictions.", THRESHOLDS),
        Signal("lookup_p99", "dns", "work", "seconds", "quantile",
               ("rate(coredns_forward_request_duration_seconds_bucket{$sel}[$window])",), "Forwarding.",
               THRESHOLDS, rollup=True),
    )
    assert unanswered(demo, catalog) == [
        "kubelet/evictions (node)", "dns/lookup_p99 (node)", "dns/lookup_p99 (cluster)",
    ]


def test_a_signal_in_promql_the_demo_does_not_evaluate_fails_naming_it(demo: DemoSource, monkeypatch) -> None:
    catalog = with_signals(
        monkeypatch,
        Signal("restarts", "kube-proxy", "work", "events", "sum",
               ("changes(process_start_time_seconds{$sel}[$window])",), "Restarts.", THRESHOLDS),
    )
    with pytest.raises(Unsupported, match=r"kube-proxy/restarts: .*function 'changes'"):
        unanswered(demo, catalog)
